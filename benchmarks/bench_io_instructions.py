#!/usr/bin/env python3
"""Instructions per small content request, counted by callgrind, through
the facade and through the extension call it wraps.

bench_io.py times random 4 KiB requests, where the facade's own work
(argument checks, the CDB, the answer's checks) is a large share of each
request; its wall-clock figures move with whatever else the machine runs,
an instruction count does not.  The rows, each on one dynamic VHDX that
qemu made and wrote (so every request reaches allocated data):

* ``RawSCSIVirtualDisk`` READ(16) and WRITE(16) of 4 KiB at LBA 0, called
  as the facade calls it (a memoryview of the buffer, 32 bytes of sense
  room) on the attach the facade made: the extension's whole call;
* ``disk.readinto(0, buffer)`` and ``disk.write(0, data)`` of 4 KiB: the
  facade's aligned path around that same call;
* the same at offset 100 (an unaligned request: one bounce buffer, and a
  read of the edge sectors before a write), ``disk.read(0, 4096)``, and
  ``readinto`` of a 4 KiB buffer on ``disk.content()`` after a seek.

Each row runs under ``valgrind --tool=callgrind`` with N and with 2N
requests, so that the difference divided by N is the cost of one request,
start-up excluded; the hash seed is fixed, so that dictionary lookups
probe alike in every run.  A facade row minus its extension row is what
the facade adds to the request.

    python benchmarks/bench_io_instructions.py [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

# The script's directory is on sys.path.
from callgrind_count import Row, image_of_row, instructions_per_repeat_of_rows, quick_or_loop

# Title: the request the loop makes.
ROWS = {
    "_virtdisk READ(16) of 4 KiB": "raw read",
    "disk.readinto of 4 KiB, aligned": "readinto",
    "_virtdisk WRITE(16) of 4 KiB": "raw write",
    "disk.write of 4 KiB, aligned": "write",
    "disk.readinto of 4 KiB at offset 100": "readinto unaligned",
    "disk.write of 4 KiB at offset 100": "write unaligned",
    "disk.read of 4 KiB, aligned": "read",
    "content().readinto of 4 KiB after a seek": "content",
}
# Each facade request and the extension call inside it.
PAIRS = {"disk.readinto of 4 KiB, aligned": "_virtdisk READ(16) of 4 KiB",
         "disk.write of 4 KiB, aligned": "_virtdisk WRITE(16) of 4 KiB"}

LENGTH = 4096
# READ(16) and WRITE(16) of eight 512-byte sectors at LBA 0 (SBC-4).
CDBS = {opcode: bytes([opcode, 0]) + (0).to_bytes(8, "big") + (8).to_bytes(4, "big") + bytes(2)
        for opcode in (0x88, 0x8A)}
# What the facade asks room for (virtdisk.scsi), so that both calls match.
SENSE_LENGTH = 32


def loop(image: str, request: str, calls: int) -> None:
    """The measured loop: the requests and nothing else that grows with N."""
    import _virtdisk
    import virtdisk

    buffer = bytearray(LENGTH)
    data = bytes(range(256)) * (LENGTH // 256)
    with virtdisk.open(image, read_only=False) as disk:
        disk.read(0, 1)                     # the attach, made once, outside the count
        if request.startswith("raw"):
            call, handle = _virtdisk.RawSCSIVirtualDisk, disk.handle
            data_in = request == "raw read"
            cdb = CDBS[0x88 if data_in else 0x8A]
            view = memoryview(buffer if data_in else data)
            for _ in range(calls):
                call(handle, cdb, data_in=data_in, data=view, sense_info_length=SENSE_LENGTH)
        elif request.startswith("readinto"):
            readinto, offset = disk.readinto, 100 if request.endswith("unaligned") else 0
            for _ in range(calls):
                readinto(offset, buffer)
        elif request.startswith("write"):
            write, offset = disk.write, 100 if request.endswith("unaligned") else 0
            for _ in range(calls):
                write(offset, data)
        elif request == "read":
            read = disk.read
            for _ in range(calls):
                read(0, LENGTH)
        else:
            stream = disk.content()
            seek, readinto_stream = stream.seek, stream.readinto
            for _ in range(calls):
                seek(0)
                readinto_stream(buffer)


def main() -> int:
    quick = quick_or_loop(__doc__.splitlines()[0], loop, ("image", "request"),
                          ("qemu-img", "qemu-io"))
    calls = 2_000 if quick else 20_000
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        image = scratch / "written.vhdx"
        subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(image), "64M"],
                       check=True)
        subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -P 0x5a 0 2M", str(image)],
                       check=True, capture_output=True)
        print(f"Python {sys.version.split()[0]}, callgrind, ({calls * 2} - {calls}) requests")
        counts = instructions_per_repeat_of_rows([
            Row(__file__, [str(image_of_row(image, tag)), request], calls,
                scratch / f"callgrind.{tag}", {"PYTHONHASHSEED": "0"})
            for request in ROWS.values() for tag in [request.replace(" ", "-")]])
        per_call = dict(zip(ROWS, counts))
        for title, count in per_call.items():
            print(f"  {title:<44} {count:8.0f} instructions/request")
    for facade, extension in PAIRS.items():
        added = per_call[facade] - per_call[extension]
        print(f"  {facade}: the facade adds {added:.0f} instructions "
              f"({per_call[facade] / per_call[extension]:.2f}x the extension's call)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
