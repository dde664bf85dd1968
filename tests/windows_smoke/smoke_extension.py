"""The cross-built _virtdisk.pyd on a real Windows CPython, under Wine.

Wine's VirtDisk.dll implements only OpenVirtualDisk (argument checks, then
ERROR_CALL_NOT_IMPLEMENTED), DetachVirtualDisk (always
ERROR_INVALID_PARAMETER) and GetStorageDependencyInformation (an empty
answer); every other export aborts the process, so these tests call nothing
else.  `expected` comes from scripts/check-windows: the stub's enum values,
what the Linux build does with the same calls, and the names Wine's
VirtDisk.dll exports.
"""

from __future__ import annotations

import sys
from typing import Any

import _virtdisk
import cases
from virtdisk import errors

MISSING_PATH = "C:\\virtdisk-smoke-test-missing\\disk.vhdx"


class Skip(Exception):
    pass


def test_the_windows_build_is_loaded(expected: dict[str, Any]) -> None:
    assert sys.platform == "win32", sys.platform
    assert _virtdisk.__file__.endswith(expected["pyd_name"]), _virtdisk.__file__
    assert _virtdisk.PLATFORM == "windows", _virtdisk.PLATFORM


def test_enums_equal_the_stub(expected: dict[str, Any]) -> None:
    mine = cases.enum_values(_virtdisk)
    stub = expected["stub_enums"]
    assert sorted(mine) == sorted(stub), (sorted(set(mine) ^ set(stub)))
    for name, described in stub.items():
        assert mine[name]["base"] == described["base"], (name, mine[name]["base"])
        assert mine[name]["members"] == described["members"], (name, mine[name]["members"])


def test_enums_equal_the_linux_build(expected: dict[str, Any]) -> None:
    if expected["linux_enums"] is None:
        raise Skip("the Linux build of _virtdisk was not importable")
    assert cases.enum_values(_virtdisk) == expected["linux_enums"]


def test_features_name_what_this_virtdisk_dll_exports(expected: dict[str, Any]) -> None:
    exported = set(expected["wine_virtdisk_exports"])
    wanted = {name: True for name in expected["linked_functions"]}
    wanted.update({name: name in exported for name in expected["runtime_resolved"]})
    assert _virtdisk.features() == wanted, _virtdisk.features()


def test_open_argument_checks_raise_as_on_linux(expected: dict[str, Any]) -> None:
    if expected["linux_open_outcomes"] is None:
        raise Skip("the Linux build of _virtdisk was not importable")
    calls = cases.open_argument_cases(_virtdisk, MISSING_PATH)
    mine = {name: cases.outcome(call) for name, call in calls.items()}
    assert mine == expected["linux_open_outcomes"], mine


def test_open_argument_checks_raise_invalid_parameter(expected: dict[str, Any]) -> None:
    for name, call in cases.open_argument_cases(_virtdisk, MISSING_PATH).items():
        result = cases.outcome(call)
        assert result["raised"] == "virtdisk.errors.InvalidParameterError", (name, result)
        assert result["winerror"] == errors.ERROR_INVALID_PARAMETER, (name, result)


def test_valid_version_1_parameters_pass_wines_checks(expected: dict[str, Any]) -> None:
    # Wine returns ERROR_CALL_NOT_IMPLEMENTED only when the storage type, the
    # path, the mask, the flags and OPEN_VIRTUAL_DISK_PARAMETERS (Version 1)
    # all pass its checks: the struct arrived as the SDK lays it out.
    vhdx = _virtdisk.VirtualStorageType(_virtdisk.VirtualStorageTypeDevice.VHDX,
                                        _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
    try:
        _virtdisk.OpenVirtualDisk(vhdx, MISSING_PATH, _virtdisk.VirtualDiskAccessMask.ALL,
                                  _virtdisk.OpenVirtualDiskFlag.NO_PARENTS, 1)
    except errors.CallNotImplementedError as error:
        assert error.winerror == errors.ERROR_CALL_NOT_IMPLEMENTED, error.winerror
        assert error.function == "OpenVirtualDisk", error.function
        assert error.filename == MISSING_PATH, error.filename
    else:
        raise AssertionError("OpenVirtualDisk returned a handle under Wine")


def test_detach_reports_invalid_parameter(expected: dict[str, Any]) -> None:
    try:
        _virtdisk.DetachVirtualDisk(0)
    except errors.InvalidParameterError as error:
        assert error.winerror == errors.ERROR_INVALID_PARAMETER
        assert error.function == "DetachVirtualDisk"
    else:
        raise AssertionError("DetachVirtualDisk succeeded under Wine")


def test_storage_dependency_information_comes_back_empty(expected: dict[str, Any]) -> None:
    flags = _virtdisk.GetStorageDependencyFlag.HOST_VOLUMES
    assert list(_virtdisk.GetStorageDependencyInformation(0, flags, 2)) == []
    assert list(_virtdisk.GetStorageDependencyInformation(0, flags, 1)) == []


def test_no_handle_is_left_open(expected: dict[str, Any]) -> None:
    assert _virtdisk.live_handle_count() == 0, _virtdisk.live_handle_count()
