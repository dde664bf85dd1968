"""Crash safety of metadata updates, by fault injection.

tests/c/fault_main.c is built with -DVD_FAULT_INJECTION, which makes io.c
fail every file change (write, flush, size change) after the first K, as if
the machine had stopped there.  For each kind of update (VHDX: physical
sector size, virtual disk id, identifier, parent path of a differencing
child, user item create / replace / delete; VHD: identifier, virtual disk
id, parent path) the harness first counts the N changes the update makes,
then for every K in 0..N stops a fresh copy of the image after K of them
and opens it again through the public API -- read-only (which must not
write, and for VHDX reads a pending log through memory), then writable
(which repairs: VHDX replays the log into the file).
Every open must succeed and answer exactly what the pristine image answered
or exactly what the completed update answers -- never anything else -- with
the disk content unchanged, and the repaired image must take the update
again.  The harness runs under ASan/UBSan.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Protocol

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from c_harness import all_engine_sources, compile_harness  # noqa: E402
from test_engine_vhdx_c import run  # noqa: E402

MiB = 1 << 20
ERROR_WRITE_FAULT = 29
ERROR_NOT_FOUND = 1168

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
                                reason="qemu-img and qemu-io make the images")

# Fields of the report that describe the image (not the run).
REPORT_FIELDS = ("identifier", "virtual_disk_id", "physical_sector_size", "parent_identifier",
                 "parent_location", "list_status", "items", "content_status", "content")


class Harness(Protocol):
    def __call__(self, *args: str | int | Path) -> dict[str, Any]: ...


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Harness:
    binary = compile_harness(tmp_path_factory.mktemp("fault"), "fault_main", all_engine_sources(),
                             defines=["-DVD_FAULT_INJECTION", "-pthread"], sanitize=True)

    def answer(*args: str | int | Path) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(run(binary, *[str(arg) for arg in args]).stdout)
        return result
    return answer


def view(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["open"] == 0, answer
    return {field: answer.get(field) for field in REPORT_FIELDS}


# --------------------------------------------------------------------------- images

def with_data(path: Path, fmt: str) -> None:
    run("qemu-io", "-f", fmt, "-c", "write -P 0x5a 1M 64k", "-c", "write -P 0xc3 6M 4k", path)


def vhdx_base(directory: Path, harness: Harness) -> Path:
    path = directory / "disk.vhdx"
    run("qemu-img", "create", "-q", "-f", "vhdx", path, "8M")
    with_data(path, "vhdx")
    return path


def vhdx_with_items(directory: Path, harness: Harness) -> Path:
    path = vhdx_base(directory, harness)
    answer = harness(path, "meta-set", ITEM_A, "fill:9000:0x11", "meta-set", ITEM_B, "0102")
    assert [op["status"] for op in answer["ops"]] == [0, 0]
    return path


def differencing_child(directory: Path, harness: Harness, fmt: str) -> Path:
    """A child made by CreateVirtualDisk, with a copy of its parent in
    another directory for the parent change to point at."""
    base = directory / f"base.{fmt}"
    run("qemu-img", "create", "-q", "-f", "vpc" if fmt == "vhd" else "vhdx", base, "8M")
    with_data(base, "vpc" if fmt == "vhd" else "vhdx")
    child = directory / f"child.{fmt}"
    assert harness(child, "--create-child", base) == {"create": 0}
    (directory / "store").mkdir()
    shutil.copy(base, directory / "store" / f"moved.{fmt}")
    return child


ITEM_A = "6f0a9d4c-1b2e-4c3d-8e5f-a1b2c3d4e5f6"
ITEM_B = "7e1b8c5d-2c3f-4d4e-9f60-b2c3d4e5f6a7"

# name: (make the image, the update's arguments; "{dir}" is the image's directory)
Maker = Callable[[Path, Harness], Path]
CASES: dict[str, tuple[Maker, tuple[str, ...]]] = {
    "vhdx-physical-sector-size": (vhdx_base, ("physical", "4096")),
    "vhdx-virtual-disk-id": (vhdx_base, ("disk-id", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")),
    "vhdx-identifier": (vhdx_base, ("identifier", "1a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")),
    "vhdx-parent-path": (lambda d, h: differencing_child(d, h, "vhdx"), ("parent", "{dir}/store/moved.vhdx")),
    "vhdx-user-item-create": (vhdx_base, ("meta-set", ITEM_A, "fill:20000:0x42")),
    "vhdx-user-item-replace": (vhdx_with_items, ("meta-set", ITEM_A, "fill:3000:0x99")),
    "vhdx-user-item-replace-empty": (vhdx_with_items, ("meta-set", ITEM_B, "-")),
    "vhdx-user-item-delete": (vhdx_with_items, ("meta-delete", ITEM_A)),
    "vhd-identifier": (lambda d, h: differencing_child(d, h, "vhd"),
                       ("identifier", "2a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")),
    "vhd-virtual-disk-id": (lambda d, h: differencing_child(d, h, "vhd"),
                            ("disk-id", "3a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")),
    "vhd-parent-path": (lambda d, h: differencing_child(d, h, "vhd"), ("parent", "{dir}/store/moved.vhd")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_interrupted_update_reads_old_or_new(harness: Harness, tmp_path: Path, case: str) -> None:
    make, template = CASES[case]
    pristine_dir = tmp_path / "pristine"
    pristine_dir.mkdir()
    pristine = make(pristine_dir, harness)

    def fresh_copy(name: str) -> Path:
        directory = tmp_path / name
        shutil.copytree(pristine_dir, directory)
        return directory / pristine.name

    def update_args(path: Path) -> list[str]:
        return [part.replace("{dir}", str(path.parent)) for part in template]

    def normalised(answer: dict[str, Any], path: Path) -> dict[str, Any]:
        # A resolved parent location names the copy's directory.
        fields = view(answer)
        if isinstance(fields["parent_location"], str):
            fields["parent_location"] = fields["parent_location"].replace(str(path.parent), "{dir}")
        return fields

    old = normalised(harness(pristine, "--readonly", "show"), pristine)
    counted = fresh_copy("counted")
    complete = harness(counted, *update_args(counted))
    assert complete["ops"][0]["status"] == 0, complete
    changes = complete["changes"]
    new = normalised(harness(counted, "--readonly", "show"), counted)
    assert new != old, "the update must change what an open answers"
    assert new["content"] == old["content"]
    assert 2 <= changes <= 12, f"{case}: {changes} writes and flushes for one metadata update"

    seen = []
    for stop in range(changes + 1):
        image = fresh_copy(f"stop{stop}")
        stopped = harness(image, "--fault", stop, *update_args(image))
        assert stopped["ops"][0]["status"] == (0 if stop == changes else ERROR_WRITE_FAULT), (stop, stopped)
        before_repair = image.read_bytes()
        answers = [normalised(harness(image, "--readonly", "show"), image)]
        assert image.read_bytes() == before_repair, "a read-only open must not write"
        answers.append(normalised(harness(image, "show"), image))
        for answer in answers:
            assert answer in (old, new), (case, stop, answer, old, new)
        # What a read-only open sees is what the repair makes permanent.
        assert answers[0] == answers[1], (case, stop)
        seen.append("new" if answers[0] == new else "old")
        # The repaired image takes the update (a delete already done finds
        # nothing to delete), and a read-only open then answers the new value.
        again = harness(image, *update_args(image))
        done_delete = template[0] == "meta-delete" and seen[-1] == "new"
        assert again["ops"][0]["status"] == (ERROR_NOT_FOUND if done_delete else 0), (case, stop, again)
        assert normalised(harness(image, "--readonly", "show"), image) == new
    # Stopping before the first change keeps the old value; letting all of
    # them through gives the new one, and once new, later stops stay new.
    assert seen[0] == "old" and seen[-1] == "new"
    assert seen == sorted(seen, key=lambda state: state == "new")


def test_vhdx_child_takes_parents_virtual_disk_id(harness: Harness, tmp_path: Path) -> None:
    """CreateVirtualDisk copies the IsVirtualDisk items of a VHDX parent
    into the child ([MS-VHDX] 2.6.1.2): the child shows the parent's Page 83
    id, unless DO_NOT_COPY_METADATA_FROM_PARENT is given."""
    base = vhdx_base(tmp_path, harness)
    parent_id = harness(base, "--readonly", "show")["virtual_disk_id"]
    child, other = tmp_path / "child.vhdx", tmp_path / "other.vhdx"
    assert harness(child, "--create-child", base) == {"create": 0}
    assert harness(other, "--create-child", base, "--no-copy") == {"create": 0}
    assert harness(child, "--readonly", "show")["virtual_disk_id"] == parent_id
    assert harness(other, "--readonly", "show")["virtual_disk_id"] != parent_id
    assert uuid.UUID(parent_id)


@pytest.mark.parametrize("case", [name for name in CASES if name.startswith("vhdx-user-item")])
def test_handle_of_an_interrupted_update_answers_old_new_or_refuses(harness: Harness, tmp_path: Path,
                                                                    case: str) -> None:
    """After an update failed part-way, the same handle must not list or
    read user items from a half-applied table: it answers the old items,
    the new ones, or refuses with the failure's code until a reopen
    replays the log."""
    make, template = CASES[case]
    pristine_dir = tmp_path / "pristine"
    pristine_dir.mkdir()
    pristine = make(pristine_dir, harness)
    old = view(harness(pristine, "--readonly", "show"))
    counted_dir = tmp_path / "counted"
    shutil.copytree(pristine_dir, counted_dir)
    complete = harness(counted_dir / pristine.name, *template)
    new = view(complete)
    for stop in range(complete["changes"]):
        directory = tmp_path / f"stop{stop}"
        shutil.copytree(pristine_dir, directory)
        stopped = view(harness(directory / pristine.name, "--fault", stop, *template))
        if stopped["list_status"] == ERROR_WRITE_FAULT:
            continue
        assert (stopped["list_status"], stopped["items"]) in (
            (old["list_status"], old["items"]), (new["list_status"], new["items"])), (case, stop, stopped)
