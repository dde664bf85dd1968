"""The stubs type each flags parameter as its own IntFlag class (or Literal[0]).

mypy, run on small snippets against stubs/, must report one API's flags
passed where another's belong and accept the right class, a combination of
it, and a literal 0; at run time the extension still takes plain ints.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import _virtdisk as vd
from mypy_snippet import run_mypy

PRELUDE = """\
import _virtdisk as vd

def use(handle: vd.VirtualDiskHandle) -> None:
"""


def mypy(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    return run_mypy(tmp_path, PRELUDE + "".join(f"    {line}\n" for line in body.splitlines()))


def test_open_flag_where_an_attach_flag_belongs_is_reported(tmp_path: Path) -> None:
    result = mypy(tmp_path, "vd.AttachVirtualDisk(handle, vd.OpenVirtualDiskFlag.NO_PARENTS)")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "snippet.py:4: error: Argument 2 to \"AttachVirtualDisk\"" in result.stdout
    assert "OpenVirtualDiskFlag.NO_PARENTS" in result.stdout
    assert "AttachVirtualDiskFlag | Literal[0]" in result.stdout
    assert "Found 1 error" in result.stdout


@pytest.mark.parametrize("body", [
    "vd.AttachVirtualDisk(handle, vd.AttachVirtualDiskFlag.READ_ONLY)",
    "vd.AttachVirtualDisk(handle, vd.AttachVirtualDiskFlag.READ_ONLY"
    " | vd.AttachVirtualDiskFlag.NO_DRIVE_LETTER)",
    "vd.AttachVirtualDisk(handle, 0)",
    "vd.DetachVirtualDisk(handle)",
    "vd.CompactVirtualDisk(handle, vd.CompactVirtualDiskFlag.NONE)",
])
def test_matching_flags_and_zero_are_accepted(tmp_path: Path, body: str) -> None:
    result = mypy(tmp_path, body)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_plain_nonzero_int_is_reported(tmp_path: Path) -> None:
    result = mypy(tmp_path, "vd.DetachVirtualDisk(handle, 1)")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DetachVirtualDiskFlag | Literal[0]" in result.stdout


def test_plain_ints_still_work_at_run_time(tmp_path: Path) -> None:
    storage = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.VHDX,
                                    vd.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
    path = tmp_path / "plain.vhdx"
    flags: int = int(vd.CreateVirtualDiskFlag.NONE)
    vd.CreateVirtualDisk(storage, path, 0, flags, 2,  # type: ignore[arg-type]
                         maximum_size=1 << 20).close()
    open_flags: int = int(vd.OpenVirtualDiskFlag.NO_PARENTS)
    with vd.OpenVirtualDisk(storage, path, 0, open_flags, 2,  # type: ignore[arg-type]
                            read_only=True) as handle:
        assert vd.GetVirtualDiskInformation(
            handle, vd.GetVirtualDiskInfoVersion.SIZE).virtual_size == 1 << 20
