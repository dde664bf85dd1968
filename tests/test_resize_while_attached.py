"""ResizeVirtualDisk while an in-process attach (NO_LOCAL_HOST) keeps
reading: the resize frees the image's state when it reads the image again,
and a VHD grow moves the blocks in the way of its BAT, so it must not run
beside a READ of the data path.  Two threads read through
RawSCSIVirtualDisk while the main thread grows the disk step by step; each
read must answer GOOD with the bytes qemu-io wrote.  The threads run in a
child process, so that a crash is a failure here, not the end of the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import _virtdisk
import virtdisk
from test_create_vhd import run, tool

pytestmark = pytest.mark.skipif(not _virtdisk.features().get("RawSCSIVirtualDisk", False),
                                reason="RawSCSIVirtualDisk is not available here")

MiB = 1 << 20
SIZE = 16 * MiB
QEMU_FORMAT = {".vhd": "vpc", ".vhdx": "vhdx"}

READERS = r"""
import struct, sys, threading
import _virtdisk, virtdisk

path, size, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
expected = bytes([0x5A]) * size
disk = virtdisk.open(path, read_only=False)
_virtdisk.AttachVirtualDisk(disk.handle, _virtdisk.AttachVirtualDiskFlag.NO_LOCAL_HOST, 1)
stop = threading.Event()
failures = []

def reader(seed):
    buffer = bytearray(64 << 10)
    sectors = len(buffer) // 512
    count = 0
    while not stop.is_set() and not failures:
        lba = (seed + count * 977) % (size // 512 - sectors)
        cdb = struct.pack(">BBQIBB", 0x88, 0, lba, sectors, 0, 0)
        answer = _virtdisk.RawSCSIVirtualDisk(disk.handle, cdb, data_in=True, data=buffer)
        if answer[0] != 0 or buffer != expected[lba * 512:lba * 512 + len(buffer)]:
            failures.append((lba, answer[0], answer[1].hex()))
        count += 1

threads = [threading.Thread(target=reader, args=(seed,)) for seed in (0, 4099)]
for thread in threads:
    thread.start()
grown = size
for _ in range(steps):
    grown += 1 << 20
    disk.resize(grown)
stop.set()
for thread in threads:
    thread.join()
_virtdisk.DetachVirtualDisk(disk.handle, 0, 0)
disk.close()
print(failures[:3] if failures else "ok")
"""


@pytest.mark.parametrize("suffix", [".vhd", ".vhdx"])
def test_reads_of_an_attached_disk_go_on_right_while_it_grows(tmp_path: Path,
                                                              suffix: str) -> None:
    image = tmp_path / f"disk{suffix}"
    virtdisk.create(image, SIZE).close()
    run(tool("qemu-io"), "-f", QEMU_FORMAT[suffix], "-c", f"write -P 0x5a 0 {SIZE}", image)
    child = subprocess.run([sys.executable, "-c", READERS, str(image), str(SIZE), "40"],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip() == "ok"
    if suffix == ".vhdx":                 # qemu-img checks no VHD
        run(tool("qemu-img"), "check", "-f", QEMU_FORMAT[suffix], image)
    assert run(tool("qemu-img"), "info", "--output=json", image).count(str(SIZE + 40 * MiB)) == 1
    run(tool("qemu-io"), "-f", QEMU_FORMAT[suffix], "-c", f"read -P 0x5a 0 {SIZE}", image)
