"""src/include/virtdisk_api.h under MSVC's record-layout rules.

The Windows wheels are compiled by MSVC; clang's ``*-pc-windows-msvc``
targets lay records out by MSVC's rules and its ``*-w64-windows-gnu``
targets by MinGW's GCC's.  These tests compile the header (its own typedef
path, ``-U_WIN32 -ffreestanding``) under all four and check

* that the header and its layout pins compile under the MSVC targets, and
  that this check fails for a pin that only GCC's rules satisfy,
* that no source in src/ takes the sizeof of a record whose size differs
  between the two rule sets.

scripts/check-windows runs the same header check (its msvc step).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from windows_scripts import ROOT, require

HEADER = ROOT / "src" / "include" / "virtdisk_api.h"
clangwin, vdheader = require("clangwin", "vdheader")

try:
    clangwin.clang()
except clangwin.Unavailable as reason:
    pytest.skip(str(reason), allow_module_level=True)


def _header_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = HEADER.read_text()
    assert text.count(old) == 1, old
    copy = tmp_path / "virtdisk_api.h"
    copy.write_text(text.replace(old, new))
    return copy


def _failures(header: Path) -> list[str]:
    return [check.message for check in clangwin.header_checks(header) if not check.ok]


def test_the_header_and_its_pins_compile_under_msvc_rules() -> None:
    checks = clangwin.header_checks()
    for check in checks:
        print(("ok   " if check.ok else "FAIL ") + check.message)
    assert len(checks) == 2 * (len(clangwin.LANGUAGES) + 1)
    assert all(check.ok for check in checks)
    assert clangwin.pin_count(HEADER) > 60


def test_a_pin_only_gcc_satisfies_fails_under_msvc(tmp_path: Path) -> None:
    """sizeof(STORAGE_DEPENDENCY_INFO) is 8 under GCC's rules, 16 (x64) and
    12 (x86) under MSVC's: pinning it fails every MSVC compile."""
    anchor = "VIRTDISK_API_OFFSET(STORAGE_DEPENDENCY_INFO, entries1, Version1Entries, 8, 8);"
    header = _header_copy(tmp_path, anchor,
                          "VIRTDISK_API_SIZE(STORAGE_DEPENDENCY_INFO, 8, 8);\n" + anchor)
    failures = _failures(header)
    assert len(failures) == 2 * len(clangwin.LANGUAGES), failures
    assert all("size_STORAGE_DEPENDENCY_INFO" in failure for failure in failures), failures
    assert any(failure.startswith("i686-pc-windows-msvc C99") for failure in failures)


def test_pins_switched_off_on_x86_are_noticed(tmp_path: Path) -> None:
    """Without _WIN32 the i686 pins hold only because _MSC_VER switches them
    on; a pin block that skips them is reported, not silently passed."""
    header = _header_copy(tmp_path, "defined(_MSC_VER) || defined(__MINGW32__)",
                          "defined(__MINGW32__)")
    failures = _failures(header)
    assert failures == [f"i686-pc-windows-msvc: 0 of the header's "
                        f"{clangwin.pin_count(HEADER)} layout pins are in force"]


def _record_sizes() -> dict[str, dict[str, int]]:
    header = vdheader.read()
    names = sorted(header.structs)
    source = '#include <stddef.h>\n#include "virtdisk_api.h"\n' + "".join(
        f"const unsigned long long vd_{name} = sizeof({name});\n" for name in names)
    sizes: dict[str, dict[str, int]] = {name: {} for name in names}
    for target in clangwin.TARGETS:
        for name, value in clangwin.measure(source, target).items():
            sizes[name][target] = value
    return sizes


def _differing_records() -> dict[str, dict[str, int]]:
    return {name: by_target for name, by_target in _record_sizes().items()
            if by_target["x64-msvc"] != by_target["x64-gnu"]
            or by_target["x86-msvc"] != by_target["x86-gnu"]}


def _sizeof_pattern(names: list[str]) -> re.Pattern[str]:
    return re.compile(r"\bsizeof\s*\(?\s*(?:struct\s+_?)?(" + "|".join(names) + r")\b")


def test_only_storage_dependency_info_differs_between_rule_sets() -> None:
    differing = _differing_records()
    print(differing)
    assert differing == {"STORAGE_DEPENDENCY_INFO": {
        "x64-msvc": 16, "x86-msvc": 12, "x64-gnu": 8, "x86-gnu": 8}}


def test_no_source_takes_the_size_of_a_record_whose_size_differs() -> None:
    """A buffer for such a record is offsetof(entries) plus the entries."""
    names = sorted(_differing_records())
    assert names
    pattern = _sizeof_pattern(names)
    offenders = []
    for path in sorted((ROOT / "src").rglob("*")):
        if path.suffix not in (".c", ".h", ".pyx", ".pxd", ".pxi") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith(("/*", "*", "#", "//")):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_scan_finds_a_sizeof_of_such_a_record() -> None:
    names = sorted(_differing_records())
    pattern = _sizeof_pattern(names)
    assert pattern.search("size = sizeof(STORAGE_DEPENDENCY_INFO) + n * entry;")
    assert pattern.search("cdef ULONG size = sizeof (struct _STORAGE_DEPENDENCY_INFO)")
    assert not pattern.search("sizeof(STORAGE_DEPENDENCY_INFO_TYPE_2)")
