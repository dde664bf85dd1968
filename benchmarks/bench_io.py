#!/usr/bin/env python3
"""Content I/O throughput of the engine, the extension and the facade.

Part 1, transfers.  For a dynamic VHDX, a dynamic VHD and a differencing
VHDX (its parent a dynamic VHDX full of data), 1 GiB unless --size says
otherwise, on each directory given (default: the system's temporary
directory and /dev/shm, i.e. the machine's disk and tmpfs), one process
times in turn:

* ``pread/pwrite (limit)``: a C loop on a raw file of the same size;
* ``os.preadv/os.pwrite``: the same from Python, one call per transfer,
  the limit for anything called from Python;
* ``C API``: READ(16)/WRITE(16) through RawSCSIVirtualDisk in a C loop
  (benchmarks/c/io_loops.c, built with the engine), after OpenVirtualDisk
  and a NO_LOCAL_HOST attach;
* ``_virtdisk``: the extension's RawSCSIVirtualDisk from a Python loop, the
  CDBs built beforehand;
* ``facade``: ``disk.readinto`` / ``disk.write`` of virtdisk;
* ``qemu-io``: one process per test with one command per transfer, its
  start (open + close of the image) timed alone and taken off: the anchor.

Each path gets a new image (and each raw path a new sparse file) and runs,
in order: first writes (sequential 1 MiB writes over the whole disk, which
allocate every block), overwrites (the same again), sequential 1 MiB reads,
random 4 KiB reads, random 4 KiB writes (over allocated blocks); a
differencing image first reads its parent's data through (sequential 1 MiB
reads before any write).  Random offsets are the same for every path.
Everything goes through the page cache; nothing is flushed but what a
format flushes itself (allocation).  A figure is the best of --repeats
rounds; in each round the paths take turns, so the ratios compare runs
made moments apart.

Part 2, conversion: ``virtdisk.convert`` raw -> dynamic VHDX, raw -> dynamic
VHD, raw -> fixed VHD, dynamic VHDX -> raw and dynamic VHDX -> dynamic VHD
(the engine's own copy), against ``cp`` of the raw file (the limit) and
``qemu-img convert`` of the same source, each target removed untimed.

The transfer and conversion targets are printed at the end as met or MISSED.

    python benchmarks/bench_io.py [--quick] [--size 256M] [--dir D ...] [--repeats N]
                                  [--no-convert | --only-convert]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import _virtdisk
import virtdisk
from bench_create import file_system_type  # the script's directory is on sys.path
from io_library import Library, build_library

ROOT = Path(__file__).resolve().parent.parent
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
SEQUENTIAL = MiB
RANDOM = 4 * KiB
READ_16, WRITE_16 = 0x88, 0x8A
NO_LOCAL_HOST = int(_virtdisk.AttachVirtualDiskFlag.NO_LOCAL_HOST)
UNKNOWN_TYPE = _virtdisk.VirtualStorageType(0, _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
CDB16 = struct.Struct(">BBQIBB")

# Tests in the order each path runs them.  A differencing image runs
# "parent read" first, while its own blocks are still empty.
PARENT_READ, FIRST_WRITE, OVERWRITE, READ, RANDOM_READ, RANDOM_WRITE = (
    "parent read", "first write", "overwrite", "read", "random read", "random write")
TESTS = (PARENT_READ, FIRST_WRITE, OVERWRITE, READ, RANDOM_READ, RANDOM_WRITE)
WRITES = {FIRST_WRITE, OVERWRITE, RANDOM_WRITE}
RANDOMS = {RANDOM_READ, RANDOM_WRITE}

LIMIT, PYTHON_RAW, C_API, EXTENSION, FACADE, QEMU = (
    "pread/pwrite (limit)", "os.preadv/os.pwrite", "C API", "_virtdisk", "facade", "qemu-io")
PATHS = (LIMIT, PYTHON_RAW, C_API, EXTENSION, FACADE, QEMU)


def parse_size(text: str) -> int:
    units = {"K": KiB, "M": MiB, "G": GiB}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def offsets_array(offsets: Sequence[int]) -> ctypes.Array[ctypes.c_uint64]:
    return (ctypes.c_uint64 * len(offsets))(*offsets)


# -- images --------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    title: str
    suffix: str
    qemu_format: str | None      # None: qemu cannot open it
    differencing: bool = False


KINDS = (
    Kind("dynamic VHDX", ".vhdx", "vhdx"),
    Kind("dynamic VHD", ".vhd", "vpc"),
    Kind("differencing VHDX", ".vhdx", None, differencing=True),
)


def fill_sequentially(path: Path, size: int, byte: int) -> None:
    """Writes `byte` over the whole content of the image at `path`."""
    with virtdisk.open(path, read_only=False) as disk:
        chunk = bytes([byte]) * (8 * MiB)
        for offset in range(0, size, len(chunk)):
            disk.write(offset, chunk[:min(len(chunk), size - offset)])


def new_image(kind: Kind, path: Path, size: int, parent: Path | None) -> None:
    if kind.differencing:
        assert parent is not None
        virtdisk.create(path, parent=parent).close()
    else:
        virtdisk.create(path, size).close()


# -- the paths -----------------------------------------------------------------

@dataclass
class Workload:
    """What every path moves: the offsets of each test and the buffers."""
    size: int
    sequential: list[int]
    random_offsets: list[int]
    sequential_data: bytearray = field(default_factory=lambda: bytearray(os.urandom(SEQUENTIAL)))
    random_data: bytearray = field(default_factory=lambda: bytearray(os.urandom(RANDOM)))

    def offsets(self, test: str) -> list[int]:
        return self.random_offsets if test in RANDOMS else self.sequential

    def buffer(self, test: str) -> bytearray:
        return self.random_data if test in RANDOMS else self.sequential_data


# A runner times the tests of one path on one new target and returns
# seconds per test.
Runner = Callable[[Path, Sequence[str]], dict[str, float]]


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    function()
    return (time.perf_counter_ns() - start) / 1e9


# A C loop: (write, offsets, buffer, length) -> None, or why it failed.
CLoop = Callable[[bool, "ctypes.Array[ctypes.c_uint64]", "ctypes.Array[ctypes.c_char]", int],
                 "str | None"]


def time_c_loops(work: Workload, tests: Sequence[str], loop: CLoop, where: Path
                 ) -> dict[str, float]:
    """Seconds of one C loop call per test, over the same offsets and
    buffers as every other path."""
    arrays = {name: offsets_array(work.offsets(name)) for name in tests}
    result = {}
    for test in tests:
        buffer = work.buffer(test)
        pointer = (ctypes.c_char * len(buffer)).from_buffer(buffer)
        array = arrays[test]

        def call() -> None:
            failure = loop(test in WRITES, array, pointer, len(buffer))
            if failure is not None:
                raise OSError(0, failure, str(where))
        result[test] = timed(call)
        del pointer
    return result


def c_raw_runner(library: Library, work: Workload) -> Runner:
    def run(path: Path, tests: Sequence[str]) -> dict[str, float]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.ftruncate(fd, work.size)

            def loop(write: bool, array: ctypes.Array[ctypes.c_uint64],
                     pointer: ctypes.Array[ctypes.c_char], length: int) -> str | None:
                code = library.raw_loop(fd, write, array, len(array), pointer, length)
                return os.strerror(code) if code else None
            return time_c_loops(work, tests, loop, path)
        finally:
            os.close(fd)
    return run


def python_raw_runner(work: Workload) -> Runner:
    def run(path: Path, tests: Sequence[str]) -> dict[str, float]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.ftruncate(fd, work.size)
            result = {}
            for test in tests:
                buffer, offsets = work.buffer(test), work.offsets(test)
                if test in WRITES:
                    def call() -> None:
                        for offset in offsets:
                            os.pwrite(fd, buffer, offset)
                else:
                    def call() -> None:
                        buffers = [buffer]
                        for offset in offsets:
                            os.preadv(fd, buffers, offset)
                result[test] = timed(call)
            return result
        finally:
            os.close(fd)
    return run


def c_api_runner(library: Library, work: Workload) -> Runner:
    def run(path: Path, tests: Sequence[str]) -> dict[str, float]:
        handle = ctypes.c_void_p()
        wide = (str(path) + "\0").encode("utf-16-le")
        code = library.open_attached(wide, 0, ctypes.byref(handle))
        if code:
            raise OSError(0, f"OpenVirtualDisk + AttachVirtualDisk failed with {code:#x}",
                          str(path))
        try:
            def loop(write: bool, array: ctypes.Array[ctypes.c_uint64],
                     pointer: ctypes.Array[ctypes.c_char], length: int) -> str | None:
                status = library.scsi_loop(handle, write, array, len(array), pointer, length,
                                           512)
                return f"RawSCSIVirtualDisk loop failed with {status:#x}" if status else None
            return time_c_loops(work, tests, loop, path)
        finally:
            library.close(handle)
    return run


def cdbs_of(offsets: Sequence[int], length: int, opcode: int) -> list[bytes]:
    return [CDB16.pack(opcode, 0, offset // 512, length // 512, 0, 0) for offset in offsets]


def extension_runner(work: Workload) -> Runner:
    cdbs = {name: cdbs_of(work.offsets(name), len(work.buffer(name)),
                          WRITE_16 if name in WRITES else READ_16) for name in TESTS}
    scsi = _virtdisk.RawSCSIVirtualDisk

    def run(path: Path, tests: Sequence[str]) -> dict[str, float]:
        with _virtdisk.OpenVirtualDisk(UNKNOWN_TYPE, str(path), 0, 0, 2) as handle:
            _virtdisk.AttachVirtualDisk(handle, NO_LOCAL_HOST, 1)
            result = {}
            for test in tests:
                view = memoryview(work.buffer(test))
                commands = cdbs[test]
                data_in = test not in WRITES

                def call() -> None:
                    for cdb in commands:
                        if scsi(handle, cdb, data_in=data_in, data=view).scsi_status:
                            raise OSError(0, "a command did not end GOOD", str(path))
                result[test] = timed(call)
            return result
    return run


def facade_runner(work: Workload) -> Runner:
    def run(path: Path, tests: Sequence[str]) -> dict[str, float]:
        with virtdisk.open(path, read_only=False) as disk:
            result = {}
            for test in tests:
                buffer, offsets = work.buffer(test), work.offsets(test)
                if test in WRITES:
                    def call() -> None:
                        write = disk.write
                        for offset in offsets:
                            write(offset, buffer)
                else:
                    def call() -> None:
                        readinto = disk.readinto
                        for offset in offsets:
                            readinto(offset, buffer)
                result[test] = timed(call)
            return result
    return run


def qemu_runner(work: Workload, qemu_format: str) -> Runner:
    def commands(test: str) -> list[str]:
        length = len(work.buffer(test))
        verb = "write -q -P 0x5a" if test in WRITES else "read -q"
        return [part for offset in work.offsets(test)
                for part in ("-c", f"{verb} {offset} {length}")]

    scripts = {name: commands(name) for name in TESTS}

    def qemu_io(path: Path, arguments: list[str]) -> float:
        return timed(lambda: subprocess.run(["qemu-io", "-f", qemu_format, *arguments,
                                             str(path)], check=True,
                                            stdout=subprocess.DEVNULL))

    def run(path: Path, tests: Sequence[str]) -> dict[str, float]:
        virtdisk.create(path, work.size).close()
        start = min(qemu_io(path, ["-c", "read -q 0 512"]) for _ in range(3))
        result = {}
        for test in tests:
            # A run that takes no longer than the start says nothing.
            net = qemu_io(path, scripts[test]) - start
            if net > 0.1 * start:
                result[test] = net
        return result
    return run


# -- part 1 ----------------------------------------------------------------------

def measure_kind(kind: Kind, directory: Path, work: Workload, runners: dict[str, Runner],
                 repeats: int) -> dict[str, dict[str, float]]:
    """Best seconds per (path, test) over `repeats` rounds."""
    tests = [test for test in TESTS if kind.differencing or test != PARENT_READ]
    parent = None
    if kind.differencing:
        parent = directory / "parent.vhdx"
        virtdisk.create(parent, work.size).close()
        fill_sequentially(parent, work.size, 0xC3)
    best: dict[str, dict[str, float]] = {}
    for repeat in range(repeats):
        for index, (name, runner) in enumerate(runners.items()):
            if name == QEMU and kind.qemu_format is None:
                continue
            raw = name in (LIMIT, PYTHON_RAW)
            target = directory / f"t{repeat}-{index}{'.raw' if raw else kind.suffix}"
            if not raw and name != QEMU:
                new_image(kind, target, work.size, parent)
            # The raw file has no parent: its "parent read" reads a hole.
            seconds = runner(target, tests)
            target.unlink()
            row = best.setdefault(name, {})
            for test, value in seconds.items():
                row[test] = min(row.get(test, float("inf")), value)
    if parent is not None:
        parent.unlink()
    return best


def rate(test: str, seconds: float, work: Workload) -> float:
    """MiB/s for sequential tests, IOPS for random ones."""
    count = len(work.offsets(test))
    if test in RANDOMS:
        return count / seconds
    return count * SEQUENTIAL / MiB / seconds


def report_kind(title: str, best: dict[str, dict[str, float]], work: Workload) -> None:
    tests = [test for test in TESTS if test in best[LIMIT]]
    print(f"\n{title}")
    header = "".join(f"{test:>20}" for test in tests)
    print(f"  {'path':<24}{header}")
    print(f"  {'':<24}" + "".join(f"{'MiB/s' if t not in RANDOMS else 'IOPS':>11}{'x limit':>9}"
                                  for t in tests))
    for name in PATHS:
        if name not in best:
            continue
        cells = []
        for test in tests:
            value = best[name].get(test)
            if value is None:
                cells.append(f"{'-':>20}")
                continue
            ours = rate(test, value, work)
            ratio = best[LIMIT][test] / value
            cells.append(f"{ours:>11.0f}{ratio:>9.2f}")
        print(f"  {name:<24}" + "".join(cells))


def transfer_targets(title: str, best: dict[str, dict[str, float]]) -> list[tuple[str, bool]]:
    """The transfer targets for one image kind on one file system."""
    out: list[tuple[str, bool]] = []

    def ratio(path: str, test: str, over: str) -> float:
        return best[over][test] / best[path][test]

    for test, floor in ((READ, 0.9), (OVERWRITE, 0.9), (FIRST_WRITE, 0.8), (RANDOM_READ, 0.8)):
        for over in (LIMIT, PYTHON_RAW):
            value = ratio(EXTENSION, test, over)
            out.append((f"{title}: _virtdisk {test} >= {floor}x of {over} ({value:.2f}x)",
                        value >= floor))
    for test in (READ, OVERWRITE, FIRST_WRITE):
        value = ratio(FACADE, test, EXTENSION)
        out.append((f"{title}: facade {test} within 10% of _virtdisk ({value:.2f}x)",
                    value >= 0.9))
    return out


# -- part 2 ----------------------------------------------------------------------

def measure_conversions(directory: Path, size: int, repeats: int
                        ) -> dict[str, dict[str, float]]:
    """Best seconds of each way to make each conversion's target."""
    raw = directory / "source.raw"
    with open(raw, "wb") as handle:
        for offset in range(0, size, 8 * MiB):
            handle.write(os.urandom(min(8 * MiB, size - offset)))
    vhdx = directory / "source.vhdx"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", str(raw), str(vhdx)],
                   check=True)
    for source in (raw, vhdx):   # both in the page cache before timing
        with open(source, "rb") as handle:
            while handle.read(8 * MiB):
                pass

    def ours(source: Path, **options: str) -> Callable[[Path], None]:
        return lambda target: virtdisk.convert(source, target, **options)  # type: ignore[arg-type]

    def qemu(source: Path, source_format: str, output: str, *extra: str
             ) -> Callable[[Path], None]:
        return lambda target: subprocess.run(
            ["qemu-img", "convert", "-f", source_format, "-O", output, *extra, str(source),
             str(target)], check=True)

    def cp(source: Path) -> Callable[[Path], None]:
        return lambda target: subprocess.run(["cp", str(source), str(target)], check=True)

    cases: dict[str, list[tuple[str, Callable[[Path], None], str]]] = {
        "raw -> dynamic VHDX": [
            ("cp (limit)", cp(raw), ".raw"),
            ("virtdisk.convert", ours(raw, format="vhdx"), ".vhdx"),
            ("qemu-img convert", qemu(raw, "raw", "vhdx"), ".vhdx")],
        "raw -> dynamic VHD": [
            ("cp (limit)", cp(raw), ".raw"),
            ("virtdisk.convert", ours(raw, format="vhd"), ".vhd"),
            ("qemu-img convert", qemu(raw, "raw", "vpc", "-o", "force_size=on"), ".vhd")],
        "raw -> fixed VHD": [
            ("cp (limit)", cp(raw), ".raw"),
            ("virtdisk.convert", ours(raw, format="vhd", type="fixed"), ".vhd"),
            ("qemu-img convert", qemu(raw, "raw", "vpc", "-o", "subformat=fixed,force_size=on"),
             ".vhd")],
        "dynamic VHDX -> raw": [
            ("cp (limit)", cp(raw), ".raw"),
            ("virtdisk.convert", ours(vhdx, format="raw"), ".raw"),
            ("qemu-img convert", qemu(vhdx, "vhdx", "raw"), ".raw")],
        "dynamic VHDX -> VHD": [
            ("cp (limit)", cp(raw), ".raw"),
            ("virtdisk.convert", ours(vhdx, format="vhd"), ".vhd"),
            ("qemu-img convert", qemu(vhdx, "vhdx", "vpc", "-o", "force_size=on"), ".vhd")],
    }
    best: dict[str, dict[str, float]] = {}
    for repeat in range(repeats):
        for title, jobs in cases.items():
            row = best.setdefault(title, {})
            for index, (name, job, suffix) in enumerate(jobs):
                target = directory / f"c{repeat}-{index}{suffix}"
                seconds = timed(lambda: job(target))
                target.unlink()
                row[name] = min(row.get(name, float("inf")), seconds)
    raw.unlink()
    vhdx.unlink()
    return best


def report_conversions(where: str, size: int, best: dict[str, dict[str, float]]
                       ) -> list[tuple[str, bool]]:
    out = []
    print(f"\nconversion, {size // MiB} MiB of random data, {where}")
    print(f"  {'conversion':<22}{'path':<20}{'ms':>9}{'MiB/s':>9}{'x cp':>7}")
    for title, row in best.items():
        for name, seconds in row.items():
            print(f"  {title:<22}{name:<20}{seconds * 1000:>9.1f}{size / MiB / seconds:>9.0f}"
                  f"{row['cp (limit)'] / seconds:>7.2f}")
        ours = row["virtdisk.convert"]
        over_cp, over_qemu = row["cp (limit)"] / ours, row["qemu-img convert"] / ours
        out.append((f"{where}: {title} >= 0.95x of cp ({over_cp:.2f}x)", over_cp >= 0.95))
        out.append((f"{where}: {title} >= 1.4x of qemu-img convert ({over_qemu:.2f}x)",
                    over_qemu >= 1.4))
    return out


# -- main ------------------------------------------------------------------------

def print_targets(targets: Sequence[tuple[str, bool]]) -> None:
    """The closing list: each target with met or MISSED."""
    print("\ntargets")
    for text, met in targets:
        print(f"  {text}: {'met' if met else 'MISSED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny images (a smoke run)")
    parser.add_argument("--size", type=parse_size, default=None,
                        help="virtual size of the images (default 1G, --quick 8M)")
    parser.add_argument("--dir", type=Path, action="append", default=None,
                        help="where images are made, repeatable (default: the temporary "
                             "directory and /dev/shm)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="rounds, the best of which counts (default 3, --quick 1)")
    parser.add_argument("--random", type=int, default=None,
                        help="4 KiB transfers per random test (default 20000, --quick 200)")
    parts = parser.add_mutually_exclusive_group()
    parts.add_argument("--no-convert", action="store_true", help="skip part 2")
    parts.add_argument("--only-convert", action="store_true", help="run part 2 alone")
    options = parser.parse_args()
    if shutil.which("qemu-img") is None or shutil.which("qemu-io") is None:
        sys.exit("qemu-img and qemu-io are needed (the anchors)")
    size = options.size or (8 * MiB if options.quick else GiB)
    size -= size % SEQUENTIAL
    repeats = options.repeats or (1 if options.quick else 3)
    random_count = options.random or (200 if options.quick else 20000)
    directories = options.dir or [Path(tempfile.gettempdir()),
                                  *([Path("/dev/shm")] if Path("/dev/shm").is_dir() else [])]

    generator = random.Random(9)
    work = Workload(size, list(range(0, size, SEQUENTIAL)),
                    [generator.randrange(size // RANDOM) * RANDOM for _ in range(random_count)])
    print(f"Python {sys.version.split()[0]}; images of {size // MiB} MiB, "
          f"{random_count} random 4 KiB transfers, best of {repeats}")
    targets: list[tuple[str, bool]] = []
    for base in directories:
        with tempfile.TemporaryDirectory(prefix="vd-bench-io-", dir=base) as scratch:
            directory = Path(scratch)
            where = f"{base} ({file_system_type(directory)})"
            library = Library(build_library(directory))
            for kind in () if options.only_convert else KINDS:
                runners: dict[str, Runner] = {
                    LIMIT: c_raw_runner(library, work),
                    PYTHON_RAW: python_raw_runner(work),
                    C_API: c_api_runner(library, work),
                    EXTENSION: extension_runner(work),
                    FACADE: facade_runner(work),
                }
                if kind.qemu_format is not None:
                    runners[QEMU] = qemu_runner(work, kind.qemu_format)
                best = measure_kind(kind, directory, work, runners, repeats)
                title = f"{kind.title}, {size // MiB} MiB, {where}"
                report_kind(title, best, work)
                targets.extend(transfer_targets(f"{kind.title} on {where}", best))
            if not options.no_convert:
                conversions = measure_conversions(directory, size, repeats)
                targets.extend(report_conversions(where, size, conversions))

    print_targets(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
