#!/usr/bin/env python3
"""Instructions per GetVirtualDiskInformation call, counted by callgrind.

Wall-clock figures for a ~100 ns call move with whatever else the machine
runs; an instruction count does not.  The script runs itself under
``valgrind --tool=callgrind`` twice per answer kind, with N and with 2N calls
in the loop, so that the difference divided by N is the cost of one call,
start-up excluded:

* a fresh SIZE answer (a raw handle value: no answer kept from the last call,
  so the VirtualDiskSize is built every time); on qemu-img's empty 64 MiB
  VHDX all four sizes are powers of two, which the extension answers with
  ints made once, so a second disk (100 MiB, two blocks written: 24 MiB of
  file) shows the cost with two ints made per call;
* a repeated SIZE answer on a VirtualDiskHandle (the kept answer returned);
* an int answer (FRAGMENTATION), the same call with the least to build;
* a RawSCSIVirtualDisk READ(16) and READ(10) of 4 KiB at the start of a VHD
  whose first block is written (a NO_LOCAL_HOST attach), the extension's
  whole SCSI call: arguments, buffer, GIL release, engine read and answer.

The fresh SIZE answer minus the int answer is what building a four-field
answer costs.

    python benchmarks/bench_answer_instructions.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from callgrind_count import callgrind_instructions  # the script's directory is on sys.path

# Title: (disk, target, item).
KINDS = {
    "fresh SIZE answer (raw handle)": ("small", "raw", "SIZE"),
    "fresh SIZE answer, sizes not powers of two": ("odd", "raw", "SIZE"),
    "repeated SIZE answer (VirtualDiskHandle)": ("small", "handle", "SIZE"),
    "int answer (FRAGMENTATION)": ("small", "raw", "FRAGMENTATION"),
    "RawSCSIVirtualDisk READ(16) of 4 KiB (VHD)": ("vhd", "scsi", "READ_16"),
    "RawSCSIVirtualDisk READ(10) of 4 KiB (VHD)": ("vhd", "scsi", "READ_10"),
}

# 4 KiB (eight 512-byte sectors) from LBA 0, as SBC-4 lays the commands out.
READS = {
    "READ_16": bytes([0x88, 0]) + (0).to_bytes(8, "big") + (8).to_bytes(4, "big") + bytes(2),
    "READ_10": bytes([0x28, 0]) + (0).to_bytes(4, "big") + bytes(1) + (8).to_bytes(2, "big")
    + bytes(1),
}


def loop(image: str, target: str, item: str, calls: int) -> None:
    """The measured loop: the calls and nothing else that grows with N."""
    import _virtdisk

    if target == "scsi":
        scsi_loop(_virtdisk, image, READS[item], calls)
        return
    storage = _virtdisk.VirtualStorageType(0, _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
    version = getattr(_virtdisk.GetVirtualDiskInfoVersion, item)
    with _virtdisk.OpenVirtualDisk(storage, image, 0, 0, 2, read_only=True) as handle:
        asked = handle.value if target == "raw" else handle
        call = _virtdisk.GetVirtualDiskInformation
        for _ in range(calls):
            call(asked, version)


def scsi_loop(_virtdisk: Any, image: str, cdb: bytes, calls: int) -> None:
    storage = _virtdisk.VirtualStorageType(0, _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN)
    buffer = bytearray(4096)
    with _virtdisk.OpenVirtualDisk(storage, image, 0, 0, 2) as handle:
        _virtdisk.AttachVirtualDisk(handle, _virtdisk.AttachVirtualDiskFlag.NO_LOCAL_HOST, 1)
        call = _virtdisk.RawSCSIVirtualDisk
        for _ in range(calls):
            call(handle, cdb, data_in=True, data=buffer)


def instructions(image: Path, target: str, item: str, calls: int, scratch: Path) -> int:
    return callgrind_instructions([__file__, "--loop", str(image), target, item, str(calls)],
                                  scratch / f"callgrind.{target}.{item}.{calls}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--loop", nargs=4, metavar=("IMAGE", "TARGET", "ITEM", "CALLS"),
                        help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.loop:
        image, target, item, calls = options.loop
        loop(image, target, item, int(calls))
        return 0
    for tool in ("valgrind", "qemu-img", "qemu-io"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed")
    calls = 2_000 if options.quick else 50_000
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        images = {"small": scratch / "small.vhdx", "odd": scratch / "odd.vhdx",
                  "vhd": scratch / "written.vhd"}
        subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(images["small"]), "64M"],
                       check=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(images["odd"]), "100M"],
                       check=True)
        subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write 0 4k", "-c", "write 16M 4k",
                        str(images["odd"])], check=True, capture_output=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "vpc", str(images["vhd"]), "64M"],
                       check=True)
        subprocess.run(["qemu-io", "-f", "vpc", "-c", "write -P 0x5a 0 2M", str(images["vhd"])],
                       check=True, capture_output=True)
        print(f"Python {sys.version.split()[0]}, callgrind, ({calls * 2} - {calls}) calls")
        per_call = {}
        for title, (disk, target, item) in KINDS.items():
            once = instructions(images[disk], target, item, calls, scratch)
            twice = instructions(images[disk], target, item, 2 * calls, scratch)
            per_call[title] = (twice - once) / calls
            print(f"  {title:<44} {per_call[title]:8.0f} instructions/call")
    scalar = per_call["int answer (FRAGMENTATION)"]
    for title, ints in (("fresh SIZE answer (raw handle)", "powers of two"),
                        ("fresh SIZE answer, sizes not powers of two", "two ints made")):
        fresh = per_call[title]
        print(f"  building the four-field answer ({ints}): {fresh - scalar:.0f} instructions "
              f"({fresh / scalar:.2f}x the int answer's call)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
