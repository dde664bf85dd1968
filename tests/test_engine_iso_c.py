"""iso.c: the OpenVirtualDisk rule for ISO files, on images made by
xorriso, genisoimage and mkudffs.

The rule (OpenVirtualDisk Remarks, REFERENCE.md section 1): ERROR_FILE_CORRUPT
(1392) when the size is not a multiple of 2048, is under 34,816 bytes, or the
volume structure descriptor at byte 32,768 has no known CDFS/UDF identifier.
Whether an image is a real ISO 9660 or UDF volume is confirmed with isoinfo
and udfinfo, and the content read through the engine is compared with the
file itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from c_harness import compile_harness

ERROR_SUCCESS = 0
ERROR_INVALID_PARAMETER = 87
ERROR_FILE_CORRUPT = 1392
VIRTUAL_STORAGE_TYPE_DEVICE_ISO = 1
SECTOR = 2048
DESCRIPTOR = 16 * SECTOR
MINIMUM = 17 * SECTOR


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_harness(tmp_path_factory.mktemp("iso_harness"), "iso_probe_main",
                           ["iso.c", "io.c"], sanitize=True)


def probe(harness: Path, image: Path, *extra: str) -> dict[str, Any]:
    result = subprocess.run([str(harness), str(image), *extra], check=True,
                            capture_output=True, text=True, timeout=60)
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("isodir")
    (directory / "readme.txt").write_text("virtdisk ISO test\n")
    (directory / "sub").mkdir()
    (directory / "sub" / "data.bin").write_bytes(bytes(range(256)) * 700)
    return directory


def make_image(kind: str, content: Path, out: Path) -> Path:
    """The commands of research/formats.md section 6."""
    if kind == "xorriso":
        subprocess.run([need("xorriso"), "-as", "mkisofs", "-quiet", "-o", str(out),
                        "-V", "TESTXORR", "-J", "-r", str(content)], check=True,
                       capture_output=True)
    elif kind == "genisoimage":
        subprocess.run([need("genisoimage"), "-quiet", "-o", str(out), "-V", "TESTISO",
                        "-J", "-r", str(content)], check=True, capture_output=True)
    elif kind == "genisoimage-udf":
        subprocess.run([need("genisoimage"), "-quiet", "-udf", "-o", str(out), "-V", "HYBRID",
                        "-J", "-r", str(content)], check=True, capture_output=True)
    elif kind in ("mkudffs-1.02", "mkudffs-2.01"):
        revision = kind.split("-")[1]
        subprocess.run([need("mkudffs"), "--media-type=hd", "--blocksize=2048",
                        f"--udfrev={revision}", "-l", "TESTUDF", "--new-file", str(out), "600"],
                       check=True, capture_output=True)
    else:
        raise ValueError(kind)
    return out


KINDS = ["xorriso", "genisoimage", "genisoimage-udf", "mkudffs-1.02", "mkudffs-2.01"]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, content: Path) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("isos")
    made = {}
    for kind in KINDS:
        try:
            made[kind] = make_image(kind, content, directory / f"{kind}.iso")
        except pytest.skip.Exception:
            continue
    return made


def image_of(images: dict[str, Path], kind: str) -> Path:
    if kind not in images:
        pytest.skip(f"no tool to make a {kind} image")
    return images[kind]


def recognised_by_tools(image: Path) -> bool:
    """An independent opinion: isoinfo reads ISO 9660, udfinfo reads UDF."""
    isoinfo = shutil.which("isoinfo")
    if isoinfo:
        listing = subprocess.run([isoinfo, "-d", "-i", str(image)], capture_output=True,
                                 text=True)
        if listing.returncode == 0 and "Volume id" in listing.stdout:
            return True
    udfinfo = shutil.which("udfinfo")
    if udfinfo is None:
        return False
    return subprocess.run([udfinfo, str(image)], capture_output=True).returncode == 0


@pytest.mark.parametrize("kind", KINDS)
def test_images_from_tools_open(harness: Path, images: dict[str, Path], kind: str,
                                tmp_path: Path) -> None:
    image = image_of(images, kind)
    assert recognised_by_tools(image)
    dumped = tmp_path / "content.bin"
    answer = probe(harness, image, "--dump", str(dumped))
    size = image.stat().st_size
    assert answer == {
        "status": ERROR_SUCCESS, "probe": 1, "caller_file_moved": True,
        "device": VIRTUAL_STORAGE_TYPE_DEVICE_ISO, "subtype": 0, "virtual_size": size,
        "block_size": 0, "logical_sector_size": SECTOR, "physical_sector_size": SECTOR,
        "has_parent": 0, "identifier": "00" * 16, "virtual_disk_id": "00" * 16,
        "dump_status": ERROR_SUCCESS,
    }
    assert dumped.read_bytes() == image.read_bytes()


@pytest.mark.parametrize(("kind", "identifier"), [
    ("xorriso", b"CD001"), ("genisoimage", b"CD001"), ("genisoimage-udf", b"CD001"),
    ("mkudffs-1.02", b"BEA01"), ("mkudffs-2.01", b"BEA01"),
])
def test_tools_put_the_expected_descriptor_first(images: dict[str, Path], kind: str,
                                                 identifier: bytes) -> None:
    """What the boundary cases below rely on, checked rather than assumed."""
    with open(image_of(images, kind), "rb") as stream:
        stream.seek(DESCRIPTOR)
        assert stream.read(6)[1:6] == identifier


# ---- the documented size and descriptor rules ------------------------------------

def cut(source: Path, size: int, out: Path) -> Path:
    with open(source, "rb") as stream:
        out.write_bytes(stream.read(size))
    return out


@pytest.mark.parametrize("kind", ["xorriso", "mkudffs-2.01"])
def test_smallest_image_that_holds_the_descriptor_opens(harness: Path,
                                                        images: dict[str, Path], kind: str,
                                                        tmp_path: Path) -> None:
    image = cut(image_of(images, kind), MINIMUM, tmp_path / "min.iso")
    assert probe(harness, image)["status"] == ERROR_SUCCESS


@pytest.mark.parametrize("size", [0, 1, SECTOR, DESCRIPTOR, MINIMUM - 2, MINIMUM - SECTOR])
def test_too_small_is_corrupt(harness: Path, images: dict[str, Path], tmp_path: Path,
                              size: int) -> None:
    image = cut(image_of(images, "xorriso"), size, tmp_path / "small.iso")
    answer = probe(harness, image)
    assert (answer["status"], answer["probe"]) == (ERROR_FILE_CORRUPT, 0)
    assert answer["file_still_open"]


@pytest.mark.parametrize("delta", [-1, +1, -SECTOR + 1])
def test_size_not_a_multiple_of_2048_is_corrupt(harness: Path, images: dict[str, Path],
                                                tmp_path: Path, delta: int) -> None:
    source = image_of(images, "genisoimage")
    data = source.read_bytes()
    image = tmp_path / "odd.iso"
    image.write_bytes(data[:len(data) + delta] if delta < 0 else data + b"\0" * delta)
    assert probe(harness, image)["status"] == ERROR_FILE_CORRUPT


def test_zeros_are_corrupt(harness: Path, tmp_path: Path) -> None:
    image = tmp_path / "zeros.iso"
    image.write_bytes(bytes(64 * 1024))
    assert probe(harness, image)["status"] == ERROR_FILE_CORRUPT


def synthetic(tmp_path: Path, identifier: bytes, at: int, sectors: int = 17) -> Path:
    data = bytearray(sectors * SECTOR)
    data[DESCRIPTOR + at:DESCRIPTOR + at + len(identifier)] = identifier
    data[DESCRIPTOR + at + len(identifier)] = 1   # version
    path = tmp_path / f"{identifier.hex()}-{at}.iso"
    path.write_bytes(bytes(data))
    return path


# ECMA-119 (CD001) and the volume structure descriptor identifiers of
# ECMA-167 2/9.1 (BEA01, BOOT2, CD001, CDW02, NSR02, NSR03, TEA01) at bytes
# 1-5; High Sierra's "CDROM" at bytes 9-13, where Windows' CDFS looks for it.
@pytest.mark.parametrize(("identifier", "at"), [
    (b"CD001", 1), (b"BEA01", 1), (b"BOOT2", 1), (b"CDW02", 1), (b"NSR02", 1),
    (b"NSR03", 1), (b"TEA01", 1), (b"CDROM", 9),
])
def test_known_identifiers(harness: Path, tmp_path: Path, identifier: bytes, at: int) -> None:
    answer = probe(harness, synthetic(tmp_path, identifier, at))
    assert (answer["status"], answer["probe"]) == (ERROR_SUCCESS, 1)


@pytest.mark.parametrize(("identifier", "at"), [
    (b"CD002", 1), (b"cd001", 1), (b"CD001", 0), (b"CD001", 2), (b"CDROM", 1),
    (b"BEA01", 9), (b"NSR01", 1), (b"CD00", 1), (b"ER\x02\x00\x00", 0),
])
def test_unknown_identifiers(harness: Path, tmp_path: Path, identifier: bytes,
                             at: int) -> None:
    answer = probe(harness, synthetic(tmp_path, identifier, at))
    assert (answer["status"], answer["probe"]) == (ERROR_FILE_CORRUPT, 0)


def test_only_the_first_descriptor_counts(harness: Path, tmp_path: Path) -> None:
    """A valid descriptor at sector 17 does not rescue an unknown one at 16."""
    data = bytearray(18 * SECTOR)
    data[DESCRIPTOR + SECTOR + 1:DESCRIPTOR + SECTOR + 6] = b"CD001"
    image = tmp_path / "late.iso"
    image.write_bytes(bytes(data))
    assert probe(harness, image)["status"] == ERROR_FILE_CORRUPT


def test_virtual_disk_file_is_not_an_iso(harness: Path, tmp_path: Path) -> None:
    qemu_img = need("qemu-img")
    image = tmp_path / "disk.vhd"
    subprocess.run([qemu_img, "create", "-q", "-f", "vpc", "-o", "subformat=dynamic",
                    str(image), "10M"], check=True)
    assert probe(harness, image)["status"] == ERROR_FILE_CORRUPT


# ---- reads ---------------------------------------------------------------------

@pytest.mark.parametrize(("offset", "length", "expected"), [
    (0, 1, ERROR_SUCCESS),
    (MINIMUM - 1, 1, ERROR_SUCCESS),
    (MINIMUM, 0, ERROR_SUCCESS),
    (MINIMUM, 1, ERROR_INVALID_PARAMETER),
    (MINIMUM - 1, 2, ERROR_INVALID_PARAMETER),
    (2**64 - 1, 2, ERROR_INVALID_PARAMETER),
    (1, 2**64 - 1, ERROR_INVALID_PARAMETER),
])
def test_read_range_is_checked(harness: Path, tmp_path: Path, offset: int, length: int,
                               expected: int) -> None:
    image = synthetic(tmp_path, b"CD001", 1)
    answer = probe(harness, image, "--read", str(offset), str(length))
    assert answer["read_status"] == expected
