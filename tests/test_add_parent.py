"""AddVirtualDiskParent (src/vdengine/api/add_parent.c): a chain built by
hand on a child opened with OPEN_VIRTUAL_DISK_FLAG_CUSTOM_DIFF_CHAIN reads
exactly what the chain the child records reads, and each refusal has its
code.  The reference content is the engine's normal open of the same child,
which the conversion tests hold equal to qemu-img's reading of the chain.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import _virtdisk as vd
import virtdisk
from test_set_info_api import (
    ERROR_FILE_NOT_FOUND,
    ERROR_INVALID_PARAMETER,
    ERROR_VHD_CHILD_PARENT_ID_MISMATCH,
    ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED,
    ERROR_VHD_INVALID_TYPE,
    UNKNOWN,
    code_of,
)
from virtdisk import OpenVirtualDiskFlag

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32",
                       reason="the portable engine's documented answers"),
    pytest.mark.skipif(not vd.features().get("RawSCSIVirtualDisk", False)
                       or not vd.features().get("AddVirtualDiskParent", False),
                       reason="content reads need RawSCSIVirtualDisk and AddVirtualDiskParent"),
]

MiB = 1 << 20
SIZE = 8 * MiB
ERROR_VHD_INVALID_STATE = 0xC03A001C
CUSTOM = OpenVirtualDiskFlag.CUSTOM_DIFF_CHAIN
Info = vd.GetVirtualDiskInfoVersion


def pattern(seed: int, length: int) -> bytes:
    return bytes((seed * 31 + i * 7) % 251 for i in range(length))


def write(path: Path, writes: list[tuple[int, bytes]]) -> None:
    with virtdisk.open(path, read_only=False) as disk:
        for offset, data in writes:
            disk.write(offset, data)


@pytest.fixture(params=["vhd", "vhdx"])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Path]:
    """base <- middle <- leaf, each with data of its own, overlapping its
    parent's in places, plus an unrelated disk of the same size."""
    suffix = "." + request.param
    paths = {name: tmp_path / f"{name}{suffix}" for name in ("base", "middle", "leaf", "other")}
    virtdisk.create(paths["base"], SIZE).close()
    virtdisk.create(paths["other"], SIZE).close()
    write(paths["base"], [(0, pattern(1, 64 * 1024)), (3 * MiB, pattern(2, 4096))])
    virtdisk.create(paths["middle"], parent=paths["base"]).close()
    write(paths["middle"], [(32 * 1024, pattern(3, 64 * 1024)), (5 * MiB + 512, pattern(4, 512))])
    virtdisk.create(paths["leaf"], parent=paths["middle"]).close()
    write(paths["leaf"], [(48 * 1024, pattern(5, 4096)), (SIZE - 4096, pattern(6, 4096))])
    return paths


def content(disk: virtdisk.VirtualDisk) -> bytes:
    return disk.read(0, disk.virtual_size)


def test_a_chain_added_by_hand_reads_as_the_recorded_chain(chain: dict[str, Path]) -> None:
    with virtdisk.open(chain["leaf"]) as disk:
        expected = content(disk)
    with virtdisk.open(chain["leaf"], no_parents=True) as disk:
        alone = content(disk)
    assert alone != expected   # the parents' data is part of the leaf's content
    before = {name: path.read_bytes() for name, path in chain.items()}
    with virtdisk.open(chain["leaf"], flags=CUSTOM) as disk:
        location = vd.GetVirtualDiskInformation(disk._handle, Info.PARENT_LOCATION)
        assert not location.parent_resolved
        disk.add_parent(chain["middle"])
        disk.add_parent(chain["base"])
        location = vd.GetVirtualDiskInformation(disk._handle, Info.PARENT_LOCATION)
        assert location.parent_resolved and location.paths == [
            str(chain["middle"])]
        assert content(disk) == expected
    # In memory only: no file changed, and the leaf still records its parent.
    assert {name: path.read_bytes() for name, path in chain.items()} == before


def test_a_partial_chain_reads_the_parents_added_so_far(chain: dict[str, Path]) -> None:
    with virtdisk.open(chain["middle"]) as disk:
        middle_chain = content(disk)
    with virtdisk.open(chain["middle"], no_parents=True) as disk:
        middle_alone = content(disk)
    with virtdisk.open(chain["leaf"], no_parents=True) as disk:
        leaf_alone = content(disk)
    with virtdisk.open(chain["leaf"], flags=CUSTOM) as disk:
        disk.add_parent(chain["middle"])
        got = content(disk)
    # Where the leaf holds nothing, the middle disk alone shows through.
    assert got != middle_chain and got != leaf_alone
    assert got[:32 * 1024] == middle_alone[:32 * 1024]


def test_refusals(chain: dict[str, Path], tmp_path: Path) -> None:
    with virtdisk.open(chain["leaf"]) as disk:
        handle = disk._handle
        assert code_of(lambda: vd.AddVirtualDiskParent(handle, str(chain["middle"]))) \
            == ERROR_VHD_INVALID_STATE
    with vd.OpenVirtualDisk(UNKNOWN, chain["leaf"], vd.VirtualDiskAccessMask.NONE, CUSTOM, 2,
                            read_only=True) as handle:
        assert code_of(lambda: vd.AddVirtualDiskParent(handle, None)) == ERROR_INVALID_PARAMETER
        assert code_of(lambda: vd.AddVirtualDiskParent(handle, "")) == ERROR_INVALID_PARAMETER
        assert code_of(lambda: vd.AddVirtualDiskParent(handle, str(tmp_path / "missing.vhdx"))) \
            == ERROR_FILE_NOT_FOUND
        assert code_of(lambda: vd.AddVirtualDiskParent(handle, str(chain["base"]))) \
            == ERROR_VHD_CHILD_PARENT_ID_MISMATCH
        assert code_of(lambda: vd.AddVirtualDiskParent(handle, str(chain["other"]))) \
            == ERROR_VHD_CHILD_PARENT_ID_MISMATCH
        assert code_of(lambda: vd.AddVirtualDiskParent(handle, str(chain["leaf"]))) \
            == ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED
        assert code_of(lambda: vd.AddVirtualDiskParent(handle, str(chain["middle"]))) == 0
        assert code_of(lambda: vd.AddVirtualDiskParent(handle, str(chain["middle"]))) \
            == ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED
        assert code_of(lambda: vd.AddVirtualDiskParent(handle, str(chain["base"]))) == 0
        # The base is no differencing disk: the chain is complete.
        assert code_of(lambda: vd.AddVirtualDiskParent(handle, str(chain["other"]))) \
            == ERROR_VHD_INVALID_TYPE


def test_no_parent_is_added_under_an_attachment(chain: dict[str, Path]) -> None:
    with virtdisk.open(chain["leaf"], flags=CUSTOM) as disk:
        disk.read(0, 512)   # attaches for SCSI commands
        with pytest.raises(virtdisk.InvalidStateError):
            disk.add_parent(chain["middle"])


def test_the_facade_checks_its_argument(chain: dict[str, Path]) -> None:
    with virtdisk.open(chain["leaf"], flags=CUSTOM) as disk:
        with pytest.raises(TypeError, match="path must be str or os.PathLike"):
            disk.add_parent(42)  # type: ignore[arg-type]
    with pytest.raises(virtdisk.InvalidHandleError):
        disk.add_parent(chain["middle"])
