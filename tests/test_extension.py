"""The extension itself: its exported surface, handles, argument conversion
and GIL release.  Behaviour of the functions on images is tested elsewhere."""

from __future__ import annotations

import ast
import gc
import os
import re
import shutil
import uuid
from pathlib import Path

import pytest

import _virtdisk
from virtdisk import errors

ROOT = Path(__file__).resolve().parent.parent
WIN32_FUNCTIONS = [
    "OpenVirtualDisk", "CreateVirtualDisk", "AttachVirtualDisk", "DetachVirtualDisk",
    "GetVirtualDiskPhysicalPath", "GetAllAttachedVirtualDiskPhysicalPaths",
    "GetStorageDependencyInformation", "GetVirtualDiskInformation",
    "SetVirtualDiskInformation", "EnumerateVirtualDiskMetadata", "GetVirtualDiskMetadata",
    "SetVirtualDiskMetadata", "DeleteVirtualDiskMetadata", "GetVirtualDiskOperationProgress",
    "CompactVirtualDisk", "MergeVirtualDisk", "ExpandVirtualDisk", "ResizeVirtualDisk",
    "MirrorVirtualDisk", "BreakMirrorVirtualDisk", "AddVirtualDiskParent",
    "QueryChangesVirtualDisk", "TakeSnapshotVhdSet", "DeleteSnapshotVhdSet", "ModifyVhdSet",
    "ApplySnapshotVhdSet", "RawSCSIVirtualDisk", "ForkVirtualDisk", "CompleteForkVirtualDisk",
]
UNKNOWN = _virtdisk.VirtualStorageType(
    _virtdisk.VirtualStorageTypeDevice.UNKNOWN, _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)


@pytest.fixture(scope="module")
def small_vhdx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64 MiB dynamic VHDX made by qemu-img."""
    import shutil
    import subprocess

    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed")
    path = tmp_path_factory.mktemp("extension") / "small.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(path), "64M"], check=True)
    return path


def stub_names() -> set[str]:
    tree = ast.parse((ROOT / "stubs/_virtdisk.pyi").read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_all_29_functions_are_exported() -> None:
    assert len(WIN32_FUNCTIONS) == 29
    for name in WIN32_FUNCTIONS:
        assert callable(getattr(_virtdisk, name)), name
        assert name in _virtdisk.__all__


def test_all_equals_the_stub() -> None:
    exported = set(_virtdisk.__all__)
    assert len(exported) == len(_virtdisk.__all__), "duplicates in __all__"
    assert exported == stub_names() - {"__all__"}
    for name in exported:
        assert hasattr(_virtdisk, name), name


def test_signatures_are_introspectable() -> None:
    import inspect

    signature = inspect.signature(_virtdisk.OpenVirtualDisk)
    assert list(signature.parameters)[:5] == [
        "virtual_storage_type", "path", "access_mask", "flags", "version"]
    # A plain builtin (the fastest call), which still shows its signature.
    query = inspect.signature(_virtdisk.GetVirtualDiskInformation)
    assert list(query.parameters) == ["handle", "version"]


def test_features_names_every_function() -> None:
    features = _virtdisk.features()
    assert sorted(features) == sorted(WIN32_FUNCTIONS)
    assert all(isinstance(value, bool) for value in features.values())
    if _virtdisk.PLATFORM == "engine":
        # The engine carries out at least these; the exact set is checked
        # against its behaviour in test_engine_api_c.py.
        assert features["OpenVirtualDisk"] and features["CreateVirtualDisk"]


def test_handles_cannot_be_made_by_hand() -> None:
    with pytest.raises(TypeError):
        _virtdisk.VirtualDiskHandle()


@pytest.mark.parametrize("bad_path", ["a\0b", b"/bytes/path", 42])
def test_bad_paths_are_rejected_before_the_call(bad_path: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        _virtdisk.OpenVirtualDisk(UNKNOWN, bad_path, 0, 0, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad_guid", [b"short", "not-a-guid", 3])
def test_bad_guids_are_rejected(bad_guid: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        _virtdisk.OpenVirtualDisk(UNKNOWN, "x.vhdx", 0, 0, 2, resiliency_guid=bad_guid)  # type: ignore[arg-type]


def test_errors_carry_code_function_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.vhdx"
    with pytest.raises(FileNotFoundError) as caught:
        _virtdisk.OpenVirtualDisk(UNKNOWN, missing, 0, 0, 2)
    error = caught.value
    assert isinstance(error, errors.VirtualDiskError)
    assert error.winerror == 2
    assert error.function == "OpenVirtualDisk"
    assert error.filename == missing


def test_null_storage_type_is_invalid_parameter() -> None:
    with pytest.raises(errors.InvalidParameterError) as caught:
        _virtdisk.OpenVirtualDisk(None, "x.vhdx", 0, 0, 2)
    assert caught.value.winerror == 87
    assert isinstance(caught.value, ValueError)


def test_unknown_version_is_invalid_parameter() -> None:
    with pytest.raises(errors.InvalidParameterError):
        _virtdisk.OpenVirtualDisk(UNKNOWN, "x.vhdx", 0, 0, 9)


def test_pcwstr_arguments_are_utf16(tmp_path: Path) -> None:
    # A name outside the BMP survives the trip as a surrogate pair: the
    # engine reports the file missing under its exact name.
    missing = tmp_path / "disque-\U0001F4BE.vhdx"
    with pytest.raises(FileNotFoundError) as caught:
        _virtdisk.OpenVirtualDisk(UNKNOWN, str(missing), 0, 0, 2)
    assert caught.value.filename == str(missing)


def test_closed_handle_is_a_clear_error(small_vhdx: Path) -> None:
    handle = _virtdisk.OpenVirtualDisk(UNKNOWN, small_vhdx, 0, 0, 2, read_only=True)
    handle.close()
    handle.close()  # closing twice is allowed
    assert handle.closed
    with pytest.raises(errors.InvalidHandleError) as caught:
        _virtdisk.GetVirtualDiskInformation(handle, _virtdisk.GetVirtualDiskInfoVersion.SIZE)
    assert caught.value.winerror == 6
    with pytest.raises(errors.InvalidHandleError):
        handle.value


def test_handle_context_manager_and_counter(small_vhdx: Path) -> None:
    before = _virtdisk.live_handle_count()
    with _virtdisk.OpenVirtualDisk(UNKNOWN, small_vhdx, 0, 0, 2, read_only=True) as handle:
        assert not handle.closed
        assert _virtdisk.live_handle_count() == before + 1
        assert isinstance(handle.value, int)
    assert handle.closed
    assert _virtdisk.live_handle_count() == before


def test_garbage_collected_handle_closes_with_resource_warning(small_vhdx: Path) -> None:
    before = _virtdisk.live_handle_count()
    handle = _virtdisk.OpenVirtualDisk(UNKNOWN, small_vhdx, 0, 0, 2, read_only=True)
    with pytest.warns(ResourceWarning, match="unclosed virtual disk handle"):
        del handle
        gc.collect()
    assert _virtdisk.live_handle_count() == before


def test_detached_raw_handle_is_still_usable(small_vhdx: Path) -> None:
    handle = _virtdisk.OpenVirtualDisk(UNKNOWN, small_vhdx, 0, 0, 2, read_only=True)
    raw = handle.detach_handle()
    assert handle.closed
    size = _virtdisk.GetVirtualDiskInformation(raw, _virtdisk.GetVirtualDiskInfoVersion.SIZE)
    assert size.virtual_size > 0
    _virtdisk.CloseHandle(raw)
    with pytest.raises(errors.InvalidHandleError):
        _virtdisk.CloseHandle(raw)


def test_every_call_into_c_releases_the_gil() -> None:
    """Each call of a VirtDisk entry point in the .pyx sits in a `with nogil:`
    block (checked on the source, where a forgotten block would be)."""
    source = (ROOT / "src/_virtdisk.pyx").read_text().splitlines()
    call = re.compile(r"\b(api\.[A-Z]\w+VirtualDisk\w*|api\.\w+VhdSet|vd_fn_\w+|vd_close_handle)\(")
    calls = 0
    for number, line in enumerate(source):
        if not call.search(line) or line.lstrip().startswith(("#", "_require_function")):
            continue
        calls += 1
        indent = len(line) - len(line.lstrip())
        for previous in reversed(source[:number]):
            previous_indent = len(previous) - len(previous.lstrip())
            if previous.strip() and previous_indent < indent:
                assert previous.strip() == "with nogil:", (number + 1, line)
                break
    assert calls >= 29


def test_module_attribute_lookups_can_specialize() -> None:
    """``_virtdisk.Name`` takes the interpreter's cached module-attribute path
    whenever the same lookup on a plain module does: the module's dict keeps
    string-only keys (a large dict literal merged into it would not)."""
    import dis
    import sys
    import types

    if sys.version_info < (3, 11):
        pytest.skip("dis shows specialized instructions from Python 3.11 on")
    plain = types.ModuleType("plain")
    plain.live_handle_count = _virtdisk.live_handle_count

    def lookups() -> object:
        return plain.live_handle_count, _virtdisk.live_handle_count

    for _ in range(64):
        lookups()
    opnames = [instruction.opname for instruction in dis.get_instructions(lookups, adaptive=True)
               if instruction.argval == "live_handle_count"]
    if opnames[0] == "LOAD_ATTR":
        pytest.skip("this interpreter does not specialize attribute lookups")
    assert opnames == [opnames[0], opnames[0]], opnames


def test_answers_reuse_enum_members_and_vendor_constants(small_vhdx: Path) -> None:
    """PROVIDER_SUBTYPE and VIRTUAL_STORAGE_TYPE answer the enum members and
    the vendor constant themselves (qemu-img's default VHDX is dynamic)."""
    version = _virtdisk.GetVirtualDiskInfoVersion
    with _virtdisk.OpenVirtualDisk(UNKNOWN, small_vhdx, 0, 0, 2, read_only=True) as handle:
        subtype = _virtdisk.GetVirtualDiskInformation(handle, version.PROVIDER_SUBTYPE)
        storage = _virtdisk.GetVirtualDiskInformation(handle, version.VIRTUAL_STORAGE_TYPE)
    assert subtype is _virtdisk.ProviderSubtype.DYNAMIC
    assert storage.device_id is _virtdisk.VirtualStorageTypeDevice.VHDX
    assert storage.vendor_id is _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT


def test_guid_arguments_accept_uuid_and_bytes(small_vhdx: Path) -> None:
    value = uuid.uuid4()
    for guid in (value, value.bytes_le, bytearray(value.bytes_le), None):
        _virtdisk.OpenVirtualDisk(UNKNOWN, small_vhdx, 0, 0, 2, read_only=True,
                                  resiliency_guid=guid).close()


def test_answers_are_named_tuples(small_vhdx: Path) -> None:
    """The answers built in C stay tuples with names: unpacking, comparison
    with a plain tuple, _fields, repr and pickling all work (every answer
    type: test_answer_types.py)."""
    import pickle

    version = _virtdisk.GetVirtualDiskInfoVersion
    with _virtdisk.OpenVirtualDisk(UNKNOWN, small_vhdx, 0, 0, 2, read_only=True) as handle:
        size = _virtdisk.GetVirtualDiskInformation(handle, version.SIZE)
        storage = _virtdisk.GetVirtualDiskInformation(handle, version.VIRTUAL_STORAGE_TYPE)
        host = _virtdisk.GetVirtualDiskInformation(handle, version.PHYSICAL_DISK)
    assert type(size) is _virtdisk.VirtualDiskSize and isinstance(size, tuple)
    virtual, physical, block, sector = size
    assert size == (virtual, physical, block, sector) == tuple(size)
    assert (size.virtual_size, size.block_size, size.sector_size) == (64 << 20, block, 512)
    assert size._fields == ("virtual_size", "physical_size", "block_size", "sector_size")
    assert dict(zip(size._fields, size))["physical_size"] == physical
    assert repr(size) == (f"_virtdisk.VirtualDiskSize(virtual_size={virtual}, physical_size={physical}, "
                          f"block_size={block}, sector_size={sector})")
    assert size == _virtdisk.VirtualDiskSize(virtual, physical, block, sector)
    assert hash(size) == hash(tuple(size))
    assert pickle.loads(pickle.dumps(size)) == size
    assert storage.device_id is _virtdisk.VirtualStorageTypeDevice.VHDX
    assert tuple(storage) == (_virtdisk.VirtualStorageTypeDevice.VHDX,
                              _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
    assert len(host) == 3 and host.is_remote is False
    # Built in place, the answer still shows its items to the garbage collector.
    assert set(gc.get_referents(size)) >= {virtual, sector}


def test_size_answer_is_shared_while_the_sizes_hold(tmp_path: Path) -> None:
    """A handle answers SIZE with its last VirtualDiskSize while no size has
    changed, and with a new one once one has; a raw handle value gets an
    answer of its own, equal to it."""
    import subprocess

    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed")
    path = tmp_path / "grows.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(path), "64M"], check=True)
    version = _virtdisk.GetVirtualDiskInfoVersion
    with _virtdisk.OpenVirtualDisk(UNKNOWN, path, 0, 0, 2) as handle:
        first = _virtdisk.GetVirtualDiskInformation(handle, version.SIZE)
        assert _virtdisk.GetVirtualDiskInformation(handle, version.SIZE) is first
        by_value = _virtdisk.GetVirtualDiskInformation(handle.value, version.SIZE)
        assert by_value == first and by_value is not first
        _virtdisk.ResizeVirtualDisk(handle, 128 << 20)
        grown = _virtdisk.GetVirtualDiskInformation(handle, version.SIZE)
        assert grown.virtual_size == 128 << 20
        # The sizes that stayed keep their ints; only the new one is built.
        assert grown.block_size is first.block_size and grown.sector_size is first.sector_size
        assert _virtdisk.GetVirtualDiskInformation(handle, version.SIZE) is grown
    assert first.virtual_size == 64 << 20
