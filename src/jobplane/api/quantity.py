"""``resource.Quantity`` parsing: ``500m``, ``1.5``, ``128Mi``, ``1e3``, ``2G``.

Values are exact ``Fraction``s so comparisons (requests <= limits) never suffer from float
rounding; helpers give the integer forms the scheduler and the agent need.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

# The regular expression apimachinery quotes in its parse error.
QUANTITY_FMT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
QUANTITY_ERR = f"quantities must match the regular expression '{QUANTITY_FMT}'"

_NUMBER_RE = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")
BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
            "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
            "P": Fraction(10**15), "E": Fraction(10**18)}
_EXPONENT_RE = re.compile(r"[eE]([+-]?[0-9]+)")


class QuantityError(ValueError):
    """The string is not a quantity; ``str()`` is upstream's message."""

    def __init__(self, text: str = QUANTITY_ERR) -> None:
        super().__init__(text)


@lru_cache(maxsize=4096)
def parse_quantity(value: str | int | float) -> Fraction:
    """Parse a quantity string (or a JSON number) into an exact Fraction."""
    if isinstance(value, bool):
        raise QuantityError()
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise QuantityError()
    m = _NUMBER_RE.match(text)
    if not m or (not m.group(2) and not m.group(3)):
        raise QuantityError()
    sign, whole, frac = m.group(1), m.group(2) or "0", m.group(3) or ""
    number = Fraction(int(whole + frac), 10 ** len(frac))
    if sign == "-":
        number = -number
    suffix = text[m.end():]
    if suffix in BINARY_SUFFIXES:
        return number * BINARY_SUFFIXES[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    e = _EXPONENT_RE.fullmatch(suffix)
    if e:
        return number * Fraction(10) ** int(e.group(1))
    raise QuantityError()


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)
    except (QuantityError, TypeError):
        return False
    return True


def cpu_millis(value: str | int | float) -> int:
    """CPU in millicores, rounded up as ``Quantity.MilliValue`` does."""
    return math.ceil(parse_quantity(value) * 1000)


def memory_bytes(value: str | int | float) -> int:
    """Bytes (or any integer resource), rounded up as ``Quantity.Value`` does."""
    return math.ceil(parse_quantity(value))


def compare(a: str | int | float, b: str | int | float) -> int:
    """-1, 0 or 1 as ``Quantity.Cmp``."""
    x, y = parse_quantity(a), parse_quantity(b)
    return (x > y) - (x < y)
