#!/usr/bin/env python3
"""Instructions per open + GetVirtualDiskInformation(SIZE) + close, counted
by callgrind, through the extension and through the facade.

The job is bench_overhead.py's last table, on the same small dynamic VHDX
qemu-img makes: ``with _virtdisk.OpenVirtualDisk(...) as handle:
GetVirtualDiskInformation(handle, SIZE)`` against ``with virtdisk.open(path)
as disk: disk.virtual_size``.  Wall-clock figures of a ~10 us job move with
whatever else the machine runs; an instruction count does not.  Each path
runs under ``valgrind --tool=callgrind`` with N and with 2N jobs, so that
the difference divided by N is the cost of one job, start-up excluded; the
hash seed is fixed, so that dictionary lookups probe alike in every run.
The facade's figure minus the extension's is what the facade adds: format
detection, argument checks, the VirtualDisk, its ``with`` block and its
property.

    python benchmarks/bench_open_instructions.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# The script's directory is on sys.path.
from callgrind_count import Row, instructions_per_repeat_of_rows

PATHS = ("_virtdisk", "virtdisk facade")


def loop(image: str, path: str, jobs: int) -> None:
    """The measured loop: the jobs and nothing else that grows with N."""
    import _virtdisk
    import virtdisk

    size = _virtdisk.GetVirtualDiskInfoVersion.SIZE
    if path == "_virtdisk":
        storage = _virtdisk.VirtualStorageType(0, _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
        open_handle, ask = _virtdisk.OpenVirtualDisk, _virtdisk.GetVirtualDiskInformation
        for _ in range(jobs):
            with open_handle(storage, image, 0, 0, 2, read_only=True) as handle:
                ask(handle, size)
    else:
        open_disk = virtdisk.open
        for _ in range(jobs):
            with open_disk(image) as disk:
                disk.virtual_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs (a smoke run)")
    parser.add_argument("--loop", nargs=3, metavar=("IMAGE", "PATH", "JOBS"),
                        help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.loop:
        image, path, jobs = options.loop
        loop(image, path, int(jobs))
        return 0
    for tool in ("valgrind", "qemu-img"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed")
    jobs = 200 if options.quick else 2_000
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        image = scratch / "small.vhdx"
        subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(image), "64M"], check=True)
        print(f"Python {sys.version.split()[0]}, callgrind, ({jobs * 2} - {jobs}) jobs")
        counts = instructions_per_repeat_of_rows([
            Row(__file__, [str(image), path], jobs, scratch / f"callgrind.{path.split()[0]}",
                {"PYTHONHASHSEED": "0"})
            for path in PATHS])
        per_job = dict(zip(PATHS, counts))
        for path, count in per_job.items():
            print(f"  {path:<20} {count:8.0f} instructions/job")
    extension, facade = per_job["_virtdisk"], per_job["virtdisk facade"]
    print(f"  the facade adds {facade - extension:.0f} instructions "
          f"({facade / extension:.3f}x the extension's job)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
