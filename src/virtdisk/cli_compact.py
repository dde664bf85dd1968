"""The ``compact`` command of ``virtdisk``.

``virtdisk compact PATH [--no-zero-scan] [--no-block-moves]`` gives back the
space of a dynamic or differencing VHD or VHDX's blocks that hold nothing
(CompactVirtualDisk, file-system agnostic) and prints the file's size before
and after.  A progress bar goes to standard error when that is a terminal.
Ctrl-C cancels: the image reads as it did, and what was given back so far
stays given back.
"""

from __future__ import annotations

import argparse
import os

from .cli_output import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, ProgressBar, fail, os_error_text
from .disk import open as open_disk
from .errors import VirtualDiskError
from .sizes import format_size_with_bytes

__all__ = ["add_parsers"]


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``compact`` on the ``virtdisk`` parser."""
    parser = commands.add_parser(
        "compact", help="give back the space of blocks that hold nothing",
        description="Compact a dynamic or differencing VHD or VHDX: blocks that read the same "
                    "without their space leave the file, then the last blocks move into the "
                    "freed space and the file is cut.  The content is unchanged.")
    parser.add_argument("path", metavar="PATH", help="the VHD or VHDX image")
    parser.add_argument("--no-zero-scan", action="store_true",
                        help="read no data: only blocks already unmapped (VHDX) or with an "
                             "empty sector bitmap (VHD) leave")
    parser.add_argument("--no-block-moves", action="store_true",
                        help="free blocks as holes in the file and keep its size")
    parser.set_defaults(command=_compact_command)


def _compact_command(arguments: argparse.Namespace) -> int:
    bar = ProgressBar()
    try:
        before = os.stat(arguments.path).st_size
        with open_disk(arguments.path, read_only=False) as disk:
            disk.compact(zero_scan=not arguments.no_zero_scan,
                         move_blocks=not arguments.no_block_moves, progress=bar)
        bar.finish()
        after = os.stat(arguments.path).st_size
    except KeyboardInterrupt:
        bar.finish()
        return fail("compact", "interrupted", EXIT_INTERRUPTED)
    except VirtualDiskError as error:
        bar.finish()
        return fail("compact", error)
    except OSError as error:
        bar.finish()
        return fail("compact", os_error_text(error), EXIT_FAILURE)
    print(f"{format_size_with_bytes(before)} -> {format_size_with_bytes(after)}")
    return EXIT_OK
