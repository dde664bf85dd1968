#!/usr/bin/env python3
"""The long operations' speed: merge, compact, resize and mirror, against cp and qemu-img.

* **merge**: a dynamic VHDX child holding --size of random data merged
  into its empty parent, by ``virtdisk.merge(child)`` (the checkpoint form:
  it finds the chain, opens, merges, closes) and by ``_virtdisk``'s
  MergeVirtualDisk on a handle opened beforehand; against ``cp`` of the
  child file (the same allocated bytes: the limit), ``cp`` followed by an
  ``fsync`` of the copy (a copy as durable as a merge, which flushes its
  target at the end: the disk's share of the time) and ``qemu-img commit
  -d`` of a qcow2 child of the same content into its empty qcow2 parent
  (the field's reference: qemu cannot merge VHDX).
* **sparse merge**: a checkpoint as Hyper-V leaves them, a child holding
  one block in 32 of a parent full of data, merged by ``virtdisk.merge``;
  against ``cp`` of the child and ``qemu-img commit -d`` of a qcow2 child
  holding the same clusters.  No target: it shows that a merge costs what
  the child holds, not the size of the disk.
* **compact**: a dynamic VHDX of --size whose blocks alternate random data
  and written zeros (half of them zero, all allocated), compacted by
  ``disk.compact()`` (zero scan, block moves) and with NO_BLOCK_MOVES
  (holes); against ``cp`` of as many bytes as the compact moved (the
  limit of moving them: blocks whose place in the file changed, read from
  the BAT before and after), ``cp`` of the whole image, and
  ``qemu-img convert`` of a qcow2 image of the same content into a new
  qcow2 (qcow2 has no compact in place; a copy that leaves zero clusters
  out is how it is done).  What a compact must do that ``cp`` of the moved
  bytes does not is timed too, as the bound beside the target: a read of
  the bytes its zero scan reads (the zero blocks whole, the data blocks'
  first MiB) and an ``ftruncate`` + ``fsync`` of a flushed copy of the
  image to the compacted size.
* **resize**: an empty dynamic VHDX with 32 MiB blocks (the default) grown
  from --size to 2 TiB, and a VHD to 2040 GiB (its largest), by ``_virtdisk``'s ResizeVirtualDisk without
  an OVERLAPPED and by ``disk.resize()``, on a handle opened beforehand;
  against the same grow of a qcow2 image by ``qemu-img resize``, whose
  start (``qemu-img info`` of the same image) is timed alone and taken
  off.  The BAT grows with the size: the write of as many bytes as the
  table grows by (one ``os.pwrite`` into a new file, and the same with an
  ``os.fsync``, since the entries must be on disk before a header names
  them) is timed too, and the target leaves that part out.
* **mirror**: a dynamic VHDX of --size full of random data mirrored by
  ``disk.mirror(path)`` on a disk opened beforehand, timed until the copy
  is mirrored (``wait_mirrored()``) and broken (``break_()``), the handle
  then on the copy; against ``cp`` of the image (the same allocated bytes:
  the limit) and ``cp`` with an ``fsync`` of the copy (the mirror flushes
  its copy before the break).  qemu's reference would be a ``blockdev-mirror`` job of a
  running qemu, which no qemu-img command runs, so it has no row.

Every image is made anew, untimed, for each timed run; everything goes
through the page cache and nothing is flushed but what a format flushes
itself.  A figure is the best of --repeats rounds; in each round the paths
take turns.  The targets of the long operations are printed at the end as
met or MISSED.

    python benchmarks/bench_ops.py [--quick] [--size 1G] [--dir D] [--repeats N] [--only compact]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import _virtdisk
import virtdisk
from bench_create import file_system_type  # the script's directory is on sys.path
from bench_io import parse_size, print_targets

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
CHUNK = 8 * MiB
VHDX_GROWN = 2 * TiB
VHD_GROWN = 2040 * GiB
VHDX_BAT_ENTRY = 8
VHD_BAT_ENTRY = 4
# One sector bitmap entry follows every chunk of data blocks ([MS-VHDX]
# 2.5: 2^23 sectors of 512 bytes per chunk).
VHDX_CHUNK_BYTES = (1 << 23) * 512
REGION_TABLE = 192 * KiB
BAT_GUID = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
PAYLOAD_FULLY_PRESENT = 6
# The engine's zero scan reads a block this much at a time and stops at the
# first piece that holds data (VD_FILE_ZERO_PIECE).
SCAN_PIECE = MiB



@dataclass(frozen=True)
class Setup:
    directory: Path
    size: int
    block_size: int
    repeats: int
    random_data: bytes        # CHUNK bytes, the content's repeating unit


Target = tuple[str, bool]


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    function()
    return (time.perf_counter_ns() - start) / 1e9


def run(*command: str) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def cp(source: Path, target: Path) -> None:
    run("cp", str(source), str(target))


def print_durable_share(name: str, seconds: float, durable_seconds: float) -> None:
    """The operation against cp + fsync: a merge or a mirror ends with its
    target on the disk, which a plain cp never waits for, so this is the
    limit an operation that keeps its promise can reach."""
    print(f"  {name} is {durable_seconds / seconds:.2f}x the speed of cp + fsync "
          f"(the limit for a copy that reaches the disk)")


def fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def durable_cp(source: Path, target: Path) -> None:
    """cp, then an fsync of the copy: what a copy that must survive a crash
    costs, as a merge or a mirror must (they flush the target at the end)."""
    cp(source, target)
    fsync_file(target)


def chunk_of(setup: Setup, index: int) -> bytes:
    """The content's chunk `index`: the random unit with its index in
    front, so that no two chunks are equal."""
    return index.to_bytes(8, "little") + setup.random_data[8:]


def pieces(setup: Setup, zero_block: Callable[[int], bool]) -> Iterator[tuple[int, bytes]]:
    """The content, piece by piece (at most CHUNK, never across a block):
    random chunks, and zeros over the blocks `zero_block(index)` names."""
    step = min(CHUNK, setup.block_size)
    zeros = bytes(step)
    for offset in range(0, setup.size, step):
        if zero_block(offset // setup.block_size):
            yield offset, zeros
        else:
            yield offset, chunk_of(setup, offset // step)[:step]


def write_content(path: Path, setup: Setup, zero_block: Callable[[int], bool]) -> None:
    """Writes the pieces into the image at `path`."""
    with virtdisk.open(path, read_only=False) as disk:
        for offset, data in pieces(setup, zero_block):
            disk.write(offset, data)


def raw_twin(path: Path, setup: Setup, zero_block: Callable[[int], bool]) -> None:
    """The same content in a raw file (for qemu-img)."""
    with open(path, "wb") as output:
        for _, data in pieces(setup, zero_block):
            output.write(data)


def read_through(path: Path) -> None:
    """Puts `path` in the page cache, as every timed source is."""
    with open(path, "rb") as source:
        while source.read(CHUNK):
            pass


def best(rows: dict[str, float], name: str, seconds: float) -> None:
    rows[name] = min(rows.get(name, float("inf")), seconds)


def report(title: str, rows: dict[str, float], limit: str, moved: int) -> None:
    """One table: each path's best time, its rate over `moved` bytes (0:
    none shown) and its speed as a multiple of the `limit` row's."""
    print(f"\n{title}")
    print(f"  {'path':<40}{'ms':>10}{'MiB/s':>9}{'x limit':>9}")
    for name, seconds in rows.items():
        rate = f"{moved / MiB / seconds:>9.0f}" if moved else f"{'-':>9}"
        print(f"  {name:<40}{seconds * 1000:>10.2f}{rate}{rows[limit] / seconds:>9.2f}")


# -- merge -----------------------------------------------------------------------

def timed_qemu_commit(place: Path, parent_content: Path | None, content: Path, size: int) -> float:
    """qemu's merge of the same chain, timed: a qcow2 parent holding the raw
    `parent_content` (empty when None) and a qcow2 child holding what
    `content` differs from it in, committed into the parent."""
    parent, child = place / "parent.qcow2", place / "child.qcow2"
    if parent_content is None:
        run("qemu-img", "create", "-q", "-f", "qcow2", str(parent), str(size))
    else:
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(parent_content), str(parent))
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-B", str(parent), "-F", "qcow2",
        str(content), str(child))
    read_through(child)
    return timed(lambda: run("qemu-img", "commit", "-q", "-d", "-f", "qcow2", str(child)))


def vhdx_chain(place: Path, setup: Setup, full_parent: bool,
               write_child: Callable[[Path], None]) -> Path:
    """A dynamic VHDX parent in `place`, empty or holding the benchmark's
    whole content, and a differencing child over it that `write_child`
    fills; the child's path."""
    parent, child = place / "parent.vhdx", place / "child.vhdx"
    virtdisk.create(parent, setup.size, block_size=setup.block_size).close()
    if full_parent:
        write_content(parent, setup, lambda block: False)
    virtdisk.create(child, parent=parent).close()
    write_child(child)
    return child


def measure_merge(setup: Setup) -> list[Target]:
    directory, size = setup.directory, setup.size
    everything = (lambda block: False)
    raw = directory / "merge-source.raw"
    raw_twin(raw, setup, everything)
    ours, extension, cp_limit, qemu = ("virtdisk.merge(child)", "MergeVirtualDisk (_virtdisk)",
                                       "cp of the child (limit)", "qemu-img commit -d (qcow2)")
    durable = "cp + fsync of the child"
    rows: dict[str, float] = {}
    child_bytes = 0
    for repeat in range(setup.repeats):
        for index, name in enumerate((cp_limit, durable, ours, extension, qemu)):
            place = directory / f"merge-{repeat}-{index}"
            place.mkdir()
            if name == qemu:
                best(rows, name, timed_qemu_commit(place, None, raw, size))
            else:
                child = vhdx_chain(place, setup, False, lambda path: write_content(path, setup, everything))
                child_bytes = child.stat().st_blocks * 512
                if name == cp_limit:
                    best(rows, name, timed(lambda: cp(child, place / "copy.vhdx")))
                elif name == durable:
                    best(rows, name, timed(lambda: durable_cp(child, place / "copy.vhdx")))
                elif name == ours:
                    best(rows, name, timed(lambda: virtdisk.merge(child)))
                else:
                    with virtdisk.open(child, access=virtdisk.VirtualDiskAccessMask.ALL,
                                       rw_depth=2) as disk:
                        handle = disk.handle
                        best(rows, name, timed(lambda: _virtdisk.MergeVirtualDisk(
                            handle, 0, 1, merge_depth=1)))
            shutil.rmtree(place)
    raw.unlink()
    report(f"merge of a {size // MiB} MiB differencing VHDX child ({child_bytes // MiB} MiB "
           f"allocated) into its empty parent", rows, cp_limit, size)
    targets = []
    for name in (ours, extension):
        ratio = rows[cp_limit] / rows[name]
        targets.append((f"merge: {name} >= 0.9x of cp ({ratio:.2f}x)", ratio >= 0.9))
    print_durable_share(ours, rows[ours], rows[durable])
    ratio = rows[qemu] / rows[ours]
    print(f"  {ours} is {ratio:.2f}x the speed of qemu-img commit")
    return targets


SPARSE_EVERY = 32   # a sparse checkpoint holds one block in this many


def sparse_changes(setup: Setup) -> Iterator[tuple[int, bytes]]:
    """A checkpoint's writes: new content over one block in SPARSE_EVERY."""
    for offset, data in pieces(setup, lambda block: False):
        if offset // setup.block_size % SPARSE_EVERY == 0:
            yield offset, bytes(byte ^ 0xFF for byte in data[:64]) + data[64:]


def write_sparse_changes(child: Path, setup: Setup) -> None:
    """Writes a checkpoint's changes into `child`."""
    with virtdisk.open(child, read_only=False) as disk:
        for offset, data in sparse_changes(setup):
            disk.write(offset, data)


def measure_sparse_merge(setup: Setup) -> list[Target]:
    """A checkpoint's merge as Hyper-V makes them: a child holding a few
    blocks of a full parent.  The merge's cost is what the child holds."""
    directory, size = setup.directory, setup.size
    everything = (lambda block: False)
    base_raw, combined_raw = directory / "sparse-base.raw", directory / "sparse-combined.raw"
    raw_twin(base_raw, setup, everything)
    shutil.copyfile(base_raw, combined_raw)
    with open(combined_raw, "r+b") as combined:
        for offset, data in sparse_changes(setup):
            combined.seek(offset)
            combined.write(data)
    ours, cp_limit, qemu = ("virtdisk.merge(child)", "cp of the child (limit)",
                            "qemu-img commit -d (qcow2)")
    rows: dict[str, float] = {}
    child_bytes = 0
    for repeat in range(setup.repeats):
        for index, name in enumerate((cp_limit, ours, qemu)):
            place = directory / f"sparse-merge-{repeat}-{index}"
            place.mkdir()
            if name == qemu:
                best(rows, name, timed_qemu_commit(place, base_raw, combined_raw, size))
            else:
                child = vhdx_chain(place, setup, True, lambda path: write_sparse_changes(path, setup))
                child_bytes = child.stat().st_blocks * 512
                read_through(child)
                if name == cp_limit:
                    best(rows, name, timed(lambda: cp(child, place / "copy.vhdx")))
                else:
                    best(rows, name, timed(lambda: virtdisk.merge(child)))
            shutil.rmtree(place)
    base_raw.unlink()
    combined_raw.unlink()
    report(f"merge of a differencing VHDX child holding one block in {SPARSE_EVERY} "
           f"({child_bytes // MiB} MiB allocated) into its full {size // MiB} MiB parent",
           rows, cp_limit, 0)
    ratio = rows[qemu] / rows[ours]
    print(f"  {ours} is {ratio:.2f}x the speed of qemu-img commit")
    return []


# -- compact ---------------------------------------------------------------------

def block_places(path: Path, block_size: int) -> dict[int, int]:
    """Each present data block's place in the file, read from the VHDX's
    region table and BAT ([MS-VHDX] 2.3, 2.5) after the image was closed."""
    with open(path, "rb") as image:
        image.seek(REGION_TABLE)
        table = image.read(64 * KiB)
        if table[:4] != b"regi":
            raise ValueError(f"{path}: no region table")
        count = struct.unpack_from("<I", table, 8)[0]
        for index in range(count):
            guid, offset, length = struct.unpack_from("<16sQI", table, 16 + 32 * index)
            if guid == BAT_GUID:
                image.seek(offset)
                bat = image.read(length)
                break
        else:
            raise ValueError(f"{path}: no BAT region")
    chunk_ratio = VHDX_CHUNK_BYTES // block_size
    places = {}
    for index, entry in enumerate(struct.iter_unpack("<Q", bat)):
        if (index + 1) % (chunk_ratio + 1) == 0:
            continue                          # a sector bitmap entry
        if entry[0] & 7 == PAYLOAD_FULLY_PRESENT:
            places[index - index // (chunk_ratio + 1)] = (entry[0] >> 20) * MiB
    return places


def read_ranges(path: Path, ranges: list[tuple[int, int]]) -> None:
    """Reads the (offset, length) ranges of `path` into one buffer, a piece
    of SCAN_PIECE at a time, as the engine's zero scan reads them."""
    view = memoryview(bytearray(SCAN_PIECE))
    descriptor = os.open(path, os.O_RDONLY)
    try:
        for offset, length in ranges:
            for at in range(offset, offset + length, SCAN_PIECE):
                os.preadv(descriptor, [view[:min(SCAN_PIECE, offset + length - at)]], at)
    finally:
        os.close(descriptor)


def durable_truncate(path: Path, size: int) -> None:
    """The file cut to `size`, and the cut flushed, as a compact ends."""
    os.truncate(path, size)
    fsync_file(path)


def measure_compact(setup: Setup) -> list[Target]:
    directory, size, block_size = setup.directory, setup.size, setup.block_size
    half = (lambda block: block % 2 == 1)
    raw = directory / "compact-source.raw"
    raw_twin(raw, setup, half)
    ours, holes, cp_moved, cp_all, qemu = (
        "disk.compact()", "disk.compact(move_blocks=False)", "cp of the bytes moved (limit)",
        "cp of the whole image", "qemu-img convert qcow2 -> qcow2")
    scan_read, cut, bound = ("read of the bytes the scan reads", "ftruncate + fsync of the cut",
                             "the three above together (bound)")
    durable_moved, durable_bound = ("cp + fsync of the bytes moved",
                                    "cp + fsync, read, cut (durable bound)")
    rows: dict[str, float] = {}
    moved = 0
    for repeat in range(setup.repeats):
        place = directory / f"compact-{repeat}"
        place.mkdir()
        image = place / "image.vhdx"
        for name in (ours, holes):
            virtdisk.create(image, size, block_size=block_size).close()
            write_content(image, setup, half)
            before = block_places(image, block_size)
            copy = place / "copy.vhdx"
            if name == ours:
                best(rows, cp_all, timed(lambda: cp(image, copy)))
                fsync_file(copy)    # its pages clean, as the image's are
                # The zero blocks whole, the data blocks' first piece.
                scanned = [(offset, block_size if half(block) else min(SCAN_PIECE, block_size))
                           for block, offset in before.items()]
                best(rows, scan_read, timed(lambda: read_ranges(image, scanned)))
            with virtdisk.open(image, read_only=False) as disk:
                best(rows, name, timed(lambda: disk.compact(move_blocks=name != holes)))
            if name == ours:
                after = block_places(image, block_size)
                moved = block_size * sum(1 for block, offset in after.items()
                                         if before.get(block) != offset)
                compacted = image.stat().st_size
                best(rows, cut, timed(lambda: durable_truncate(copy, compacted)))
                copy.unlink()
            image.unlink()
        if moved:
            part = place / "moved.bin"
            with open(part, "wb") as output:
                for offset in range(0, moved, CHUNK):
                    output.write(chunk_of(setup, offset // CHUNK)[:moved - offset])
            best(rows, cp_moved, timed(lambda: cp(part, place / "moved-copy.bin")))
            best(rows, durable_moved, timed(lambda: durable_cp(part, place / "moved-durable.bin")))
        qcow2 = place / "image.qcow2"
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-S", "0", str(raw), str(qcow2))
        read_through(qcow2)
        best(rows, qemu, timed(lambda: run("qemu-img", "convert", "-f", "qcow2", "-O", "qcow2",
                                           str(qcow2), str(place / "compacted.qcow2"))))
        shutil.rmtree(place)
    raw.unlink()
    limit = cp_moved if cp_moved in rows else cp_all
    rows[bound] = rows[limit] + rows[scan_read] + rows[cut]
    if durable_moved in rows:
        rows[durable_bound] = rows[durable_moved] + rows[scan_read] + rows[cut]
    ordered = {name: rows[name] for name in (limit, scan_read, cut, bound, durable_moved, durable_bound,
                                             ours, holes, cp_all, qemu)
               if name in rows}
    report(f"compact of a {size // MiB} MiB dynamic VHDX, half of its blocks zero "
           f"({moved // MiB} MiB moved)", ordered, limit, 0)
    # What a compact must do beyond the copy of what it moves: read every
    # block it finds zero, and cut the file by the bytes it frees.
    print(f"  {ours} is {rows[bound] / rows[ours]:.2f}x the speed of that bound "
          f"(cp of the moved bytes does neither the scan's read nor the cut)")
    if durable_bound in rows:
        # The moved blocks must be on the disk before the BAT points at
        # them, which a plain cp never waits for.
        print(f"  {ours} is {rows[durable_bound] / rows[ours]:.2f}x the speed of the durable bound "
              f"(the moved bytes flushed, as a compact must before its BAT points at them)")
    ratio = rows[limit] / rows[ours]
    return [(f"compact: disk.compact() >= 0.9x of {limit} ({ratio:.2f}x)", ratio >= 0.9)]


# -- resize ----------------------------------------------------------------------

def bat_growth(kind: str, old: int, new: int, block_size: int) -> int:
    """How many bytes the block table grows by (VHDX: data and sector
    bitmap entries; VHD: 4-byte entries, 2 MiB blocks)."""
    if kind == "vhd":
        return VHD_BAT_ENTRY * (-(-new // (2 * MiB)) - -(-old // (2 * MiB)))
    chunk_ratio = VHDX_CHUNK_BYTES // block_size

    def entries(size: int) -> int:
        blocks = -(-size // block_size)
        return blocks + -(-blocks // chunk_ratio)
    return VHDX_BAT_ENTRY * (entries(new) - entries(old))


def qemu_resize_seconds(directory: Path, size: int, grown: int) -> float:
    image = directory / "grow.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", str(image), str(size))
    start = min(timed(lambda: run("qemu-img", "info", str(image))) for _ in range(3))
    seconds = timed(lambda: run("qemu-img", "resize", "-q", "-f", "qcow2", str(image),
                                str(grown))) - start
    image.unlink()
    return max(seconds, 0.0)


def table_write_seconds(directory: Path, table: bytes, flush: bool) -> float:
    """One os.pwrite of `table` into a new file, and its fsync if `flush`."""
    written = directory / "table.bin"
    descriptor = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        def write() -> None:
            os.pwrite(descriptor, table, 0)
            if flush:
                os.fsync(descriptor)
        return timed(write)
    finally:
        os.close(descriptor)
        written.unlink()


def measure_resize(setup: Setup) -> list[Target]:
    directory, size = setup.directory, setup.size
    targets = []
    for kind, grown, block_size in (("vhdx", VHDX_GROWN, 32 * MiB), ("vhd", VHD_GROWN, 2 * MiB)):
        ours, extension, table, flushed, qemu = (
            "disk.resize()", "ResizeVirtualDisk (_virtdisk)", "os.pwrite of the BAT growth",
            "os.pwrite + os.fsync of the BAT growth", "qemu-img resize (qcow2)")
        growth = bat_growth(kind, size, grown, block_size)
        table_bytes = bytes(growth)
        rows: dict[str, float] = {}
        for repeat in range(setup.repeats):
            for name in (extension, ours):
                image = directory / f"grow-{repeat}.{kind}"
                options = {"block_size": block_size} if kind == "vhdx" else {}
                virtdisk.create(image, size, **options).close()  # type: ignore[arg-type]
                with virtdisk.open(image, read_only=False) as disk:
                    if name == ours:
                        best(rows, name, timed(lambda: disk.resize(grown)))
                    else:
                        handle = disk.handle
                        best(rows, name, timed(lambda: _virtdisk.ResizeVirtualDisk(handle,
                                                                                  grown)))
                image.unlink()
            best(rows, table, table_write_seconds(directory, table_bytes, flush=False))
            best(rows, flushed, table_write_seconds(directory, table_bytes, flush=True))
            best(rows, qemu, qemu_resize_seconds(directory, size, grown))
        print(f"\nresize of an empty dynamic {kind.upper()} from {size // MiB} MiB to "
              f"{grown // GiB} GiB (the BAT grows by {growth // KiB} KiB)")
        print(f"  {'path':<40}{'ms':>10}")
        for name, seconds in rows.items():
            print(f"  {name:<40}{seconds * 1000:>10.3f}")
        for name in (extension, ours):
            # The new entries must reach the disk before the headers name
            # them: the table's share is written and flushed once.
            rest = rows[name] - rows[flushed]
            targets.append((f"resize {kind.upper()} to {grown // GiB} GiB: {name} under 1 ms "
                            f"apart from the BAT's growth, written and flushed "
                            f"({rest * 1000:.3f} ms)", rest < 1e-3))
    return targets


# -- mirror ----------------------------------------------------------------------

def measure_mirror(setup: Setup) -> list[Target]:
    directory, size = setup.directory, setup.size
    everything = (lambda block: False)
    ours, cp_limit = "disk.mirror() until broken", "cp of the image (limit)"
    rows: dict[str, float] = {}
    for repeat in range(setup.repeats):
        place = directory / f"mirror-{repeat}"
        place.mkdir()
        source = place / "source.vhdx"
        virtdisk.create(source, size, block_size=setup.block_size).close()
        write_content(source, setup, everything)
        read_through(source)
        best(rows, cp_limit, timed(lambda: cp(source, place / "copy.vhdx")))
        best(rows, "cp + fsync of the image", timed(lambda: durable_cp(source,
                                                                    place / "durable.vhdx")))
        with virtdisk.open(source, read_only=False) as disk:
            def mirror_and_break() -> None:
                mirror = disk.mirror(place / "mirror.vhdx")
                mirror.wait_mirrored()
                mirror.break_()
            best(rows, ours, timed(mirror_and_break))
        shutil.rmtree(place)
    report(f"mirror of a {size // MiB} MiB dynamic VHDX, every block written", rows,
           cp_limit, size)
    print_durable_share(ours, rows[ours], rows["cp + fsync of the image"])
    ratio = rows[cp_limit] / rows[ours]
    return [(f"mirror: {ours} >= 0.9x of cp ({ratio:.2f}x)", ratio >= 0.9)]


SECTIONS: tuple[tuple[str, Callable[[Setup], list[Target]]], ...] = (
    ("merge", measure_merge),
    ("sparse merge", measure_sparse_merge),
    ("compact", measure_compact),
    ("resize", measure_resize),
    ("mirror", measure_mirror),
)


def section_option(name: str) -> str:
    """A section's name as --only takes it: "sparse merge" is sparse-merge."""
    return name.replace(" ", "-")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small images (a smoke run)")
    parser.add_argument("--size", type=parse_size, default=None,
                        help="the images' virtual size (default 1G, --quick 16M)")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the images are made (decides the file system measured)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="rounds, the best of which counts (default 3, --quick 1)")
    parser.add_argument("--only", choices=[section_option(name) for name, _ in SECTIONS],
                        action="append", help="run this section alone (may be repeated; default: all)")
    options = parser.parse_args()
    if shutil.which("qemu-img") is None:
        sys.exit("qemu-img is needed (the peer of merge, compact and resize)")
    size = options.size or (16 * MiB if options.quick else GiB)
    # VHDX's default block size for a full run; small ones keep a quick
    # run's image many blocks long.
    block_size = MiB if options.quick else 32 * MiB
    size -= size % (2 * block_size)
    repeats = options.repeats or (1 if options.quick else 3)
    print(f"Python {sys.version.split()[0]}; images of {size // MiB} MiB, VHDX blocks of "
          f"{block_size // MiB} MiB, best of {repeats}")
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="vd-bench-ops-", dir=options.dir) as scratch:
        directory = Path(scratch)
        print(f"directory {directory} on {file_system_type(directory)}")
        setup = Setup(directory, size, block_size, repeats, os.urandom(CHUNK))
        for name, measure in SECTIONS:
            if options.only is None or section_option(name) in options.only:
                targets.extend(measure(setup))

    print_targets(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
