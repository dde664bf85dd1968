"""A merge reads only what the merged images hold.

A checkpoint's child usually holds a few blocks of a large disk.  The merge
copy skips each step that no merged image holds a sector of, since there
the range reads the target's own content (disk/merge_copy.c).  strace adds
up the bytes a merge reads in a child process.  The merged parent is
compared by ``qemu-img compare`` with a raw file holding the same writes,
made without the engine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import _virtdisk
import pytest
from traced_child import needs_strace, run_traced

pytestmark = [
    pytest.mark.skipif(not _virtdisk.features().get("MergeVirtualDisk", False),
                       reason="the long operations are not available here"),
    needs_strace("strace adds up the reads"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img checks the result"),
]

MIB = 1 << 20
SIZE = 128 * MIB

HELPERS = """
import os, virtdisk
def put(path, writes, twin):
    # Each (offset, length, byte) written into the image and its raw twin.
    with virtdisk.open(path, read_only=False) as disk, open(twin, "r+b") as raw:
        for offset, length, byte in writes:
            disk.write(offset, bytes([byte]) * length)
            raw.seek(offset)
            raw.write(bytes([byte]) * length)
"""


def in_child(script: str, trace: Path | None = None) -> int:
    """Runs `script` in a Python child, under strace when `trace` is given;
    the bytes its pread64 calls returned."""
    lines = run_traced(textwrap.dedent(HELPERS) + textwrap.dedent(script), trace, "pread64")
    return sum(int(match.group(1)) for match in
               re.finditer(r"pread64\(.*\)\s+=\s+(\d+)", "\n".join(lines)))


def chain(tmp_path: Path, suffix: str, writes: list[list[tuple[int, int, int]]]) -> list[Path]:
    """A base full of data, then one differencing image per later entry of
    `writes`, each given those writes; the raw twin gets them all in order.
    The paths, the leaf first."""
    twin = tmp_path / "twin.raw"
    twin.write_bytes(b"")
    with open(twin, "r+b") as raw:
        raw.truncate(SIZE)
    images = [tmp_path / f"level{index}{suffix}" for index in range(len(writes))]
    # Each image is written before its child is made: a write into a
    # parent afterwards would change the identifier its child records.
    script = f"virtdisk.create({str(images[0])!r}, {SIZE}, block_size='2M').close()\n"
    for index, (image, image_writes) in enumerate(zip(images, writes)):
        if index > 0:
            script += (f"virtdisk.create({str(image)!r}, "
                       f"parent={str(images[index - 1])!r}).close()\n")
        script += f"put({str(image)!r}, {image_writes!r}, {str(twin)!r})\n"
    in_child(script)
    return images[::-1]


def same_as_twin(image: Path, suffix: str) -> None:
    result = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F",
                             "vhdx" if suffix == ".vhdx" else "vpc",
                             str(image.parent / "twin.raw"), str(image)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


FULL = [(offset, MIB, 1 + offset // MIB % 250) for offset in range(0, SIZE, MIB)]


@pytest.mark.parametrize("suffix", [".vhdx", ".vhd"])
def test_a_sparse_childs_merge_reads_its_blocks_not_the_disk(tmp_path: Path, suffix: str) -> None:
    child, base = chain(tmp_path, suffix, [FULL, [(5 * MIB + 4096, 8192, 0xA1),
                                                  (100 * MIB, MIB, 0xB2)]])
    read = in_child(f"virtdisk.merge({str(child)!r})", tmp_path / "merge.trace")
    # The two steps the child holds, read through the range and from the
    # target: a few MiB, where reading every step would be twice SIZE.
    assert read < 16 * MIB, f"the merge read {read // MIB} MiB of a {SIZE // MIB} MiB disk"
    same_as_twin(base, suffix)


@pytest.mark.parametrize("suffix", [".vhdx", ".vhd"])
def test_a_deeper_merge_skips_only_what_no_merged_image_holds(tmp_path: Path,
                                                              suffix: str) -> None:
    # Depth 2: the leaf holds one range, the middle image another that the
    # leaf does not cover; both reach the base, and nothing else is read.
    leaf, middle, base = chain(tmp_path, suffix, [FULL, [(40 * MIB, 2 * MIB, 0xC3)],
                                                 [(90 * MIB + 512, 512, 0xD4)]])
    read = in_child(f"virtdisk.merge({str(leaf)!r}, depth=2)", tmp_path / "merge.trace")
    assert read < 24 * MIB, f"the merge read {read // MIB} MiB of a {SIZE // MIB} MiB disk"
    same_as_twin(base, suffix)
