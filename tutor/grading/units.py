"""Units of measure: the unit table (length, area, volume, mass, time, money, temperature)
and ``parse_unit``, which reads a unit as a learner writes it (``square centimeters``, ``cm²``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from tutor.grading.normalize import normalize_text

Dimension = tuple[int, int, int, int, int]  # length, mass, time, money, temperature


@dataclass(frozen=True)
class Unit:
    key: str  # canonical symbol: "cm^2"
    dim: Dimension
    factor: Fraction  # to SI base (m, kg, s, dollar)


def _build_units() -> tuple[dict[str, Unit], dict[str, str]]:
    units: dict[str, Unit] = {}
    aliases: dict[str, str] = {}

    def add(key: str, dim: Dimension, factor: Fraction, *names: str) -> None:
        units[key] = Unit(key, dim, factor)
        for n in (key, *names):
            aliases[n] = key

    lengths = {
        "mm": (Fraction(1, 1000), ("millimeter", "millimetre")),
        "cm": (Fraction(1, 100), ("centimeter", "centimetre")),
        "m": (Fraction(1), ("meter", "metre")),
        "km": (Fraction(1000), ("kilometer", "kilometre")),
        "in": (Fraction(254, 10000), ("inch", "inches")),
        "ft": (Fraction(3048, 10000), ("foot", "feet")),
        "yd": (Fraction(9144, 10000), ("yard",)),
        "mi": (Fraction(1609344, 1000), ("mile",)),
    }
    for sym, (f, names) in lengths.items():
        add(sym, (1, 0, 0, 0, 0), f, *names, *(n + "s" for n in names))
        add(
            f"{sym}^2",
            (2, 0, 0, 0, 0),
            f * f,
            *(f"square {n}" for n in (sym, *names)),
            *(f"square {n}s" for n in names),
            *(f"sq {n}" for n in (sym, *names)),
            *(f"sq {n}s" for n in names),
            f"{sym}2",
            f"sq{sym}",
            *(f"{n} squared" for n in (sym, *names)),
            *(f"{n}s squared" for n in names),
        )
        add(
            f"{sym}^3",
            (3, 0, 0, 0, 0),
            f * f * f,
            *(f"cubic {n}" for n in (sym, *names)),
            *(f"cubic {n}s" for n in names),
            f"{sym}3",
            f"cu {sym}",
            *(f"{n} cubed" for n in (sym, *names)),
        )
    aliases["feet squared"] = "ft^2"
    aliases["square feet"] = "ft^2"
    aliases["square foot"] = "ft^2"
    aliases["cubic feet"] = "ft^3"
    add(
        "ml",
        (3, 0, 0, 0, 0),
        Fraction(1, 10**6),
        "milliliter",
        "millilitre",
        "milliliters",
        "millilitres",
    )
    add("l", (3, 0, 0, 0, 0), Fraction(1, 1000), "liter", "litre", "liters", "litres")
    add("mg", (0, 1, 0, 0, 0), Fraction(1, 10**6), "milligram", "milligrams")
    add("g", (0, 1, 0, 0, 0), Fraction(1, 1000), "gram", "grams")
    add("kg", (0, 1, 0, 0, 0), Fraction(1), "kilogram", "kilograms", "kilo", "kilos")
    add("s", (0, 0, 1, 0, 0), Fraction(1), "sec", "secs", "second", "seconds")
    add("min", (0, 0, 1, 0, 0), Fraction(60), "mins", "minute", "minutes")
    add("h", (0, 0, 1, 0, 0), Fraction(3600), "hr", "hrs", "hour", "hours")
    add("day", (0, 0, 1, 0, 0), Fraction(86400), "days")
    add("$", (0, 0, 0, 1, 0), Fraction(1), "dollar", "dollars", "usd")
    add("cent", (0, 0, 0, 1, 0), Fraction(1, 100), "cents", "¢", "c")
    add(
        "degc",
        (0, 0, 0, 0, 1),
        Fraction(1),
        "°c",
        "° c",
        "degrees c",
        "degrees celsius",
        "celsius",
        "c°",
    )
    return units, aliases


UNITS, _UNIT_ALIASES = _build_units()


def parse_unit(text: str) -> Unit | None:
    """``"square centimeters"``, ``"cm²"``, ``"cm^2"`` -> the ``cm^2`` unit; None if unknown."""
    t = normalize_text(text).strip(" .")
    t = re.sub(r"\s*\^\s*", "^", t)
    t = re.sub(r"\s+", " ", t)
    key = _UNIT_ALIASES.get(t)
    return UNITS[key] if key else None
