"""Build the training data of the learner-message intent classifier (issue 14).

Writes ``train.jsonl`` (slot-filling templates and phrase lists written for this project) and
``heldout.jsonl`` (hand-written, from ``heldout_build.py``) next to this file, checks both, and
prints the counts per label per split (and updates the counts table in README.md).

Deterministic: one seeded ``random.Random``, standard library only, no set iteration.

    python data/intents/build.py

Each record: {"text", "label", "problem_open", "problem_kind", "last_tutor_question", "source"}.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import heldout_build  # noqa: E402  (hand-written held-out set, kept in its own file)

SEED = 14
LABELS = [
    "question",
    "answer",
    "step",
    "hint",
    "solution",
    "practice",
    "new_problem",
    "greeting",
    "offtopic",
    "meta",
]
KINDS = ["none", "bank", "own", "word"]
MIN_TRAIN, MIN_TRAIN_LABEL = 2400, 150
MIN_HELDOUT, MIN_HELDOUT_LABEL = 500, 35

rng = random.Random(SEED)

# --------------------------------------------------------------------------------------------
# Conversation states
# --------------------------------------------------------------------------------------------


def state(open_: bool, kind: str, ltq: bool) -> tuple[bool, str, bool]:
    return (open_, kind if open_ else "none", ltq)


def closed(ltq: bool | None = None) -> tuple[bool, str, bool]:
    return state(False, "none", rng.random() < 0.4 if ltq is None else ltq)


def opened(kinds: list[str] | None = None, ltq: bool | None = None, p_ltq: float = 0.6):
    kind = rng.choice(kinds or ["bank", "own", "word"])
    return state(True, kind, rng.random() < p_ltq if ltq is None else ltq)


def mixed(p_open: float, kinds: list[str] | None = None, p_ltq: float = 0.4):
    if rng.random() < p_open:
        return opened(kinds, p_ltq=p_ltq)
    return closed(rng.random() < p_ltq)


# --------------------------------------------------------------------------------------------
# Perturbations: typos, casing, emoji, text-speak, punctuation
# --------------------------------------------------------------------------------------------

EMOJI = [
    "🙂",
    "😊",
    "😩",
    "🤔",
    "😅",
    "🙏",
    "👍",
    "😭",
    "🥲",
    "😎",
    "🤯",
    "😬",
    "✨",
    "💀",
    "😂",
    "❤️",
]
TEXTSPEAK = [
    (r"\bi don'?t know\b", "idk"),
    (r"\bdon'?t know\b", "dunno"),
    (r"\byou\b", "u"),
    (r"\byour\b", "ur"),
    (r"\byou'?re\b", "ur"),
    (r"\bplease\b", "pls"),
    (r"\bthanks\b", "thx"),
    (r"\bthank you\b", "ty"),
    (r"\bare\b", "r"),
    (r"\bbecause\b", "bc"),
    (r"\bwhat\b", "wat"),
    (r"\bwhy\b", "y"),
    (r"\bi'm\b", "im"),
    (r"\bdon't\b", "dont"),
    (r"\bcan't\b", "cant"),
    (r"\bwhat's\b", "whats"),
    (r"\bit's\b", "its"),
    (r"\bokay\b", "ok"),
    (r"\bgoing to\b", "gonna"),
    (r"\bwant to\b", "wanna"),
    (r"\bsomething\b", "smth"),
    (r"\bpeople\b", "ppl"),
    (r"\breally\b", "rly"),
    (r"\bwith\b", "w/"),
    (r"\bprobably\b", "prob"),
    (r"\bquestion\b", "q"),
]
KEYBOARD_NEIGHBOURS = {
    "a": "sq",
    "e": "wr",
    "i": "uo",
    "o": "ip",
    "u": "yi",
    "s": "ad",
    "t": "ry",
    "n": "bm",
    "r": "et",
    "h": "gj",
    "l": "k",
    "d": "sf",
    "m": "n",
    "c": "xv",
    "p": "o",
    "g": "fh",
}


def typo(text: str) -> str:
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not spots:
        return text
    i = rng.choice(spots)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    how = rng.randrange(4)
    if how == 0:  # swap two letters
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    elif how == 1:  # drop a letter
        w = w[:j] + w[j + 1 :]
    elif how == 2:  # double a letter
        w = w[:j] + w[j] + w[j:]
    else:  # hit a neighbouring key
        c = w[j].lower()
        w = w[:j] + rng.choice(KEYBOARD_NEIGHBOURS.get(c, c)) + w[j + 1 :]
    words[i] = w
    return " ".join(words)


def textspeak(text: str) -> str:
    out = text.lower()
    for pattern, repl in TEXTSPEAK:
        out = re.sub(pattern, repl, out)
    return out


def emoji(text: str) -> str:
    e = rng.choice(EMOJI)
    if rng.random() < 0.2:
        return f"{e} {text}"
    return f"{text} {e}" if rng.random() < 0.7 else f"{text} {e}{e}"


def punct(text: str) -> str:
    t = text.rstrip("?.! ")
    return t + rng.choice(["", "??", "!!", "...", " ?", "!!!", "."])


PERTURB = {
    "typo": typo,
    "lower": lambda t: t.lower(),
    "caps": lambda t: t.upper(),
    "emoji": emoji,
    "textspeak": textspeak,
    "punct": punct,
}
PERTURB_NAMES = list(PERTURB)


def perturbed(text: str, n: int, allowed: list[str] | None = None) -> list[tuple[str, str]]:
    """The text itself plus up to ``n`` perturbed versions, each (text, perturbation name)."""
    out = [(text, "")]
    names = allowed or PERTURB_NAMES
    for _ in range(n):
        name = rng.choice(names)
        t = PERTURB[name](text)
        if name == "typo" and rng.random() < 0.3:
            t = t.lower()
        if t.strip() and all(t != o for o, _ in out):
            out.append((t, name))
    return out


# --------------------------------------------------------------------------------------------
# Record store
# --------------------------------------------------------------------------------------------

RECORDS: dict[tuple[str, bool, str, bool], dict] = {}

# Very short held-out messages ("?", "ok", "yes", "next", "3/4", "x = 4", ...) are reserved for the
# held-out set: a one-word text is bound to be generated by some template too, so train skips
# these exact (case-insensitive) texts and keeps its own variants ("ok.", "yes!", "next!", "??").
# Any longer held-out text found in train is an error (see check_disjoint).
SHORT_RESERVED_LEN = 12
RESERVED: dict[str, bool] = {}
SKIPPED: list[str] = []


def add(text: str, label: str, st: tuple[bool, str, bool], source: str) -> None:
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return
    if norm(text) in RESERVED:
        SKIPPED.append(text)
        return
    key = (text, st[0], st[1], st[2])
    if key in RECORDS:
        if RECORDS[key]["label"] != label:
            raise SystemExit(
                f"conflicting labels for {key!r}: {RECORDS[key]['label']} vs {label} ({source})"
            )
        return
    RECORDS[key] = {
        "text": text,
        "label": label,
        "problem_open": st[0],
        "problem_kind": st[1],
        "last_tutor_question": st[2],
        "source": source,
    }


def add_all(texts, label, family, state_fn, n_perturb=1, allowed=None, prefix="template"):
    for base in texts:
        for t, how in perturbed(base, n_perturb, allowed):
            add(t, label, state_fn(), f"{prefix}:{family}" + (f"+{how}" if how else ""))


def hand(texts, label, group, state_fn, n_perturb=1, allowed=None):
    add_all(texts, label, group, state_fn, n_perturb, allowed, prefix="hand")


# --------------------------------------------------------------------------------------------
# Slots
# --------------------------------------------------------------------------------------------

NAMES = [
    ("Maria", "she", "her"),
    ("James", "he", "his"),
    ("Aisha", "she", "her"),
    ("Leo", "he", "his"),
    ("Sofia", "she", "her"),
    ("Omar", "he", "his"),
    ("Emma", "she", "her"),
    ("Noah", "he", "his"),
    ("Lina", "she", "her"),
    ("Ravi", "he", "his"),
    ("Mei", "she", "her"),
    ("Lucas", "he", "his"),
    ("Fatima", "she", "her"),
    ("Jamal", "he", "his"),
    ("Zara", "she", "her"),
    ("Ethan", "he", "his"),
    ("Hana", "she", "her"),
    ("Diego", "he", "his"),
    ("Grace", "she", "her"),
    ("Kofi", "he", "his"),
    ("Nina", "she", "her"),
    ("Tariq", "he", "his"),
    ("Julia", "she", "her"),
    ("Ben", "he", "his"),
    ("Amara", "she", "her"),
    ("Yusuf", "he", "his"),
    ("Chloe", "she", "her"),
    ("Mateo", "he", "his"),
    ("Ivy", "she", "her"),
    ("Arjun", "he", "his"),
    ("Elena", "she", "her"),
    ("Kai", "he", "his"),
    ("Layla", "she", "her"),
    ("Theo", "he", "his"),
    ("Rosa", "she", "her"),
    ("Malik", "he", "his"),
    ("Anna", "she", "her"),
    ("Hugo", "he", "his"),
    ("Sara", "she", "her"),
    ("Tom", "he", "his"),
]
TRAIN_NAME_WORDS = [n for n, _, _ in NAMES]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "September", "October"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
ITEMS = [
    "cupcakes",
    "bracelets",
    "stickers",
    "tickets",
    "cookies",
    "plants",
    "books",
    "candles",
    "comics",
    "lemonades",
    "muffins",
    "keychains",
    "postcards",
    "pies",
    "crates of apples",
]
UNITS = ["km", "m", "cm", "kg", "g", "litres", "ml", "minutes", "hours", "dollars"]
TOPICS = [
    "fractions",
    "decimals",
    "percents",
    "percentages",
    "ratios",
    "equations",
    "linear equations",
    "order of operations",
    "area",
    "perimeter",
    "area and perimeter",
    "photosynthesis",
    "the water cycle",
    "adding fractions",
    "dividing fractions",
    "rounding decimals",
    "solving for x",
    "circles",
    "mixed numbers",
    "rates",
    "unit conversion",
]


def fmt_money(x: float) -> str:
    return f"${x:.2f}" if x != int(x) else f"${int(x)}"


def rand_fraction() -> str:
    d = rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 16])
    n = rng.randrange(1, d)
    return f"{n}/{d}"


def rand_value(kind: str) -> str:
    """A plausible final answer for a problem of this kind."""
    r = rng.random()
    if kind == "word":
        n = rng.choice([rng.randrange(2, 60), rng.randrange(60, 999), rng.randrange(10, 200)])
        u = rng.choice(ITEMS + UNITS + ["apples", "students", "pages", "miles", "people", ""])
        if u == "dollars" and rng.random() < 0.6:
            return fmt_money(rng.choice([n, n + 0.5, n + 0.25]))
        return f"{n} {u}".strip()
    if r < 0.3:
        return rand_fraction()
    if r < 0.45:
        return str(rng.choice([0.25, 0.5, 0.75, 1.2, 2.5, 3.75, 0.6, 4.05, 12.5, 0.125]))
    if r < 0.6:
        return f"{rng.choice('xyn')} = {rng.choice([rng.randrange(-9, 20), rand_fraction()])}"
    if r < 0.7:
        return f"{rng.choice([5, 10, 12.5, 15, 20, 25, 30, 40, 75, 150])}%"
    if r < 0.8:
        return f"{rng.randrange(1, 9)} {rand_fraction()}"
    return str(rng.randrange(-20, 500))


# --------------------------------------------------------------------------------------------
# question
# --------------------------------------------------------------------------------------------

CONCEPTS = [
    "a fraction",
    "a numerator",
    "a denominator",
    "a common denominator",
    "an improper fraction",
    "a mixed number",
    "a decimal",
    "place value",
    "a percent",
    "a ratio",
    "a rate",
    "a unit rate",
    "a variable",
    "an equation",
    "a coefficient",
    "a constant",
    "like terms",
    "an expression",
    "perimeter",
    "area",
    "circumference",
    "pi",
    "a radius",
    "a diameter",
    "a parallelogram",
    "photosynthesis",
    "chlorophyll",
    "a chloroplast",
    "glucose",
    "stomata",
    "evaporation",
    "condensation",
    "precipitation",
    "transpiration",
    "runoff",
    "groundwater",
    "water vapor",
    "the water cycle",
    "a reciprocal",
    "the lowest common multiple",
    "a factor",
    "a prime number",
    "an exponent",
    "a square number",
    "a negative number",
    "BODMAS",
    "PEMDAS",
    "a right angle",
]
WHY_PROCEDURES = [
    "flip the second fraction when we divide",
    "need a common denominator to add fractions",
    "do multiplication before addition",
    "do the same thing to both sides of an equation",
    "multiply by 100 to get a percent",
    "move the decimal point when we multiply by 10",
    "square the radius in the area of a circle",
    "divide by 2 in the area of a triangle",
    "keep the denominator the same when adding fractions",
    "simplify fractions",
    "need brackets",
    "use pi for circles",
    "line up the decimal points when adding",
    "change mixed numbers to improper fractions first",
    "cross multiply",
    "write the units squared for area",
]
HOW_PROCESSES = [
    "photosynthesis",
    "evaporation",
    "condensation",
    "the water cycle",
    "transpiration",
    "rain",
    "a cloud",
    "a plant",
    "a leaf",
    "snow",
    "groundwater",
    "a rainbow",
]
WHY_FACTS = [
    "is the sky blue",
    "are leaves green",
    "does ice float",
    "do plants need sunlight",
    "does it rain",
    "do puddles disappear on sunny days",
    "is sea water salty",
    "do we get dew in the morning",
    "does a cold glass get wet on the outside",
    "do plants give off oxygen",
    "do clouds float",
    "can't plants grow in the dark",
    "is the ocean blue",
    "does water boil at 100 degrees",
    "do leaves fall in autumn",
    "is dividing by zero not allowed",
    "is pi never ending",
    "is a negative times a negative positive",
    "is any number to the power 0 equal to 1",
    "is 1 not a prime number",
]
DIFFS = [
    ("area", "perimeter"),
    ("evaporation", "condensation"),
    ("radius", "diameter"),
    ("a ratio", "a fraction"),
    ("a rate", "a ratio"),
    ("numerator", "denominator"),
    ("an expression", "an equation"),
    ("weather", "climate"),
    ("precipitation", "rain"),
    ("percent", "percentage"),
    ("a factor", "a multiple"),
    ("transpiration", "evaporation"),
    ("mean", "median"),
    ("mass", "weight"),
    ("a square", "a rectangle"),
]

QUESTION_HAND = [
    "why do we flip the second fraction?",
    "what is photosynthesis",
    "how does evaporation work?",
    "what does denominator mean?",
    "why is the sky blue?",
    "can you explain what a variable is",
    "what's the point of learning fractions",
    "how do plants make their own food?",
    "where does the water go when it evaporates?",
    "what happens to the water after it rains?",
    "is a square a rectangle?",
    "is 0 an even number?",
    "why does a fraction get smaller when the denominator gets bigger?",
    "how do you know which operation to do first?",
    "why does the sun make water evaporate?",
    "what gas do plants breathe in?",
    "what do plants need for photosynthesis?",
    "is 0.5 the same as 1/2?",
    "are decimals and fractions the same thing?",
    "how do you turn a fraction into a decimal?",
    "how do you change a decimal to a percent?",
    "how do you find the area of a triangle?",
    "how do you work out the perimeter of a shape?",
    "how do you solve an equation with x on both sides?",
    "how do you add fractions with different denominators?",
    "how do you divide fractions?",
    "how do you simplify a ratio?",
    "how do you find a percent of a number?",
    "how do you round to the nearest tenth?",
    "what does 'of' mean in maths?",
    "what does the little 2 mean above a number?",
    "what does it mean to isolate x?",
    "what does 'per' mean?",
    "why is area measured in square units?",
    "where do clouds come from?",
    "why does water vapour turn back into water?",
    "what makes rain fall?",
    "what part of the plant does photosynthesis happen in?",
    "do plants photosynthesise at night?",
    "what is the formula for the area of a circle?",
    "what's the formula for perimeter of a rectangle?",
    "can a fraction be bigger than 1?",
    "can you have a negative percent?",
    "why can't you add the denominators?",
    "is it the same if I multiply first or divide first?",
    "what does equivalent mean",
    "what is the difference between weather and the water cycle",
    "how is groundwater made?",
    "does the water cycle ever stop?",
    "why do we need to learn the water cycle?",
    "what does the word 'simplify' mean?",
    "what does 'lowest terms' mean?",
    "what is a unit?",
    "what are square centimetres?",
    "explain ratios to me",
    "explain the water cycle please",
    "explain like I'm 10 what photosynthesis is",
    "i don't understand what a reciprocal is",
    "i don't get what percent means",
    "i never understood decimals, can you explain place value?",
    "can you teach me about the water cycle",
    "can you teach me how percentages work",
    "teach me fractions from the start",
    "tell me about condensation",
    "tell me how plants use sunlight",
    "how are fractions and division related?",
    "why does the order of operations matter?",
    "why do we use letters in algebra?",
    "what is x in algebra?",
    "how do I know if a number is prime?",
    "how do you find the lowest common denominator?",
    "what's a good way to remember BODMAS?",
    "in which order should I do brackets and powers?",
    "how many sides does a hexagon have?",
    "what unit is area measured in?",
    "so is the radius half of the diameter?",
    "wait, why did the denominator stay the same?",
    "hang on, what does 'altogether' mean in a word problem?",
    "what does 'half as many' mean?",
    "what does 'twice as much' mean?",
    "what does 'remaining' mean?",
    "why do we multiply instead of divide here?",
    "why is the answer smaller when you multiply by a fraction?",
    "can you explain why that works?",
    "does it matter which number goes on top in a ratio?",
    "what's the opposite of evaporation?",
    "is mist the same as a cloud?",
    "why are plants important for the water cycle?",
    "what would happen if there was no sun?",
]


def gen_question() -> None:
    open_share = 0.35
    st = lambda: mixed(open_share, p_ltq=0.35)  # noqa: E731
    texts = []
    for c in CONCEPTS:
        texts.append(
            rng.choice(
                [
                    "what is {c}?",
                    "what's {c}",
                    "what is {c}",
                    "can you explain {c}?",
                    "what does {c} mean?",
                    "explain {c}",
                    "i don't understand {c}",
                    "tell me what {c} is",
                ]
            ).format(c=c)
        )
    add_all(texts, "question", "question_concept", st, 1)
    texts = [
        rng.choice(
            ["why do we {p}?", "why do you {p}", "why do we have to {p}?", "how come we {p}?"]
        ).format(p=p)
        for p in WHY_PROCEDURES
    ]
    add_all(texts, "question", "question_why_procedure", st, 2)
    texts = [
        rng.choice(
            [
                "how does {p} work?",
                "how does {p} happen?",
                "can you explain how {p} works",
                "how does {p} form?"
                if p in ("a cloud", "rain", "snow", "a rainbow")
                else "what is the role of {p}?",
            ]
        ).format(p=p)
        for p in HOW_PROCESSES
    ]
    add_all(texts, "question", "question_how_process", st, 2)
    add_all([f"why {f}?" for f in WHY_FACTS], "question", "question_why_fact", st, 1)
    texts = [
        rng.choice(
            [
                "what's the difference between {a} and {b}?",
                "is {a} the same as {b}?",
                "how is {a} different from {b}",
                "{a} vs {b}, what's the difference?",
            ]
        ).format(a=a, b=b)
        for a, b in DIFFS
    ]
    add_all(texts, "question", "question_difference", st, 1)
    hand(QUESTION_HAND, "question", "question", st, 1)
    # questions asked while a problem is open (not about getting the answer)
    hand(
        QUESTION_HAND[60:] + [f"why {f}?" for f in WHY_FACTS[:8]],
        "question",
        "question_while_open",
        lambda: opened(p_ltq=0.5),
        0,
    )
    # "?" with nothing open: what did you mean? (with a problem open it is a hint request)
    for t in ["??", "???", "huh?", "what?", "wdym?", "what do you mean?", "hm?", "eh?"]:
        add(t, "question", closed(True), "hand:short_confused_closed")
        add(t, "question", closed(False), "hand:short_confused_closed")


# --------------------------------------------------------------------------------------------
# answer
# --------------------------------------------------------------------------------------------

ANSWER_FORMS = [
    "{v}",
    "{v}",
    "{v}",
    "{v}?",
    "is it {v}?",
    "I got {v}",
    "i got {v}",
    "i think it's {v}",
    "it's {v}",
    "its {v}",
    "my answer is {v}",
    "the answer is {v}",
    "answer: {v}",
    "maybe {v}?",
    "not sure, maybe {v}",
    "{v} i think",
    "umm {v}",
    "hmm {v}?",
    "{v}!",
    "I think {v}",
    "so it's {v}",
    "would it be {v}?",
    "{v} maybe",
    "i'd say {v}",
    "pretty sure it's {v}",
    "is the answer {v}?",
    "final answer {v}",
    "ok {v}",
    "{v}??",
    "is {v} right?",
    "= {v}",
    "is it {v} or {w}?",
    "{v} or {w}?",
    "it comes out to {v}",
    "got {v}",
    "i get {v}",
    "Answer is {v}",
    "{v} (i think)",
    "um is it {v}",
    "lemme guess {v}",
]
NEGATED_FORMS = [
    "not {v}",
    "{v} is wrong",
    "it isn't {v}",
    "it's not {v}",
    "definitely not {v}",
    "not {v}, maybe {w}?",
    "{v} is wrong so it's {w}",
    "i know it's not {v}",
    "it can't be {v}",
    "not {v} right?",
    "no its not {v} its {w}",
    "so not {v}?",
    "not {v} i guess {w}",
]
WORD_ANSWERS = [
    "evaporation",
    "condensation",
    "precipitation",
    "transpiration",
    "collection",
    "runoff",
    "chlorophyll",
    "sunlight",
    "carbon dioxide",
    "oxygen",
    "glucose",
    "the leaves",
    "stomata",
    "water vapor",
    "the sun",
    "clouds",
    "three quarters",
    "one half",
    "two thirds",
    "a quarter",
    "twelve",
    "forty-two",
    "seventy two",
    "one hundred",
    "zero",
    "negative three",
    "half",
    "the chloroplast",
    "roots",
    "it evaporates",
    "it condenses",
    "rain",
    "true",
    "false",
    "equal",
    "greater than",
    "less than",
    "the bigger one",
    "the first one",
    "the second one",
    "eight tenths",
    "five sixths",
    "nine",
    "sixty percent",
    "x equals five",
    "x is 7",
]
CHOICES = [
    "A",
    "B",
    "C",
    "D",
    "a",
    "b",
    "c",
    "d",
    "B)",
    "option C",
    "c.",
    "its A",
    "A?",
    "answer d",
    "I think B",
    "is it C?",
    "b i think",
    "D!",
    "definitely A",
    "C or D?",
]
YES_NO_ANSWER = [
    "yes!",
    "yes.",
    "Yes!!",
    "yess",
    "yeah",
    "yep",
    "yup",
    "ya",
    "yea",
    "yes it is",
    "yes?",
    "no.",
    "No!",
    "nope",
    "nah",
    "no?",
    "no it isn't",
    "no its not",
    "noo",
    "I think so",
    "i don't think so",
    "not really",
    "ok.",
    "okay",
    "ok then",
    "okk",
    "sure",
    "yes i think",
    "yes, it is",
    "no, it's bigger",
    "no it's smaller",
    "correct",
    "right?",
    "true!",
    "False.",
    "probably",
    "maybe",
    "both?",
    "neither",
    "the same",
    "yes because they match",
]


def gen_answer() -> None:
    for _ in range(230):
        kind = rng.choice(["bank", "bank", "own", "word"])
        v, w = rand_value(kind), rand_value(kind)
        text = rng.choice(ANSWER_FORMS).format(v=v, w=w)
        st = opened([kind], p_ltq=0.75) if rng.random() < 0.9 else closed()
        how = ""
        if rng.random() < 0.25:
            how = rng.choice(["typo", "lower", "caps", "emoji", "textspeak", "punct"])
            text = PERTURB[how](text)
        add(text, "answer", st, "template:answer_value" + (f"+{how}" if how else ""))
    for _ in range(60):
        kind = rng.choice(["bank", "own", "word"])
        text = rng.choice(NEGATED_FORMS).format(v=rand_value(kind), w=rand_value(kind))
        add(text, "answer", opened([kind], p_ltq=0.6), "template:answer_negated")
    for w in WORD_ANSWERS:
        for t, how in perturbed(
            rng.choice(
                ["{w}", "{w}", "{w}?", "is it {w}?", "i think {w}", "it's {w}", "{w}!"]
            ).format(w=w),
            1,
        ):
            add(
                t,
                "answer",
                opened(["bank"], p_ltq=0.8),
                "template:answer_word" + (f"+{how}" if how else ""),
            )
    for c in CHOICES:
        add(c, "answer", opened(["bank"], p_ltq=0.8), "template:answer_choice")
    # yes / no / ok: an answer when a problem is open and the tutor just asked something
    for t in YES_NO_ANSWER:
        add(
            t,
            "answer",
            state(True, rng.choice(["bank", "own", "word"]), True),
            "hand:answer_yes_no",
        )
        add(
            t,
            "answer",
            state(True, rng.choice(["bank", "own", "word"]), True),
            "hand:answer_yes_no",
        )
    # a bare value with nothing open is still an answer attempt
    for _ in range(30):
        add(
            rand_value(rng.choice(["bank", "own", "word"])),
            "answer",
            closed(),
            "template:answer_closed",
        )
    # answers written as short sentences about the word problem
    for _ in range(40):
        name, pron, _pos = rng.choice(NAMES)
        item = rng.choice(ITEMS)
        n = rng.randrange(3, 400)
        text = rng.choice(
            [
                "the answer is {n} {item}",
                "{n} {item} altogether",
                "{n} {item} in total",
                "{name} has {n} {item} left, that's my answer",
                "final answer: {n} {item}",
                "so the answer is {n}",
                "I got {n} {item} for {name}",
                "{pron} sold {n} {item}?",
                "is it {n} {item} altogether?",
                "total is {n}",
            ]
        ).format(n=n, item=item, name=name, pron=pron)
        add(text, "answer", opened(["word"], p_ltq=0.7), "template:answer_sentence")
    # long answers: working plus an explicit final answer
    for _ in range(25):
        a, b = rng.randrange(12, 90), rng.randrange(2, 9)
        text = rng.choice(
            [
                "ok so {a} times {b} is {c}, so my final answer is {c}",
                "I did {a} x {b} and got {c}. So the answer is {c}?",
                "after adding everything up I got {c}, is that the answer?",
                "my final answer is {c} because {a} groups of... no wait, {b} groups of {a} is {c}",
                "{a} x {b} = {c}. answer: {c}",
            ]
        ).format(a=a, b=b, c=a * b)
        add(text, "answer", opened(["word", "own"], p_ltq=0.5), "template:answer_with_working")


# --------------------------------------------------------------------------------------------
# step
# --------------------------------------------------------------------------------------------


def gen_step() -> None:
    for _ in range(70):  # bare calculations with a result
        a, b = rng.randrange(2, 60), rng.randrange(2, 30)
        op = rng.choice(["x", "*", "×", "+", "-", "/"])
        if op == "/":
            a = a * b
        c = {"x": a * b, "*": a * b, "×": a * b, "+": a + b, "-": a - b, "/": a // b}[op]
        if rng.random() < 0.1:
            c += rng.choice([1, -1, 10])  # learners make mistakes: still a step
        text = rng.choice(
            [
                "{a} {op} {b} = {c}",
                "{a}{op}{b}={c}",
                "{a} {op} {b} is {c}",
                "so {a} {op} {b} = {c}",
                "{a} {op} {b} = {c} right",
                "then {a} {op} {b} = {c}",
                "first {a} {op} {b} = {c}",
            ]
        ).format(a=a, b=b, op=op, c=c)
        add(text, "step", opened(["own", "word", "bank"], p_ltq=0.5), "template:step_calc")
    for _ in range(50):  # algebra working
        a, x, b = rng.randrange(2, 9), rng.randrange(1, 12), rng.randrange(1, 20)
        c = a * x + b
        text = rng.choice(
            [
                "{a}x = {ab}",
                "{a}x + {b} = {c} so {a}x = {ab}",
                "I subtracted {b} from both sides",
                "subtract {b} from both sides to get {a}x = {ab}",
                "then divide both sides by {a}",
                "I divided both sides by {a}",
                "I multiplied both sides by {a}",
                "{a}x = {c} - {b}",
                "first I took away {b} on both sides, now I have {a}x = {ab}",
                "so {a}x equals {ab}",
                "move the {b} over so {a}x = {c} - {b} = {ab}",
                "{ab}/{a} = x",
                "x = {ab}/{a}",
                "I expanded the brackets and got {a}x + {ab}",
                "I collected like terms: {a}x + {b}x = {ab2}x",
            ]
        ).format(a=a, b=b, c=c, ab=a * x, ab2=a + b)
        add(text, "step", opened(["own", "bank"], p_ltq=0.5), "template:step_algebra")
    for _ in range(50):  # fraction / decimal / percent working
        d1, d2 = rng.choice([(2, 3), (3, 4), (4, 6), (2, 5), (3, 5), (6, 8), (4, 5), (2, 7)])
        lcd = d1 * d2 // __import__("math").gcd(d1, d2)
        p, n = rng.choice([15, 20, 25, 30, 40]), rng.choice([40, 60, 80, 120, 200, 250])
        text = rng.choice(
            [
                "so the common denominator is {lcd}",
                "the common denominator is {lcd}",
                "1/{d1} = {e1}/{lcd} and 1/{d2} = {e2}/{lcd}",
                "I changed both fractions to {lcd}ths",
                "the LCD of {d1} and {d2} is {lcd}",
                "I flipped the second fraction and multiplied",
                "I turned it into {d1}/1 x {d2}/1 first",
                "10% of {n} is {t} so {p}% is {r}",
                "I moved the decimal point two places to the left",
                "{p}% = 0.{p2}",
                "I wrote {p}% as {p}/100",
                "{p}/100 x {n} = {r}",
                "so I need to multiply {n} by 0.{p2}",
                "I divided the top and the bottom by 2",
                "I made them both over {lcd} then added the tops",
                "I found the LCM of {d1} and {d2} which is {lcd}",
                "then I added the numerators and kept the {lcd}",
            ]
        ).format(
            lcd=lcd,
            d1=d1,
            d2=d2,
            e1=lcd // d1,
            e2=lcd // d2,
            n=n,
            p=p,
            t=n // 10,
            r=p * n // 100,
            p2=f"{p:02d}"[:2],
        )
        add(text, "step", opened(["own", "bank"], p_ltq=0.5), "template:step_fraction_percent")
    for _ in range(110):  # word-problem working in words
        name, pron, pos = rng.choice(NAMES)
        item = rng.choice(ITEMS)
        a = rng.randrange(2, 40) * 2
        b = rng.randrange(2, 9)
        m1, m2 = rng.sample(MONTHS, 2)
        price = rng.choice([2, 3, 4, 5, 1.5, 2.5, 0.75, 12])
        text = rng.choice(
            [
                "{Name} sold {a} {item} in {m1}.",
                "{pron} sold {h} {item} in {m2}",
                "{a}/2 = {h} so in {m2} {pron} sold {h}",
                "first I divided {a} by 2 to get {h}",
                "half of {a} is {h}",
                "so {Name} had {h} {item} left",
                "{a} + {h} = {t} {item} altogether",
                "I added {a} and {h} and got {t}",
                "then I times {h} by {b} which is {hb}",
                "each one costs {price} so {b} of them cost {bp}",
                "{b} {item} at {price} each is {bp}",
                "{Name} gets {b} {item} per day so in a week that's {w}",
                "there are 7 days in a week so {b} x 7 = {w}",
                "so {pos} friends got {h} {item} each",
                "I split the {a} {item} into 2 equal groups of {h}",
                "{Name} started with {a} and gave away {b}, so {pron} has {ab} now",
                "I worked out {m2} first: half of {a} is {h}",
                "first I need how many {item} {pron} sold in {m2}, that's {h}",
                "{a} - {b} = {ab} so there are {ab} {item} left",
                "if {pron} sells {b} a day it takes {a} / {b} days",
                "so the first part is {h} and now I add the {b}",
                "{Name} saves {price} a week, after {b} weeks that's {bp}",
                "I think {pron} sold {h} in {m2} because it says half as many",
                "I didn't multiply, I divided {a} by 2 to get {h}",
                "I used {a} - {b} not {a} + {b} because {pron} gave some away",
                "I know it's not {a} because we still need to add {m2}",
            ]
        ).format(
            Name=name,
            pron=pron,
            pos=pos,
            item=item,
            a=a,
            h=a // 2,
            t=a + a // 2,
            b=b,
            hb=(a // 2) * b,
            m1=m1,
            m2=m2,
            price=fmt_money(price),
            bp=fmt_money(price * b),
            w=b * 7,
            ab=a - b,
        )
        how = ""
        if rng.random() < 0.2:
            how = rng.choice(["typo", "lower", "emoji", "textspeak"])
            text = PERTURB[how](text)
        add(
            text,
            "step",
            opened(["word"], p_ltq=0.5),
            "template:step_word" + (f"+{how}" if how else ""),
        )
    for _ in range(35):  # measurement / area / speed
        ln, w, s, h = (
            rng.randrange(3, 20),
            rng.randrange(2, 12),
            rng.choice([40, 50, 60, 80]),
            rng.randrange(2, 6),
        )
        text = rng.choice(
            [
                "area = length x width = {l} x {w} = {lw}",
                "the perimeter is {l} + {w} + {l} + {w} = {p}",
                "2 x {l} + 2 x {w} = {p}",
                "I multiplied the length by the width",
                "{l} times {w} is {lw}",
                "the train goes {s} km every hour so in {h} hours it goes {sh} km",
                "distance = speed x time = {s} x {h}",
                "{h} hours is {hm} minutes",
                "I changed the hours into minutes first: {h} x 60 = {hm}",
                "I converted {l} km into {lm} m by multiplying by 1000",
                "the triangle is half of the rectangle so I halve {lw}",
                "radius is half the diameter so r = {w}",
                "I added up all the sides",
            ]
        ).format(l=ln, w=w, lw=ln * w, p=2 * (ln + w), s=s, h=h, sh=s * h, hm=h * 60, lm=ln * 1000)
        add(text, "step", opened(["word", "bank", "own"], p_ltq=0.5), "template:step_measure")
    science = [
        "the sun heats the water in the lake so it turns into vapour",
        "first the water evaporates and then it cools down high up",
        "the vapour cools and turns into tiny droplets, that's the clouds",
        "plants take in carbon dioxide through little holes in the leaves",
        "the roots take up the water and it goes up to the leaves",
        "the leaf uses light energy to make sugar",
        "so the puddle gets smaller because the water is going into the air",
        "the cold glass cools the air next to it so the vapour condenses",
        "it's A because heat turns the liquid into a gas... wait I mean the reason is heat",
        "the droplets join together and get heavy and then they fall",
        "chlorophyll is green and it catches the light",
        "the plant gives off oxygen as a waste product",
        "water that soaks into the ground becomes groundwater",
    ]
    hand(
        science,
        "step",
        "step_science",
        lambda: opened(["bank"], p_ltq=0.5),
        1,
        ["lower", "typo", "emoji"],
    )
    long_working = [
        "Ok so first I worked out how many she sold in May. It says half as many, so I did 48 divided by 2 "
        "which is 24. Then I added April and May together.",
        "I started with the total money, which is $50. He spent $12 on the book and $8 on lunch so I took "
        "those away and got $30 left.",
        "So the bus leaves at 8:15 and the trip takes 45 minutes. I added 45 to 15 and that makes 60 minutes "
        "which is one hour, so it gets there at 9:00.",
        "I know the rectangle is 12 by 5. I did 12 times 5 to get 60 square metres for the whole garden, "
        "and then I have to take away the pond.",
        "for the first part i multiplied 3 by 4 to get 12 and then i added 5 because of the extra ones",
        "i wrote 2x + 3 = 11 then took 3 off both sides so 2x = 8",
        "first i changed 1/2 into 3/6 and 1/3 into 2/6 so they have the same bottom number",
        "Each box holds 6 eggs and there are 9 boxes, so that's 54 eggs. Then 7 broke so I subtract 7.",
        "The shirt was $40 and 25% off means you take off a quarter. A quarter of 40 is 10.",
        "She reads 15 pages a day. In one week that is 15 x 7 = 105 pages. The book has 300 pages so "
        "there are 195 left after a week.",
        "he earns 12 dollars an hour and worked 6 hours on saturday, 12 x 6 is 72",
        "I did the brackets first, 4 + 2 = 6, then 6 squared is 36",
        "so 3 people share 27 sweets, that's 9 each, and then Leo eats 2 of his",
    ]
    hand(
        long_working,
        "step",
        "step_long",
        lambda: opened(["word", "own"], p_ltq=0.4),
        1,
        ["lower", "typo"],
    )
    # working shown with nothing open (e.g. a message after the problem closed) is still a step
    for t in [
        "I multiplied both sides by 3",
        "24 x 14 = 336",
        "first I divided 600 by 2 to get 300",
        "so the common denominator is 12",
        "I took 5 away from both sides",
        "9 x 8 = 72",
        "then I carried the 1",
        "I changed 0.4 into 4/10",
    ]:
        add(t, "step", closed(), "hand:step_closed")


# --------------------------------------------------------------------------------------------
# hint
# --------------------------------------------------------------------------------------------

HINT_HAND = [
    "hint please",
    "hint",
    "can i have a hint",
    "give me a hint",
    "a hint pls",
    "hint??",
    "i'm stuck",
    "im stuck",
    "I'm stuck on this one",
    "stuck",
    "so stuck",
    "i'm really stuck",
    "idk what to do",
    "i don't know what to do",
    "idk",
    "i dont know",
    "dunno",
    "no idea",
    "no idea 😩",
    "what do I do first?",
    "where do i start",
    "how do I start this?",
    "can u help",
    "can you help me",
    "help",
    "help me",
    "help pls",
    "HELP",
    "please help",
    "give me a clue",
    "a clue?",
    "can I get a clue",
    "what's the first step?",
    "what's the next step?",
    "what do i do next",
    "what now?",
    "now what",
    "then what?",
    "i don't get it",
    "i dont understand",
    "i don't understand this question",
    "i don't understand what it's asking",
    "this is confusing",
    "this makes no sense",
    "i'm confused",
    "confused",
    "im lost",
    "lost",
    "i can't do this one",
    "i can't figure it out",
    "i tried but i can't get it",
    "can you give me a tip",
    "a little help?",
    "point me in the right direction",
    "nudge me",
    "any tips?",
    "which operation do i use?",
    "do i add or multiply?",
    "should i divide or multiply here?",
    "what should i do with the 48?",
    "how do i get x by itself?",
    "how do i start with the fractions?",
    "not sure",
    "not sure what to do",
    "i'm not sure how to start",
    "umm",
    "hmm...",
    "can you explain the question",
    "what does the question want me to find?",
    "help me with this problem",
    "I need help with this one",
    "one more hint",
    "another hint",
    "another hint please",
    "can i have the next hint",
    "more help pls",
    "that hint didn't help",
    "i still don't get it",
    "still stuck",
    "i need a bigger hint",
    "help i dont get it",
    "what's the trick?",
    "is there an easier way to think about it?",
    "how do i set this up?",
    "what equation do i write?",
    "give me a hint but not the answer",
    "don't tell me the answer, just a hint",
]


def gen_hint() -> None:
    hand(HINT_HAND, "hint", "hint", lambda: opened(p_ltq=0.5), 2)
    # with nothing open the request is still a hint request
    for t in [
        "hint please",
        "hint?",
        "i'm stuck",
        "help",
        "give me a clue",
        "idk what to do",
        "can i have a hint",
        "i need help",
        "no idea",
        "what do I do first?",
        "stuck",
    ]:
        add(t, "hint", closed(), "hand:hint_closed")
    # "?" on its own with a problem open: the learner is lost on the problem
    for t in [
        "??",
        "???",
        "?!",
        "huh?",
        "what?",
        "hm?",
        "eh?",
        "wdym?",
        "huh",
        "what do you mean?",
    ]:
        add(t, "hint", opened(p_ltq=0.5), "hand:hint_short_confused")
        add(t, "hint", opened(p_ltq=0.5), "hand:hint_short_confused")


# --------------------------------------------------------------------------------------------
# solution
# --------------------------------------------------------------------------------------------

SOLUTION_HAND = [
    "just tell me the answer",
    "show me the solution",
    "i give up",
    "what's the answer??",
    "solve it for me",
    "what is the answer",
    "whats the answer",
    "tell me the answer",
    "give me the answer",
    "can you just give me the answer",
    "answer please",
    "the answer pls",
    "show me the answer",
    "show the answer",
    "reveal the answer",
    "show me how to solve it",
    "show me the full solution",
    "full solution please",
    "can i see the solution",
    "i want the solution",
    "give me the solution",
    "show working",
    "show me all the steps",
    "do it for me",
    "can you do this one for me",
    "solve this for me",
    "just solve it",
    "i quit",
    "i give up, what is it?",
    "ok i give up",
    "i surrender",
    "forget it just tell me",
    "tell me pls",
    "just tell me",
    "what is it then?",
    "so what's the right answer?",
    "what's the correct answer?",
    "what should i have got?",
    "what was the answer?",
    "tell me the right answer",
    "can you show me the worked solution",
    "work it out for me",
    "i don't want a hint, i want the answer",
    "no more hints just the answer",
    "stop giving hints and tell me",
    "skip the hints, show me the solution",
    "how do you solve it? show me",
    "can you solve it step by step for me",
    "i've tried 3 times, just show me",
    "please just tell me what it is",
]


def gen_solution() -> None:
    hand(SOLUTION_HAND, "solution", "solution", lambda: opened(p_ltq=0.4), 3)
    for t in [
        "just tell me the answer",
        "show me the solution",
        "what's the answer",
        "i give up",
        "solve it for me",
        "tell me the answer pls",
        "answer?",
        "what was the answer",
    ]:
        add(t, "solution", closed(), "hand:solution_closed")


# --------------------------------------------------------------------------------------------
# practice
# --------------------------------------------------------------------------------------------

PRACTICE_HAND = [
    "next!",
    "Next.",
    "next one",
    "next question",
    "next problem",
    "next please",
    "next pls",
    "another one",
    "another!",
    "another please",
    "give me another",
    "another question",
    "again!",
    "again please",
    "do it again",
    "one more",
    "one more!",
    "one more please",
    "new problem",
    "new question",
    "give me a new one",
    "quiz me",
    "quiz me!",
    "test me",
    "more practice pls",
    "more please",
    "more",
    "can I practice",
    "let's practice",
    "i want to practice",
    "practice",
    "practise please",
    "give me a problem",
    "give me a question",
    "give me something to solve",
    "can I try a harder one",
    "harder one please",
    "something harder",
    "an easier one please",
    "make it harder",
    "make it easier",
    "give me a hard one",
    "let's do another",
    "can we do another",
    "keep going",
    "continue",
    "skip",
    "skip this one",
    "can we move on",
    "move on",
    "let's move on to the next",
    "try another one",
    "i want another question",
    "can i have more questions",
    "more questions",
    "ask me something",
    "random question",
    "surprise me with a question",
    "give me 5 questions",
    "a few more please",
    "ok next",
    "got it, next",
    "thanks, next one",
    "cool, another?",
    "ready for the next one",
    "i'm ready",
    "im ready for another",
    "go on then, another",
    "same again",
    "another like that",
    "a similar one please",
    "one more like this",
]


def gen_practice() -> None:
    hand(PRACTICE_HAND, "practice", "practice", lambda: mixed(0.5, p_ltq=0.4), 2)
    texts = []
    for topic in TOPICS:
        for _ in range(2):
            texts.append(
                rng.choice(
                    [
                        "give me a problem on {t}",
                        "quiz me on {t}",
                        "can i practice {t}",
                        "i want to practise {t}",
                        "test me on {t}",
                        "another {t} question",
                        "give me {d} {t} problem",
                        "{d} question about {t} please",
                        "more {t} please",
                        "let's do some {t}",
                        "practice {t}",
                        "i need practice with {t}",
                        "can you give me {k} {t} questions",
                        "give me a word problem about {t}",
                        "let's switch to {t} questions",
                        "can I get a {t} problem",
                    ]
                ).format(
                    t=topic,
                    d=rng.choice(
                        ["a hard", "an easy", "a harder", "an easier", "a tricky", "a simple"]
                    ),
                    k=rng.choice(["3", "five", "some", "a couple of", "10"]),
                )
            )
    add_all(texts, "practice", "practice_topic", lambda: mixed(0.3, p_ltq=0.4), 1)


# --------------------------------------------------------------------------------------------
# new_problem
# --------------------------------------------------------------------------------------------


def symbolic_problem() -> tuple[str, str]:
    r = rng.randrange(16)
    f1, f2 = rand_fraction(), rand_fraction()
    a, b, c = rng.randrange(2, 12), rng.randrange(1, 30), rng.randrange(12, 90)
    if r == 0:
        return rng.choice(
            [
                "what is {f1} + {f2}?",
                "what's {f1} + {f2}",
                "{f1} + {f2}?",
                "what is {f1} - {f2}?",
                "{f1} x {f2}?",
                "what is {f1} divided by {f2}",
                "calculate {f1} + {f2}",
            ]
        ).format(f1=f1, f2=f2), "fractions"
    if r == 1:
        return rng.choice(
            [
                "solve {a}x + {b} = {c}",
                "solve {a}x - {b} = {c}",
                "{a}x + {b} = {c}, solve for x",
                "can you solve {a}x + {b} = {c}?",
                "solve for x: {a}x = {c}",
                "how do i solve {a}x + {b} = {c}",
                "find x if {a}x + {b} = {c}",
                "help me solve {a}(x + {b}) = {c}",
                "solve x/{a} = {b}",
            ]
        ).format(a=a, b=b, c=c), "algebra"
    if r == 2:
        km = rng.choice([1.2, 2, 3.5, 4.25, 7, 0.8, 12])
        return rng.choice(
            [
                f"Convert {km} km to meters",
                f"convert {km} kg to grams",
                f"how many meters is {km} km?",
                f"change {km} litres into ml",
                f"convert {int(km * 60)} minutes to hours",
                f"{km} m in cm?",
                f"how many cm in {km} m",
            ]
        ), "units"
    if r == 3:
        k = rng.randrange(2, 8)
        base = rng.choice([2, 3, 5])
        return rng.choice(
            [
                f"Solve {base}^x = {base**k}",
                f"solve {base}^x = {base**k}",
                f"what is {base} to the power of {k}?",
                f"{base}^{k}?",
            ]
        ), "powers"
    if r == 4:
        return rng.choice(
            [
                "how do I add {f1} and {f2}",
                "how do you subtract {f2} from {f1}?",
                "how do i multiply {f1} by {f2}",
                "add {f1} and {f2}",
                "how would I divide {f1} by {f2}?",
            ]
        ).format(f1=f1, f2=f2), "fractions"
    if r == 5:
        x, y = rng.randrange(11, 99), rng.randrange(3, 40)
        return rng.choice(
            [
                f"{x} x {y}?",
                f"{x} * {y}",
                f"what's {x} times {y}",
                f"{x}+{y}?",
                f"what is {x * y} divided by {y}",
                f"{x} - {y}?",
                f"whats {x} x {y}",
                f"calculate {x} × {y}",
                f"work out {x * y} ÷ {y}",
            ]
        ), "arithmetic"
    if r == 6:
        p, n = (
            rng.choice([5, 10, 12, 15, 20, 25, 30, 35, 40, 60, 75]),
            rng.choice([40, 60, 80, 90, 120, 150, 240, 400]),
        )
        return rng.choice(
            [
                f"what's {p}% of {n}",
                f"what is {p}% of {n}?",
                f"{p}% of {n}?",
                f"find {p} percent of {n}",
                f"how much is {p}% of ${n}?",
                f"what percent is {p} of {n}?",
                f"increase {n} by {p}%",
                f"decrease {n} by {p}%",
            ]
        ), "percent"
    if r == 7:
        return rng.choice(
            [
                f"simplify {a * 2}/{a * 6}",
                f"simplify {b * 3}/{b * 4}",
                f"reduce {a * 4}/{a * 10}",
                f"what is {a * 3}/{a * 9} in simplest form?",
                f"write {c}/100 as a decimal",
                "turn 3/8 into a decimal",
                f"what is 0.{b:02d} as a fraction?",
            ]
        ), "fractions"
    if r == 8:
        return rng.choice(
            [
                f"evaluate {a} + {b} x {a}",
                f"what is ({a} + {b}) x {a}?",
                f"{a} + {b} × 2 = ?",
                f"work out {c} - {a} x 3 + {b}",
                f"what's {a}^2 + {b}",
                f"calculate 3 x ({a} + {b}) - 4",
            ]
        ), "order"
    if r == 9:
        return rng.choice(
            [
                f"find the area of a rectangle {a} by {b} cm",
                f"what is the perimeter of a square with side {a} cm?",
                f"area of a triangle with base {a * 2} and height {b}?",
                f"what is the area of a circle with radius {a}?",
                f"find the circumference of a circle with diameter {a * 2} m",
                f"a rectangle is {a} m long and {b} m wide, what's its area?",
            ]
        ), "area"
    if r == 10:
        return rng.choice(
            [
                f"round {c}.{b:02d}{a} to 1 decimal place",
                f"round {c * 37} to the nearest hundred",
                f"what is {a}.{b} x 10?",
                f"{a}.5 + {b}.25 = ?",
                f"what's 0.{a} times {b}?",
                f"which is bigger, 0.{a}5 or 0.{a + 1}?",
            ]
        ), "decimals"
    if r == 11:
        return rng.choice(
            [
                f"expand {a}(x + {b})",
                f"simplify {a}x + {b}x - x",
                f"factorise {a * 2}x + {a * 4}",
                f"expand and simplify {a}(x + 2) + {b}",
                f"what's {a}x + {b}x?",
            ]
        ), "algebra"
    if r == 12:
        return rng.choice(
            [
                f"share {c} in the ratio 2:3",
                f"simplify the ratio {a * 4}:{a * 6}",
                f"divide {c * 5} in the ratio 1:4",
                f"if 3 pens cost ${a}, how much do {b} pens cost?",
            ]
        ), "ratio"
    if r == 13:
        return rng.choice(
            [
                f"what's {c} divided by {a}?",
                f"{c * a} / {a}",
                f"what is the square root of {a * a}?",
                f"sqrt({a * a * 4})",
                f"what is {a} cubed?",
                f"{c} ÷ {a}",
            ]
        ), "arithmetic"
    if r == 14:
        return rng.choice(
            [
                f"mixed number: {a} {f1} + {f2}?",
                f"what is {a} {f1} as an improper fraction?",
                f"change {a * 3 + 1}/3 to a mixed number",
                f"{a} {f1} - 1 {f2} = ?",
            ]
        ), "fractions"
    return rng.choice(
        [
            f"solve {a}x + {b} = {a * 2}x - {c}",
            f"solve 3(x - {a}) = {c}",
            f"x + {b} = {c}, what is x?",
            f"if {a}y = {a * b}, what is y?",
            f"solve {a} - x = {b}",
        ]
    ), "algebra"


def word_problem() -> tuple[str, str]:
    """A word problem of one of three lengths: one sentence, the needed sentences only, or the
    full problem with its extra detail (4-5 sentences). Returns (text, topic)."""
    (name, pron, pos), (name2, _pron2, _pos2) = rng.sample(NAMES, 2)
    Pron, Pos = pron.capitalize(), pos.capitalize()
    a, b, c = rng.randrange(12, 90), rng.randrange(2, 9), rng.randrange(3, 30)
    item = rng.choice(ITEMS)
    price = fmt_money(rng.choice([1.5, 2, 2.5, 3, 4, 4.75, 6, 8, 12]))
    pct = rng.choice([10, 15, 20, 25, 30, 40])
    speed = rng.choice([60, 75, 80, 90, 120])
    r = rng.randrange(14)
    # each: (topic, one-sentence version, [(sentence, needed)], question)
    if r == 0:
        t = (
            "sales",
            f"{name} made {a * 3} {item} and sold a third of them, how many are left?",
            [
                (f"{name} made {a * 3} {item} for the school fair.", True),
                (
                    f"{Pron} sold a third of them in the morning and {c} more in the afternoon.",
                    True,
                ),
                (f"Each one cost {price}.", False),
            ],
            f"How many {item} did {name} have left at the end of the day?",
        )
    elif r == 1:
        t = (
            "money",
            f"If {name} saves {price} a week, how much will {pron} have after {b} weeks?",
            [
                (f"{name} saves {price} every week.", True),
                (f"{Pos} brother {name2} saves twice as much.", True),
                (f"They started saving in {rng.choice(MONTHS)} to buy a game together.", False),
                (f"After {b} weeks they put their money together.", True),
            ],
            "How much money do they have altogether?",
        )
    elif r == 2:
        dist = speed * rng.choice([2, 3, 4])
        t = (
            "rates",
            f"How long does a train going {speed} km/h take to travel {dist} km?",
            [
                (f"A train travels at {speed} km per hour.", True),
                (
                    f"It leaves the station at {rng.choice(['7:30', '9:15', '10:45', '13:20'])}.",
                    False,
                ),
                (f"On the way it stops once for {c} minutes.", True),
            ],
            f"How long does the whole journey of {dist} km take?",
        )
    elif r == 3:
        t = (
            "percent",
            f"A shirt costs ${a} and is {pct}% off, what is the new price?",
            [
                (f"A shirt costs ${a} in a shop.", True),
                (f"During a sale, the price is reduced by {pct}%.", True),
                (f"{name} also has a coupon for ${b} off the sale price.", True),
                (f"{Pron} pays with a ${rng.choice([50, 100])} note.", False),
            ],
            f"What does {name} pay for the shirt?",
        )
    elif r == 4:
        t = (
            "time",
            f"{name} reads {c} pages a day, how many days to finish a {c * 11} page book?",
            [
                (f"{name} reads {c} pages of {pos} book every day.", True),
                (f"The book has {c * 11 + b} pages.", True),
                (
                    f"It is a mystery story that {pos} friend {name2} lent {pronoun_obj(pron)}.",
                    False,
                ),
                (f"On {rng.choice(DAYS)}s {pron} reads twice as much as usual.", True),
            ],
            f"How many days will it take {name} to finish the book?",
        )
    elif r == 5:
        t = (
            "perimeter",
            f"How much fencing do you need for a garden {a} m by {c} m?",
            [
                (f"A rectangular garden is {a} m long and {c} m wide.", True),
                (f"{name}'s family wants to put a fence all the way around it.", True),
                (f"Fencing costs {price} per metre.", True),
                (f"They already have {b} m of fence left over from last year.", False),
            ],
            "How much will the fence cost?",
        )
    elif r == 6:
        t = (
            "ratio",
            f"A recipe for {b} people uses {c * 25} g of flour, how much for {b * 3} people?",
            [
                (f"A recipe for {b} people needs {c * 25} g of flour.", True),
                (f"It also needs {b} eggs and {c * 10} ml of milk.", False),
                (f"{name} is cooking for {b * 3} people.", True),
            ],
            f"How much flour does {name} need?",
        )
    elif r == 7:
        n = rng.choice([20, 24, 28, 32, 40])
        t = (
            "percent",
            f"If {pct}% of {n} students walk to school, how many take the bus?",
            [
                (f"There are {n} students in {name2}'s class.", True),
                (f"{pct}% of them walk to school and the rest take the bus.", True),
                ("The bus comes at 8 o'clock every morning.", False),
            ],
            "How many students take the bus?",
        )
    elif r == 8:
        k = c // 3 + 2
        t = (
            "sharing",
            f"{name} has {a} {item} and gives {b} to each of {k} friends, how many are left?",
            [
                (f"{name} has {a} {item}.", True),
                (f"{Pron} gives {b} to each of {pos} {k} friends.", True),
                (f"Then {pron} buys {c} more at the market on {rng.choice(DAYS)}.", True),
            ],
            f"How many {item} does {name} have now?",
        )
    elif r == 9:
        t = (
            "rates",
            f"A {a * 10} litre tank fills at {b * 5} litres a minute, how long to fill it?",
            [
                (f"A water tank holds {a * 10} litres.", True),
                (f"It is filled by a hose at {b * 5} litres per minute.", True),
                (f"But there is a small hole and it leaks {b} litres per minute.", True),
                (f"{name} starts filling it at {rng.choice(['3 pm', '9 am', 'noon'])}.", False),
            ],
            "How many minutes does it take to fill the empty tank?",
        )
    elif r == 10:
        h = c // 3 + 1
        t = (
            "money",
            f"{name} earns {price} an hour, how much does {pron} get for {b + h} hours?",
            [
                (f"{name} works at a cafe and earns {price} an hour.", True),
                (f"Last week {pron} worked {b} hours on Saturday and {h} hours on Sunday.", True),
                (f"{Pron} also got ${c} in tips.", True),
                (f"{Pron} spent ${b} of it on the bus home.", False),
            ],
            f"How much did {name} earn last week?",
        )
    elif r == 11:
        t0 = rng.randrange(-8, 12)
        t = (
            "integers",
            f"It was {t0} degrees and then it fell by {c} degrees, what is the temperature now?",
            [
                (f"In the morning the temperature in {name2}'s town was {t0} degrees.", True),
                (f"By noon it had risen by {c} degrees.", True),
                (f"By midnight it had fallen by {c + b} degrees from the noon temperature.", True),
            ],
            "What was the temperature at midnight?",
        )
    elif r == 12:
        t = (
            "algebra",
            f"{name} is {b} years older than {name2} and together they are {a + 20}, how old is {name2}?",
            [
                (f"{name} is {b} years older than {pos} cousin {name2}.", True),
                (f"Their birthdays are both in {rng.choice(MONTHS)}.", False),
                (f"In {c // 3 + 1} years the sum of their ages will be {a + 20}.", True),
            ],
            f"How old is {name2} now?",
        )
    else:
        sl = rng.choice([8, 12, 16])
        t = (
            "fractions",
            f"If a pizza has {sl} slices and {name} eats 1/4 of it, how many slices are left?",
            [
                (f"A pizza is cut into {sl} equal slices.", True),
                (f"{name} eats 1/4 of the pizza and {name2} eats 3 slices.", True),
                ("The rest is saved for later.", False),
            ],
            "What fraction of the pizza is left?",
        )
    topic, one, parts, question = t
    length = rng.choice(["short", "medium", "long", "long"])
    if length == "short":
        return one, topic
    kept = [sent for sent, needed in parts if needed or length == "long"]
    return " ".join(kept + [question]), topic


def pronoun_obj(pron: str) -> str:
    return {"she": "her", "he": "him"}.get(pron, "them")


def gen_new_problem() -> None:
    for _ in range(240):
        text, topic = symbolic_problem()
        st = mixed(0.35, kinds=["bank", "own", "word"], p_ltq=0.35)
        how = ""
        if rng.random() < 0.25:
            how = rng.choice(["typo", "lower", "caps", "emoji", "punct"])
            text = PERTURB[how](text)
        add(text, "new_problem", st, f"template:new_problem_{topic}" + (f"+{how}" if how else ""))
    for _ in range(190):
        text, topic = word_problem()
        st = mixed(0.3, kinds=["bank", "own", "word"], p_ltq=0.35)
        how = ""
        if rng.random() < 0.15:
            how = rng.choice(["lower", "emoji"])
            text = PERTURB[how](text)
        if rng.random() < 0.15:
            text = (
                rng.choice(
                    [
                        "can you help me with this: ",
                        "help me solve this. ",
                        "my homework says: ",
                        "how do I do this one? ",
                        "pls help: ",
                        "Question: ",
                    ]
                )
                + text
            )
        add(
            text,
            "new_problem",
            st,
            f"template:new_problem_word_{topic}" + (f"+{how}" if how else ""),
        )


# --------------------------------------------------------------------------------------------
# greeting
# --------------------------------------------------------------------------------------------

GREETING_HAND = [
    "hi",
    "hello",
    "hey",
    "hiya",
    "hi!!",
    "hey there",
    "hello!",
    "heyy",
    "yo",
    "sup",
    "hi tutor",
    "hello there",
    "good morning 🙂",
    "good morning",
    "good afternoon",
    "good evening",
    "morning!",
    "hi there, how are you?",
    "how are you?",
    "how's it going",
    "nice to meet you",
    "thanks",
    "thank you",
    "thx",
    "ty",
    "tysm",
    "thank you so much",
    "thanks a lot",
    "cheers",
    "thanks!!",
    "thanks for the help",
    "thank you, that helped",
    "that makes sense, thanks",
    "got it, thanks!",
    "oh i get it now thank you",
    "thanks, you're great",
    "appreciate it",
    "bye",
    "goodbye",
    "bye!",
    "see u",
    "see you",
    "see you later",
    "see ya",
    "cya",
    "gtg bye",
    "gotta go",
    "i have to go now",
    "bye bye",
    "good night",
    "talk later",
    "ttyl",
    "that's all for today, bye",
    "i'm done for today, thanks",
    "cool thanks",
    "awesome, thanks",
    "perfect thank you",
    "great, thanks!",
    "nice",
    "cool",
    "awesome",
    "got it",
    "i see",
    "oh ok",
    "ohh i see",
    "makes sense",
    "alright",
    "ok cool",
    "okey",
    "kk",
    "k.",
    "ok!",
    "okay!",
    "hola",
    "bonjour",
    "hallo",
    "ciao",
    "olá",
    "ola",
    "namaste",
    "salut",
    "merci",
    "gracias",
    "danke",
    "buenos días",
    "buenas tardes",
    "buongiorno",
    "guten Morgen",
    "guten Tag",
    "obrigado",
    "obrigada",
    "grazie",
    "merci beaucoup",
    "muchas gracias",
    "danke schön",
    "adiós",
    "au revoir",
    "tschüss",
    "tchau",
    "arrivederci",
    "hasta luego",
    "à bientôt",
    "konnichiwa",
    "arigato",
    "annyeong",
    "privet",
    "salaam",
    "as-salamu alaykum",
    "jambo",
    "habari",
    "hej",
    "hoi",
    "sawubona",
    "shukran",
    "dhanyavaad",
    "xie xie",
    "ni hao",
    "merhaba",
    "teşekkürler",
    "dziękuję",
    "cześć",
    "dank je",
    "hallo daar",
    "spasibo",
    "kia ora",
    "👋",
    "hi 👋",
    "🙏",
    "thanks 🙏",
    "bye 👋",
    "❤️ thanks",
]


def gen_greeting() -> None:
    hand(
        GREETING_HAND,
        "greeting",
        "greeting",
        lambda: mixed(0.25, p_ltq=0.3),
        1,
        ["typo", "caps", "emoji", "punct", "lower"],
    )
    # acknowledgements: greeting unless a problem is open and the tutor just asked something
    for t in [
        "ok.",
        "okay",
        "ok then",
        "okk",
        "yes!",
        "yes.",
        "yeah",
        "sure",
        "cool",
        "alright",
        "nice",
        "yep",
        "no.",
        "nope",
        "k.",
        "kk",
        "got it",
        "i see",
    ]:
        add(
            t,
            "greeting",
            state(True, rng.choice(["bank", "own", "word"]), False),
            "hand:greeting_ack_open",
        )
        add(t, "greeting", closed(True), "hand:greeting_ack_closed")
        add(t, "greeting", closed(False), "hand:greeting_ack_closed")


# --------------------------------------------------------------------------------------------
# offtopic
# --------------------------------------------------------------------------------------------

OFFTOPIC_HAND = [
    "what's your favourite food",
    "what is your favorite color",
    "do you like pizza",
    "tell me a joke",
    "tell me a funny joke",
    "say something funny",
    "do you know any riddles",
    "who is the best footballer",
    "messi or ronaldo?",
    "who won the world cup",
    "did arsenal win",
    "what team do you support",
    "do you like football",
    "i scored a goal today!",
    "do you play fortnite",
    "how do i get better at minecraft",
    "what's the best video game",
    "can you help me beat this level in zelda",
    "roblox is fun",
    "i love among us",
    "what music do you like",
    "recommend me a song",
    "who sings shape of you",
    "taylor swift is the best",
    "what's your favourite band",
    "lyrics to my favourite song pls",
    "how do i get a girlfriend",
    "my crush doesn't like me back",
    "should I ask her out",
    "how do i know if someone likes me",
    "i have a crush on someone in my class",
    "what's the price of bitcoin",
    "should i buy bitcoin",
    "how do i make money fast",
    "how do stocks work",
    "is crypto a scam",
    "who is the richest person in the world",
    "how tall is the rock",
    "is beyonce married",
    "what's the weather tomorrow",
    "is it going to rain today in my town",
    "what should i eat for dinner",
    "i'm hungry",
    "what's for lunch",
    "i had pasta today",
    "i'm bored",
    "lol",
    "lmao",
    "haha",
    "bruh",
    "this is so boring",
    "lets talk about something else",
    "can we talk about something else",
    "let's play a game",
    "wanna play tic tac toe",
    "what movie should i watch",
    "have you seen the new marvel movie",
    "netflix recommendations?",
    "what's the best anime",
    "do you watch youtube",
    "who's the best youtuber",
    "my dog is called biscuit",
    "do you have pets",
    "cats or dogs?",
    "i want a puppy",
    "what day is it today",
    "what time is it",
    "when is christmas",
    "it's my birthday today!",
    "what's the best phone",
    "iphone or android?",
    "how do i get more followers on tiktok",
    "what's your opinion on politics",
    "who should win the election",
    "do aliens exist",
    "write me a poem about cats",
    "can you rap",
    "sing me a song",
    "my brother is annoying",
    "my teacher is mean",
    "i hate school",
    "school is pointless",
]


def gen_offtopic() -> None:
    hand(OFFTOPIC_HAND, "offtopic", "offtopic", lambda: mixed(0.3, p_ltq=0.3), 2)
    things = [
        "pizza",
        "football",
        "basketball",
        "minecraft",
        "fortnite",
        "k-pop",
        "anime",
        "cats",
        "tiktok",
        "skateboarding",
        "chess",
        "horses",
        "dinosaurs",
        "cars",
        "the beatles",
    ]
    texts = [
        rng.choice(
            [
                "do you like {t}?",
                "what do you think about {t}",
                "i love {t}",
                "tell me something about {t}",
                "{t} is my favourite thing",
                "can we talk about {t}",
            ]
        ).format(t=t)
        for t in things
    ]
    add_all(texts, "offtopic", "offtopic_thing", lambda: mixed(0.3, p_ltq=0.3), 1)


# --------------------------------------------------------------------------------------------
# meta
# --------------------------------------------------------------------------------------------

META_HAND = [
    "who made you?",
    "who created you",
    "are you an AI?",
    "are you a robot",
    "are you a real person",
    "are you human?",
    "are you chatgpt",
    "what model are you",
    "is this chatgpt",
    "how do I change the mode?",
    "how do i switch to practice mode",
    "how do i go back to explain mode",
    "what can you do?",
    "what can you help me with",
    "what subjects do you know",
    "can you see my grades?",
    "can my teacher see this chat",
    "do you save my messages",
    "is my data private",
    "who can read this",
    "do my parents see this?",
    "how does this app work",
    "how do i use this",
    "where is the hint button",
    "where's the settings",
    "why did you say that was wrong?",
    "why was my answer marked wrong",
    "you marked it wrong but i was right",
    "that's not wrong, check again",
    "your answer is wrong",
    "i think you made a mistake",
    "why do you keep asking me questions",
    "why are you so slow",
    "do you work without internet",
    "are you offline",
    "do you need wifi",
    "how do i reset my progress",
    "how do i see my progress",
    "how many problems have i done",
    "can you speak spanish?",
    "can you talk in french",
    "can you read pictures",
    "can i send a photo",
    "can i upload my homework",
    "what's your name",
    "do you have a name",
    "how old are you",
    "how do you know the answers",
    "how do you work",
    "are you always right?",
    "can you make mistakes?",
    "can you remember what we did yesterday",
    "do you remember me",
    "will you remember this",
    "how do i make the text bigger",
    "can you read it out loud",
    "is there a dark mode",
    "how do i start over",
    "how do i clear the chat",
    "how do i pick a topic",
    "what topics are in this course",
    "which skills have i mastered",
    "what level am i",
    "why did you give me this question",
    "why is this question so hard",
    "can you explain things more simply from now on",
    "can you use shorter answers",
    "is this app free",
    "who owns this app",
    "are you better than google",
    "what does the green tick mean",
    "what does practice mode do",
    "what is guide mode",
    "how do the hints work",
    "how many hints do i get",
    "does using a hint lower my score",
]


def gen_meta() -> None:
    hand(META_HAND, "meta", "meta", lambda: mixed(0.35, p_ltq=0.3), 2)


# --------------------------------------------------------------------------------------------
# more families per label: how-to-go-on hints, varied requests, multilingual, long messages
# --------------------------------------------------------------------------------------------

OPS = ["add", "multiply", "divide", "subtract", "times", "halve", "double", "square", "simplify"]
THINGS = [
    "the 3",
    "the 12",
    "the percent",
    "the remainder",
    "the fractions",
    "the brackets",
    "both numbers",
    "the total",
    "the hours",
    "the denominators",
    "the 100",
    "the price",
]


def gen_more_hint() -> None:
    texts = []
    for _ in range(70):
        op, op2, th = rng.choice(OPS), rng.choice(OPS), rng.choice(THINGS)
        n = rng.choice([6, 9, 15, 20, 36, 48, 100, 250])
        texts.append(
            rng.choice(
                [
                    "do i {op} first or {op2} first?",
                    "am i meant to {op} {th}?",
                    "should i {op} {th}?",
                    "do i have to {op} {th} or not",
                    "what do i do once i have {n}?",
                    "i got {n}, what next?",
                    "ok i have {n} but now what",
                    "where does {th} go?",
                    "what am i meant to do with {th}",
                    "which formula is this?",
                    "is there a formula for this one?",
                    "how do i turn this into an equation",
                    "what's the equation for this problem?",
                    "which bit do i work out first",
                    "what do i work out first?",
                    "which numbers matter here?",
                    "do i use all the numbers?",
                    "how do i deal with {th}",
                    "i {op}ed and it didn't work",
                    "i tried to {op} but got stuck",
                    "i keep getting it wrong, help",
                    "can you nudge me",
                    "a small nudge?",
                    "just a nudge please",
                    "can u give me a pointer",
                    "can you get me started",
                    "help me get started",
                    "how should i approach this",
                    "what's the method for this",
                    "what method do i use",
                    "i don't know how to carry on",
                    "can you split it into smaller steps for me",
                    "can you go step by step with me",
                    "i understand the question but not how to solve it",
                    "i'm going nowhere with this",
                    "i'm going round in circles",
                    "my brain is fried, help",
                    "ugh i'm so lost",
                    "i need help with the next bit",
                    "help with the second part",
                    "stuck on the last step",
                ]
            ).format(op=op, op2=op2, th=th, n=n)
        )
    add_all(
        texts,
        "hint",
        "hint_how_to_go_on",
        lambda: opened(p_ltq=0.45),
        1,
        ["typo", "lower", "emoji", "textspeak", "punct"],
    )
    # "idk"-style replies to a tutor question with a problem open are a request for help
    for t in [
        "i dont know 😕",
        "dunno tbh",
        "no clue tbh",
        "idk tbh",
        "no idea sorry",
        "idk :(",
        "i don't know, sorry",
        "not a clue",
        "i have no clue",
        "idek",
        "idk man",
        "i really don't know",
    ]:
        add(t, "hint", opened(p_ltq=1.0), "hand:hint_idk_reply")
        add(t, "hint", opened(p_ltq=0.0), "hand:hint_idk_reply")
    for t in [
        "stuck on this",
        "hint pls",
        "a hint maybe?",
        "i'm stuck again",
        "can i get a hint",
        "need a clue",
    ]:
        add(t, "hint", closed(), "hand:hint_closed")


def gen_more_solution() -> None:
    texts = []
    for _ in range(60):
        v = rng.choice(
            [
                "x",
                "y",
                "the answer",
                "the total",
                "the result",
                "it",
                "the final answer",
                "the number",
            ]
        )
        texts.append(
            rng.choice(
                [
                    "just tell me what {v} is",
                    "what is {v}? just say it",
                    "tell me {v} please",
                    "what's {v} supposed to be?",
                    "what should {v} be",
                    "can you just tell me {v}",
                    "say {v} already",
                    "what was {v}?",
                    "i need {v}, just tell me",
                    "what did {v} come out to?",
                    "too hard, just tell me {v}",
                    "i can't do it, tell me {v}",
                    "too difficult, solution pls",
                    "i really don't know, can you tell me {v}?",
                    "idk, just give me {v}",
                    "i don't want to try anymore, what's {v}",
                    "show me {v} and how you got it",
                    "what's the answer to the one before?",
                    "what was the answer to the previous problem?",
                    "can i see the solution for the last question",
                    "what was the solution to the last one",
                    "give me the worked answer",
                    "full working please",
                    "show me the method and the answer",
                    "explain the whole solution",
                    "do the whole thing for me",
                    "finish it for me",
                    "please work it out for me",
                    "you solve it",
                    "you do it",
                    "can you do it",
                ]
            ).format(v=v)
        )
    add_all(
        texts,
        "solution",
        "solution_request",
        lambda: opened(p_ltq=0.4),
        1,
        ["typo", "lower", "emoji", "textspeak", "caps", "punct"],
    )
    for t in [
        "can i see the answer to the previous question",
        "what's the solution to the one i just did?",
        "tell me the answer to the last problem",
        "what should i have put for the last question?",
    ]:
        add(t, "solution", closed(), "hand:solution_previous")


def gen_more_practice() -> None:
    texts = []
    for topic in TOPICS + [
        "money",
        "time",
        "speed",
        "the area of triangles",
        "circles",
        "percent change",
    ]:
        texts.append(
            rng.choice(
                [
                    "ask me something about {t}",
                    "can you give me a {t} problem",
                    "give me a {a} {t} problem",
                    "i'd like a {t} question",
                    "got any {t} problems?",
                    "give me a {t} word problem",
                    "a {t} question please",
                    "do you have a {a} one on {t}",
                    "throw a {t} question at me",
                    "set me a {t} problem",
                    "let's have a {t} quiz",
                    "can I get a word problem on {t}",
                ]
            ).format(
                t=topic.removeprefix("the "),
                a=rng.choice(["tricky", "hard", "quick", "short", "challenging", "fun", "long"]),
            )
        )
    texts += [
        "give me a word problem",
        "i want a word problem",
        "word problem please",
        "a money word problem please",
        "can I have a problem about speed",
        "got it right, next?",
        "done, what's next?",
        "solved it, next one",
        "that's done, another?",
        "finished! give me another",
        "what's next?",
        "whats next",
        "next up?",
        "ok what's the next one",
        "nxt pls",
        "nxt one",
        "anotherrr",
        "another 1",
        "1 more",
        "one mor",
        "more pls",
        "mor",
        "go again?",
        "again pls",
        "do another",
        "do one more",
        "let's keep going",
        "keep going pls",
        "another round",
        "round 2",
        "level up",
        "harder pls",
        "easier pls",
        "gimme another",
        "gimme more",
        "hit me",
        "bring it on",
        "ready for more",
        "i want more practice",
    ]
    add_all(
        texts,
        "practice",
        "practice_request",
        lambda: mixed(0.5, p_ltq=0.4),
        1,
        ["typo", "lower", "emoji", "caps", "punct"],
    )


def gen_more_answer() -> None:
    for _ in range(50):
        kind = rng.choice(["bank", "own", "word"])
        v = rand_value(kind)
        # the corrected value keeps the form of the first (same unit, same kind of number)
        w = re.sub(r"\d+", lambda m: str(int(m.group()) + rng.choice([1, 2, 3, 5, 10])), v, count=1)
        text = rng.choice(
            [
                "{v} is wrong",
                "{v} is wrong isn't it",
                "{w} not {v}",
                "{w}, not {v}",
                "not {v} but {w}",
                "{v}? no, {w}",
                "it's {w} and not {v}",
                "i said {v} before but it's {w}",
                "wait no, {w}",
                "no wait it's {w}",
                "actually {w}",
                "oops i mean {w}",
                "sorry, {w}",
                "{w} final answer",
            ]
        ).format(v=v, w=w)
        add(text, "answer", opened([kind], p_ltq=0.5), "template:answer_correction")
    for _ in range(30):
        v = rand_value(rng.choice(["bank", "own"]))
        add(
            rng.choice(["{v}", "{v}", "{v}.", "= {v}"]).format(v=v),
            "answer",
            opened(p_ltq=0.0),
            "template:answer_no_question",
        )
    lists = [
        "water and sunlight",
        "carbon dioxide and water",
        "oxygen and glucose",
        "evaporation then condensation",
        "heat from the sun",
        "the roots and the leaves",
        "rain, snow and hail",
        "glucose and oxygen",
        "the sun and the wind",
        "condensation and then precipitation",
    ]
    for t in lists:
        for t2, how in perturbed(
            rng.choice(["{t}", "{t}?", "is it {t}", "i think {t}"]).format(t=t),
            1,
            ["lower", "typo", "emoji"],
        ):
            add(
                t2,
                "answer",
                opened(["bank"], p_ltq=0.8),
                "template:answer_science_list" + (f"+{how}" if how else ""),
            )
    for _ in range(25):
        h, m = rng.randrange(1, 9), rng.choice([10, 15, 20, 30, 45])
        text = rng.choice(
            [
                "{h} hours {m} minutes",
                "{h} h {m} min",
                "the answer is {h} hours and {m} minutes",
                "{h}:{m}",
                "it takes {h} hours and {m} mins",
                "{h} and a half hours",
                "about {h} hours",
                "{m} minutes?",
                "at {h}:{m} pm",
            ]
        ).format(h=h, m=m)
        add(text, "answer", opened(["word"], p_ltq=0.7), "template:answer_time")


def gen_more_step() -> None:
    for _ in range(80):
        name, pron, pos = rng.choice(NAMES)
        a, b = rng.randrange(2, 30), rng.randrange(2, 12)
        n1, n2 = rng.randrange(5, 40), rng.randrange(5, 40)
        d = rng.choice([3, 4, 5, 6, 8, 10])
        text = rng.choice(
            [
                "{n1} are red and {n2} are blue",
                "that means {name} has {n1} and {pos} brother has {n2}",
                "the common denominator should be {cd}",
                "the bottom number has to be {cd}",
                "I made 1/{d} into {k}/{kd} first",
                "I rewrote 1/{d} as {k}/{kd}",
                "after expanding I have {a}x + {ab}",
                "i opened the brackets and got {a}x + {ab}",
                "area is base times height so {a} times {b}",
                "I used the formula perimeter = 2 x (l + w)",
                "using speed = distance / time, {ab} / {b} = {a}",
                "the first part comes to {ab}",
                "that part is {ab} altogether",
                "so far I have {ab}",
                "so one {unit} is {a}",
                "which means each group has {a}",
                "that leaves {n1} for the rest",
                "so the left side is now {a}x",
                "now it says {a}x = {ab}",
                "x is on its own now: x = {ab} / {a}",
                "I rounded {n1}.{b} to {n1}",
                "the tenths digit is {b} so i round up",
                "I lined up the decimal points",
                "I changed {a} m into {a}00 cm",
                "{b} hours is {b60} minutes",
                "I drew a bar model with {b} equal parts",
                "I made a table of the weeks and the money",
                "I counted up from {n1} to {n12}",
                "I estimated first, it should be around {ab}0",
                "so the ratio is {a}:{b}",
                "one part is {a} so {b} parts is {ab}",
            ]
        ).format(
            name=name,
            pos=pos,
            a=a,
            b=b,
            ab=a * b,
            n1=n1,
            n2=n2,
            n12=n1 + n2,
            d=d,
            k=2,
            kd=2 * d,
            cd=d * 2,
            unit=rng.choice(["share", "box", "part", "bag"]),
            b60=b * 60,
        )
        how = ""
        if rng.random() < 0.2:
            how = rng.choice(["typo", "lower", "emoji", "textspeak", "caps"])
            text = PERTURB[how](text)
        add(
            text, "step", opened(p_ltq=0.45), "template:step_reasoning" + (f"+{how}" if how else "")
        )
    science = [
        "the sun warms the sea and the water turns into a gas",
        "warm air carries the vapour up and it gets colder higher up",
        "when the droplets get too heavy they fall as rain",
        "the leaf takes in light and uses it to split the water",
        "the plant makes glucose and lets out oxygen",
        "heat makes the particles move faster so they escape as vapour",
        "some rain soaks into the soil and some runs into rivers",
        "rivers carry the water back to the sea and it starts again",
        "the stomata open so carbon dioxide can get in",
        "without light the plant can't make sugar so it would die",
        "the water in the leaves evaporates out through the stomata, that's transpiration",
        "cold surfaces make the vapour turn back into liquid",
    ]
    hand(
        science,
        "step",
        "step_science_reasoning",
        lambda: opened(["bank"], p_ltq=0.5),
        1,
        ["lower", "typo"],
    )
    long_working = [
        "Ok so first I need the cost of the pencils. 6 pencils at 40 cents is $2.40. Then the ruler is "
        "$1.10 so together that's $3.50, and I still have to take that away from the $5.",
        "I think I should start with the second week. It says they collected double, so 2 times 35 is 70. "
        "After that I'll add the first week.",
        "First I changed everything to centimetres because one length was in metres. 1.5 m is 150 cm. "
        "Then I added 150 and 45 to get 195 cm for the two pieces together.",
        "I set it up as an equation: if the small one is x then the big one is x + 8, and together they "
        "make 2x + 8 = 30. So now I'm taking 8 off both sides.",
        "so the recipe is for 4 people and we need 10 people which is 2.5 times as many, so I multiplied "
        "the 300 g by 2.5 and got 750 g for the flour",
        "the tank loses 3 litres a minute but gets 8, so really it only gains 5 litres every minute",
        "i worked out the area of the floor first: 4 x 6 = 24 square metres, and each box of tiles does 2",
        "In the morning it was -4 and it went up 9 degrees, so at noon it was 5 degrees. Now I need to take "
        "away the drop in the evening.",
    ]
    hand(
        long_working,
        "step",
        "step_long",
        lambda: opened(["word", "own"], p_ltq=0.4),
        1,
        ["lower", "typo"],
    )


def gen_more_question() -> None:
    multilingual = [
        "qu'est-ce qu'une fraction ?",
        "c'est quoi l'évaporation ?",
        "was ist eine Gleichung?",
        "was bedeutet Nenner?",
        "cos'è la fotosintesi?",
        "che cos'è un rapporto?",
        "o que é evaporação?",
        "o que significa denominador?",
        "¿qué significa denominador?",
        "¿cómo funciona el ciclo del agua?",
        "¿por qué el cielo es azul?",
        "wat is een breuk?",
        "porque chove?",
        "warum regnet es?",
        "pourquoi le ciel est bleu ?",
        "¿qué es un porcentaje?",
    ]
    hand(multilingual, "question", "question_nonenglish", lambda: mixed(0.2, p_ltq=0.3), 0)
    for t in [
        "?",
        "??",
        "? ?",
        "?!",
        "wait what",
        "what??",
        "hmm?",
        "sorry?",
        "what do u mean",
        "huh??",
    ]:
        for st in [closed(True), closed(False)]:
            add(t, "question", st, "hand:short_confused_closed")
    texts = [
        "what does '{w}' mean in this question?",
        "what is meant by '{w}'?",
        "what's '{w}'?",
        "sorry what does {w} mean",
        "i don't know the word {w}",
        "what's the meaning of {w}",
    ]
    words = [
        "altogether",
        "remaining",
        "per",
        "each",
        "product",
        "quotient",
        "sum",
        "difference",
        "average",
        "estimate",
        "evaluate",
        "expand",
        "factorise",
        "interest",
        "discount",
        "profit",
        "ratio",
        "rate",
        "volume",
        "mass",
        "perimeter",
        "integer",
        "digit",
        "decimal place",
    ]
    qs = [rng.choice(texts).format(w=w) for w in words]
    add_all(
        qs,
        "question",
        "question_word_meaning",
        lambda: mixed(0.6, p_ltq=0.4),
        1,
        ["lower", "typo", "textspeak", "caps"],
    )
    why = [
        "why does that rule work?",
        "why is that true?",
        "how do you know that's always true?",
        "is that always the case?",
        "does that work for every number?",
        "why is that the rule?",
        "why does it work like that",
        "is there a reason for that rule?",
        "how would I know that in a test?",
        "why does heat make water evaporate faster?",
        "why do bigger denominators mean smaller pieces?",
        "why do negative numbers go below zero?",
        "why does the moon change shape?",
        "how do magnets work?",
        "why do things fall down?",
        "how does sound travel?",
        "what is electricity?",
        "why do we have seasons?",
        "how do volcanoes erupt?",
        "what's inside an atom?",
        "why is the sea salty but rain isn't?",
    ]
    hand(
        why,
        "question",
        "question_science_why",
        lambda: mixed(0.35, p_ltq=0.35),
        1,
        ["lower", "typo", "emoji", "textspeak"],
    )


def gen_more_greeting() -> None:
    longer = [
        "thanks so much, that explanation really helped",
        "thank you! i finally get how percentages work",
        "ok that makes so much more sense now, thanks!",
        "thanks for being patient with me today",
        "that's all I needed, thank you and bye!",
        "I have to go to dinner now, thank you for the help, bye!",
        "Thanks a lot for today. I learned a lot about the water cycle. See you next time!",
        "great lesson, thank you, see you on monday",
        "thank you, you explained it better than my teacher",
        "ahh i get it now, thank you!!",
        "oh that's clever, thanks",
        "perfect, that's what i needed, cheers",
        "thanks, that helped a lot 😊",
        "hi! hope you're having a good day",
        "good morning, i'm back",
        "hello again!",
        "hi it's me again",
        "hey, i'm back for more maths",
        "morning tutor!",
        "evening!",
    ]
    hand(
        longer,
        "greeting",
        "greeting_long",
        lambda: mixed(0.3, p_ltq=0.3),
        1,
        ["lower", "typo", "emoji", "caps", "textspeak"],
    )
    more_langs = [
        "hallo!",
        "bonsoir",
        "buona sera",
        "boa tarde",
        "boa noite",
        "gute Nacht",
        "bis später",
        "à plus",
        "hasta mañana",
        "ciao!",
        "merci !",
        "danke dir",
        "gracias!!",
        "obrigada!",
        "selamat pagi",
        "terima kasih",
        "salamat",
        "kamsahamnida",
        "xièxie",
        "sawasdee",
        "vanakkam",
        "sat sri akal",
        "dobrý den",
        "tere",
        "moi",
        "god morgen",
        "dzień dobry",
        "jó napot",
        "kalimera",
        "efharisto",
        "ευχαριστώ",
        "привет",
        "спасибо",
        "مرحبا",
        "شكرا",
        "नमस्ते",
        "धन्यवाद",
        "你好",
        "谢谢",
        "こんにちは",
        "ありがとう",
        "안녕하세요",
        "감사합니다",
    ]
    hand(more_langs, "greeting", "greeting_nonenglish", lambda: mixed(0.2, p_ltq=0.3), 0)
    # thanks / acknowledgement while a problem is open and the tutor has asked: not an answer
    for t in [
        "thanks, that helps",
        "oh i see now, thanks",
        "ah ok thank you",
        "thank you!",
        "cheers!",
        "ok thanks",
        "thanks 🙂",
    ]:
        add(t, "greeting", opened(p_ltq=1.0), "hand:greeting_thanks_open")


def gen_more_offtopic() -> None:
    texts = [
        "who is the best {s} player ever",
        "what are the rules of {s}",
        "do you watch {s}",
        "i played {s} today",
        "is {s} a real sport",
        "how do you get good at {s}",
        "who won the {s} game yesterday",
        "{s} is the best sport",
    ]
    sports = [
        "tennis",
        "rugby",
        "volleyball",
        "hockey",
        "baseball",
        "golf",
        "netball",
        "f1",
        "boxing",
    ]
    add_all(
        [rng.choice(texts).format(s=s) for s in sports],
        "offtopic",
        "offtopic_sport",
        lambda: mixed(0.3, p_ltq=0.3),
        1,
        ["lower", "typo", "textspeak", "caps", "emoji"],
    )
    personal = [
        "what's your favourite season",
        "do you have a best friend",
        "do you like dogs or cats more",
        "what's your zodiac sign",
        "what's your favourite animal",
        "have you ever been to the beach",
        "do you like ice cream",
        "what's your favourite holiday",
        "what's your favourite sport",
        "do you have a family",
        "where do you live",
        "do you like music",
    ]
    hand(
        personal,
        "offtopic",
        "offtopic_personal",
        lambda: mixed(0.3, p_ltq=0.3),
        1,
        ["lower", "textspeak", "emoji", "typo"],
    )
    games = [
        "can we play a game",
        "let's play rock paper scissors",
        "can we play hangman",
        "want to play truth or dare",
        "how do i get better at roblox",
        "how do i find diamonds in minecraft",
        "what's the best gaming chair",
        "which console should I buy",
        "how do i win at fifa",
        "is gta good",
        "can u help me build a lego set",
        "what's a good youtube channel for gaming",
    ]
    hand(
        games,
        "offtopic",
        "offtopic_games",
        lambda: mixed(0.3, p_ltq=0.3),
        1,
        ["lower", "textspeak", "emoji", "typo", "caps"],
    )


def gen_more_meta() -> None:
    texts = [
        "how does the {f} work",
        "what does the {f} do",
        "where is the {f}",
        "can I turn off the {f}",
        "how do I use the {f}",
        "why is the {f} not working",
        "what is the {f} for",
    ]
    feats = [
        "marking",
        "grading",
        "hint button",
        "progress bar",
        "mode switch",
        "skip button",
        "practice mode",
        "explain mode",
        "guide mode",
        "scoring",
        "mastery meter",
        "topic list",
        "settings page",
        "sound",
        "microphone button",
        "history",
        "streak counter",
    ]
    add_all(
        [rng.choice(texts).format(f=f) for f in feats],
        "meta",
        "meta_feature",
        lambda: mixed(0.35, p_ltq=0.3),
        1,
        ["lower", "textspeak", "typo", "caps"],
    )
    langs = ["spanish", "french", "arabic", "hindi", "portuguese", "chinese", "italian", "polish"]
    add_all(
        [
            rng.choice(
                [
                    "can you speak {l}?",
                    "do you understand {l}",
                    "can we chat in {l}",
                    "can you answer in {l}",
                    "do you know {l}?",
                ]
            ).format(l=lang)
            for lang in langs
        ],
        "meta",
        "meta_language",
        lambda: mixed(0.2, p_ltq=0.3),
        1,
        ["lower", "caps", "typo"],
    )
    disputes = [
        "why did you say {v} was wrong?",
        "{v} should be right, why did it say wrong?",
        "you said {v} was wrong but it's the same thing",
        "why is {v} marked incorrect",
        "i typed {v} and it said wrong, why?",
        "the app said {v} was wrong, is that a bug?",
        "why did it say 'try again'?",
        "why did you say 'almost'?",
        "what do you mean 'not quite'?",
        "why did it only give me half marks",
        "why didn't it accept my answer",
    ]
    add_all(
        [rng.choice(disputes).format(v=rand_value(rng.choice(["bank", "own"]))) for _ in range(30)],
        "meta",
        "meta_dispute",
        lambda: opened(p_ltq=0.4),
        0,
    )
    how = [
        "how do you pick the questions",
        "how do you choose what to ask me",
        "why this topic?",
        "how do you know what i'm good at",
        "how do you decide when i've mastered something",
        "how many questions until i finish this topic",
        "do you get smarter when i use you",
        "do you learn from me",
        "who trained you",
        "what are you built with",
        "are you open source",
        "what data were you trained on",
        "are you running on my computer",
        "why are your answers so short",
        "can you talk instead of typing",
        "can you do voice",
        "why do you say 'great question' every time",
    ]
    hand(how, "meta", "meta_how", lambda: mixed(0.3, p_ltq=0.3), 1, ["lower", "textspeak", "typo"])


# --------------------------------------------------------------------------------------------
# mixed messages: a greeting or thanks in front of a request takes the request's label
# --------------------------------------------------------------------------------------------


def gen_mixed() -> None:
    pre = [
        "hi, ",
        "hey ",
        "hello! ",
        "thanks! ",
        "ok thanks, ",
        "cool. ",
        "hola, ",
        "good morning, ",
    ]
    for label, texts, st in [
        (
            "practice",
            ["next one", "give me a problem on fractions", "quiz me on decimals", "another please"],
            lambda: mixed(0.4),
        ),
        (
            "question",
            [
                "what is photosynthesis?",
                "why do we need a common denominator?",
                "how does condensation work?",
            ],
            lambda: mixed(0.2),
        ),
        (
            "new_problem",
            ["what is 2/3 + 1/6?", "solve 4x - 7 = 13", "what's 30% of 70"],
            lambda: mixed(0.2),
        ),
        ("hint", ["can i have a hint", "i'm stuck"], lambda: opened()),
        ("meta", ["are you an AI?", "how does this app work?"], lambda: mixed(0.2)),
    ]:
        for t in texts:
            for p in rng.sample(pre, 3):
                add(p + t, label, st(), f"template:mixed_greeting_{label}")


# --------------------------------------------------------------------------------------------
# checks and output
# --------------------------------------------------------------------------------------------

KEYS = ["text", "label", "problem_open", "problem_kind", "last_tutor_question", "source"]


def norm(text: str) -> str:
    """How texts are compared between the splits: case-insensitive (MiniLM is uncased)."""
    return re.sub(r"\s+", " ", text.casefold()).strip()


def check(records: list[dict], split: str, min_total: int, min_label: int) -> None:
    problems = []
    seen = {}
    for r in records:
        if list(r) != KEYS:
            problems.append(f"{split}: keys {list(r)}")
        if r["label"] not in LABELS:
            problems.append(f"{split}: unknown label {r['label']!r}")
        if r["problem_kind"] not in KINDS or (r["problem_kind"] == "none") == r["problem_open"]:
            problems.append(f"{split}: bad state {r}")
        if not isinstance(r["problem_open"], bool) or not isinstance(
            r["last_tutor_question"], bool
        ):
            problems.append(f"{split}: non-bool state {r}")
        key = (r["text"], r["problem_open"], r["problem_kind"], r["last_tutor_question"])
        if key in seen:
            problems.append(f"{split}: duplicate (text, state) {key!r}")
        seen[key] = r["label"]
        prefix = r["source"].split(":", 1)[0]
        if split == "train" and prefix not in ("template", "hand"):
            problems.append(f"train: source {r['source']!r}")
        if split == "heldout" and prefix != "heldout":
            problems.append(f"heldout: source {r['source']!r}")
    counts = {label: sum(r["label"] == label for r in records) for label in LABELS}
    if len(records) < min_total:
        problems.append(f"{split}: {len(records)} records < {min_total}")
    for label, n in counts.items():
        if n < min_label:
            problems.append(f"{split}: {label} has {n} < {min_label}")
    if problems:
        raise SystemExit("\n".join(problems[:50]))


def check_disjoint(train: list[dict], heldout: list[dict]) -> None:
    train_texts = {}
    for r in train:
        train_texts.setdefault(norm(r["text"]), r["text"])
    clashes = [
        (r["text"], train_texts[norm(r["text"])]) for r in heldout if norm(r["text"]) in train_texts
    ]
    if clashes:
        raise SystemExit(
            f"{len(clashes)} held-out texts also appear in train:\n"
            + "\n".join(f"  {h!r} ~ {t!r}" for h, t in clashes[:40])
        )
    # the held-out word problems use their own names
    names = re.compile(r"\b(" + "|".join(TRAIN_NAME_WORDS) + r")\b")
    named = [r["text"] for r in heldout if r["label"] == "new_problem" and names.search(r["text"])]
    if named:
        raise SystemExit("held-out problems use train names:\n" + "\n".join(named))


COVERAGE = [
    "typo",
    "lower",
    "caps",
    "emoji",
    "textspeak",
    "working_words",
    "negation",
    "open_question",
    "word_problem",
    "next_again",
    "nonenglish",
    "short",
    "long",
]


def coverage(records: list[dict], split: str) -> dict[str, int]:
    """Rough counts of the required phenomena, from sources and text."""
    c = {k: 0 for k in COVERAGE}
    for r in records:
        s, t = r["source"], r["text"]
        c["typo"] += "typo" in s
        c["lower"] += t == t.lower() and any(ch.isalpha() for ch in t)
        c["caps"] += t == t.upper() and sum(ch.isalpha() for ch in t) >= 3
        c["emoji"] += any(ord(ch) > 0x2600 for ch in t)
        c["textspeak"] += bool(
            re.search(
                r"\b(u|ur|pls|plz|idk|thx|ty|dunno|im|r|bc|wat|gonna|wanna|rn|tho|lemme)\b", t, re.I
            )
        )
        c["working_words"] += r["label"] == "step" and bool(
            re.search(r"\b(I|i|so|then|first)\b", t)
        )
        c["negation"] += (
            bool(re.search(r"\b(not|isn'?t|wrong|can'?t|don'?t|no)\b", t, re.I))
            and r["label"] == "answer"
        )
        c["open_question"] += r["label"] == "question" and r["problem_open"]
        c["word_problem"] += r["label"] == "new_problem" and "word" in s
        c["next_again"] += r["label"] == "practice" and bool(
            re.search(r"\b(next|another|again)\b", t, re.I)
        )
        c["nonenglish"] += r["label"] == "greeting" and (
            "nonenglish" in s
            or bool(
                re.search(
                    r"\b(hola|bonjour|hallo|ciao|ol[aá]|namaste|salut|merci|gracias|danke|grazie|obrigad[oa])\b",
                    t,
                    re.I,
                )
            )
        )
        c["short"] += len(t) <= 3
        c["long"] += len(t) >= 150
    missing = [k for k, v in c.items() if v == 0]
    if missing:
        raise SystemExit(f"{split}: no examples of {missing}")
    return c


def write(path: Path, records: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps({k: r[k] for k in KEYS}, ensure_ascii=False) + "\n")


def counts_table(train: list[dict], heldout: list[dict]) -> str:
    lines = ["| label | train | held-out |", "|---|---:|---:|"]
    for label in LABELS:
        lines.append(
            f"| {label} | {sum(r['label'] == label for r in train)} | "
            f"{sum(r['label'] == label for r in heldout)} |"
        )
    lines.append(f"| **total** | **{len(train)}** | **{len(heldout)}** |")
    return "\n".join(lines)


def main() -> None:
    heldout = heldout_build.records()
    for r in heldout:
        if len(r["text"]) <= SHORT_RESERVED_LEN:
            RESERVED[norm(r["text"])] = True
    for gen in [
        gen_question,
        gen_answer,
        gen_step,
        gen_hint,
        gen_solution,
        gen_practice,
        gen_new_problem,
        gen_greeting,
        gen_offtopic,
        gen_meta,
        gen_mixed,
        gen_more_hint,
        gen_more_solution,
        gen_more_practice,
        gen_more_answer,
        gen_more_step,
        gen_more_question,
        gen_more_greeting,
        gen_more_offtopic,
        gen_more_meta,
    ]:
        gen()
    train = list(RECORDS.values())
    rng.shuffle(train)

    check(train, "train", MIN_TRAIN, MIN_TRAIN_LABEL)
    check(heldout, "heldout", MIN_HELDOUT, MIN_HELDOUT_LABEL)
    check_disjoint(train, heldout)
    cov = {split: coverage(recs, split) for split, recs in [("train", train), ("heldout", heldout)]}

    write(HERE / "train.jsonl", train)
    write(HERE / "heldout.jsonl", heldout)

    table = counts_table(train, heldout)
    print(table)
    print(
        f"\n{len(SKIPPED)} generated train texts skipped because they equal a short held-out text "
        f"(<= {SHORT_RESERVED_LEN} characters), e.g. {sorted(set(SKIPPED))[:12]}"
    )
    print()
    print("coverage (rough)   " + "  ".join(f"{k}" for k in COVERAGE))
    for split, c in cov.items():
        print(f"{split:<18} " + "  ".join(f"{c[k]:>{len(k)}}" for k in COVERAGE))
    print("\nstate per label (kind, +q = tutor asked a question)")
    for split, recs in [("train", train), ("heldout", heldout)]:
        for label in LABELS:
            c: dict[str, int] = {}
            for r in recs:
                if r["label"] == label:
                    k = r["problem_kind"] + ("+q" if r["last_tutor_question"] else "")
                    c[k] = c.get(k, 0) + 1
            print(f"  {split:<8} {label:<12} " + " ".join(f"{k}={c[k]}" for k in sorted(c)))
    readme = HERE / "README.md"
    if readme.exists():
        text = readme.read_text(encoding="utf-8")
        start, end = "<!-- counts:start -->", "<!-- counts:end -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            new = f"{head}{start}\n{table}\n{end}{tail}"
            if new != text:
                readme.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
