"""What the extension saves when it makes answers: freed answers kept for the
next ones (one short list per field count), answers of ints left out of the
garbage collector's sight, and powers of two answered with ints made once.
None of it may show as anything but fresh, correct, independent answers
that free everything they hold."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import _virtdisk

INFO = _virtdisk.GetVirtualDiskInfoVersion
UNKNOWN = _virtdisk.VirtualStorageType(_virtdisk.VirtualStorageTypeDevice.UNKNOWN,
                                       _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
# How many freed answers of one field count are kept (_virtdisk_kept_answers.h).
KEPT_PER_COUNT = 16
# The module, for answers made of items their fields' types do not name: the
# types hold any object, as tuples do.
untyped: Any = _virtdisk



def kept_answer_count() -> int:
    """How many freed answers the extension keeps now (a private counter)."""
    count: Callable[[], int] = getattr(_virtdisk, "_kept_answer_count")
    return count()


def qemu_img(*arguments: str) -> str:
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed")
    return subprocess.run(["qemu-img", *arguments], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 100 MiB dynamic VHDX made by qemu-img (a size no power of two)."""
    path = tmp_path_factory.mktemp("kept") / "disk.vhdx"
    qemu_img("create", "-q", "-f", "vhdx", str(path), "100M")
    return path


@pytest.fixture
def raw_handle(image: Path) -> Iterator[int]:
    """A raw handle value: it keeps no previous SIZE answer, so every SIZE
    answer on it is built afresh."""
    with _virtdisk.OpenVirtualDisk(UNKNOWN, image, 0, 0, 2, read_only=True) as handle:
        yield handle.value


def fresh_size(raw_handle: int) -> Any:
    return _virtdisk.GetVirtualDiskInformation(raw_handle, INFO.SIZE)


def test_an_answer_in_a_kept_object_is_new_and_whole(raw_handle: int) -> None:
    first = fresh_size(raw_handle)
    values, place = tuple(first), id(first)
    second = fresh_size(raw_handle)
    assert second is not first and second == first
    del first
    third = fresh_size(raw_handle)
    if not FREE_THREADED:
        assert id(third) == place               # made in the object `first` was
    assert third is not second and tuple(third) == tuple(second) == values
    assert type(third) is _virtdisk.VirtualDiskSize and len(third) == 4
    assert sys.getrefcount(third) == sys.getrefcount(second)
    assert hash(third) == hash(values)
    assert third._fields == ("virtual_size", "physical_size", "block_size", "sector_size")


def test_answer_types_of_one_field_count_share_kept_objects(raw_handle: int) -> None:
    """A freed PhysicalDisk (three fields) becomes a VirtualDiskProgress or a
    RawScsiResponse of the caller's values, tracked as what it now holds."""
    marker = object()
    for _ in range(2 * KEPT_PER_COUNT):
        host = _virtdisk.GetVirtualDiskInformation(raw_handle, INFO.PHYSICAL_DISK)
        del host
        progress = untyped.VirtualDiskProgress(997, marker, 1 << 40)
        assert type(progress) is _virtdisk.VirtualDiskProgress
        assert tuple(progress) == (997, marker, 1 << 40) and progress.current_value is marker
        assert gc.is_tracked(progress)
        del progress
        response = _virtdisk.RawScsiResponse(0, b"\x70", 512)
        assert repr(response) == ("_virtdisk.RawScsiResponse(scsi_status=0, "
                                  "sense_info=b'p', data_transfer_length=512)")
        assert hash(response) == hash((0, b"\x70", 512))


def test_an_answer_of_ints_is_not_tracked_and_any_other_is(raw_handle: int,
                                                           image: Path) -> None:
    size = fresh_size(raw_handle)
    host = _virtdisk.GetVirtualDiskInformation(raw_handle, INFO.PHYSICAL_DISK)
    storage = _virtdisk.GetVirtualDiskInformation(raw_handle, INFO.VIRTUAL_STORAGE_TYPE)
    assert not gc.is_tracked(size) and not gc.is_tracked(host)
    assert gc.is_tracked(storage)               # an enum member and a uuid.UUID
    with _virtdisk.OpenVirtualDisk(UNKNOWN, image, 0, 0, 2, read_only=True) as handle:
        kept = _virtdisk.GetVirtualDiskInformation(handle, INFO.SIZE)
    assert not gc.is_tracked(kept)
    assert not gc.is_tracked(_virtdisk.VirtualDiskSize(1, 2, 3, True))
    item: object
    for item in ([], "text", 2.5, _virtdisk.VirtualDiskSize(1, 2, 3, 4), None, (1,),
                 _virtdisk.VirtualStorageTypeDevice.VHDX):
        assert gc.is_tracked(untyped.VirtualDiskSize(1, 2, 3, item)), item
    # The collector still sees every item, tracked or not.
    assert set(gc.get_referents(size)) >= {size.virtual_size, size.sector_size}


def test_a_cycle_through_an_answer_is_collected() -> None:
    class Marker:
        pass

    marker = Marker()
    held: list[object] = [marker]
    answer = untyped.ChangedRanges(held, 0)
    held.append(answer)
    gone = weakref.ref(marker)
    del marker, held, answer
    gc.collect()
    assert gone() is None


def test_a_million_nested_answers_of_one_kept_count_free_in_order() -> None:
    """Deep nesting through the trashcan, with the lists filling as the
    answers go, in a process of its own (a crash must not take the suite)."""
    script = textwrap.dedent("""
        import _virtdisk
        x = _virtdisk.VirtualDiskSize(0, 0, 0, 0)
        for depth in range(1_000_000):
            x = _virtdisk.VirtualDiskSize(x, depth, 0, 0)
        del x
        sizes = [_virtdisk.VirtualDiskSize(n, n, n, n) for n in range(100)]
        assert [tuple(size) for size in sizes] == [(n, n, n, n) for n in range(100)]
        print("freed")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout == "freed\n", result.stderr[-2000:]


@pytest.mark.skipif(FREE_THREADED, reason="a free-threaded build keeps no freed answers")
def test_a_few_freed_answers_are_kept_and_no_more() -> None:
    del [_virtdisk.VirtualDiskSize(n, n, n, n) for n in range(100)][:]
    full = kept_answer_count()                  # the four-field list is full
    answers = [_virtdisk.VirtualDiskSize(n, n, n, n) for n in range(100)]
    assert kept_answer_count() == full - KEPT_PER_COUNT
    del answers
    assert kept_answer_count() == full
    again = [_virtdisk.VirtualDiskSize(n, 0, 0, 0) for n in range(KEPT_PER_COUNT)]
    assert kept_answer_count() == full - KEPT_PER_COUNT
    assert [answer.virtual_size for answer in again] == list(range(KEPT_PER_COUNT))


@pytest.mark.skipif(FREE_THREADED, reason="a free-threaded build keeps no freed answers")
def test_the_kept_answers_and_the_powers_of_two_go_at_exit(image: Path) -> None:
    """The module's atexit hook frees every kept answer; answers made after it
    are still right, and are freed for good."""
    script = textwrap.dedent(f"""
        import atexit, _virtdisk
        storage = _virtdisk.VirtualStorageType(0, _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
        handle = _virtdisk.OpenVirtualDisk(storage, {str(image)!r}, 0, 0, 2, read_only=True)
        size = _virtdisk.GetVirtualDiskInformation(handle.value, 1)
        expected = tuple(size)
        del size
        assert _virtdisk._kept_answer_count() > 0
        handle.close()
        atexit._run_exitfuncs()
        assert _virtdisk._kept_answer_count() == 0
        handle = _virtdisk.OpenVirtualDisk(storage, {str(image)!r}, 0, 0, 2, read_only=True)
        size = _virtdisk.GetVirtualDiskInformation(handle.value, 1)
        assert tuple(size) == expected, (tuple(size), expected)
        del size
        handle.close()
        assert _virtdisk._kept_answer_count() == 0
        print("emptied")
    """)
    result = subprocess.run([sys.executable, "-X", "dev", "-c", script], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "emptied\n", result.stderr[-2000:]


def test_many_answers_leave_nothing_behind(raw_handle: int) -> None:
    """A hundred thousand answers, fresh SIZE and PHYSICAL_DISK ones and ones
    made by fields, hold no memory, no object and no reference afterwards."""
    item, answer_type = object(), _virtdisk.VirtualDiskSize

    def answers(count: int) -> None:
        for _ in range(count):
            fresh_size(raw_handle)
            _virtdisk.GetVirtualDiskInformation(raw_handle, INFO.PHYSICAL_DISK)
            untyped.VirtualDiskProgress(997, item, 1 << 70)
            untyped.StorageDependencyInfo(*[item] * 8)

    answers(1_000)                              # the lists and caches fill
    gc.collect()
    items, types = sys.getrefcount(item), sys.getrefcount(answer_type)
    objects = len(gc.get_objects())
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        answers(100_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert grown < 4096, grown
    assert sys.getrefcount(item) == items
    if not FREE_THREADED:
        assert sys.getrefcount(answer_type) == types
    assert abs(len(gc.get_objects()) - objects) < 16


@pytest.mark.parametrize("size", [1 << 20, 100 << 20, 1 << 30, (3 << 30) + (1 << 20),
                                  1 << 40, (64 << 40) - (1 << 20)])
def test_sizes_agree_with_qemu_img(tmp_path: Path, size: int) -> None:
    """Powers of two (answered with the ints made once) and other sizes, each
    answered as qemu-img reports it."""
    path = tmp_path / "sized.vhdx"
    qemu_img("create", "-q", "-f", "vhdx", str(path), str(size))
    reported = json.loads(qemu_img("info", "--output=json", str(path)))
    with _virtdisk.OpenVirtualDisk(UNKNOWN, path, 0, 0, 2, read_only=True) as handle:
        fresh = fresh_size(handle.value)
        again = fresh_size(handle.value)
        kept = _virtdisk.GetVirtualDiskInformation(handle, INFO.SIZE)
    assert fresh == again == kept
    assert fresh.virtual_size == reported["virtual-size"] == size
    assert fresh.physical_size == path.stat().st_size
    assert fresh.sector_size == 512 and fresh.block_size > 0
    assert all(type(value) is int for value in fresh)
    # A power of two is one int, shared by every answer that holds it.
    assert fresh.sector_size is again.sector_size and fresh.block_size is again.block_size
