"""The ``resize`` command of ``virtdisk``.

``virtdisk resize PATH --size 20GiB [--allow-unsafe]`` changes the virtual
size of a VHD or VHDX image (VHD only grows); ``virtdisk resize PATH
--to-smallest`` shrinks a VHDX to the end of its last partition.  The new
size is printed.  Ctrl-C cancels: the image keeps its old size.
"""

from __future__ import annotations

import argparse
import sys

from .disk import open as open_disk
from .errors import VirtualDiskError
from .sizes import format_size_with_bytes, parse_size

__all__ = ["add_parsers"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``resize`` on the ``virtdisk`` parser."""
    parser = commands.add_parser(
        "resize", help="change the virtual size of an image",
        description="Grow a VHD or VHDX image, or shrink a VHDX one.  A shrink below the end of "
                    "the last partition needs --allow-unsafe; --to-smallest shrinks to that end.")
    parser.add_argument("path", metavar="PATH", help="the VHD or VHDX image")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--size", help="the new virtual size: bytes or a size such as 20GiB")
    size.add_argument("--to-smallest", action="store_true",
                      help="shrink to the end of the last partition")
    parser.add_argument("--allow-unsafe", action="store_true",
                        help="shrink even past the end of a partition (its data is lost)")
    parser.set_defaults(command=_resize_command)


def _resize_command(arguments: argparse.Namespace) -> int:
    if arguments.size is not None:
        try:
            size = parse_size(arguments.size)
        except ValueError as error:
            print(f"virtdisk resize: error: {error}", file=sys.stderr)
            return EXIT_USAGE
    try:
        with open_disk(arguments.path, read_only=False) as disk:
            if arguments.to_smallest:
                disk.resize_to_smallest()
            else:
                disk.resize(size, allow_unsafe=arguments.allow_unsafe)
            print(format_size_with_bytes(disk.virtual_size))
    except VirtualDiskError as error:
        print(f"virtdisk: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
