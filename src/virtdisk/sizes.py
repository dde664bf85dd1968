"""Byte counts written the way people write them: ``"10GiB"``, ``"512M"``.

Parsing (:func:`parse_size`) follows the two conventions in use, and says
which applies by the unit's spelling, so a value never means two things:

* binary units, powers of 1024: ``K M G T P E`` alone or followed by
  ``iB`` (``"512M"``, ``"10GiB"``), as qemu-img, Hyper-V and PowerShell
  read sizes;
* decimal units, powers of 1000, only when spelt with a plain ``B``:
  ``kB MB GB TB PB EB``, as the SI and disk vendors define them.

Units are case-insensitive, a space may separate number and unit, ``B`` or
no unit means bytes, and the number may have a fraction (``"1.5GiB"``) as
long as the result is a whole number of bytes.  Formatting
(:func:`format_size`) always uses binary units, the ones disk sizes are
chosen in.
"""

from __future__ import annotations

import re

__all__ = ["parse_size", "format_size", "format_size_with_bytes"]

_BINARY_PREFIXES = "KMGTPE"

_UNITS: dict[str, int] = {"": 1, "b": 1}
for _power, _prefix in enumerate(_BINARY_PREFIXES.lower(), start=1):
    _UNITS[_prefix] = 1024 ** _power
    _UNITS[_prefix + "ib"] = 1024 ** _power
    _UNITS[_prefix + "b"] = 1000 ** _power

_SIZE_PATTERN = re.compile(r"\s*(\d*)(?:\.(\d*))?\s*([a-z]*)\s*", re.IGNORECASE)

_UNIT_NAMES = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def parse_size(text: str | int) -> int:
    """Returns the number of bytes `text` names.

    ``parse_size("10GiB") == parse_size("10G") == 10 * 2**30``;
    ``parse_size("10GB") == 10 * 10**9``; an int is returned as it is (after
    the same checks).  Raises ValueError, naming the text and the accepted
    units, for anything else, for negative sizes and for fractions of a
    byte; TypeError for a type other than str or int.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise TypeError(f"size must be str or int, not {type(text).__name__}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"size must not be negative, not {text}")
        return text
    match = _SIZE_PATTERN.fullmatch(text)
    whole: str = match[1] if match is not None else ""
    fraction: str = (match[2] or "") if match is not None else ""
    unit: str = match[3] if match is not None else ""
    if not whole and not fraction:
        raise ValueError(
            f"size must be a number with an optional unit (e.g. '512M', '10GiB', '4096'), "
            f"not {text!r}")
    multiplier = _UNITS.get(unit.lower())
    if multiplier is None:
        raise ValueError(
            f"unknown size unit {unit!r} in {text!r}: use B, K/KiB, M/MiB, G/GiB, T/TiB, "
            f"P/PiB, E/EiB (powers of 1024) or kB, MB, GB, TB, PB, EB (powers of 1000)")
    # Exact arithmetic on the decimal digits: "1.5GiB" is 15 * 2**30 / 10.
    scaled = int(whole + fraction or "0") * multiplier
    divisor: int = 10 ** len(fraction)
    size, remainder = divmod(scaled, divisor)
    if remainder:
        raise ValueError(f"{text!r} is not a whole number of bytes ({scaled / divisor} bytes)")
    return size


def format_size(size: int, *, precision: int = 1) -> str:
    """Formats `size` bytes with the largest binary unit that keeps the
    number at least 1: ``"10.0 GiB"``, ``"1.5 MiB"``; below 1 KiB the exact
    count: ``"512 bytes"``, ``"1 byte"``."""
    if size < 0:
        raise ValueError(f"size must not be negative, not {size}")
    if size < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    exponent = min((size.bit_length() - 1) // 10, len(_UNIT_NAMES) - 1)
    value = size / (1 << (10 * exponent))
    text = f"{value:.{precision}f}"
    if float(text) >= 1024 and exponent < len(_UNIT_NAMES) - 1:
        # Rounding carried into the next unit (1023.96 KiB shows as 1.0 MiB).
        exponent += 1
        text = f"{size / (1 << (10 * exponent)):.{precision}f}"
    return f"{text} {_UNIT_NAMES[exponent]}"


def format_size_with_bytes(size: int) -> str:
    """``"10.0 GiB (10737418240 bytes)"``; just ``"512 bytes"`` below 1 KiB,
    where the two would repeat each other."""
    text = format_size(size)
    if size < 1024:
        return text
    return f"{text} ({size} bytes)"
