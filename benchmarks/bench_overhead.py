#!/usr/bin/env python3
"""Per-call overhead of the bindings over the engine's own C entry points.

One process times the same engine functions through four paths:

* the limit: a plain C loop (benchmarks/c/loops.c), built with the engine
  into a shared library and called once per repetition;
* ``_virtdisk``, the extension;
* ``virtdisk``, the facade;
* ctypes, wrapping the same C symbols of that shared library by hand, the way
  a user without bindings would (with argtypes and restype set).

Three calls are timed: OpenVirtualDisk failing fast on an invalid access mask
(ERROR_INVALID_PARAMETER), GetVirtualDiskInformation(SIZE) on an open handle
(no I/O), and a whole open + GetVirtualDiskInformation(SIZE) + close of a
small dynamic VHDX made by qemu-img.  Every figure is the best of several
repetitions, in nanoseconds per call; the ratios are what matter.

The no-I/O call is timed the way a user makes it: the loop calls the path's
function itself, with no wrapper frame around each call, and so does every
path's loop alike.  A row for the floor of any Python caller (the same loop
calling a trivial C builtin with two arguments, ``operator.is_``) shows how
much of each figure is the interpreter's rather than the binding's; it is
shown, never subtracted.  Asked of a raw handle value, which keeps no
previous answer, GetVirtualDiskInformation(SIZE) builds its VirtualDiskSize
afresh on every call: that row is the cost of a new answer.

    python benchmarks/bench_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import ctypes
import operator
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _virtdisk
import virtdisk
from virtdisk.errors import error_from_code

ROOT = Path(__file__).resolve().parent.parent
INVALID_MASK = 0x80000000
SIZE = _virtdisk.GetVirtualDiskInfoVersion.SIZE
FRAGMENTATION = _virtdisk.GetVirtualDiskInfoVersion.FRAGMENTATION


def build_library(directory: Path) -> ctypes.CDLL:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        sys.exit("a C compiler is needed for the C loop and the ctypes wrapper")
    library = directory / "libvdbench.so"
    sources = sorted(str(path) for path in (ROOT / "src/vdengine").rglob("*.c"))
    subprocess.run([compiler, "-std=c11", "-O2", "-shared", "-fPIC", f"-I{ROOT / 'src/include'}",
                    f"-I{ROOT / 'src/vdengine'}", *sources, str(ROOT / "benchmarks/c/loops.c"),
                    "-lpthread", "-o", str(library)], check=True)
    return ctypes.CDLL(str(library))


class GUID(ctypes.Structure):
    _fields_ = [("Data1", ctypes.c_uint32), ("Data2", ctypes.c_uint16),
                ("Data3", ctypes.c_uint16), ("Data4", ctypes.c_uint8 * 8)]


class VIRTUAL_STORAGE_TYPE(ctypes.Structure):
    _fields_ = [("DeviceId", ctypes.c_uint32), ("VendorId", GUID)]


class OPEN_V2(ctypes.Structure):
    _fields_ = [("GetInfoOnly", ctypes.c_int32), ("ReadOnly", ctypes.c_int32),
                ("ResiliencyGuid", GUID), ("SnapshotId", GUID)]


class OPEN_VIRTUAL_DISK_PARAMETERS(ctypes.Structure):
    _fields_ = [("Version", ctypes.c_uint32), ("Version2", OPEN_V2)]


class SIZE_INFO(ctypes.Structure):
    _fields_ = [("VirtualSize", ctypes.c_uint64), ("PhysicalSize", ctypes.c_uint64),
                ("BlockSize", ctypes.c_uint32), ("SectorSize", ctypes.c_uint32)]


class GET_VIRTUAL_DISK_INFO(ctypes.Structure):
    _fields_ = [("Version", ctypes.c_uint32), ("_pad", ctypes.c_uint32), ("Size", SIZE_INFO)]


class HandWrittenCtypes:
    """What a user writes with ctypes: argtypes, restype, and an OSError on
    failure (codes kept unsigned)."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self.open_disk = library.OpenVirtualDisk
        self.open_disk.argtypes = [ctypes.POINTER(VIRTUAL_STORAGE_TYPE), ctypes.c_char_p,
                                   ctypes.c_uint32, ctypes.c_uint32,
                                   ctypes.POINTER(OPEN_VIRTUAL_DISK_PARAMETERS),
                                   ctypes.POINTER(ctypes.c_void_p)]
        self.open_disk.restype = ctypes.c_uint32
        self.get_info = library.GetVirtualDiskInformation
        self.get_info.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32),
                                  ctypes.POINTER(GET_VIRTUAL_DISK_INFO),
                                  ctypes.POINTER(ctypes.c_uint32)]
        self.get_info.restype = ctypes.c_uint32
        self.close_handle = library.vd_engine_close_handle
        self.close_handle.argtypes = [ctypes.c_void_p]
        self.close_handle.restype = ctypes.c_uint32
        self.storage_type = VIRTUAL_STORAGE_TYPE()

    @staticmethod
    def wide(path: str) -> bytes:
        return path.encode("utf-16-le") + b"\0\0"

    def open(self, path: str, mask: int = 0) -> int:
        parameters = OPEN_VIRTUAL_DISK_PARAMETERS(2)
        parameters.Version2.ReadOnly = 1
        handle = ctypes.c_void_p()
        code = self.open_disk(ctypes.byref(self.storage_type), self.wide(path), mask, 0,
                              ctypes.byref(parameters) if mask == 0 else None,
                              ctypes.byref(handle))
        if code:
            raise OSError(0, f"OpenVirtualDisk failed with {code:#x}", path, code)
        assert handle.value is not None
        return handle.value

    def size(self, handle: int) -> int:
        info = GET_VIRTUAL_DISK_INFO(int(SIZE))
        size = ctypes.c_uint32(ctypes.sizeof(info))
        code = self.get_info(handle, ctypes.byref(size), ctypes.byref(info), None)
        if code:
            raise OSError(0, f"GetVirtualDiskInformation failed with {code:#x}", None, code)
        return int(info.Size.VirtualSize)

    def close(self, handle: int) -> None:
        self.close_handle(handle)


def best_ns_per_call(function: Callable[[int], object], iterations: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        function(iterations)
        best = min(best, (time.perf_counter_ns() - start) / iterations)
    return best


def python_loop(call: Callable[[], object]) -> Callable[[int], None]:
    def run(iterations: int) -> None:
        for _ in range(iterations):
            call()
    return run


def direct_call_loop(function: Callable[[object, object], object], first: object,
                     second: object) -> Callable[[int], None]:
    """Calls ``function(first, second)`` from the timing loop's own frame, as
    a caller's code does (no lambda between the loop and the call)."""
    def run(iterations: int) -> None:
        call, a, b = function, first, second
        for _ in range(iterations):
            call(a, b)
    return run


def virtual_size_loop(disk: virtdisk.VirtualDisk) -> Callable[[int], None]:
    """Reads the facade's property from the timing loop's own frame."""
    def run(iterations: int) -> None:
        opened = disk
        for _ in range(iterations):
            opened.virtual_size
    return run


def failing_loop(call: Callable[[], object]) -> Callable[[int], None]:
    def run(iterations: int) -> None:
        for _ in range(iterations):
            try:
                call()
            except OSError:
                pass
    return run


def report(title: str, rows: dict[str, float], targets: list[tuple[str, bool]]) -> None:
    limit = rows["C loop (limit)"]
    print(f"\n{title}")
    print(f"  {'path':<30}{'ns/call':>10}{'over C':>10}{'x C':>9}")
    for name, value in rows.items():
        print(f"  {name:<30}{value:>10.1f}{value - limit:>10.1f}{value / limit:>9.2f}")
    for text, met in targets:
        print(f"  target: {text:<60} {'met' if met else 'MISSED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    options = parser.parse_args()
    iterations, repeats = (2_000, 3) if options.quick else (200_000, 7)
    io_iterations = iterations // 10

    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        library = build_library(directory)
        by_hand = HandWrittenCtypes(library)
        image = directory / "small.vhdx"
        subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(image), "64M"], check=True)
        path = str(image)
        wide_path = ctypes.create_string_buffer(by_hand.wide(path))
        library.bench_invalid_parameter_loop.argtypes = [ctypes.c_char_p, ctypes.c_uint64]
        library.bench_size_loop.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        library.bench_size_loop.restype = ctypes.c_uint64
        library.bench_open_info_close_loop.argtypes = [ctypes.c_char_p, ctypes.c_uint64]
        library.bench_open_info_close_loop.restype = ctypes.c_uint64
        storage_type = _virtdisk.VirtualStorageType(0, _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)

        print(f"Python {sys.version.split()[0]}, {iterations} calls (I/O: {io_iterations}), "
              f"best of {repeats}")

        # 1. A call that fails at once in C.  Both bindings then build and
        # raise an exception, which costs far more than the call; each
        # path's own raise is timed alone so the binding's share shows.
        def raise_extension_error() -> None:
            raise error_from_code(87, "OpenVirtualDisk", path)

        def raise_ctypes_error() -> None:
            raise OSError(0, f"OpenVirtualDisk failed with {87:#x}", path, 87)

        invalid = {
            "C loop (limit)": best_ns_per_call(
                lambda n: library.bench_invalid_parameter_loop(wide_path, n), iterations, repeats),
            "_virtdisk": best_ns_per_call(failing_loop(
                lambda: _virtdisk.OpenVirtualDisk(storage_type, path, INVALID_MASK, 0, None)),
                iterations, repeats),
            "ctypes by hand": best_ns_per_call(failing_loop(
                lambda: by_hand.open(path, INVALID_MASK)), iterations, repeats),
            "raise alone (_virtdisk's)": best_ns_per_call(
                failing_loop(raise_extension_error), iterations, repeats),
            "raise alone (ctypes')": best_ns_per_call(
                failing_loop(raise_ctypes_error), iterations, repeats),
        }
        limit = invalid["C loop (limit)"]
        extension_over = invalid["_virtdisk"] - invalid["raise alone (_virtdisk's)"] - limit
        ctypes_over = invalid["ctypes by hand"] - invalid["raise alone (ctypes')"] - limit
        report("OpenVirtualDisk -> ERROR_INVALID_PARAMETER (raises an exception)", invalid, [
            (f"extension adds <= 100 ns besides its raise ({extension_over:.0f} ns)",
             extension_over <= 100),
            (f"ctypes overhead >= 5x the extension's, besides raises "
             f"({ctypes_over / max(extension_over, 1):.1f}x)", ctypes_over >= 5 * extension_over),
        ])

        # 2. A call that succeeds without I/O.
        handle = _virtdisk.OpenVirtualDisk(storage_type, path, 0, 0, 2, read_only=True)
        raw = by_hand.open(path)
        disk = virtdisk.open(path)
        try:
            size = {
                "C loop (limit)": best_ns_per_call(
                    lambda n: library.bench_size_loop(raw, n), iterations, repeats),
                "Python call floor": best_ns_per_call(direct_call_loop(
                    operator.is_, handle, SIZE), iterations, repeats),
                "_virtdisk": best_ns_per_call(direct_call_loop(
                    _virtdisk.GetVirtualDiskInformation, handle, SIZE), iterations, repeats),
                "_virtdisk, raw handle value": best_ns_per_call(direct_call_loop(
                    _virtdisk.GetVirtualDiskInformation, handle.value, SIZE),
                    iterations, repeats),
                "_virtdisk, an int answer": best_ns_per_call(direct_call_loop(
                    _virtdisk.GetVirtualDiskInformation, handle, FRAGMENTATION),
                    iterations, repeats),
                "virtdisk facade": best_ns_per_call(virtual_size_loop(disk), iterations, repeats),
                "ctypes by hand": best_ns_per_call(direct_call_loop(
                    HandWrittenCtypes.size, by_hand, raw), iterations, repeats),
            }
        finally:
            handle.close()
            by_hand.close(raw)
            disk.close()
        extension_over = size["_virtdisk"] - size["C loop (limit)"]
        fresh_over = size["_virtdisk, raw handle value"] - size["C loop (limit)"]
        scalar_over = size["_virtdisk, an int answer"] - size["C loop (limit)"]
        facade_over = size["virtdisk facade"] - size["C loop (limit)"]
        ctypes_over = size["ctypes by hand"] - size["C loop (limit)"]
        report("GetVirtualDiskInformation(SIZE) on an open handle", size, [
            (f"extension adds <= 100 ns, size tuple ({extension_over:.0f} ns)",
             extension_over <= 100),
            (f"extension adds <= 100 ns, size tuple built afresh ({fresh_over:.0f} ns)",
             fresh_over <= 100),
            (f"extension adds <= 100 ns, int answer ({scalar_over:.0f} ns)", scalar_over <= 100),
            (f"facade adds <= 1 us ({facade_over:.0f} ns)", facade_over <= 1000),
            (f"ctypes overhead >= 5x the extension's ({ctypes_over / extension_over:.1f}x)",
             ctypes_over >= 5 * extension_over),
        ])

        # 3. The whole job on a small dynamic VHDX.
        def extension_job() -> None:
            with _virtdisk.OpenVirtualDisk(storage_type, path, 0, 0, 2, read_only=True) as h:
                _virtdisk.GetVirtualDiskInformation(h, SIZE)

        def facade_job() -> None:
            with virtdisk.open(path) as opened:
                opened.virtual_size

        def ctypes_job() -> None:
            opened = by_hand.open(path)
            by_hand.size(opened)
            by_hand.close(opened)

        job = {
            "C loop (limit)": best_ns_per_call(
                lambda n: library.bench_open_info_close_loop(wide_path, n), io_iterations, repeats),
            "_virtdisk": best_ns_per_call(python_loop(extension_job), io_iterations, repeats),
            "virtdisk facade": best_ns_per_call(python_loop(facade_job), io_iterations, repeats),
            "ctypes by hand": best_ns_per_call(python_loop(ctypes_job), io_iterations, repeats),
        }
        share = job["_virtdisk"] / job["C loop (limit)"] - 1
        facade_over = job["virtdisk facade"] - job["_virtdisk"]
        report("open + GetVirtualDiskInformation(SIZE) + close, dynamic VHDX", job, [
            (f"extension adds <= 10% ({share * 100:.1f}%)", share <= 0.10),
            (f"facade adds <= 1 us over the extension ({facade_over:.0f} ns)", facade_over <= 1000),
        ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
