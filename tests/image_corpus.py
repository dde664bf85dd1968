"""Deterministic images that both implementations open: the same bytes on
every platform, built from the specifications by the test builders.

tests/data/engine_answers.json holds what the portable engine answers for
each of them (GetVirtualDiskInformation, the versions whose answer is a
property of the file).  On Linux, test_cross_platform.py checks that the
engine still gives those answers; in the Windows wheel job it checks that
VirtDisk.dll gives the same ones for the same bytes.

    python tests/image_corpus.py --write    # after a deliberate engine change
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import iso_builder  # noqa: E402
import vhd_builder  # noqa: E402
import vhdx_builder  # noqa: E402

ANSWERS = HERE / "data" / "engine_answers.json"
MiB = 1024 * 1024

# Fixed identifiers, so that answers can be recorded.
VHD_FIXED_ID = uuid.UUID("11111111-2222-4333-8444-555555555555")
VHD_DYNAMIC_ID = uuid.UUID("21111111-2222-4333-8444-555555555555")
VHD_CHILD_ID = uuid.UUID("31111111-2222-4333-8444-555555555555")
VHDX_DATA_WRITE = uuid.UUID("41111111-2222-4333-8444-555555555555")
VHDX_PAGE83 = uuid.UUID("51111111-2222-4333-8444-555555555555")
VHDX_4K_DATA_WRITE = uuid.UUID("61111111-2222-4333-8444-555555555555")
VHDX_CHILD_DATA_WRITE = uuid.UUID("71111111-2222-4333-8444-555555555555")
VHDX_CHILD_PAGE83 = uuid.UUID("81111111-2222-4333-8444-555555555555")
PARENT_TIMESTAMP = 0x30000000


def pattern(seed: int) -> bytes:
    return bytes((seed + i) & 0xFF for i in range(512))


def fixed_vhd() -> bytes:
    size = 4 * MiB
    data = bytearray(size)
    data[0:512] = pattern(1)
    return bytes(data) + vhd_builder.footer(vhd_builder.FIXED, size, VHD_FIXED_ID.bytes)


def dynamic_vhd() -> bytes:
    return vhd_builder.build_sparse(8 * MiB, 2 * MiB, {0: pattern(2), 9000: pattern(3)},
                                    unique_id=VHD_DYNAMIC_ID.bytes)


def differencing_vhd() -> bytes:
    return vhd_builder.build_sparse(
        8 * MiB, 2 * MiB, {1: pattern(4)}, disk_type=vhd_builder.DIFFERENCING,
        unique_id=VHD_CHILD_ID.bytes, parent_id=VHD_DYNAMIC_ID.bytes,
        parent_timestamp=PARENT_TIMESTAMP, parent_name="dynamic.vhd",
        locators=[vhd_builder.Locator(vhd_builder.W2RU, vhd_builder.utf16le(".\\dynamic.vhd"))])


def vhdx(size: int, data_write: uuid.UUID, *, logical: int = 512, kind: str = "dynamic",
         page83: uuid.UUID = VHDX_PAGE83,
         locator: vhdx_builder.Locator | None = None) -> vhdx_builder.Image:
    image = vhdx_builder.Image(size, kind=kind, block_size=MiB, logical_sector_size=logical,
                               locator=locator, data_write_guid=data_write.bytes_le,
                               page83=page83.bytes_le)
    return image


def dynamic_vhdx() -> bytes:
    image = vhdx(8 * MiB, VHDX_DATA_WRITE)
    image.write(0, pattern(5))
    return bytes(image.to_bytes())


def dynamic_4k_vhdx() -> bytes:
    image = vhdx(16 * MiB, VHDX_4K_DATA_WRITE, logical=4096)
    image.write(4096, pattern(6) * 8)
    return bytes(image.to_bytes())


def differencing_vhdx() -> bytes:
    locator = vhdx_builder.Locator("{" + str(VHDX_DATA_WRITE) + "}",
                                   relative_path=".\\dynamic.vhdx")
    image = vhdx(8 * MiB, VHDX_CHILD_DATA_WRITE, kind="differencing", page83=VHDX_CHILD_PAGE83,
                 locator=locator)
    image.write(512, pattern(7))
    return bytes(image.to_bytes())


def minimal_iso() -> bytes:
    return iso_builder.build()


# name -> builder; parents come before their children.
CORPUS: dict[str, Callable[[], bytes]] = {
    "fixed.vhd": fixed_vhd,
    "dynamic.vhd": dynamic_vhd,
    "differencing.vhd": differencing_vhd,
    "dynamic.vhdx": dynamic_vhdx,
    "dynamic-4k.vhdx": dynamic_4k_vhdx,
    "differencing.vhdx": differencing_vhdx,
    "minimal.iso": minimal_iso,
}

# GetVirtualDiskInformation versions whose answer is a property of the file,
# not of the host (physical size, PHYSICAL_DISK -- the disk holding the file
# --, is-loaded, fragmentation).
FILE_PROPERTIES = ("SIZE", "IDENTIFIER", "PARENT_LOCATION", "PARENT_IDENTIFIER",
                   "PARENT_TIMESTAMP", "VIRTUAL_STORAGE_TYPE", "PROVIDER_SUBTYPE",
                   "VHD_PHYSICAL_SECTOR_SIZE", "SMALLEST_SAFE_VIRTUAL_SIZE", "VIRTUAL_DISK_ID")


def write_corpus(directory: Path) -> dict[str, Path]:
    paths = {}
    for name, builder in CORPUS.items():
        path = directory / name
        path.write_bytes(builder())
        paths[name] = path
    return paths


def plain(value: Any) -> Any:
    """An answer as JSON: UUIDs as strings, named tuples as dicts, paths as
    file names (the directory differs per run)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "_fields"):
        fields = {key: plain(item) for key, item in zip(value._fields, value)}
        if "physical_size" in fields:
            del fields["physical_size"]      # host allocation, not the file's
        if "paths" in fields:
            fields["paths"] = [Path(path.replace("\\", "/")).name for path in fields["paths"]]
        return fields
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    return value


def answers(path: Path) -> dict[str, Any]:
    """Every FILE_PROPERTIES answer for `path`: a value, or the Win32 code."""
    import _virtdisk as vd
    from virtdisk.errors import VirtualDiskError

    storage = vd.VirtualStorageType(vd.VirtualStorageTypeDevice.UNKNOWN,
                                    vd.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
    iso = path.suffix == ".iso"
    result: dict[str, Any] = {}
    with vd.OpenVirtualDisk(storage, path, vd.VirtualDiskAccessMask.READ if iso else 0, 0,
                            1 if iso else 2, read_only=True) as handle:
        for name in FILE_PROPERTIES:
            try:
                value = vd.GetVirtualDiskInformation(handle, vd.GetVirtualDiskInfoVersion[name])
            except VirtualDiskError as error:
                result[name] = {"winerror": error.winerror}
            else:
                result[name] = plain(value)
    return result


def all_answers(directory: Path) -> dict[str, dict[str, Any]]:
    return {name: answers(path) for name, path in write_corpus(directory).items()}


def main() -> int:
    import tempfile

    if sys.argv[1:] != ["--write"]:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        recorded = all_answers(Path(scratch))
    ANSWERS.parent.mkdir(exist_ok=True)
    ANSWERS.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    print(f"wrote {ANSWERS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
