"""Calls whose outcome must be the same on Windows and on the portable engine.

Each case breaks one of the argument rules Microsoft documents for
OpenVirtualDisk (every one answered with ERROR_INVALID_PARAMETER), with all
other arguments valid.  scripts/check-windows runs them against the Linux
build and records what each raises; the smoke test runs them against the
Windows build under Wine, whose VirtDisk.dll checks the same arguments
before anything else, and requires the same exception classes.  The missing
path keeps any call that got past its checks from touching a file.
"""

from __future__ import annotations

from typing import Any, Callable


def open_argument_cases(module: Any, missing_path: str) -> dict[str, Callable[[], Any]]:
    access = module.VirtualDiskAccessMask
    flag = module.OpenVirtualDiskFlag
    vhdx = module.VirtualStorageType(module.VirtualStorageTypeDevice.VHDX,
                                     module.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)

    def open_(storage_type: Any = vhdx, path: Any = missing_path, mask: int = access.ALL,
              flags: int = flag.NONE, version: Any = 1) -> Callable[[], Any]:
        return lambda: module.OpenVirtualDisk(storage_type, path, mask, flags, version)

    return {
        "no storage type": open_(storage_type=None),
        "no path": open_(path=None),
        "access mask bit outside ALL": open_(mask=access.ALL | 0x01000000),
        "undefined flag bit": open_(flags=0x80000000),
        "version UNSPECIFIED": open_(version=0),
        "unknown version 4": open_(version=4),
        "version 2 with an access mask": open_(version=2, mask=access.ALL),
    }


def outcome(call: Callable[[], Any]) -> dict[str, Any]:
    """What a call raised, as plain data both interpreters can compare."""
    try:
        result = call()
    except OSError as error:
        kind = type(error)
        return {"raised": f"{kind.__module__}.{kind.__qualname__}",
                "winerror": getattr(error, "winerror", None),
                "function": getattr(error, "function", None)}
    except Exception as error:  # noqa: BLE001 - the class is the result
        other = type(error)
        return {"raised": f"{other.__module__}.{other.__qualname__}", "winerror": None,
                "function": None}
    close = getattr(result, "close", None)
    if close is not None:
        close()
    return {"raised": None, "winerror": None, "function": None}


def enum_values(module: Any) -> dict[str, dict[str, Any]]:
    """Every enum class the module exports: its base and all member names
    (aliases included) with their values."""
    import enum

    result = {}
    for name in sorted(dir(module)):
        value = getattr(module, name)
        if isinstance(value, type) and issubclass(value, enum.Enum) and value.__module__ == module.__name__:
            base = "IntFlag" if issubclass(value, enum.IntFlag) else (
                "IntEnum" if issubclass(value, enum.IntEnum) else value.__mro__[1].__name__)
            result[name] = {"base": base,
                            "members": {k: int(v.value) for k, v in value.__members__.items()}}
    return result
