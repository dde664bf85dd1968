"""utf16.c against Python's own strict codecs.

Python's "utf-8" and "utf-16-le" codecs are strict in the way the engine
must be (no lone surrogates, no overlong or surrogate UTF-8 forms, nothing
above U+10FFFF), so they are the oracle for every case, the random ones
included.  The harness runs under AddressSanitizer when the compiler has it,
which checks that no conversion reads or writes past its buffers.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from c_harness import compile_harness


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_harness(tmp_path_factory.mktemp("utf16_harness"), "utf16_main",
                           ["utf16.c"], sanitize=True)


def ask(harness: Path, requests: list[str]) -> list[str]:
    result = subprocess.run([str(harness)], input="\n".join(requests) + "\n", check=True,
                            capture_output=True, text=True, timeout=120)
    answers = result.stdout.splitlines()
    assert len(answers) == len(requests)
    return answers


def hex_or_dash(data: bytes) -> str:
    return data.hex() or "-"


def units_hex(units: list[int]) -> str:
    return "".join(f"{u:04x}" for u in units) or "-"


# ---- oracles -------------------------------------------------------------------

def expected_to8(units: list[int]) -> str:
    if 0 in units:
        units = units[:units.index(0)]
    raw = b"".join(u.to_bytes(2, "little") for u in units)
    try:
        text = raw.decode("utf-16-le")
    except UnicodeDecodeError:
        return "null"
    return "ok " + hex_or_dash(text.encode("utf-8"))


def expected_to16(data: bytes, capacity: int) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "0 - intact"
    encoded = text.encode("utf-16-le")
    units = [int.from_bytes(encoded[i:i + 2], "little") for i in range(0, len(encoded), 2)]
    needed = len(units) + 1
    shown = units_hex(units + [0]) if needed <= capacity else "-"
    return f"{needed} {shown} intact"


# ---- UTF-16 -> UTF-8 -----------------------------------------------------------

UTF16_CASES = [
    [],
    [0x41],
    [0x41, 0x42, 0x43],
    [0xE9],                       # 2-byte UTF-8
    [0x20AC],                     # 3-byte UTF-8
    [0xFFFF],                     # last BMP code point
    [0xD83D, 0xDE00],             # surrogate pair -> 4-byte UTF-8
    [0xDBFF, 0xDFFF],             # U+10FFFF
    [0xD800, 0xDC00],             # U+10000
    [0xD800],                     # lone high surrogate
    [0xDC00],                     # lone low surrogate
    [0xD800, 0x41],               # high surrogate followed by a non-surrogate
    [0xDC00, 0xD800],             # reversed pair
    [0x41, 0xD83D],               # pair cut by the end
    [0x41, 0, 0x42],              # stops at the NUL
    [0, 0xD800],                  # nothing after the NUL is looked at
    [0x43, 0x3A, 0x5C, 0x76, 0x6D, 0x5C, 0x70, 0x2E, 0x76, 0x68, 0x64],   # C:\vm\p.vhd
]


@pytest.mark.parametrize("units", UTF16_CASES, ids=lambda u: units_hex(u))
def test_utf16_to_utf8(harness: Path, units: list[int]) -> None:
    assert ask(harness, [f"to8 {units_hex(units)}"]) == [expected_to8(units)]


@pytest.mark.parametrize("units", UTF16_CASES, ids=lambda u: units_hex(u))
def test_utf16le_bytes_to_utf8(harness: Path, units: list[int]) -> None:
    raw = b"".join(u.to_bytes(2, "little") for u in units)
    assert ask(harness, [f"le8 {hex_or_dash(raw)} {len(units)}"]) == [expected_to8(units)]


def test_utf16le_bytes_converts_only_the_units_given(harness: Path) -> None:
    raw = "ab\U0001F600".encode("utf-16-le")
    assert ask(harness, [f"le8 {raw.hex()} 2", f"le8 {raw.hex()} 3", f"le8 {raw.hex()} 4"]) \
        == ["ok " + b"ab".hex(), "null", "ok " + "ab\U0001F600".encode().hex()]


def test_random_utf16(harness: Path) -> None:
    generator = random.Random(1392)
    interesting = [0, 0x41, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xD800, 0xDBFF, 0xDC00,
                   0xDFFF, 0xE000, 0xFFFD, 0xFFFF]
    cases = []
    for _ in range(3000):
        length = generator.randrange(0, 12)
        cases.append([generator.choice(interesting) if generator.random() < 0.6
                      else generator.randrange(1, 0x10000) for _ in range(length)])
    answers = ask(harness, [f"to8 {units_hex(units)}" for units in cases])
    assert answers == [expected_to8(units) for units in cases]


# ---- UTF-8 -> UTF-16 -----------------------------------------------------------

UTF8_CASES = [
    b"",
    b"A",
    "é€😀".encode(),
    "C:\\VMs\\Disco ñ.vhdx".encode(),
    b"\xc0\x80",                   # overlong NUL
    b"\xc1\xbf",                   # overlong 2-byte form
    b"\xe0\x80\xaf",               # overlong 3-byte form
    b"\xf0\x80\x80\xaf",           # overlong 4-byte form
    b"\xed\xa0\x80",               # encoded high surrogate
    b"\xed\xbf\xbf",               # encoded low surrogate
    b"\xf4\x8f\xbf\xbf",           # U+10FFFF
    b"\xf4\x90\x80\x80",           # U+110000
    b"\xf5\x80\x80\x80",           # lead byte above F4
    b"\xff",
    b"\x80",                       # stray continuation byte
    b"A\xe2\x82",                  # sequence cut by the end of the string
    b"\xe2\x28\xa1",               # bad continuation byte
    b"\xef\xbf\xbf",               # U+FFFF
]


@pytest.mark.parametrize("data", UTF8_CASES, ids=lambda d: hex_or_dash(d))
@pytest.mark.parametrize("spare", [0, 1, 100])
def test_utf8_to_utf16(harness: Path, data: bytes, spare: int) -> None:
    try:
        needed = len(data.decode("utf-8").encode("utf-16-le")) // 2 + 1
    except UnicodeDecodeError:
        needed = 1
    capacity = needed + spare
    assert ask(harness, [f"to16 {hex_or_dash(data)} {capacity}"]) \
        == [expected_to16(data, capacity)]


@pytest.mark.parametrize("data", ["abc".encode(), "😀😀".encode(), "é".encode()])
def test_utf8_to_utf16_reports_the_size_needed_and_writes_nothing_beyond(
        harness: Path, data: bytes) -> None:
    needed = len(data.decode().encode("utf-16-le")) // 2 + 1
    for capacity in range(0, needed):
        answer = ask(harness, [f"to16 {data.hex()} {capacity}"])[0].split()
        assert answer == [str(needed), "-", "intact"]


def test_random_utf8(harness: Path) -> None:
    generator = random.Random(6002)
    pieces = [b"a", b"\x7f", "é".encode(), "€".encode(), "😀".encode(), b"\x80", b"\xbf",
              b"\xc0", b"\xc2", b"\xe0", b"\xed", b"\xf0", b"\xf4", b"\xf5", b"\xff",
              b"\xa0", b"\x90", b"\x8f"]
    cases = []
    for _ in range(3000):
        data = b"".join(generator.choice(pieces) for _ in range(generator.randrange(0, 8)))
        cases.append((data, generator.randrange(0, 20)))
    answers = ask(harness, [f"to16 {hex_or_dash(d)} {c}" for d, c in cases])
    assert answers == [expected_to16(d, c) for d, c in cases]


def test_length(harness: Path) -> None:
    assert ask(harness, ["len -", "len 0041", "len 00410042d83dde00"]) == ["0", "1", "4"]
