"""A conversion's destination left to the system's write-back: the engine's
``skip_sync`` (``vd_engine_skip_sync``) and ``convert(durable=...)``.

By default `virtdisk.convert` no longer waits for the disk (as ``cp`` and
``qemu-img convert`` do not): strace counts the fsync and fdatasync calls
of a conversion, none by default and some with ``durable=True``.  What the
switch keeps is checked against tools nobody here wrote: ``qemu-img
compare`` and ``qemu-img check`` of the results, and of images whose
writer was killed (SIGKILL) after a flush of a skip_sync handle, which
must open clean and read what was flushed.
"""

from __future__ import annotations

import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import _virtdisk
import pytest

import virtdisk
from traced_child import needs_strace

pytestmark = [
    pytest.mark.skipif(not _virtdisk.features().get("RawSCSIVirtualDisk", False),
                       reason="content I/O (RawSCSIVirtualDisk) is not available here"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img checks the results"),
]

MIB = 1 << 20
SIZE = 40 * MIB
QEMU_FORMAT = {".vhd": "vpc", ".vhdx": "vhdx", ".img": "raw"}


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True)


def raw_source(path: Path, size: int = SIZE) -> Path:
    """A raw file: random data in a few places (one of them not sector
    aligned in length, inside a sector run), holes elsewhere."""
    chooser = random.Random(path.name)
    with open(path, "wb") as file:
        file.truncate(size)
        for offset, length in [(0, MIB), (3 * MIB + 4096, 5000), (size - 2 * MIB, 2 * MIB)]:
            file.seek(offset)
            file.write(chooser.randbytes(length))
    return path


def same_content(reference: Path, image: Path) -> None:
    result = run("qemu-img", "compare", "-f", "raw", "-F", QEMU_FORMAT[image.suffix],
                 reference, image)
    assert result.returncode == 0, result.stdout + result.stderr


def check_clean(image: Path) -> None:
    if image.suffix == ".vhdx":
        result = run("qemu-img", "check", "-f", "vhdx", image)
        assert result.returncode == 0, result.stdout + result.stderr


def syncs_of_conversion(source: Path, target: Path, kind: str, durable: bool,
                        trace: Path) -> int:
    """Converts in a child process under strace; its fsync and fdatasync
    calls."""
    script = (f"import virtdisk; virtdisk.convert({str(source)!r}, {str(target)!r}, "
              f"type={kind!r}, durable={durable})")
    result = subprocess.run(["strace", "-f", "-qq", "-o", str(trace), "-e",
                             "trace=fsync,fdatasync", sys.executable, "-c", script],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return sum(1 for line in trace.read_text().splitlines()
               if re.search(r"\b(fsync|fdatasync)\(", line))


@needs_strace("strace counts the flushes")
@pytest.mark.parametrize("suffix,kind", [(".vhdx", "dynamic"), (".vhdx", "fixed"),
                                         (".vhd", "dynamic"), (".vhd", "fixed"),
                                         (".img", "dynamic"), (".img", "fixed")])
def test_only_a_durable_conversion_waits_for_the_disk(tmp_path: Path, suffix: str,
                                                      kind: str) -> None:
    source = raw_source(tmp_path / "source.raw")
    quick = tmp_path / f"quick{suffix}"
    durable = tmp_path / f"durable{suffix}"
    assert syncs_of_conversion(source, quick, kind, False, tmp_path / "quick.trace") == 0
    assert syncs_of_conversion(source, durable, kind, True, tmp_path / "durable.trace") > 0
    for image in (quick, durable):
        same_content(source, image)
        check_clean(image)


@pytest.mark.parametrize("suffix", [".vhdx", ".vhd"])
@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
def test_both_ways_give_the_same_image_content(tmp_path: Path, suffix: str, kind: str) -> None:
    source = raw_source(tmp_path / "source.raw")
    for durable in (False, True):
        target = tmp_path / f"copy-{durable}{suffix}"
        virtdisk.convert(source, target, type=kind, durable=durable)  # type: ignore[arg-type]
        same_content(source, target)
        check_clean(target)


def test_durable_must_be_a_bool(tmp_path: Path) -> None:
    source = raw_source(tmp_path / "source.raw")
    with pytest.raises(TypeError, match="durable must be a bool"):
        virtdisk.convert(source, tmp_path / "copy.vhdx", durable=1)  # type: ignore[arg-type]
    assert not (tmp_path / "copy.vhdx").exists()


def test_skip_sync_refuses_a_read_only_handle(tmp_path: Path) -> None:
    image = tmp_path / "disk.vhdx"
    virtdisk.create(image, 8 * MIB).close()
    with virtdisk.open(image, read_only=True) as disk, \
            pytest.raises(virtdisk.AccessDeniedError):
        _virtdisk.skip_sync(disk.handle)


def test_skip_sync_refuses_a_closed_handle(tmp_path: Path) -> None:
    image = tmp_path / "disk.vhdx"
    disk = virtdisk.create(image, 8 * MIB)
    handle = disk.handle
    disk.close()
    with pytest.raises(virtdisk.InvalidHandleError):
        _virtdisk.skip_sync(handle)


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    import _virtdisk, virtdisk
    image, reference = sys.argv[1], sys.argv[2]
    data = open(reference, "rb").read()
    disk = virtdisk.create(image, len(data), type=sys.argv[3])
    _virtdisk.skip_sync(disk.handle)
    for offset in range(0, len(data), 1 << 20):
        piece = data[offset:offset + (1 << 20)]
        if piece.count(0) != len(piece):
            disk.write(offset, piece)
    disk.flush()
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("suffix", [".vhdx", ".vhd"])
@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
def test_a_writer_killed_after_a_flush_leaves_a_clean_image(tmp_path: Path, suffix: str,
                                                            kind: str) -> None:
    reference = raw_source(tmp_path / "reference.raw")
    image = tmp_path / f"killed{suffix}"
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(image), str(reference),
                             kind], capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    check_clean(image)
    same_content(reference, image)
    with virtdisk.open(image) as disk:
        assert disk.read(0, MIB) == reference.read_bytes()[:MIB]
