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
  whose first block is written (a NO_LOCAL_HOST attach), a WRITE(16) there,
  and a READ(16) of a VHDX likewise written: the extension's whole SCSI
  call, arguments, buffer, GIL release, engine I/O and answer;
* the same commands from a C loop (benchmarks/c/io_loops.c, called once
  through ctypes): the engine's RawSCSIVirtualDisk alone, pread or pwrite
  included, which the extension's rows minus these rows leave the
  extension's own share of.

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

from callgrind_count import Row, image_of_row, instructions_per_repeat_of_rows
from io_library import build_library

# The SCSI rows: per target (the extension, the C loop), (disk, command).
SCSI_ROWS = {
    "scsi": (("vhd", "READ_16"), ("vhd", "READ_10"), ("vhd", "WRITE_16"), ("vhdx", "READ_16")),
    "c": (("vhd", "READ_16"), ("vhd", "WRITE_16"), ("vhdx", "READ_16"), ("vhdx", "WRITE_16")),
}


def scsi_title(target: str, disk: str, command: str) -> str:
    caller = "RawSCSIVirtualDisk" if target == "scsi" else "C API"
    return f"{caller} {command.replace('_', '(')}) of 4 KiB ({disk.upper()})"


# Title: (disk, target, item).
KINDS = {
    "fresh SIZE answer (raw handle)": ("small", "raw", "SIZE"),
    "fresh SIZE answer, sizes not powers of two": ("odd", "raw", "SIZE"),
    "repeated SIZE answer (VirtualDiskHandle)": ("small", "handle", "SIZE"),
    "int answer (FRAGMENTATION)": ("small", "raw", "FRAGMENTATION"),
    **{scsi_title(target, disk, command): (disk, target, command)
       for target, rows in SCSI_ROWS.items() for disk, command in rows},
}

# The extension's share of a SCSI call, for the commands both targets send:
# (extension row, C API row).
EXTENSION_SHARES = {
    f"{command.replace('_', '(')}), {disk.upper()}":
        (scsi_title("scsi", disk, command), scsi_title("c", disk, command))
    for disk, command in SCSI_ROWS["scsi"] if (disk, command) in SCSI_ROWS["c"]
}

# 4 KiB (eight 512-byte sectors) from LBA 0, as SBC-4 lays the commands out.
COMMANDS = {
    "READ_16": bytes([0x88, 0]) + (0).to_bytes(8, "big") + (8).to_bytes(4, "big") + bytes(2),
    "READ_10": bytes([0x28, 0]) + (0).to_bytes(4, "big") + bytes(1) + (8).to_bytes(2, "big")
    + bytes(1),
    "WRITE_16": bytes([0x8A, 0]) + (0).to_bytes(8, "big") + (8).to_bytes(4, "big") + bytes(2),
}

# The shared library of the C rows (io_library.build_library), named to the
# measured process by this variable.
LIBRARY_VARIABLE = "VD_BENCH_IO_LIBRARY"


def loop(image: str, target: str, item: str, calls: int) -> None:
    """The measured loop: the calls and nothing else that grows with N."""
    import _virtdisk

    if target == "scsi":
        scsi_loop(_virtdisk, image, COMMANDS[item], calls)
        return
    if target == "c":
        c_scsi_loop(image, item, calls)
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
    buffer = bytearray(b"\xa5" * 4096)
    data_in = cdb[0] != 0x8A
    with _virtdisk.OpenVirtualDisk(storage, image, 0, 0, 2) as handle:
        _virtdisk.AttachVirtualDisk(handle, _virtdisk.AttachVirtualDiskFlag.NO_LOCAL_HOST, 1)
        call = _virtdisk.RawSCSIVirtualDisk
        for _ in range(calls):
            call(handle, cdb, data_in=data_in, data=buffer)


def c_scsi_loop(image: str, item: str, calls: int) -> None:
    """`calls` commands at LBA 0 in one call of bench_scsi_loop."""
    import ctypes
    import os

    from io_library import Library

    library = Library(Path(os.environ[LIBRARY_VARIABLE]))
    handle = ctypes.c_void_p()
    code = library.open_attached((image + "\0").encode("utf-16-le"), 0, ctypes.byref(handle))
    if code:
        sys.exit(f"OpenVirtualDisk + AttachVirtualDisk failed with {code:#x}")
    offsets = (ctypes.c_uint64 * calls)()
    buffer = ctypes.create_string_buffer(b"\xa5" * 4096, 4096)
    try:
        status = library.scsi_loop(handle, item == "WRITE_16", offsets, calls, buffer, 4096, 512)
        if status:
            sys.exit(f"RawSCSIVirtualDisk loop failed with {status:#x}")
    finally:
        library.close(handle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--scsi", action="store_true", help="the SCSI rows alone")
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
                  "vhd": scratch / "written.vhd", "vhdx": scratch / "written.vhdx"}
        build_library(scratch)
        subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(images["small"]), "64M"],
                       check=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(images["odd"]), "100M"],
                       check=True)
        subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write 0 4k", "-c", "write 16M 4k",
                        str(images["odd"])], check=True, capture_output=True)
        for format, image in (("vpc", images["vhd"]), ("vhdx", images["vhdx"])):
            subprocess.run(["qemu-img", "create", "-q", "-f", format, str(image), "64M"],
                           check=True)
            subprocess.run(["qemu-io", "-f", format, "-c", "write -P 0x5a 0 2M", str(image)],
                           check=True, capture_output=True)
        print(f"Python {sys.version.split()[0]}, callgrind, ({calls * 2} - {calls}) calls")
        kinds = {title: kind for title, kind in KINDS.items()
                 if not options.scsi or kind[1] in ("scsi", "c")}
        environment = {LIBRARY_VARIABLE: str(scratch / "libvdio.so")}
        counts = instructions_per_repeat_of_rows([
            Row(__file__, [str(image_of_row(images[disk], tag)), target, item], calls,
                scratch / f"callgrind.{tag}", environment)
            for disk, target, item in kinds.values() for tag in [f"{target}.{item}.{disk}"]])
        per_call = dict(zip(kinds, counts))
        for title, count in per_call.items():
            print(f"  {title:<44} {count:8.0f} instructions/call")
    for command, (extension, engine) in EXTENSION_SHARES.items():
        print(f"  the extension's share of a {command}: "
              f"{per_call[extension] - per_call[engine]:.0f} instructions")
    if options.scsi:
        return 0
    scalar = per_call["int answer (FRAGMENTATION)"]
    for title, ints in (("fresh SIZE answer (raw handle)", "powers of two"),
                        ("fresh SIZE answer, sizes not powers of two", "two ints made")):
        fresh = per_call[title]
        print(f"  building the four-field answer ({ints}): {fresh - scalar:.0f} instructions "
              f"({fresh / scalar:.2f}x the int answer's call)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
