"""Exact decimal strings to scaled integers, never through binary floating point.

Venues publish prices and sizes as decimal text (``"61837.63000000"``, ``"5471.5"``). A float
cannot hold most of them exactly, so Tapedeck turns the text straight into an integer count of
``10**-scale`` units. A value with more significant decimals than the scale cannot be represented
and is refused (the importer quarantines its line) rather than rounded.
"""

from __future__ import annotations

_POW10 = tuple(10**k for k in range(20))


class DecimalError(ValueError):
    """Text that is not an exact decimal at the requested scale; ``reason`` is machine-readable."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def parse_scaled(text: str, scale: int) -> int:
    """``text`` (``[-]digits[.digits]``) as an integer of ``10**-scale`` units, exactly.

    Raises :class:`DecimalError` with reason ``not_numeric`` for anything but plain ASCII decimal
    digits (no exponents, underscores, spaces, ``inf`` or ``nan``), ``precision`` when
    the value has non-zero digits beyond ``scale`` decimals, or ``out_of_range`` for a whole
    part too long for Python to convert (thousands of digits; see
    :func:`sys.get_int_max_str_digits`). Whether a value fits its field is the caller's check.
    """
    negative = text[:1] == "-"
    body = text[1:] if negative else text
    whole, dot, frac = body.partition(".")
    if not (whole or frac) or not _digits(whole) or not _digits(frac) or (dot and not frac):
        raise DecimalError("not_numeric", f"{text!r} is not a decimal number")
    if len(frac) > scale:
        if frac[scale:].strip("0"):
            raise DecimalError(
                "precision", f"{text!r} has more than {scale} decimals (the instrument's scale)"
            )
        frac = frac[:scale]
    try:
        units = int(whole.lstrip("0") or "0")
    except ValueError:  # more digits than int() converts: far beyond any field
        raise DecimalError(
            "out_of_range", f"a number of {len(whole)} digits ({text[:20]}...) is out of range"
        ) from None
    value: int = units * _POW10[scale] + (int(frac) * _POW10[scale - len(frac)] if frac else 0)
    return -value if negative else value


def _digits(s: str) -> bool:
    # str.isdigit alone accepts non-ASCII digits such as "²"; int() accepts "_" and spaces.
    return not s or (s.isascii() and s.isdigit())


def format_scaled(value: int, scale: int) -> str:
    """The canonical decimal text of ``value`` units of ``10**-scale`` (inverse of parsing)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), _POW10[scale])
    return f"{sign}{whole}.{frac:0{scale}d}" if scale else f"{sign}{whole}"


class ScaledCache:
    """Memoised :func:`parse_scaled` for one scale: market data repeats the same prices a lot.

    The cache is cleared when it reaches ``limit`` entries, so memory stays bounded however
    long the input is.
    """

    def __init__(self, scale: int, limit: int = 65536) -> None:
        self.scale = scale
        self.limit = limit
        self._cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        """``parse_scaled(text, self.scale)``, cached."""
        try:
            return self._cache[text]
        except KeyError:
            pass
        value = parse_scaled(text, self.scale)
        if len(self._cache) >= self.limit:
            self._cache.clear()
        self._cache[text] = value
        return value
