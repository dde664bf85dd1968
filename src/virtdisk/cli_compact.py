"""The ``compact`` command of ``virtdisk``.

``virtdisk compact PATH [--mode MODE] [--no-block-moves] [--json]`` gives
back the space of a dynamic or differencing VHD or VHDX's blocks that hold
nothing (CompactVirtualDisk, file-system agnostic) and prints the file's
size before and after.  Progress is drawn as :mod:`virtdisk.cli_output`
describes.  Ctrl-C cancels (exit status 130): the image reads as it did,
and what was given back so far stays given back.

The modes are ``Optimize-VHD``'s, mapped onto CompactVirtualDisk's flags
where they map (:data:`MODES`).  ``--no-zero-scan`` is kept as another
spelling of ``--mode pretrimmed``; ``--no-block-moves`` (no Optimize-VHD
mode has it) combines with any mode.
"""

from __future__ import annotations

import argparse
import os
from typing import Final

from .cli_output import EXIT_OK, EXIT_USAGE, fail, progress_display, run_command
from .disk import open as open_disk
from .sizes import format_size_with_bytes

__all__ = ["MODES", "add_parsers"]

# Each mode's zero scan (False: NO_ZERO_SCAN), or None for a mode that no
# flag of CompactVirtualDisk expresses.  Windows runs its file-system-aware
# pass, where it can, on a disk attached read-only whatever the flags; the
# engine reads no file system, so a mode's difference that rests on that
# pass does not exist here.
MODES: Final[dict[str, bool | None]] = {
    "full": True,
    "quick": False,
    "pretrimmed": False,
    "prezeroed": True,
    "retrim": None,
}

_MODES_HELP: Final = """\
modes (Optimize-VHD's, on CompactVirtualDisk's flags):
  full        the default: reads every block; blocks that read zeros and
              blocks already unused leave
  prezeroed   the same flags as full (on Windows, full also runs a
              file-system-aware pass on a disk attached read-only)
  pretrimmed  NO_ZERO_SCAN: reads no data; only blocks already unused
              (trimmed or unmapped by the guest) leave
  quick       NO_ZERO_SCAN too (on Windows, quick also reads the volume's
              free space on a disk attached read-only)
  retrim      refused: it sends the free space of a mounted volume to the
              host storage as trims, which needs a file-system-aware pass
              and which no CompactVirtualDisk flag does

The portable engine (Linux, macOS) reads no file system, so there full and
prezeroed, and quick and pretrimmed, do the same.
"""


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``compact`` on the ``virtdisk`` parser."""
    parser = commands.add_parser(
        "compact", help="give back the space of blocks that hold nothing",
        description="Compact a dynamic or differencing VHD or VHDX: blocks that read the same\n"
                    "without their space leave the file, then the last blocks move into the\n"
                    "freed space and the file is cut.  The content is unchanged.",
        epilog=_MODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", metavar="PATH", help="the VHD or VHDX image")
    scan = parser.add_mutually_exclusive_group()
    # No default here: argparse lets an exclusive option through when the
    # value given equals the default.
    scan.add_argument("--mode", choices=tuple(MODES),
                      help="Optimize-VHD's mode (default: full; see below)")
    scan.add_argument("--no-zero-scan", dest="mode", action="store_const", const="pretrimmed",
                      help="the same as --mode pretrimmed: only blocks already unmapped (VHDX) "
                           "or with an empty sector bitmap (VHD) leave")
    parser.add_argument("--no-block-moves", action="store_true",
                        help="free blocks as holes in the file and keep its size")
    parser.add_argument("--json", action="store_true",
                        help="JSON lines on standard output: progress, then the result")
    parser.set_defaults(command=_compact_command)


def _compact_command(arguments: argparse.Namespace) -> int:
    mode = arguments.mode or "full"
    zero_scan = MODES[mode]
    if zero_scan is None:
        return fail("compact", f"--mode {mode} is not available: it trims the free "
                               f"space of an attached volume, which needs a file-system-aware "
                               f"compact of a mounted volume; use --mode pretrimmed or full",
                    EXIT_USAGE)
    display = progress_display(arguments.json)

    def body() -> int:
        before = os.stat(arguments.path).st_size
        with open_disk(arguments.path, read_only=False) as disk:
            disk.compact(zero_scan=zero_scan, move_blocks=not arguments.no_block_moves,
                         progress=display)
        after = os.stat(arguments.path).st_size
        display.result({"mode": mode, "size_before": before, "size_after": after},
                       f"{format_size_with_bytes(before)} -> {format_size_with_bytes(after)}")
        return EXIT_OK

    return run_command("compact", body, display,
                       interrupted="interrupted; the compact was cancelled and the image "
                                   "reads as before")
