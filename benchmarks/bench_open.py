#!/usr/bin/env python3
"""Open + size + close per second, against the other readers of these formats.

One process times the whole job a script that inspects images does over and
over -- open the image, ask its virtual size, close it -- on images made by
qemu-img and xorriso, through:

* ``_virtdisk``: OpenVirtualDisk (version 2, read-only, access NONE; for an
  ISO version 1 with VIRTUAL_DISK_ACCESS_READ, the only form Windows
  supports), GetVirtualDiskInformation(SIZE), close;
* ``virtdisk``: ``with virtdisk.open(path) as disk: disk.virtual_size``;
* libvhdi's Python binding ``pyvhdi`` (``pip install libvhdi-python``):
  ``file.open``, ``get_media_size``, ``close``;
* ``dissect.hypervisor`` (``pip install dissect.hypervisor``): its ``VHD`` or
  ``VHDX`` class on an open file object, ``.size``, the file closed;
* ``qemu-img info --output=json``, one process per call.

A peer that is not installed, or that cannot read a format (the VHD/VHDX
readers and ISO images), is shown as such and the rest runs.  Every figure is
the best of several repetitions, in microseconds per open + size + close;
the ratios against ``_virtdisk`` are what matter.  Each path's answer for
the virtual size is shown beside it, so a reader that disagrees is seen.

    python benchmarks/bench_open.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import _virtdisk
import virtdisk

SIZE: Final = _virtdisk.GetVirtualDiskInfoVersion.SIZE
DEVICE = _virtdisk.VirtualStorageTypeDevice
MICROSOFT = _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT
READ = _virtdisk.VirtualDiskAccessMask.READ
MiB = 1024 * 1024

# A path's whole job on one image: returns the virtual size it read.
Job = Callable[[], int]


@dataclass(frozen=True)
class Image:
    title: str
    file_name: str
    kind: str                       # "vhd", "vhdx", "iso"
    command: tuple[str, ...]        # after the tool name, {path} for the output
    tool: str = "qemu-img"
    qemu_format: str = ""           # qemu-img info -f (a fixed VHD probes as raw)


def qemu(title: str, file_name: str, fmt: str, subformat: str, size: str) -> Image:
    kind = "vhd" if fmt == "vpc" else "vhdx"
    options = f"subformat={subformat}" + (",force_size=on" if fmt == "vpc" else "")
    return Image(title, file_name, kind,
                 ("create", "-q", "-f", fmt, "-o", options, "{path}", size), qemu_format=fmt)


IMAGES = (
    qemu("dynamic VHD, 1 GiB", "dynamic-1G.vhd", "vpc", "dynamic", "1G"),
    qemu("dynamic VHD, 1 TiB", "dynamic-1T.vhd", "vpc", "dynamic", "1T"),
    qemu("fixed VHD, 64 MiB", "fixed-64M.vhd", "vpc", "fixed", "64M"),
    qemu("dynamic VHDX, 1 GiB", "dynamic-1G.vhdx", "vhdx", "dynamic", "1G"),
    qemu("dynamic VHDX, 1 TiB", "dynamic-1T.vhdx", "vhdx", "dynamic", "1T"),
    Image("ISO 9660 (xorriso)", "image.iso", "iso",
          ("-as", "mkisofs", "-quiet", "-o", "{path}", "{content}"), tool="xorriso",
          qemu_format="raw"),
)


def make_image(image: Image, directory: Path) -> Path | None:
    tool = shutil.which(image.tool)
    if image.kind == "iso" and tool is None:
        image = Image(image.title, image.file_name, "iso",
                      ("-quiet", "-o", "{path}", "{content}"), tool="genisoimage",
                      qemu_format="raw")
        tool = shutil.which(image.tool)
    if tool is None:
        print(f"{image.title}: {image.tool} is not installed, skipped")
        return None
    content = directory / "content"
    if not content.exists():
        content.mkdir()
        (content / "readme.txt").write_text("benchmark\n")
    path = directory / image.file_name
    argv = [tool] + [str(path) if part == "{path}" else str(content) if part == "{content}"
                     else part for part in image.command]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


# -- the paths ---------------------------------------------------------------

def extension_job(image: Image, path: Path) -> Job:
    name = str(path)
    if image.kind == "iso":
        storage = _virtdisk.VirtualStorageType(DEVICE.ISO, MICROSOFT)

        def iso_job() -> int:
            with _virtdisk.OpenVirtualDisk(storage, name, READ, 0, 1) as handle:
                return _virtdisk.GetVirtualDiskInformation(handle, SIZE).virtual_size
        return iso_job
    storage = _virtdisk.VirtualStorageType(DEVICE.VHD if image.kind == "vhd" else DEVICE.VHDX,
                                           MICROSOFT)

    def job() -> int:
        with _virtdisk.OpenVirtualDisk(storage, name, 0, 0, 2, read_only=True) as handle:
            return _virtdisk.GetVirtualDiskInformation(handle, SIZE).virtual_size
    return job


def facade_job(image: Image, path: Path) -> Job:
    name = str(path)

    def job() -> int:
        with virtdisk.open(name) as disk:
            return disk.virtual_size
    return job


def pyvhdi_job(image: Image, path: Path) -> Job | str:
    try:
        import pyvhdi  # type: ignore[import-not-found]
    except ImportError:
        return "not installed (pip install libvhdi-python)"
    name = str(path)

    def job() -> int:
        handle = pyvhdi.file()
        handle.open(name)
        size = int(handle.get_media_size())
        handle.close()
        return size
    return job


def dissect_job(image: Image, path: Path) -> Job | str:
    try:
        from dissect.hypervisor.disk.vhd import VHD  # type: ignore[import-untyped]
        from dissect.hypervisor.disk.vhdx import VHDX  # type: ignore[import-untyped]
    except ImportError:
        return "not installed (pip install dissect.hypervisor)"
    reader = VHD if image.kind == "vhd" else VHDX
    name = str(path)

    def job() -> int:
        with open(name, "rb") as handle:
            return int(reader(handle).size)
    return job


def qemu_img_job(image: Image, path: Path) -> Job | str:
    tool = shutil.which("qemu-img")
    if tool is None:
        return "not installed"
    argv = [tool, "info", "--output=json", "-f", image.qemu_format, str(path)]

    def job() -> int:
        result = subprocess.run(argv, check=True, capture_output=True, text=True)
        info: dict[str, Any] = json.loads(result.stdout)
        return int(info["virtual-size"])
    return job


# (name, how to make its job, the image kinds it reads)
PATHS: tuple[tuple[str, Callable[[Image, Path], Job | str], frozenset[str]], ...] = (
    ("_virtdisk", extension_job, frozenset({"vhd", "vhdx", "iso"})),
    ("virtdisk facade", facade_job, frozenset({"vhd", "vhdx", "iso"})),
    ("pyvhdi (libvhdi)", pyvhdi_job, frozenset({"vhd", "vhdx"})),
    ("dissect.hypervisor", dissect_job, frozenset({"vhd", "vhdx"})),
    ("qemu-img info (process)", qemu_img_job, frozenset({"vhd", "vhdx", "iso"})),
)


# -- timing ------------------------------------------------------------------

def best_us_per_call(job: Job, budget: float, repeats: int, most: int) -> tuple[float, int]:
    """Best-of-`repeats` microseconds per call, each repetition as many calls
    as fit in `budget` seconds (at least one, at most `most`)."""
    start = time.perf_counter()
    job()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, min(most, int(budget / once)))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(calls):
            job()
        best = min(best, (time.perf_counter_ns() - start) / calls / 1000)
    return best, calls


@dataclass
class Row:
    name: str
    microseconds: float | None = None
    size: int | None = None
    calls: int = 0
    note: str = ""


def measure(image: Image, path: Path, budget: float, repeats: int) -> list[Row]:
    rows = []
    for name, make, kinds in PATHS:
        if image.kind not in kinds:
            rows.append(Row(name, note="n/a (reads " + " and ".join(sorted(kinds)) + " only)"))
            continue
        job = make(image, path)
        if isinstance(job, str):
            rows.append(Row(name, note=job))
            continue
        try:
            size = job()
        except Exception as error:  # a peer that cannot read this image
            rows.append(Row(name, note=f"failed: {type(error).__name__}: {error}"[:70]))
            continue
        # qemu-img starts a process per call: a few calls say enough.
        most = 20 if name.startswith("qemu-img") else 1_000_000
        microseconds, calls = best_us_per_call(job, budget, repeats, most)
        rows.append(Row(name, microseconds, size, calls))
    return rows


def report(image: Image, rows: list[Row]) -> None:
    base = rows[0].microseconds
    print(f"\n{image.title}: open + virtual size + close")
    print(f"  {'path':<26}{'us/call':>11}{'calls/s':>11}{'x _virtdisk':>13}"
          f"{'virtual size':>16}{'calls':>9}")
    for row in rows:
        if row.microseconds is None:
            print(f"  {row.name:<26}{row.note}")
            continue
        ratio = f"{row.microseconds / base:.2f}" if base else "-"
        print(f"  {row.name:<26}{row.microseconds:>11.1f}{1e6 / row.microseconds:>11.0f}"
              f"{ratio:>13}{row.size:>16}{row.calls:>9}")
    sizes = {row.size for row in rows if row.size is not None}
    if len(sizes) > 1:
        print(f"  note: the paths disagree on the virtual size: {sorted(sizes)}")


def targets(image: Image, rows: list[Row]) -> list[str]:
    by_name = {row.name: row for row in rows}
    ours = by_name["_virtdisk"].microseconds
    lines: list[str] = []
    if ours is None:
        return lines
    if image.kind == "vhdx" and image.title.startswith("dynamic"):
        met = ours <= 20.0
        lines.append(f"{image.title}: opens, answers its size and closes in at most 20 us "
                     f"(_virtdisk {ours:.1f} us): {'met' if met else 'MISSED'}")
    if image.kind == "vhd" and image.title.startswith("dynamic"):
        peer = by_name["pyvhdi (libvhdi)"].microseconds
        if peer is None:
            lines.append(f"{image.title}: within 1.5x of pyvhdi: not measured "
                         f"({by_name['pyvhdi (libvhdi)'].note})")
        else:
            met = ours <= 1.5 * peer
            lines.append(f"{image.title}: within 1.5x of pyvhdi (_virtdisk {ours:.1f} us, "
                         f"pyvhdi {peer:.1f} us, {ours / peer:.2f}x): "
                         f"{'met' if met else 'MISSED'}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few calls (a smoke run)")
    options = parser.parse_args()
    budget, repeats = (0.005, 2) if options.quick else (0.1, 7)

    print(f"Python {sys.version.split()[0]}; best of {repeats} repetitions of "
          f"~{budget * 1000:g} ms each")
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vd-bench-open-") as scratch:
        directory = Path(scratch)
        for image in IMAGES:
            path = make_image(image, directory)
            if path is None:
                continue
            rows = measure(image, path, budget, repeats)
            report(image, rows)
            summary += targets(image, rows)
    print("\ntargets")
    for line in summary:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
