"""The answer types (VirtualDiskSize and the rest) are structseq types, as
os.stat_result is: tuples with named fields, built in C, that unpack, index,
compare and hash as plain tuples, pickle to their own type and are made by
fields as named tuples are."""

from __future__ import annotations

import copy
import gc
import json
import pickle
import shutil
import subprocess
import sys
import sysconfig
import weakref
from pathlib import Path
from typing import Any

import pytest

import _virtdisk
from mypy_snippet import run_mypy

MICROSOFT = _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT
VHDX = _virtdisk.VirtualStorageType(_virtdisk.VirtualStorageTypeDevice.VHDX, MICROSOFT)
UNKNOWN = _virtdisk.VirtualStorageType(_virtdisk.VirtualStorageTypeDevice.UNKNOWN,
                                       _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
INFO = _virtdisk.GetVirtualDiskInfoVersion

# Every answer type: its field names in order, and one value for each.
ANSWERS: dict[str, dict[str, Any]] = {
    "VirtualStorageType": {"device_id": _virtdisk.VirtualStorageTypeDevice.VHDX,
                           "vendor_id": MICROSOFT},
    "VirtualDiskSize": {"virtual_size": 64 << 20, "physical_size": 4 << 20,
                        "block_size": 32 << 20, "sector_size": 512},
    "ParentLocation": {"parent_resolved": True, "paths": ["/images/base.vhdx"]},
    "PhysicalDisk": {"logical_sector_size": 512, "physical_sector_size": 4096,
                     "is_remote": False},
    "ChangeTrackingState": {"enabled": True, "newer_changes": False, "most_recent_id": "rct-7"},
    "StorageDependencyInfo": {
        "dependency_type_flags": _virtdisk.DependentDiskFlag.PARENT,
        "provider_specific_flags": 0, "virtual_storage_type": VHDX, "ancestor_level": 1,
        "dependency_device_name": "device", "host_volume_name": "host",
        "dependent_volume_name": "volume", "dependent_volume_relative_path": "base.vhdx"},
    "VirtualDiskProgress": {"operation_status": 997, "current_value": 10,
                            "completion_value": 100},
    "ChangedRanges": {"ranges": [(0, 4096), (1 << 20, 512)], "processed_length": 2 << 20},
    "RawScsiResponse": {"scsi_status": 0, "sense_info": b"\x70\x00\x05",
                        "data_transfer_length": 512},
}


def made(name: str) -> tuple[Any, tuple[Any, ...]]:
    """An answer of type `name`, made by position, and its values."""
    values = tuple(ANSWERS[name].values())
    return getattr(_virtdisk, name)(*values), values


@pytest.mark.parametrize("name", ANSWERS)
def test_an_answer_is_a_tuple_with_names(name: str) -> None:
    answer, values = made(name)
    fields = tuple(ANSWERS[name])
    answer_type = getattr(_virtdisk, name)
    assert type(answer) is answer_type
    assert len(answer) == len(fields) and tuple(answer) == values
    assert answer_type._fields == answer._fields == fields
    assert answer_type.__match_args__ == fields
    for index, field in enumerate(fields):
        assert getattr(answer, field) is answer[index] is answer[index - len(fields)]
    assert answer[1:] == values[1:] and type(answer[1:]) is tuple
    unpacked = [*answer]
    assert unpacked == list(values)
    assert answer == values and values == answer
    if all(not isinstance(value, list) for value in values):
        assert hash(answer) == hash(values)
    assert answer != values[:-1]
    with pytest.raises(AttributeError):
        setattr(answer, fields[0], values[0])
    assert isinstance(answer, tuple)


@pytest.mark.parametrize("name", ANSWERS)
def test_an_answer_is_made_by_position_or_by_name(name: str) -> None:
    answer_type = getattr(_virtdisk, name)
    values = ANSWERS[name]
    first, *rest = values
    assert answer_type(**values) == answer_type(*values.values())
    assert answer_type(values[first], **{field: values[field] for field in rest}) == \
        tuple(values.values())
    with pytest.raises(TypeError, match="missing"):
        answer_type(*list(values.values())[:-1])
    with pytest.raises(TypeError, match="positional"):
        answer_type(*values.values(), None)
    with pytest.raises(TypeError, match="multiple values"):
        answer_type(*values.values(), **{first: values[first]})
    with pytest.raises(TypeError, match="unexpected"):
        answer_type(**values, other=None)
    with pytest.raises(TypeError, match="not a subtype"):
        answer_type.__new__(tuple, *values.values())


@pytest.mark.parametrize("name", ANSWERS)
def test_an_answer_is_a_structseq_of_the_module(name: str) -> None:
    answer, _ = made(name)
    answer_type = type(answer)
    fields = len(ANSWERS[name])
    assert (answer_type.n_fields, answer_type.n_sequence_fields,
            answer_type.n_unnamed_fields) == (fields, fields, 0)
    assert answer_type.__module__ == "_virtdisk" and answer_type.__qualname__ == name
    assert getattr(_virtdisk, answer_type.__name__) is answer_type
    assert name in _virtdisk.__all__
    assert answer_type.__doc__
    assert all(getattr(answer_type, field).__doc__ for field in ANSWERS[name])
    with pytest.raises(TypeError):
        type("Derived", (answer_type,), {})     # structseq types take no subclass


@pytest.mark.parametrize("name", ANSWERS)
def test_a_freed_answer_lets_go_of_its_items_and_its_type(name: str) -> None:
    answer_type = getattr(_virtdisk, name)
    item = object()
    items, types = sys.getrefcount(item), sys.getrefcount(answer_type)
    answers = [answer_type(*[item] * answer_type.n_fields) for _ in range(100)]
    assert sys.getrefcount(item) == items + 100 * answer_type.n_fields
    del answers
    assert sys.getrefcount(item) == items
    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        # A free-threaded build defers the type's references from its
        # instances: its count does not move with theirs.
        assert sys.getrefcount(answer_type) == types


@pytest.mark.parametrize("name", ANSWERS)
def test_no_short_answer_can_be_made(name: str) -> None:
    # An answer reads each field at a fixed place: one made with fewer
    # items would read past its end.
    answer_type = getattr(_virtdisk, name)
    with pytest.raises(TypeError, match="not safe"):
        tuple.__new__(answer_type, (1,))
    with pytest.raises(TypeError):
        answer_type.n_fields = 1
    with pytest.raises(TypeError):
        answer_type._fields = ("a",)
    assert answer_type._fields == answer_type.__match_args__


def check_nested_million_deep_is_freed(nest: str) -> None:
    """Nests answers a million deep with `nest` (an expression of the
    previous `x`) and frees them, in an interpreter of its own: without the
    trashcan that interpreter dies (SIGSEGV)."""
    script = ("import copy, _virtdisk\n"
              "x = _virtdisk.ChangedRanges((), 0)\n"
              "for _ in range(1_000_000):\n"
              f"    x = {nest}\n"
              "del x\n"
              "print('freed')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout == "freed\n", result.stderr[-2000:]


def test_deeply_nested_answers_are_freed_without_running_out_of_stack() -> None:
    check_nested_million_deep_is_freed("_virtdisk.ChangedRanges(x, 0)")


@pytest.mark.parametrize("name", ANSWERS)
def test_the_repr_names_every_field(name: str) -> None:
    answer, _ = made(name)
    shown = ", ".join(f"{field}={value!r}" for field, value in ANSWERS[name].items())
    assert repr(answer) == f"_virtdisk.{name}({shown})"


@pytest.mark.parametrize("name", ANSWERS)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_an_answer_pickles_to_its_own_type(name: str, protocol: int) -> None:
    answer, values = made(name)
    again = pickle.loads(pickle.dumps(answer, protocol))
    assert type(again) is type(answer) and again == answer
    assert f"_virtdisk\n{name}".encode() in pickle.dumps(answer, 0)
    for copied in (copy.copy(answer), copy.deepcopy(answer)):
        assert type(copied) is type(answer) and tuple(copied) == values


@pytest.mark.skipif(sys.version_info < (3, 13), reason="copy.replace is new in Python 3.13")
@pytest.mark.parametrize("name", ANSWERS)
def test_copy_replace_makes_an_answer_with_one_field_changed(name: str) -> None:
    answer, values = made(name)
    first = next(iter(ANSWERS[name]))
    replaced = copy.replace(answer, **{first: None})  # type: ignore[attr-defined]
    assert type(replaced) is type(answer) and replaced == (None, *values[1:])


@pytest.mark.skipif(sys.version_info < (3, 13), reason="copy.replace is new in Python 3.13")
def test_copy_replace_tracks_what_the_copy_holds() -> None:
    """A copy holding a list is tracked, so that a cycle through it is
    collected; one of ints alone is not; an unknown field is refused."""
    class Paths(list[object]):
        pass

    paths = Paths()
    replaced = copy.replace(_virtdisk.ParentLocation(True, []), paths=paths)  # type: ignore[attr-defined]
    assert gc.is_tracked(replaced) and replaced.paths is paths
    paths.append(replaced)
    collected = weakref.ref(paths)
    del paths, replaced
    gc.collect()
    assert collected() is None
    size = _virtdisk.VirtualDiskSize(1, 2, 4, 512)
    assert not gc.is_tracked(copy.replace(size, block_size=8))  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="unexpected"):
        copy.replace(size, block_sizes=8)  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        size.__replace__(1)  # type: ignore[call-arg]


@pytest.mark.skipif(sys.version_info < (3, 13), reason="copy.replace is new in Python 3.13")
def test_answers_nested_by_copy_replace_are_freed_without_running_out_of_stack() -> None:
    check_nested_million_deep_is_freed("copy.replace(x, ranges=x)")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 64 MiB dynamic VHDX made by qemu-img, and a differencing child of it."""
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed")
    directory = tmp_path_factory.mktemp("answers")
    base, child = directory / "base.vhdx", directory / "child.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(base), "64M"], check=True)
    _virtdisk.CreateVirtualDisk(VHDX, child, 0, 0, 2, parent_path=base).close()
    return base, child


def test_answers_built_in_c_are_the_same_types(images: tuple[Path, Path]) -> None:
    """The extension's own answers, a fresh SIZE one (a raw handle keeps no
    previous answer) among them, are the structseq types, agree with
    qemu-img, and show their items to the garbage collector's traversal."""
    base, child = images
    reported = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(base)],
                                         check=True, capture_output=True, text=True).stdout)
    with _virtdisk.OpenVirtualDisk(UNKNOWN, base, 0, 0, 2, read_only=True) as handle:
        fresh = _virtdisk.GetVirtualDiskInformation(handle.value, INFO.SIZE)
        again = _virtdisk.GetVirtualDiskInformation(handle.value, INFO.SIZE)
        kept = _virtdisk.GetVirtualDiskInformation(handle, INFO.SIZE)
        storage = _virtdisk.GetVirtualDiskInformation(handle, INFO.VIRTUAL_STORAGE_TYPE)
        host = _virtdisk.GetVirtualDiskInformation(handle, INFO.PHYSICAL_DISK)
    with _virtdisk.OpenVirtualDisk(UNKNOWN, child, 0, 0, 2, read_only=True) as handle:
        parent = _virtdisk.GetVirtualDiskInformation(handle, INFO.PARENT_LOCATION)
    assert type(fresh) is type(kept) is _virtdisk.VirtualDiskSize
    assert fresh is not again and fresh == again == kept
    assert fresh.virtual_size == reported["virtual-size"]
    assert fresh.physical_size == base.stat().st_size
    assert type(storage) is _virtdisk.VirtualStorageType and storage == VHDX
    assert type(host) is _virtdisk.PhysicalDisk and host.is_remote is False
    assert type(parent) is _virtdisk.ParentLocation and parent.parent_resolved is True
    assert [Path(path).resolve() for path in parent.paths] == [base.resolve()]
    assert pickle.loads(pickle.dumps(parent)) == parent
    # Built in place, an answer that may hold a list is tracked as a tuple
    # is; one of ints alone (test_kept_answers.py) is not.
    assert gc.is_tracked(parent) and gc.is_tracked(storage) and not gc.is_tracked(fresh)
    assert set(gc.get_referents(fresh)) >= {fresh.virtual_size, fresh.sector_size}
    assert parent.paths in gc.get_referents(parent)


def test_mypy_types_fields_unpacking_and_construction(tmp_path: Path) -> None:
    result = run_mypy(tmp_path, "\n".join([
        "import uuid",
        "import _virtdisk",
        "size = _virtdisk.VirtualDiskSize(1, 2, block_size=3, sector_size=4)",
        "virtual, physical, block, sector = size",
        "reveal_type(size.virtual_size)",
        "reveal_type(block)",
        "storage = _virtdisk.VirtualStorageType(0, uuid.UUID(int=0))",
        "reveal_type(storage.vendor_id)",
        "reveal_type(_virtdisk.VirtualDiskSize.n_fields)",
        "reveal_type(_virtdisk.ParentLocation._fields)",
        "size.virtual_size = 5",
        "size.nothing",
    ]))
    lines = result.stdout.splitlines()
    assert 'snippet.py:5: note: Revealed type is "int"' in lines
    assert 'snippet.py:6: note: Revealed type is "int"' in lines
    assert 'snippet.py:8: note: Revealed type is "uuid.UUID"' in lines
    assert 'snippet.py:9: note: Revealed type is "int"' in lines
    assert 'snippet.py:10: note: Revealed type is "tuple[str, ...]"' in lines
    assert any(line.startswith("snippet.py:11: error:") for line in lines), result.stdout
    assert any(line.startswith("snippet.py:12: error:") for line in lines), result.stdout
    assert sum(": error:" in line for line in lines) == 2, result.stdout
