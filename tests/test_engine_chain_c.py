"""chain.c: finding, opening and checking the parents of differencing images.

Two harness builds (tests/c/chain_main.c):

* with a tiny text image format of the harness's own, so any chain can be
  made in a few lines (cycles, 256 levels, wrong identities) and the search
  rules are tested alone;
* with the real VHD parser, on differencing VHDs built by tests/vhd_builder.py
  that vhdiinfo confirms, whose content read through the chain must equal
  what 7-Zip extracts from the same chain.

Expected codes are the winerror.h values of the situations Windows names
(ERROR_VHD_PARENT_VHD_NOT_FOUND, ..._CHILD_PARENT_ID_MISMATCH, ...).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import vhd_builder
from c_harness import ENGINE, compile_harness, drop_to_nobody, unprivileged_area

ERROR_SUCCESS = 0
ERROR_SHARING_VIOLATION = 32
VHD_ERROR = 0xC03A0000
ERROR_VHD_PARENT_VHD_NOT_FOUND = VHD_ERROR | 0x0D
ERROR_VHD_CHILD_PARENT_ID_MISMATCH = VHD_ERROR | 0x0E
ERROR_VHD_PARENT_VHD_ACCESS_DENIED = VHD_ERROR | 0x16
ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH = VHD_ERROR | 0x17
ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED = VHD_ERROR | 0x18
ERROR_VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT = VHD_ERROR | 0x19
ERROR_VIRTUAL_DISK_LIMITATION = VHD_ERROR | 0x1A
ERROR_VHD_INVALID_TYPE = VHD_ERROR | 0x1B
MAX_DEPTH = 256   # images in one chain, the child included (chain.h)


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_harness(tmp_path_factory.mktemp("chain_fake"), "chain_main",
                           ["chain.c", "io.c", "utf16.c"], defines=["-DCHAIN_FAKE_PARSERS"],
                           sanitize=True)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real parsers: the whole engine."""
    sources: list[str | Path] = sorted(ENGINE.rglob("*.c"))
    return compile_harness(tmp_path_factory.mktemp("chain_real"), "chain_main", sources,
                           sanitize=True)


def run(harness: Path, child: Path | str, *extra: str, cwd: Path | None = None,
        preexec_fn: Callable[[], None] | None = None) -> dict[str, Any]:
    result = subprocess.run([str(harness), str(child), *extra], check=True,
                            capture_output=True, text=True, timeout=60, cwd=cwd,
                            preexec_fn=preexec_fn)
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


# ---- the harness's own image format ------------------------------------------------

SIZE = 1 << 20


def fake_disk(path: Path, identifier: str, *, parent: str | None = None,
              relative: str | None = None, volume: str | None = None,
              absolute: str | None = None, size: int = SIZE,
              own: Sequence[tuple[int, int, int]] = ()) -> Path:
    lines = ["FAKEDISK", f"id={identifier}", f"size={size}"]
    if parent is not None:
        lines.append(f"parent={parent}")
    for key, value in (("relative", relative), ("volume", volume), ("absolute", absolute)):
        if value is not None:
            lines.append(f"{key}={value}")
    lines += [f"own={offset}:{length}:{value}" for offset, length, value in own]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def new_id() -> str:
    return uuid.uuid4().hex


def test_relative_dot_path_resolves(fake: Path, tmp_path: Path) -> None:
    base_id = new_id()
    base = fake_disk(tmp_path / "base.vhdx", base_id)
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=base_id,
                      relative=".\\base.vhdx", absolute="C:\\VMs\\base.vhdx")
    answer = run(fake, child)
    assert answer["status"] == ERROR_SUCCESS
    assert answer["chain"] == [{"path": str(base), "writable": 0}]
    assert (answer["resolved"], answer["locations"]) == (1, [str(base)])


def test_relative_path_is_taken_against_the_child_not_the_cwd(fake: Path,
                                                              tmp_path: Path) -> None:
    base_id = new_id()
    base = fake_disk(tmp_path / "parents" / "base.vhdx", base_id)
    child = fake_disk(tmp_path / "vm" / "disks" / "child.avhdx", new_id(), parent=base_id,
                      relative="..\\..\\parents\\base.vhdx")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    answer = run(fake, os.path.relpath(child, elsewhere), cwd=elsewhere)
    assert answer["status"] == ERROR_SUCCESS
    assert answer["locations"] == [str(base)]   # normalised: no "." or ".." left


def test_search_order_relative_then_absolute(fake: Path, tmp_path: Path) -> None:
    base_id = new_id()
    near = fake_disk(tmp_path / "near.vhdx", base_id)
    far = fake_disk(tmp_path / "far" / "far.vhdx", base_id)
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=base_id,
                      relative="near.vhdx", absolute=str(far))
    assert run(fake, child)["locations"] == [str(near)]
    near.unlink()
    assert run(fake, child)["locations"] == [str(far)]


def test_absolute_path_written_with_backslashes_on_a_posix_host(fake: Path,
                                                                tmp_path: Path) -> None:
    base_id = new_id()
    base = fake_disk(tmp_path / "store" / "base.vhdx", base_id)
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=base_id,
                      absolute=str(base).replace("/", "\\"))
    assert run(fake, child)["locations"] == [str(base)]


def test_windows_only_locations_are_listed_but_not_tried(fake: Path, tmp_path: Path) -> None:
    relative = "missing.vhdx"
    volume = "\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\VMs\\base.vhdx"
    absolute = "C:\\VMs\\base.vhdx"
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=new_id(), relative=relative,
                      volume=volume, absolute=absolute)
    answer = run(fake, child)
    assert answer["status"] == ERROR_VHD_PARENT_VHD_NOT_FOUND
    assert answer["candidates"] == [str(tmp_path / relative)]
    unresolved = run(fake, child, "--no-parents")
    assert unresolved["status"] == ERROR_SUCCESS
    assert (unresolved["resolved"], unresolved["locations"]) == (0, [relative, volume, absolute])


def test_drive_relative_and_unc_locations_are_not_tried(fake: Path, tmp_path: Path) -> None:
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=new_id(),
                      relative="D:base.vhdx", absolute="\\\\server\\share\\base.vhdx")
    answer = run(fake, child)
    assert (answer["status"], answer["candidates"]) == (ERROR_VHD_PARENT_VHD_NOT_FOUND, [])


def test_missing_parent(fake: Path, tmp_path: Path) -> None:
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=new_id(),
                      relative=".\\gone.vhdx", absolute=str(tmp_path / "gone.vhdx"))
    answer = run(fake, child)
    assert (answer["status"], answer["count"]) == (ERROR_VHD_PARENT_VHD_NOT_FOUND, 0)


def test_child_without_locations(fake: Path, tmp_path: Path) -> None:
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=new_id())
    answer = run(fake, child)
    assert answer["status"] == ERROR_VHD_PARENT_VHD_NOT_FOUND
    assert (answer["resolved"], answer["locations"]) == (0, [])


def test_missing_grandparent(fake: Path, tmp_path: Path) -> None:
    middle_id = new_id()
    fake_disk(tmp_path / "middle.vhdx", middle_id, parent=new_id(), relative="gone.vhdx")
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=middle_id,
                      relative="middle.vhdx")
    assert run(fake, child)["status"] == ERROR_VHD_PARENT_VHD_NOT_FOUND


def test_identity_mismatch(fake: Path, tmp_path: Path) -> None:
    fake_disk(tmp_path / "base.vhdx", new_id())
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=new_id(),
                      relative="base.vhdx")
    answer = run(fake, child)
    assert (answer["status"], answer["count"]) == (ERROR_VHD_CHILD_PARENT_ID_MISMATCH, 0)


def test_a_stale_location_does_not_hide_the_right_parent(fake: Path, tmp_path: Path) -> None:
    base_id = new_id()
    fake_disk(tmp_path / "base.vhdx", new_id())                 # same name, other disk
    right = fake_disk(tmp_path / "store" / "base.vhdx", base_id)
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=base_id,
                      relative="base.vhdx", absolute=str(right))
    answer = run(fake, child)
    assert (answer["status"], answer["locations"]) == (ERROR_SUCCESS, [str(right)])


def test_size_mismatch(fake: Path, tmp_path: Path) -> None:
    base_id = new_id()
    fake_disk(tmp_path / "base.vhdx", base_id, size=SIZE * 2)
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=base_id,
                      relative="base.vhdx")
    assert run(fake, child)["status"] == ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH


def test_parent_that_is_no_disk(fake: Path, tmp_path: Path) -> None:
    (tmp_path / "base.vhdx").write_bytes(b"not a virtual disk\n" * 100)
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=new_id(),
                      relative="base.vhdx")
    assert run(fake, child)["status"] == ERROR_VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT


def test_parent_that_is_a_directory(fake: Path, tmp_path: Path) -> None:
    (tmp_path / "base.vhdx").mkdir()
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=new_id(),
                      relative="base.vhdx")
    assert run(fake, child)["status"] == ERROR_VHD_PARENT_VHD_ACCESS_DENIED


def test_parent_access_denied(fake: Path) -> None:
    """Root ignores permission bits: the case runs as user "nobody"."""
    with unprivileged_area(fake) as (area, (binary,)):
        base_id = new_id()
        base = fake_disk(area / "base.vhdx", base_id)
        base.chmod(0o600)
        child = fake_disk(area / "child.avhdx", new_id(), parent=base_id,
                          relative="base.vhdx")
        child.chmod(0o666)
        answer = run(binary, child, preexec_fn=drop_to_nobody)
        assert answer["status"] == ERROR_VHD_PARENT_VHD_ACCESS_DENIED
        base.chmod(0o644)
        assert run(binary, child, preexec_fn=drop_to_nobody)["status"] == ERROR_SUCCESS


# ---- cycles and depth ------------------------------------------------------------

def test_image_that_is_its_own_parent(fake: Path, tmp_path: Path) -> None:
    own_id = new_id()
    child = fake_disk(tmp_path / "self.avhdx", own_id, parent=own_id, relative="self.avhdx")
    for depth in ("0", "1", "2"):
        answer = run(fake, child, "--rw-depth", depth)
        assert (answer["status"], answer["count"]) \
            == (ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED, 0)


def test_two_images_naming_each_other(fake: Path, tmp_path: Path) -> None:
    a_id, b_id = new_id(), new_id()
    a = fake_disk(tmp_path / "a.avhdx", a_id, parent=b_id, relative="b.avhdx")
    fake_disk(tmp_path / "b.avhdx", b_id, parent=a_id, relative="a.avhdx")
    assert run(fake, a)["status"] == ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_cycle_through_another_name(fake: Path, tmp_path: Path, link: str) -> None:
    a_id, b_id = new_id(), new_id()
    a = fake_disk(tmp_path / "a.avhdx", a_id, parent=b_id, relative="b.avhdx")
    fake_disk(tmp_path / "b.avhdx", b_id, parent=a_id, relative="alias.avhdx")
    alias = tmp_path / "alias.avhdx"
    if link == "hard":
        os.link(a, alias)
    else:
        alias.symlink_to(a)
    assert run(fake, a)["status"] == ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED


def make_line(directory: Path, images: int) -> Path:
    """A chain of `images` images: child.0 -> child.1 -> ... -> base."""
    ids = [new_id() for _ in range(images)]
    for level in range(images):
        parent = ids[level + 1] if level + 1 < images else None
        fake_disk(directory / f"{level}.vhdx", ids[level], parent=parent,
                  relative=f"{level + 1}.vhdx" if parent else None)
    return directory / "0.vhdx"


def test_longest_chain(fake: Path, tmp_path: Path) -> None:
    answer = run(fake, make_line(tmp_path, MAX_DEPTH))
    assert (answer["status"], answer["count"]) == (ERROR_SUCCESS, MAX_DEPTH - 1)


def test_chain_one_longer_than_the_limit(fake: Path, tmp_path: Path) -> None:
    answer = run(fake, make_line(tmp_path, MAX_DEPTH + 1))
    assert (answer["status"], answer["count"]) == (ERROR_VIRTUAL_DISK_LIMITATION, 0)


# ---- RWDepth and sharing ----------------------------------------------------------

@pytest.mark.parametrize(("depth", "writable"), [
    (0, [0, 0, 0]), (1, [0, 0, 0]), (2, [1, 0, 0]), (3, [1, 1, 0]), (4, [1, 1, 1]),
    (100, [1, 1, 1]),
])
def test_rw_depth(fake: Path, tmp_path: Path, depth: int, writable: list[int]) -> None:
    answer = run(fake, make_line(tmp_path, 4), "--rw-depth", str(depth))
    assert answer["status"] == ERROR_SUCCESS
    assert [image["writable"] for image in answer["chain"]] == writable


def test_parents_in_use_by_a_writer_are_a_sharing_violation(fake: Path,
                                                            tmp_path: Path) -> None:
    child = make_line(tmp_path, 2)
    with open(tmp_path / "1.vhdx", "r+b") as held:
        fcntl.lockf(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert run(fake, child)["status"] == ERROR_SHARING_VIOLATION
    assert run(fake, child)["status"] == ERROR_SUCCESS


def test_two_children_share_one_parent(fake: Path, tmp_path: Path) -> None:
    """Parents are opened read-only, so a reader's lock on one does not stop
    another chain from using it."""
    base_id = new_id()
    base = fake_disk(tmp_path / "base.vhdx", base_id)
    child = fake_disk(tmp_path / "child.avhdx", new_id(), parent=base_id,
                      relative="base.vhdx")
    with open(base, "rb") as held:
        fcntl.lockf(held, fcntl.LOCK_SH | fcntl.LOCK_NB)
        assert run(fake, child)["status"] == ERROR_SUCCESS


# ---- reading through the chain and the parent location ---------------------------------

def test_reads_fall_through_every_level(fake: Path, tmp_path: Path) -> None:
    ids = [new_id() for _ in range(3)]
    fake_disk(tmp_path / "base.vhdx", ids[2], own=[(0, 4096, 3)])
    fake_disk(tmp_path / "middle.avhdx", ids[1], parent=ids[2], relative="base.vhdx",
              own=[(1024, 1024, 2)])
    child = fake_disk(tmp_path / "child.avhdx", ids[0], parent=ids[1],
                      relative="middle.avhdx", own=[(0, 512, 1)])
    out = tmp_path / "content.bin"
    answer = run(fake, child, "--dump", str(out), "8192")
    assert (answer["status"], answer["dump_status"]) == (ERROR_SUCCESS, ERROR_SUCCESS)
    expected = bytes([1]) * 512 + bytes([3]) * 512 + bytes([2]) * 1024 + bytes([3]) * 2048 \
        + bytes(4096)
    assert out.read_bytes() == expected


def test_not_differencing(fake: Path, tmp_path: Path) -> None:
    base = fake_disk(tmp_path / "base.vhdx", new_id())
    answer = run(fake, base)
    assert (answer["status"], answer["count"]) == (ERROR_SUCCESS, 0)
    assert answer["location_status"] == ERROR_VHD_INVALID_TYPE


# ---- real VHD chains ----------------------------------------------------------------

VHD_SIZE = 8 << 20
VHD_BLOCK = 2 << 20


def sector(value: int) -> bytes:
    return bytes([value]) * vhd_builder.SECTOR


def build_vhd_chain(directory: Path, *, parent_id_override: bytes | None = None) -> Path:
    base_id = uuid.uuid4().bytes
    base = directory / "base.vhd"
    base.write_bytes(vhd_builder.build_sparse(
        VHD_SIZE, VHD_BLOCK, {0: sector(0xB0), 1: sector(0xB1), 5000: sector(0xB2)},
        unique_id=base_id))
    child = directory / "child.vhd"
    locators = [vhd_builder.Locator(vhd_builder.W2KU, vhd_builder.utf16le("C:\\VMs\\base.vhd")),
                vhd_builder.Locator(vhd_builder.W2RU, vhd_builder.utf16le(".\\base.vhd"))]
    child.write_bytes(vhd_builder.build_sparse(
        VHD_SIZE, VHD_BLOCK, {1: sector(0xC1), 4200: sector(0xC2)},
        disk_type=vhd_builder.DIFFERENCING,
        parent_id=parent_id_override if parent_id_override is not None else base_id,
        parent_name="base.vhd", locators=locators))
    return child


def vhdiinfo_field(image: Path, field: str) -> str:
    tool = shutil.which("vhdiinfo")
    if tool is None:
        pytest.skip("vhdiinfo is not installed")
    listing = subprocess.run([tool, str(image)], check=True, capture_output=True,
                             text=True).stdout
    for line in listing.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == field:
            return value.strip()
    raise AssertionError(f"{field} not in vhdiinfo output:\n{listing}")


def sevenzip_content(image: Path, directory: Path) -> bytes:
    """The virtual disk 7-Zip extracts from `image`, parents included."""
    sevenzip = shutil.which("7zz")
    if sevenzip is None:
        pytest.skip("7zz is not installed")
    subprocess.run([sevenzip, "e", "-y", f"-o{directory}", str(image)], check=True,
                   capture_output=True)
    (extracted,) = list(directory.iterdir())
    return extracted.read_bytes()


def test_real_vhd_chain_matches_7zip(real: Path, tmp_path: Path) -> None:
    child = build_vhd_chain(tmp_path)
    # The builder's chain is one independent readers accept as such.
    assert vhdiinfo_field(child, "Parent identifier") \
        == vhdiinfo_field(tmp_path / "base.vhd", "Identifier")
    reference = sevenzip_content(child, tmp_path / "7z")

    out = tmp_path / "content.bin"
    answer = run(real, child, "--dump", str(out), str(VHD_SIZE))
    assert answer["status"] == ERROR_SUCCESS
    assert answer["chain"] == [{"path": str(tmp_path / "base.vhd"), "writable": 0}]
    assert answer["dump_status"] == ERROR_SUCCESS
    assert out.read_bytes() == reference
    assert out.read_bytes()[512:1024] == sector(0xC1)   # the child's sector wins
    assert out.read_bytes()[0:512] == sector(0xB0)      # the parent's shows through


def test_real_vhd_chain_unresolved_locations(real: Path, tmp_path: Path) -> None:
    child = build_vhd_chain(tmp_path)
    answer = run(real, child, "--no-parents")
    assert (answer["resolved"], answer["locations"]) == (0, [".\\base.vhd", "C:\\VMs\\base.vhd"])


def test_real_vhd_parent_id_mismatch(real: Path, tmp_path: Path) -> None:
    child = build_vhd_chain(tmp_path, parent_id_override=uuid.uuid4().bytes)
    assert vhdiinfo_field(child, "Parent identifier") \
        != vhdiinfo_field(tmp_path / "base.vhd", "Identifier")
    assert run(real, child)["status"] == ERROR_VHD_CHILD_PARENT_ID_MISMATCH


def test_real_vhd_missing_parent(real: Path, tmp_path: Path) -> None:
    child = build_vhd_chain(tmp_path)
    (tmp_path / "base.vhd").unlink()
    assert run(real, child)["status"] == ERROR_VHD_PARENT_VHD_NOT_FOUND


def test_real_three_level_chain_on_a_qemu_base(real: Path, tmp_path: Path) -> None:
    """Base made by qemu-img, two differencing levels on it; every level
    holds some sectors, and 7-Zip's reading of the whole chain is the
    reference."""
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        pytest.skip("qemu-img is not installed")
    raw = bytearray(VHD_SIZE)
    for offset in range(0, VHD_SIZE, 1 << 16):
        raw[offset:offset + 512] = bytes([(offset >> 16) & 0xFF]) * 512
    (tmp_path / "src.raw").write_bytes(bytes(raw))
    base = tmp_path / "base.vhd"
    subprocess.run([qemu_img, "convert", "-f", "raw", "-O", "vpc", "-o",
                    "subformat=dynamic,force_size=on", str(tmp_path / "src.raw"), str(base)],
                   check=True)
    base_id = base.read_bytes()[-512 + 68:-512 + 84]   # footer UniqueId

    middle_id = uuid.uuid4().bytes
    (tmp_path / "middle.vhd").write_bytes(vhd_builder.build_sparse(
        VHD_SIZE, VHD_BLOCK, {128: sector(0xA1), 129: sector(0xA2), 9000: sector(0xA3)},
        disk_type=vhd_builder.DIFFERENCING, unique_id=middle_id, parent_id=base_id,
        locators=[vhd_builder.Locator(vhd_builder.W2RU, vhd_builder.utf16le(".\\base.vhd"))]))
    child = tmp_path / "child.vhd"
    child.write_bytes(vhd_builder.build_sparse(
        VHD_SIZE, VHD_BLOCK, {129: sector(0xC2), 256: sector(0xC3)},
        disk_type=vhd_builder.DIFFERENCING, parent_id=middle_id,
        locators=[vhd_builder.Locator(vhd_builder.W2RU, vhd_builder.utf16le(".\\middle.vhd"))]))

    reference = sevenzip_content(child, tmp_path / "7z")
    out = tmp_path / "content.bin"
    answer = run(real, child, "--dump", str(out), str(VHD_SIZE))
    assert (answer["status"], answer["count"], answer["dump_status"]) == (0, 2, 0)
    content = out.read_bytes()
    assert content == reference
    assert content[128 * 512:131 * 512] == sector(0xA1) + sector(0xC2) + bytes(512)
    assert content[3 << 16:(3 << 16) + 512] == sector(3)   # from the base, two levels up
