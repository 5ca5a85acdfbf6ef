"""The page's two views, laid out and wired: ``ui.views.student`` and ``ui.views.teacher``.

Each view module has ``layout(h, c)``, which adds its components to the name -> component dict
``c`` (the names the handlers' ``*_OUTPUTS`` lists use), and ``wire(h, c, wiring)``, which
connects its buttons to the handlers through ``Wiring.on`` (refuses a handler without a role
check).
"""

from __future__ import annotations

from typing import Any

from ui.guard import role_of


class Wiring:
    """Connects events to guarded handlers; ``out(*names)`` are the components by name."""

    def __init__(self, c: dict[str, Any]) -> None:
        self.c = c

    def out(self, *names: str) -> list[Any]:
        """The components called ``names``, in that order (an event's inputs or outputs)."""
        return [self.c[n] for n in names]

    def on(self, trigger: Any, fn: Any, inputs: list[Any], outputs: list[Any], **kw: Any) -> Any:
        """``trigger(fn, inputs, outputs, **kw)`` for a handler with a role check."""
        # Every server function is a guarded handler; an unguarded one cannot be wired.
        if role_of(fn) is None:
            raise TypeError(f"{fn!r} has no role check (ui.guard)")
        return trigger(fn, inputs, outputs, **kw)
