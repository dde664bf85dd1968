#!/usr/bin/env python3
"""Random 4 KiB reads of differencing VHD children whose blocks are only
partly present, against a child whose blocks are fully present.

The parent is a dynamic VHD full of data.  One child holds 4 KiB of every
64 KiB of each block (every block partly present: its bitmap decides,
sector by sector, between the child and the parent), the other holds
every sector.  Both are read whole once (which learns every block), then
the same random 4 KiB pieces are read from each with ``disk.readinto``,
the children taking turns each round; a figure is the best of --repeats
rounds.  Printed per child: microseconds and read system calls per read
(from /proc/self/io), and the ratio of the partly present child's time to
the fully present one's: 1.0 means a partly present block costs what a
fully present one does.

    python benchmarks/bench_vhd_partial_reads.py [--quick] [--size 256M] [--reads N] [--repeats N]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import virtdisk
from bench_io import fill_sequentially, parse_size  # the script's directory is on sys.path

KiB, MiB = 1 << 10, 1 << 20
BLOCK = 2 * MiB
PIECE = 4 * KiB
STRIDE = 64 * KiB


def read_calls() -> int:
    """Read system calls of this process so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("syscr:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no syscr")


def make_images(directory: Path, size: int) -> dict[str, Path]:
    parent = directory / "parent.vhd"
    virtdisk.create(parent, size, block_size=BLOCK).close()
    fill_sequentially(parent, size, 0xC3)
    children = {"fully present": directory / "full.vhd", "partly present": directory / "partial.vhd"}
    for title, child in children.items():
        virtdisk.create(child, parent=parent).close()
        if title == "fully present":
            fill_sequentially(child, size, 0x5A)
            continue
        with virtdisk.open(child, read_only=False) as disk:
            for offset in range(0, size, STRIDE):
                disk.write(offset, b"\x5a" * PIECE)
    return children


def time_reads(path: Path, size: int, offsets: list[int]) -> tuple[float, float]:
    """Seconds and read system calls per read of the pieces at `offsets`."""
    with virtdisk.open(path) as disk:
        buffer = bytearray(PIECE)
        whole = bytearray(8 * MiB)
        for offset in range(0, size, len(whole)):
            disk.readinto(offset, whole)
        calls = read_calls()
        start = time.perf_counter()
        for offset in offsets:
            disk.readinto(offset, buffer)
        seconds = time.perf_counter() - start
        calls = read_calls() - calls
    return seconds / len(offsets), calls / len(offsets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small images, few reads")
    parser.add_argument("--size", type=parse_size, default=None,
                        help="virtual size (default 256M, --quick 32M)")
    parser.add_argument("--reads", type=int, default=None,
                        help="random reads per round (default 20000, --quick 2000)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="rounds, the best of which counts (default 3, --quick 1)")
    options = parser.parse_args()
    size = options.size or (32 * MiB if options.quick else 256 * MiB)
    size -= size % BLOCK
    count = options.reads or (2000 if options.quick else 20000)
    repeats = options.repeats or (1 if options.quick else 3)
    generator = random.Random(11)
    offsets = [generator.randrange(size // PIECE) * PIECE for _ in range(count)]
    with tempfile.TemporaryDirectory(prefix="vd-bench-vhd-partial-") as scratch:
        children = make_images(Path(scratch), size)
        best: dict[str, tuple[float, float]] = {}
        for _ in range(repeats):
            for title, child in children.items():
                seconds, calls = time_reads(child, size, offsets)
                if title not in best or seconds < best[title][0]:
                    best[title] = (seconds, calls)
    print(f"random 4 KiB reads of {size // MiB} MiB differencing VHD children, "
          f"{count} reads, best of {repeats}")
    for title, (seconds, calls) in best.items():
        print(f"  {title:<16}{seconds * 1e6:>9.2f} us/read{calls:>8.2f} read calls/read")
    ratio = best["partly present"][0] / best["fully present"][0]
    print(f"  ratio partly/fully present: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
