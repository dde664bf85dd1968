#!/usr/bin/env python3
"""Throughput of attached disks, through their loop devices, with fio.

For images the engine maps straight onto the file (fixed VHD, fixed VHDX
with its blocks in order), the loop device is the whole data path, so the
figures should be those of a loop device on a raw file of the same size,
which is the limit and is measured beside them.  Each pattern runs on the
machine's disk (a directory under the system's temporary directory) and on
tmpfs (/dev/shm):

* sequential 1 MiB reads and writes (iodepth 8);
* random 4 KiB reads and writes (iodepth 32);

all with direct I/O through io_uring (libaio where fio lacks it).  A
dynamic VHDX (every block allocated first) goes through the engine's FUSE
export, with a loop device on the exported file, and then through
qemu-storage-daemon's FUSE export (qemu-system-common) with the same kind of
loop device, when it is installed: once with O_DIRECT on the image, and
once through the page cache, as the engine's export reads and writes it.

All of a place's devices are attached at once, each on its own image
file, and each round runs every pattern on every device in turn; a figure
is the median of its rounds, so that a busy moment of the machine falls on
every row alike.  Needs root (loop devices), fio, qemu-img and qemu-io;
without them it says so and exits 0.

    python benchmarks/bench_attach.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import virtdisk

MiB: Final = 1024 * 1024
PATTERNS: Final = (("seq read 1M", "read", "1M", 8), ("seq write 1M", "write", "1M", 8),
                   ("rand read 4K", "randread", "4k", 32), ("rand write 4K", "randwrite", "4k", 32))
FIXED_VHD_TARGET: Final = 0.95      # of the raw loop, on every pattern
QSD_TARGET: Final = 2.0             # the export over qemu-storage-daemon's, on every pattern
SEQUENTIAL_TARGET: Final = 0.5      # the export over the raw loop, on sequential patterns
# qemu-storage-daemon reading and writing the image through the page cache,
# as the engine's export does: the like-for-like anchor, beside the one
# with O_DIRECT on the image.
QSD_CACHED: Final = "dynamic VHDX (qsd, cached)"


def fio(device: str, pattern: str, block: str, depth: int, size: int, runtime: str,
        engine: str) -> float:
    """MiB/s for sequential patterns, thousands of IOPS for random ones."""
    result = subprocess.run(
        ["fio", "--name=bench", f"--filename={device}", f"--rw={pattern}", f"--bs={block}",
         f"--iodepth={depth}", f"--size={size}", f"--runtime={runtime}", "--time_based",
         "--direct=1", f"--ioengine={engine}", "--output-format=json"],
        capture_output=True, text=True, check=True)
    job = json.loads(result.stdout)["jobs"][0]
    side = job["read" if "read" in pattern else "write"]
    return float(side["bw_bytes"] / MiB if block == "1M" else side["iops"] / 1000)


def measure(directory: Path, size: int, runtime: str, engine: str,
            rounds: int) -> dict[str, list[float]]:
    """Every row's figures for one place: the devices are all set up first,
    then each round runs each pattern on each device in turn, so that the
    machine's ups and downs spread over every row alike; a row's figure is
    its median over the rounds."""
    with contextlib.ExitStack() as stack:
        devices = stack.enter_context(devices_under_test(directory, size))
        samples: dict[str, list[list[float]]] = {name: [[] for _ in PATTERNS] for name in devices}
        for _ in range(rounds):
            for index, (_, pattern, block, depth) in enumerate(PATTERNS):
                for name, device in devices.items():
                    # The writes of the run before reach the disk first, not
                    # during this one.
                    os.sync()
                    samples[name][index].append(fio(device, pattern, block, depth, size,
                                                    runtime, engine))
    return {name: [statistics.median(values) for values in figures]
            for name, figures in samples.items()}


@contextlib.contextmanager
def devices_under_test(directory: Path, size: int) -> Iterator[dict[str, str]]:
    """Row name -> device, all attached at once; each on its own image
    file, since two servers cannot hold one image."""
    raw = directory / "raw.img"
    with open(raw, "wb") as file:
        file.truncate(size)
    subprocess.run(["dd", "if=/dev/zero", f"of={raw}", "bs=1M", f"count={size // MiB}",
                    "conv=notrunc", "status=none"], check=True)
    devices: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        devices["raw file (loop)"] = stack.enter_context(raw_loop_device(raw))
        for name, fmt, options in (("fixed VHD", "vpc", "subformat=fixed,force_size=on"),
                                   ("fixed VHDX", "vhdx", "subformat=fixed,block_state_zero=off")):
            image = directory / f"image.{fmt}"
            subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", fmt, "-o", options,
                            str(raw), str(image)], check=True)
            devices[name] = stack.enter_context(engine_attach(image))
        dynamic = filled_dynamic_vhdx(directory, size)
        try:
            device = stack.enter_context(engine_attach(dynamic))
            if not exported(device):
                raise RuntimeError("the dynamic VHDX was mapped straight, not exported")
            devices["dynamic VHDX (export)"] = device
        except virtdisk.VirtualDiskError as error:
            print(f"  dynamic VHDX: not attachable here ({error.winerror}: {error.detail})")
        if shutil.which("qemu-storage-daemon") is not None:
            for name, direct in (("dynamic VHDX (qsd)", True), (QSD_CACHED, False)):
                copy = directory / f"qsd-{'direct' if direct else 'cached'}.vhdx"
                subprocess.run(["cp", "--sparse=always", str(dynamic), str(copy)], check=True)
                devices[name] = stack.enter_context(qemu_fuse_loop(directory, copy, direct))
        else:
            print("  qemu-storage-daemon (qemu-system-common) is not installed: no comparison")
        yield devices


@contextlib.contextmanager
def raw_loop_device(path: Path) -> Iterator[str]:
    """A direct-I/O loop device on the file at `path`, detached at the end."""
    device = subprocess.run(["losetup", "--find", "--show", "--direct-io=on", str(path)],
                            capture_output=True, text=True, check=True).stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", device], check=True)


@contextlib.contextmanager
def engine_attach(image: Path) -> Iterator[str]:
    with virtdisk.open(image, read_only=False) as disk, disk.attach() as attachment:
        yield attachment.path


@contextlib.contextmanager
def qemu_fuse_loop(directory: Path, image: Path, direct: bool) -> Iterator[str]:
    """The same image through qemu-storage-daemon's FUSE export, with a
    direct-I/O loop device on the exported file, as the engine's export has;
    `direct`: the daemon opens the image with O_DIRECT, else through the
    page cache, as the engine's export does."""
    exported = directory / f"{image.stem}-export"
    exported.touch()
    cache = "on" if direct else "off"
    daemon = subprocess.Popen(
        ["qemu-storage-daemon",
         "--blockdev", f"driver=file,node-name=file,filename={image},cache.direct={cache}",
         "--blockdev", "driver=vhdx,node-name=disk,file=file",
         "--export", f"type=fuse,id=export,node-name=disk,mountpoint={exported},writable=on"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while f" {exported} " not in Path("/proc/self/mountinfo").read_text():
            if daemon.poll() is not None:
                raise RuntimeError(f"qemu-storage-daemon ended: {daemon.communicate()[1]}")
            time.sleep(0.05)
        with raw_loop_device(exported) as device:
            yield device
    finally:
        daemon.terminate()
        daemon.wait()
        exported.unlink()


def filled_dynamic_vhdx(directory: Path, size: int) -> Path:
    """A dynamic VHDX with every block allocated (by qemu-io), so that reads
    go to the file instead of answering zeros for absent blocks.  Written
    from the end backwards, so that its blocks lie out of order in the file:
    in order, the loop would map the image straight (a fixed VHDX's path)
    and the export would not be measured."""
    dynamic = directory / "dynamic.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(dynamic), str(size)], check=True)
    chunk = 4 * MiB
    commands = [argument for offset in range(size - chunk, -1, -chunk)
                for argument in ("-c", f"write -P 0x5a {offset} {chunk}")]
    subprocess.run(["qemu-io", "-f", "vhdx", *commands, str(dynamic)], capture_output=True,
                   check=True)
    return dynamic


def exported(device: str) -> bool:
    """Whether the loop device reads an export rather than the image itself."""
    backing = Path(f"/sys/block/{Path(device).name}/loop/backing_file").read_text().strip()
    return not backing.endswith(".vhdx")


def report(place: str, rows: dict[str, list[float]]) -> list[tuple[str, bool]]:
    print(f"\n{place}: MiB/s (seq), kIOPS (rand)")
    print(f"  {'':<28}" + "".join(f"{title:>15}" for title, *_ in PATTERNS))
    limit = rows["raw file (loop)"]
    for name, values in rows.items():
        print(f"  {name:<28}" + "".join(f"{value:>15.1f}" for value in values))
        if name != "raw file (loop)":
            print(f"  {'  x raw loop':<28}" + "".join(
                f"{value / base:>15.2f}" for value, base in zip(values, limit)))
    return targets(place, rows)


def targets(place: str, rows: dict[str, list[float]]) -> list[tuple[str, bool]]:
    """The three targets for one place, each with whether it is met: the
    export at least twice qemu-storage-daemon's on every pattern (against
    the daemon with O_DIRECT on the image, and against it through the page
    cache as the export is) and at least half the raw loop on sequential
    ones, and a fixed VHD within 5% of the raw loop on every pattern."""
    titles = [title for title, *_ in PATTERNS]
    limit, fixed = rows["raw file (loop)"], rows["fixed VHD"]
    export = rows.get("dynamic VHDX (export)")
    anchors = [(name, label) for name, label in (("dynamic VHDX (qsd)", "qemu-storage-daemon"),
                                                 (QSD_CACHED, "qemu-storage-daemon, cached"))
               if name in rows]
    result = []
    for index, title in enumerate(titles):
        for name, label in anchors:
            if export is None:
                break
            ratio = export[index] / rows[name][index]
            result.append((f"{place}, {title}: export >= {QSD_TARGET:.0f}x {label} "
                           f"({ratio:.2f}x)", ratio >= QSD_TARGET))
        if export is not None and title.startswith("seq"):
            ratio = export[index] / limit[index]
            result.append((f"{place}, {title}: export >= {SEQUENTIAL_TARGET}x the raw loop "
                           f"({ratio:.2f}x)", ratio >= SEQUENTIAL_TARGET))
        ratio = fixed[index] / limit[index]
        result.append((f"{place}, {title}: fixed VHD within "
                       f"{100 - FIXED_VHD_TARGET * 100:.0f}% of the raw loop ({ratio:.2f}x)",
                       ratio >= FIXED_VHD_TARGET))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small, short smoke run")
    arguments = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("fio") is None or shutil.which("qemu-img") is None:
        print("bench_attach: needs root (loop devices), fio and qemu-img; skipped")
        return 0
    engines = subprocess.run(["fio", "--enghelp"], capture_output=True, text=True).stdout
    engine = "io_uring" if "io_uring" in engines else "libaio"
    # fio takes a time with its unit; a smoke run needs a quarter second.
    size, runtime, rounds = (32 * MiB, "250ms", 1) if arguments.quick else (1024 * MiB, "2s", 3)
    results: list[tuple[str, bool]] = []
    places = [("machine's disk", Path(tempfile.gettempdir())), ("tmpfs", Path("/dev/shm"))]
    for place, parent in places:
        if not parent.is_dir():
            continue
        with tempfile.TemporaryDirectory(prefix="bench-attach-", dir=parent) as directory:
            results += report(place, measure(Path(directory), size, runtime, engine, rounds))
    print("\ntargets")
    for text, met in results:
        print(f"  {text}: {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
