"""The engine's API layer (src/vdengine/open.c, info.c, handle.c,
storage_type.c, not_implemented.c) through tests/c/api_main.c, a program
that uses only the public C API, as a caller of VirtDisk.dll would.

Expected codes come from the OpenVirtualDisk contract (seeds/000, REFERENCE
section 1), the Microsoft pages of each function and winerror.h; image facts
come from qemu-img, vhdiinfo and xorriso, or from images built from the
format specifications (tests/vhd_builder.py, tests/vhdx_builder.py) that
vhdiinfo confirms.

Runs without the Python extension: the program is compiled here, once
plainly (with AddressSanitizer/UBSan where available) and once under
ThreadSanitizer for the multi-threaded stress.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest

import vhd_builder as vb
import vhdx_builder as xb
from c_harness import ENGINE, ROOT, compile_harness, engine_source

INCLUDE = ROOT / "src" / "include"
API_SOURCES = sorted(str(path) for path in ENGINE.rglob("*.c"))
OWN_SOURCES = ["handle.c", "open.c", "info.c", "not_implemented.c", "storage_type.c", "create.c",
               "vhd_create.c"]

# winerror.h
ERROR_SUCCESS = 0
ERROR_PATH_NOT_FOUND = 3
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_HANDLE = 6
ERROR_SHARING_VIOLATION = 32
ERROR_NOT_SUPPORTED = 50
ERROR_INVALID_PARAMETER = 87
ERROR_NOT_FOUND = 1168
ERROR_CALL_NOT_IMPLEMENTED = 120
ERROR_NOT_READY = 21
ERROR_INSUFFICIENT_BUFFER = 122
ERROR_INVALID_NAME = 123
ERROR_FILE_CORRUPT = 1392
ERROR_VHD_DRIVE_FOOTER_MISSING = 0xC03A0001
ERROR_VHD_PARENT_VHD_NOT_FOUND = 0xC03A000D
ERROR_VIRTDISK_PROVIDER_NOT_FOUND = 0xC03A0014
ERROR_VHD_INVALID_TYPE = 0xC03A001B
ERROR_VHD_INVALID_STATE = 0xC03A001C
ERROR_VHD_CHANGE_TRACKING_DISABLED = 0xC03A002A

# virtdisk.h
VIRTUAL_DISK_ACCESS_ATTACH_RO = 0x00010000
VIRTUAL_DISK_ACCESS_GET_INFO = 0x00080000
VIRTUAL_DISK_ACCESS_ALL = 0x003F0000
OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS = 0x1
OPEN_VIRTUAL_DISK_FLAG_IGNORE_RELATIVE_PARENT_LOCATOR = 0x80
DEVICE_ISO, DEVICE_VHD, DEVICE_VHDX = 1, 2, 3
VENDOR_MICROSOFT = "ec984aec-a0f9-47e9-901f-71415a66345b"
GET_VIRTUAL_DISK_INFO_SIZE = 32          # sizeof(GET_VIRTUAL_DISK_INFO)
PARENT_LOCATION_BUFFER_OFFSET = 12       # offsetof(..., ParentLocation.ParentLocationBuffer)
CHANGE_TRACKING_ID_OFFSET = 16           # offsetof(..., ChangeTrackingState.MostRecentId)
SUBTYPE = {"Fixed": 2, "Dynamic": 3, "Differential": 4}

MiB = 1 << 20

needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed")
needs_vhdiinfo = pytest.mark.skipif(shutil.which("vhdiinfo") is None,
                                    reason="vhdiinfo not installed")
needs_xorriso = pytest.mark.skipif(shutil.which("xorriso") is None, reason="xorriso not installed")


# --------------------------------------------------------------------------- tools

def run(*args: str | Path | int, check: bool = True,
        **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check,
                          **kwargs)


def compiler() -> str:
    found = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if found is None:
        pytest.skip("no C compiler")
    return found


class ApiProgram:
    """api_main, called with its command line, returning its JSON answer."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def __call__(self, *args: str | Path | int) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(run(self.binary, *args).stdout)
        return answer


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> ApiProgram:
    """api_main, as a function returning its JSON answer."""
    binary = compile_harness(tmp_path_factory.mktemp("api_harness"), "api_main", API_SOURCES,
                             defines=[f"-I{INCLUDE}", "-pthread"], sanitize=True)
    return ApiProgram(binary)


def vhdiinfo(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in run("vhdiinfo", path).stdout.splitlines():
        match = re.match(r"\s+([^:]+?)\s*:\s*(.*)$", line)
        if match:
            fields[match.group(1)] = match.group(2).strip()
    return fields


def media_size(fields: dict[str, str]) -> int:
    match = re.search(r"\((\d+) bytes\)", fields["Media size"])
    assert match is not None, fields["Media size"]
    return int(match.group(1))


def qemu_image(directory: Path, name: str, fmt: str, size: str, *options: str) -> Path:
    path = directory / name
    command = ["qemu-img", "create", "-q", "-f", fmt]
    if options:
        command += ["-o", ",".join(options)]
    run(*command, path, size)
    return path


@pytest.fixture
def vhdx(tmp_path: Path) -> Path:
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img not installed")
    return qemu_image(tmp_path, "disk.vhdx", "vhdx", "64M", "subformat=dynamic")


@pytest.fixture
def iso(tmp_path: Path) -> Path:
    if shutil.which("xorriso") is None:
        pytest.skip("xorriso not installed")
    content = tmp_path / "content"
    content.mkdir()
    (content / "readme.txt").write_text("virtdisk\n")
    image = tmp_path / "disk.iso"
    run("xorriso", "-as", "mkisofs", "-quiet", "-o", image, content)
    return image


# --------------------------------------------------------------------------- build

@pytest.mark.parametrize("cc", ["gcc", "clang"])
@pytest.mark.parametrize("gnu_source", [False, True])
def test_api_layer_compiles_warning_free(tmp_path: Path, cc: str, gnu_source: bool) -> None:
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    defines = ["-D_GNU_SOURCE"] if gnu_source else []
    for source in OWN_SOURCES:
        run(cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", *defines, f"-I{INCLUDE}",
            f"-I{ENGINE}", "-c", engine_source(source), "-o", tmp_path / (source + ".o"))


# --------------------------------------------------------------------------- OpenVirtualDisk

def test_open_argument_rules(api: ApiProgram, vhdx: Path) -> None:
    """The seed's ERROR_INVALID_PARAMETER list, the V2/V3 access mask rule,
    and the storage type rules; a failed open leaves *Handle alone."""
    got = api("--arg-cases", vhdx)
    expected = {
        # Valid requests open (and the program closes them again).
        "good_null_parameters": ERROR_SUCCESS,
        "good_v1": ERROR_SUCCESS,
        "good_v2": ERROR_SUCCESS,
        "good_v3": ERROR_SUCCESS,
        "good_mask_none_v1": ERROR_SUCCESS,
        "good_rw_depth_0": ERROR_SUCCESS,
        "good_all_accepted_flags": ERROR_SUCCESS,
        "device_unknown_vendor_microsoft": ERROR_SUCCESS,
        # Seed: NULL type, NULL path; and the output pointer.
        "type_null": ERROR_INVALID_PARAMETER,
        "path_null": ERROR_INVALID_PARAMETER,
        "handle_null": ERROR_INVALID_PARAMETER,
        # CreateFile("") fails with ERROR_PATH_NOT_FOUND; a name UTF-8 cannot
        # spell names no host file: ERROR_INVALID_NAME.
        "path_empty": ERROR_PATH_NOT_FOUND,
        "path_unpaired_surrogate": ERROR_INVALID_NAME,
        # Seed: mask & ~VIRTUAL_DISK_ACCESS_ALL.
        "mask_above_all": ERROR_INVALID_PARAMETER,
        "mask_below_all": ERROR_INVALID_PARAMETER,
        # Seed: unknown flags; BOOT_DRIVE is kernel-mode only (SDK header).
        "flags_boot_drive": ERROR_INVALID_PARAMETER,
        "flags_unknown_bit": ERROR_INVALID_PARAMETER,
        "flags_high_bit": ERROR_INVALID_PARAMETER,
        # Seed: Parameters->Version not a known version.
        "version_0": ERROR_INVALID_PARAMETER,
        "version_4": ERROR_INVALID_PARAMETER,
        # V2/V3 need VIRTUAL_DISK_ACCESS_NONE.
        "v2_mask_read": ERROR_INVALID_PARAMETER,
        "v2_mask_get_info": ERROR_INVALID_PARAMETER,
        "v3_mask_all": ERROR_INVALID_PARAMETER,
        "v3_snapshot_id": ERROR_INVALID_PARAMETER,
        # No provider for another vendor, a VHD Set, an unknown device, or a
        # specific device without the Microsoft vendor.
        "vendor_other": ERROR_VIRTDISK_PROVIDER_NOT_FOUND,
        "device_vhdset": ERROR_VIRTDISK_PROVIDER_NOT_FOUND,
        "device_99": ERROR_VIRTDISK_PROVIDER_NOT_FOUND,
        "device_vhdx_vendor_unknown": ERROR_VIRTDISK_PROVIDER_NOT_FOUND,
    }
    assert got == expected


def test_open_leaves_no_handle_behind(api: ApiProgram, vhdx: Path) -> None:
    got = api(vhdx)
    assert got["open"] == ERROR_SUCCESS and got["handles"] == 1
    assert got["close"] == ERROR_SUCCESS and got["handles_after"] == 0


def test_missing_file(api: ApiProgram, tmp_path: Path) -> None:
    got = api(tmp_path / "absent.vhdx")
    assert got["open"] == 2   # ERROR_FILE_NOT_FOUND
    assert got["handles_after"] == 0


@pytest.mark.parametrize("name", ["disk.vhdx", "DISK.VHDX", "disk.AvHdX", "disk.vhd",
                                  "disk.img", "disk"])
def test_unknown_type_opens_by_extension_or_signature(api: ApiProgram, vhdx: Path,
                                                      name: str) -> None:
    """A VHDX under any name opens as a VHDX when the type is unknown."""
    target = vhdx.with_name(name) if name != "disk.vhdx" else vhdx
    if target != vhdx:
        vhdx.rename(target)
    got = api(target)
    assert got["open"] == ERROR_SUCCESS
    assert got["info"]["VIRTUAL_STORAGE_TYPE"]["DeviceId"] == DEVICE_VHDX


def test_unknown_type_without_known_extension_or_signature(api: ApiProgram, tmp_path: Path) -> None:
    noise = tmp_path / "noise.img"
    noise.write_bytes(bytes(MiB))
    assert api(noise)["open"] == ERROR_VIRTDISK_PROVIDER_NOT_FOUND
    vhds = tmp_path / "set.vhds"
    vhds.write_bytes(bytes(MiB))
    assert api(vhds)["open"] == ERROR_VIRTDISK_PROVIDER_NOT_FOUND


def test_extension_parser_verdict_stands_without_other_signature(api: ApiProgram,
                                                                 tmp_path: Path) -> None:
    """REFERENCE 3: no "conectix" at the end nor at 0 -> footer missing."""
    fake = tmp_path / "fake.vhd"
    fake.write_bytes(bytes(MiB))
    assert api(fake)["open"] == ERROR_VHD_DRIVE_FOOTER_MISSING


def test_explicit_device_is_judged_by_its_provider(api: ApiProgram, vhdx: Path) -> None:
    microsoft = ["--vendor", "microsoft"]
    assert api("--device", DEVICE_VHDX, *microsoft, vhdx)["open"] == ERROR_SUCCESS
    # The VHD provider finds no footer cookie in a VHDX.
    assert api("--device", DEVICE_VHD, *microsoft, vhdx)["open"] == ERROR_VHD_DRIVE_FOOTER_MISSING
    # OpenVirtualDisk: an ISO "whose volume structure descriptor has no known
    # identifier" -> ERROR_FILE_CORRUPT.
    assert api("--device", DEVICE_ISO, *microsoft, vhdx)["open"] == ERROR_FILE_CORRUPT


@contextlib.contextmanager
def holding(api: ApiProgram, *args: str | Path) -> Iterator[int]:
    """Another process holding an open handle; yields its open code."""
    with subprocess.Popen([str(api.binary), "--hold", *map(str, args)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdin is not None and holder.stdout is not None
        try:
            opened: int = json.loads(holder.stdout.readline())["open"]
            yield opened
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)


def test_writable_opens_exclude_each_other_across_processes(api: ApiProgram, vhdx: Path) -> None:
    """A writable open (V1 with ATTACH_RW/METAOPS/CREATE, or V2 without
    ReadOnly/GetInfoOnly) holds the file exclusively."""
    with holding(api, "--mask", hex(VIRTUAL_DISK_ACCESS_ALL), vhdx) as opened:
        assert opened == ERROR_SUCCESS
        assert api("--mask", hex(VIRTUAL_DISK_ACCESS_ALL), vhdx)["open"] == ERROR_SHARING_VIOLATION
        assert api("--params", "2", "--mask", "0", vhdx)["open"] == ERROR_SHARING_VIOLATION
        assert api(vhdx)["open"] == ERROR_SHARING_VIOLATION
    assert api("--mask", hex(VIRTUAL_DISK_ACCESS_ALL), vhdx)["open"] == ERROR_SUCCESS


def test_read_only_opens_share(api: ApiProgram, vhdx: Path) -> None:
    with holding(api, vhdx) as opened:
        assert opened == ERROR_SUCCESS
        assert api(vhdx)["open"] == ERROR_SUCCESS
        assert api("--params", "2", "--mask", "0", "--read-only", vhdx)["open"] == ERROR_SUCCESS
        # RWDepth 0: "do not open for read/write at any depth".
        assert api("--params", "1", "--rw-depth", "0", "--mask", hex(VIRTUAL_DISK_ACCESS_ALL),
                   vhdx)["open"] == ERROR_SUCCESS


# --------------------------------------------------------------------------- ISO

def test_iso_answers(api: ApiProgram, iso: Path) -> None:
    got = api(iso)
    assert got["open"] == ERROR_SUCCESS
    info = got["info"]
    size = iso.stat().st_size
    assert info["SIZE"] == {"status": 0, "SizeUsed": 32, "VirtualSize": size,
                            "PhysicalSize": size, "BlockSize": 0, "SectorSize": 2048}
    assert info["VIRTUAL_STORAGE_TYPE"]["DeviceId"] == DEVICE_ISO
    assert info["VIRTUAL_STORAGE_TYPE"]["VendorId"] == VENDOR_MICROSOFT
    assert info["IS_LOADED"]["IsLoaded"] == 0
    assert info["PHYSICAL_DISK"]["status"] == ERROR_SUCCESS
    for version in ("IDENTIFIER", "PARENT_LOCATION", "PARENT_IDENTIFIER", "PARENT_TIMESTAMP",
                    "PROVIDER_SUBTYPE", "IS_4K_ALIGNED", "VHD_PHYSICAL_SECTOR_SIZE",
                    "SMALLEST_SAFE_VIRTUAL_SIZE", "FRAGMENTATION", "VIRTUAL_DISK_ID",
                    "CHANGE_TRACKING_STATE"):
        assert info[version] == {"status": ERROR_VHD_INVALID_TYPE}, version


@pytest.mark.parametrize("options", [
    ["--mask", hex(VIRTUAL_DISK_ACCESS_ALL)],          # ALL: "not supported for ISO"
    ["--mask", "0x20000"],                              # ATTACH_RW
    ["--mask", "0x200000"],                             # METAOPS
    ["--params", "2", "--mask", "0", "--read-only"],    # ISO opens "using the V1 API"
    ["--params", "3", "--mask", "0", "--info-only"],
    ["--flags", hex(OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS)],
    ["--flags", "0x2"],                                 # BLANK_FILE
])
def test_iso_refuses_what_windows_does_not_support(api: ApiProgram, iso: Path,
                                                   options: list[str]) -> None:
    assert api(*options, iso)["open"] == ERROR_NOT_SUPPORTED
    # Also when the type is given rather than found from the extension.
    assert api(*options, "--device", DEVICE_ISO, "--vendor", "microsoft", iso)["open"] \
        == ERROR_NOT_SUPPORTED


def test_iso_found_by_signature_gets_the_same_rules(api: ApiProgram, iso: Path) -> None:
    renamed = iso.with_name("disk.bin")
    iso.rename(renamed)
    assert api(renamed)["info"]["VIRTUAL_STORAGE_TYPE"]["DeviceId"] == DEVICE_ISO
    assert api("--mask", hex(VIRTUAL_DISK_ACCESS_ALL), renamed)["open"] == ERROR_NOT_SUPPORTED


@pytest.mark.parametrize("maker", ["genisoimage", "mkudffs"])
def test_udf_images_open(api: ApiProgram, tmp_path: Path, maker: str) -> None:
    if shutil.which(maker) is None:
        pytest.skip(f"{maker} not installed")
    image = tmp_path / "udf.iso"
    if maker == "genisoimage":
        content = tmp_path / "content"
        content.mkdir()
        (content / "a.txt").write_text("a")
        run("genisoimage", "-quiet", "-udf", "-o", image, content)
    else:
        run("mkudffs", "--blocksize=2048", "--media-type=hd", image, "2048")
    got = api(image)
    assert got["open"] == ERROR_SUCCESS
    assert got["info"]["SIZE"]["VirtualSize"] == image.stat().st_size


# --------------------------------------------------------------------------- info vs tools

@needs_qemu
@needs_vhdiinfo
@pytest.mark.parametrize("fmt, subformat, options", [
    ("vhdx", "dynamic", []),
    ("vhdx", "dynamic", ["block_size=1M"]),
    ("vhdx", "fixed", []),
    ("vpc", "dynamic", []),
    ("vpc", "fixed", ["force_size=on"]),
])
def test_info_matches_qemu_and_vhdiinfo(api: ApiProgram, tmp_path: Path, fmt: str, subformat: str,
                                        options: list[str]) -> None:
    extension = "vhdx" if fmt == "vhdx" else "vhd"
    image = qemu_image(tmp_path, f"disk.{extension}", fmt, "40M", f"subformat={subformat}",
                       *options)
    libvhdi = vhdiinfo(image)
    qemu = json.loads(run("qemu-img", "info", "--output=json", "-f", fmt, image).stdout)
    got = api(image)
    assert got["open"] == ERROR_SUCCESS
    info = got["info"]

    size = info["SIZE"]
    assert size["VirtualSize"] == media_size(libvhdi)
    assert size["PhysicalSize"] == image.stat().st_size
    assert size["SectorSize"] == int(libvhdi["Bytes per sector"].split()[0])
    if subformat == "fixed":
        assert size["BlockSize"] == 0
    else:
        assert size["BlockSize"] == qemu["cluster-size"]
    assert info["IDENTIFIER"]["Guid"] == libvhdi["Identifier"]
    assert info["PROVIDER_SUBTYPE"]["ProviderSubtype"] == SUBTYPE[libvhdi["Disk type"]]
    device = DEVICE_VHDX if fmt == "vhdx" else DEVICE_VHD
    assert info["VIRTUAL_STORAGE_TYPE"] == {"status": 0, "SizeUsed": 32, "DeviceId": device,
                                            "VendorId": VENDOR_MICROSOFT}
    assert info["IS_LOADED"]["IsLoaded"] == 0
    assert info["CHANGE_TRACKING_STATE"] == {
        "status": 0, "SizeUsed": CHANGE_TRACKING_ID_OFFSET + 2, "Enabled": 0,
        "NewerChanges": 0, "MostRecentId": ""}
    for version in ("PARENT_LOCATION", "PARENT_IDENTIFIER", "PARENT_TIMESTAMP"):
        assert info[version] == {"status": ERROR_VHD_INVALID_TYPE}, version
    physical = info["PHYSICAL_DISK"]
    assert physical["LogicalSectorSize"] in (512, 4096)
    assert physical["PhysicalSectorSize"] >= physical["LogicalSectorSize"]
    if fmt == "vpc":
        # A VHD has one identity: VIRTUAL_DISK_ID is the footer's UniqueId.
        assert info["VIRTUAL_DISK_ID"]["Guid"] == libvhdi["Identifier"]


def test_vhdx_identifiers_are_data_write_guid_and_page83(api: ApiProgram, tmp_path: Path) -> None:
    page83 = uuid.uuid4().bytes_le
    data_write = uuid.uuid4().bytes_le
    image = tmp_path / "built.vhdx"
    xb.Image(16 * MiB, data_write_guid=data_write, page83=page83,
             physical_sector_size=4096).save(image)
    info = api(image)["info"]
    assert info["IDENTIFIER"]["Guid"] == str(uuid.UUID(bytes_le=data_write))
    assert info["VIRTUAL_DISK_ID"]["Guid"] == str(uuid.UUID(bytes_le=page83))
    assert info["VHD_PHYSICAL_SECTOR_SIZE"]["VhdPhysicalSectorSize"] == 4096


def test_access_mask_without_get_info_cannot_query(api: ApiProgram, vhdx: Path) -> None:
    """GetVirtualDiskInformation needs a handle opened with
    VIRTUAL_DISK_ACCESS_GET_INFO (its Remarks); V2 handles carry no mask."""
    denied = api("--mask", hex(VIRTUAL_DISK_ACCESS_ATTACH_RO), vhdx)
    assert denied["open"] == ERROR_SUCCESS
    assert {v["status"] for v in denied["info"].values()} == {ERROR_ACCESS_DENIED}
    allowed = api("--mask", hex(VIRTUAL_DISK_ACCESS_GET_INFO), vhdx)
    assert allowed["info"]["SIZE"]["status"] == ERROR_SUCCESS
    info_only = api("--params", "2", "--mask", "0", "--info-only", vhdx)
    assert info_only["info"]["SIZE"]["status"] == ERROR_SUCCESS


# --------------------------------------------------------------------------- differencing

class VhdxChain(TypedDict):
    parent: Path
    child: Path
    locator: xb.Locator


@pytest.fixture
def vhdx_chain(tmp_path: Path) -> VhdxChain:
    """A qemu-made dynamic VHDX parent and a differencing child built from
    [MS-VHDX] whose parent_linkage is the parent's DataWriteGuid."""
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img not installed")
    directory = tmp_path / "chain"
    directory.mkdir()
    parent = qemu_image(directory, "parent.vhdx", "vhdx", "32M", "subformat=dynamic")
    linkage = xb.guid_text(xb.data_write_guid(parent))
    locator = xb.Locator(
        parent_linkage=linkage, relative_path=".\\parent.vhdx",
        volume_path="\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\vd\\parent.vhdx",
        absolute_win32_path="C:\\vd\\parent.vhdx")
    child = directory / "child.vhdx"
    xb.Image(32 * MiB, kind="differencing", block_size=2 * MiB, locator=locator).save(child)
    return {"parent": parent, "child": child, "locator": locator}


@needs_vhdiinfo
def test_vhdx_differencing_parent_answers(api: ApiProgram, vhdx_chain: VhdxChain) -> None:
    parent, child = vhdx_chain["parent"], vhdx_chain["child"]
    libvhdi = vhdiinfo(child)
    assert libvhdi["Disk type"] == "Differential"
    got = api(child)
    assert got["open"] == ERROR_SUCCESS
    info = got["info"]
    assert info["PROVIDER_SUBTYPE"]["ProviderSubtype"] == SUBTYPE["Differential"]
    assert info["PARENT_IDENTIFIER"]["Guid"] == libvhdi["Parent identifier"]
    assert info["PARENT_IDENTIFIER"]["Guid"] == api(parent)["info"]["IDENTIFIER"]["Guid"]
    location = info["PARENT_LOCATION"]
    assert location["ParentResolved"] is True
    assert location["ParentLocationBuffer"] == [str(parent)]
    # One NUL-terminated path after the BOOL.
    assert location["SizeUsed"] == PARENT_LOCATION_BUFFER_OFFSET + 2 * (len(str(parent)) + 1)
    assert location["asked"] == location["SizeUsed"]
    # VHDX stores no parent time stamp.
    assert info["PARENT_TIMESTAMP"] == {"status": ERROR_VHD_INVALID_TYPE}
    assert got["handles_after"] == 0


def test_vhdx_differencing_without_parents_lists_stored_locations(api: ApiProgram,
                                                                  vhdx_chain: VhdxChain) -> None:
    locator = vhdx_chain["locator"]
    got = api("--flags", hex(OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS), vhdx_chain["child"])
    location = got["info"]["PARENT_LOCATION"]
    stored = [locator.relative_path, locator.volume_path, locator.absolute_win32_path]
    paths = [path for path in stored if path is not None]
    assert paths == stored
    assert location["ParentResolved"] is False
    assert location["ParentLocationBuffer"] == stored
    # MULTI_SZ: every string NUL-terminated, one more NUL at the end.
    units = sum(len(path) + 1 for path in paths) + 1
    assert location["SizeUsed"] == PARENT_LOCATION_BUFFER_OFFSET + 2 * units


def test_missing_parent(api: ApiProgram, vhdx_chain: VhdxChain) -> None:
    vhdx_chain["parent"].unlink()
    assert api(vhdx_chain["child"])["open"] == ERROR_VHD_PARENT_VHD_NOT_FOUND
    alone = api("--flags", hex(OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS), vhdx_chain["child"])
    assert alone["open"] == ERROR_SUCCESS
    assert alone["info"]["PARENT_LOCATION"]["ParentResolved"] is False


def test_ignore_relative_parent_locator(api: ApiProgram, tmp_path: Path,
                                        vhdx_chain: VhdxChain) -> None:
    """Only the relative locator can name the parent here (the others are
    Windows paths): without it the parent is not found."""
    child = vhdx_chain["child"]
    assert api(child)["open"] == ERROR_SUCCESS
    flag = hex(OPEN_VIRTUAL_DISK_FLAG_IGNORE_RELATIVE_PARENT_LOCATOR)
    assert api("--flags", flag, child)["open"] == ERROR_VHD_PARENT_VHD_NOT_FOUND


@needs_qemu
@needs_vhdiinfo
def test_vhd_differencing_parent_answers(api: ApiProgram, tmp_path: Path) -> None:
    parent = qemu_image(tmp_path, "parent.vhd", "vpc", "6M", "subformat=dynamic",
                        "force_size=on")
    with parent.open("rb") as image:
        image.seek(-512, 2)
        parent_id = image.read(512)[68:84]
    child = tmp_path / "child.vhd"
    timestamp = 0x2A2B2C2D
    child.write_bytes(vb.build_sparse(
        6 * MiB, 512 * 1024, {}, disk_type=vb.DIFFERENCING, parent_id=parent_id,
        parent_timestamp=timestamp, parent_name="parent.vhd",
        locators=[vb.Locator(vb.W2KU, vb.utf16le("C:\\vd\\parent.vhd")),
                  vb.Locator(vb.W2RU, vb.utf16le(".\\parent.vhd"))]))
    libvhdi = vhdiinfo(child)
    info = api(child)["info"]
    assert info["PARENT_IDENTIFIER"]["Guid"] == libvhdi["Parent identifier"]
    assert info["PARENT_IDENTIFIER"]["Guid"] == api(parent)["info"]["IDENTIFIER"]["Guid"]
    assert info["PARENT_TIMESTAMP"]["ParentTimestamp"] == timestamp
    assert info["PARENT_LOCATION"]["ParentLocationBuffer"] == [str(parent)]
    alone = api("--flags", hex(OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS), child)["info"]
    assert alone["PARENT_LOCATION"]["ParentLocationBuffer"] == [".\\parent.vhd",
                                                                "C:\\vd\\parent.vhd"]
    assert alone["PARENT_TIMESTAMP"]["ParentTimestamp"] == timestamp


# --------------------------------------------------------------------------- buffers, handles

def test_buffer_protocol(api: ApiProgram, vhdx: Path) -> None:
    got = api("--buffer-cases", vhdx)
    fixed = GET_VIRTUAL_DISK_INFO_SIZE
    tracking = CHANGE_TRACKING_ID_OFFSET + 2
    untouched = 0xFFFFFFFF
    assert got == {
        "size_0": {"status": ERROR_INSUFFICIENT_BUFFER, "size": fixed, "used": untouched},
        "size_2": {"status": ERROR_INSUFFICIENT_BUFFER, "size": fixed, "used": untouched},
        "size_31": {"status": ERROR_INSUFFICIENT_BUFFER, "size": fixed, "used": untouched},
        "size_32": {"status": ERROR_SUCCESS, "size": fixed, "used": fixed},
        "size_4096": {"status": ERROR_SUCCESS, "size": 4096, "used": fixed},
        "identifier_31": {"status": ERROR_INSUFFICIENT_BUFFER, "size": fixed, "used": untouched},
        "change_tracking_0": {"status": ERROR_INSUFFICIENT_BUFFER, "size": fixed,
                              "used": untouched},
        "change_tracking_17": {"status": ERROR_INSUFFICIENT_BUFFER, "size": tracking,
                               "used": untouched},
        "change_tracking_18": {"status": ERROR_SUCCESS, "size": tracking, "used": tracking},
        "parent_location_0": {"status": ERROR_INSUFFICIENT_BUFFER, "size": fixed,
                              "used": untouched},
        "parent_location_4096": {"status": ERROR_VHD_INVALID_TYPE, "size": 4096,
                                 "used": untouched},
        "version_0": {"status": ERROR_INVALID_PARAMETER, "size": fixed, "used": untouched},
        "version_16": {"status": ERROR_INVALID_PARAMETER, "size": fixed, "used": untouched},
        "version_huge": {"status": ERROR_INVALID_PARAMETER, "size": fixed, "used": untouched},
        "null_size": {"status": ERROR_INVALID_PARAMETER, "size": fixed, "used": untouched},
        "null_info": {"status": ERROR_INVALID_PARAMETER, "size": fixed, "used": untouched},
        "null_size_bad_handle": {"status": ERROR_INVALID_PARAMETER, "size": fixed,
                                 "used": untouched},
        "null_size_used": ERROR_SUCCESS,
    }


def test_handle_validation(api: ApiProgram, vhdx: Path) -> None:
    got = api("--handle-cases", vhdx)
    invalid = ERROR_INVALID_HANDLE
    assert got == {
        "close_null": invalid, "close_invalid_handle_value": invalid,
        "close_small_integer": invalid, "close_garbage": invalid,
        "info_null": invalid, "info_invalid_handle_value": invalid, "info_garbage": invalid,
        "handles_at_start": 0,
        "open_first": ERROR_SUCCESS, "handles_after_open": 1, "info_first": ERROR_SUCCESS,
        "info_misaligned": invalid, "info_other_index": invalid,
        "info_other_generation": invalid,
        "close_first": ERROR_SUCCESS, "handles_after_close": 0,
        "close_first_again": invalid, "info_after_close": invalid,
        "open_second": ERROR_SUCCESS, "second_differs": 1,
        "info_stale_first": invalid, "close_stale_first": invalid,
        "info_second": ERROR_SUCCESS, "close_second": ERROR_SUCCESS,
        "open_64": ERROR_SUCCESS, "handles_with_64": 64, "distinct_64": 1,
        "close_64": ERROR_SUCCESS, "handles_at_end": 0,
    }


def sdk_function_names() -> set[str]:
    header = (INCLUDE / "virtdisk_api.h").read_text()
    return set(re.findall(r"^VIRTDISKAPI VIRTDISK_FN_(\w+) \1;", header, re.M))


def test_features_report_exactly_what_the_engine_carries_out(api: ApiProgram,
                                                            vhdx: Path) -> None:
    _virtdisk = pytest.importorskip("_virtdisk")
    if _virtdisk.PLATFORM != "engine":
        pytest.skip("features() reports the engine's table only on the engine")
    stdout = run(api.binary, "--argument-cases", vhdx).stdout
    cases = json.loads(stdout.rsplit("\n{", 1)[0])
    measured = {name for name, answers in cases.items() if answers["implemented"]}
    measured |= {"OpenVirtualDisk", "GetVirtualDiskInformation", "CreateVirtualDisk"}
    reported = {name for name, present in _virtdisk.features().items() if present}
    assert reported == measured


# What a V1 READ handle (no METAOPS, image read-only) gets from the functions
# the engine carries out, with valid arguments, called in this order: the
# NO_LOCAL_HOST read-only attach succeeds, so does the detach after it, the
# detached disk has no device, and RawSCSIVirtualDisk on the handle detached
# again finds no attach.
UPDATE_ANSWERS_ON_READ_HANDLE = {
    "AttachVirtualDisk": ERROR_SUCCESS,
    "DetachVirtualDisk": ERROR_SUCCESS,
    "GetVirtualDiskPhysicalPath": ERROR_NOT_READY,
    "GetAllAttachedVirtualDiskPhysicalPaths": ERROR_SUCCESS,
    # An image opened, not attached: its own entry.
    "GetStorageDependencyInformation": ERROR_SUCCESS,
    "RawSCSIVirtualDisk": ERROR_NOT_READY,
    "SetVirtualDiskInformation": ERROR_ACCESS_DENIED,
    "SetVirtualDiskMetadata": ERROR_ACCESS_DENIED,
    "DeleteVirtualDiskMetadata": ERROR_ACCESS_DENIED,
    "EnumerateVirtualDiskMetadata": ERROR_SUCCESS,
    "GetVirtualDiskMetadata": ERROR_NOT_FOUND,
    # An OVERLAPPED the handle never ran an operation with.
    "GetVirtualDiskOperationProgress": ERROR_NOT_FOUND,
    # A resize needs a handle that may write.
    "ExpandVirtualDisk": ERROR_ACCESS_DENIED,
    "ResizeVirtualDisk": ERROR_ACCESS_DENIED,
    # A V1 READ handle has no METAOPS.
    "CompactVirtualDisk": ERROR_ACCESS_DENIED,
    "MergeVirtualDisk": ERROR_ACCESS_DENIED,
    # The handle was opened without CUSTOM_DIFF_CHAIN.
    "AddVirtualDiskParent": ERROR_VHD_INVALID_STATE,
    # Only version 2 handles mirror; no mirror runs to break.
    "MirrorVirtualDisk": ERROR_ACCESS_DENIED,
    "BreakMirrorVirtualDisk": ERROR_VHD_INVALID_STATE,
}

# The functions the engine does not carry out, with the decided code each
# answers once its arguments and handle are valid (not_implemented.c); the
# rest answer ERROR_CALL_NOT_IMPLEMENTED.  features() reports all of them
# as missing: no call can succeed.
DECIDED_REFUSALS = {
    "TakeSnapshotVhdSet": ERROR_VHD_INVALID_TYPE,
    "DeleteSnapshotVhdSet": ERROR_VHD_INVALID_TYPE,
    "ModifyVhdSet": ERROR_VHD_INVALID_TYPE,
    "ApplySnapshotVhdSet": ERROR_VHD_INVALID_TYPE,
    "QueryChangesVirtualDisk": ERROR_VHD_CHANGE_TRACKING_DISABLED,
    "ForkVirtualDisk": ERROR_NOT_SUPPORTED,
    "CompleteForkVirtualDisk": ERROR_NOT_SUPPORTED,
}


def test_every_other_function_checks_arguments_before_its_handle(api: ApiProgram,
                                                                 vhdx: Path) -> None:
    stdout = run(api.binary, "--argument-cases", vhdx).stdout
    cases_text, tail_text = stdout.rsplit("\n{", 1)
    cases = json.loads(cases_text)
    assert json.loads("{" + tail_text)["handles_at_end"] == 0
    names = sdk_function_names()
    assert len(names) == 29
    assert set(cases) == names - {"OpenVirtualDisk", "GetVirtualDiskInformation",
                                 "CreateVirtualDisk"}
    implemented = {name for name, answers in cases.items() if answers["implemented"]}
    assert implemented == set(UPDATE_ANSWERS_ON_READ_HANDLE)
    for name, answers in cases.items():
        expected = UPDATE_ANSWERS_ON_READ_HANDLE.get(
            name, DECIDED_REFUSALS.get(name, ERROR_CALL_NOT_IMPLEMENTED))
        assert answers["valid"] == expected, name
        for variant in ("null_handle", "garbage_handle"):
            if variant in answers:
                assert answers[variant] == ERROR_INVALID_HANDLE, (name, variant)
        for variant in ("bad_argument", "bad_argument_null_handle"):
            if variant in answers:
                assert answers[variant] == ERROR_INVALID_PARAMETER, (name, variant)


# --------------------------------------------------------------------------- threads, speed

def build_with(directory: Path, name: str, sanitizer: str) -> Path:
    binary = directory / name
    sources = [str(ENGINE / source) for source in API_SOURCES]
    result = subprocess.run([compiler(), "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
                             f"-fsanitize={sanitizer}", "-fno-omit-frame-pointer",
                             f"-I{ENGINE}", f"-I{INCLUDE}",
                             str(ROOT / "tests" / "c" / "api_main.c"), *sources, "-pthread",
                             "-o", str(binary)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"-fsanitize={sanitizer} unavailable: {result.stderr[-300:]}")
    probe = subprocess.run([str(binary), "--loop-invalid", "1"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"-fsanitize={sanitizer} programs do not run here: {probe.stderr[-300:]}")
    return binary


@needs_qemu
@pytest.mark.parametrize("sanitizer, threads", [("thread", 4), ("address,undefined", 2)])
def test_concurrent_open_query_close_is_race_free(tmp_path: Path, sanitizer: str,
                                                  threads: int) -> None:
    binary = build_with(tmp_path, "api_main_" + sanitizer.split(",")[0], sanitizer)
    # A fixed VHD: the cheapest image to parse keeps 10,000 rounds short.
    image = qemu_image(tmp_path, "disk.vhd", "vpc", "8M", "subformat=fixed")
    rounds = 10000
    environment = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66",
                       ASAN_OPTIONS="detect_leaks=1")
    result = subprocess.run([str(binary), "--stress", str(threads), str(rounds), str(image)],
                            capture_output=True, text=True, env=environment, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "WARNING" not in result.stderr, result.stderr[-4000:]
    got = json.loads(result.stdout)
    total = threads * rounds
    assert got["opened"] == got["queried"] == got["closed"] == total
    assert got["unexpected"] == 0 and got["shared_other"] == 0
    assert got["shared_ok"] + got["shared_invalid"] == total
    assert got["shared_invalid"] > 0        # closes did race with queries
    assert got["handles_at_end"] == 0


def test_benchmark_loops_run(api: ApiProgram, vhdx: Path) -> None:
    loop = api("--loop", "200", vhdx)
    assert loop["iterations"] == 200 and loop["ns_per_iteration"] > 0
    info = api("--loop-info", "100000", vhdx)
    assert info["iterations"] == 100000 and info["ns_per_iteration"] > 0
    invalid = api("--loop-invalid", "100000")
    assert invalid["iterations"] == 100000 and invalid["ns_per_iteration"] > 0
