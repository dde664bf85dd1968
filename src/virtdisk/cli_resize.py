"""The ``resize`` command of ``virtdisk``.

``virtdisk resize PATH --size 20GiB [--allow-unsafe] [--json]`` changes the
virtual size of a VHD or VHDX image (VHD only grows); ``virtdisk resize
PATH --to-smallest`` shrinks a VHDX to the end of its last partition.  The
new size is printed.  Progress is drawn as :mod:`virtdisk.cli_output`
describes.  Ctrl-C cancels (exit status 130): the image keeps its old size.
"""

from __future__ import annotations

import argparse

from .cli_output import EXIT_OK, progress_display, run_command, size_argument
from .disk import open as open_disk
from .sizes import format_size_with_bytes

__all__ = ["add_parsers"]


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``resize`` on the ``virtdisk`` parser."""
    parser = commands.add_parser(
        "resize", help="change the virtual size of an image",
        description="Grow a VHD or VHDX image, or shrink a VHDX one.  A shrink below the end of "
                    "the last partition needs --allow-unsafe; --to-smallest shrinks to that end.")
    parser.add_argument("path", metavar="PATH", help="the VHD or VHDX image")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--size", type=size_argument,
                      help="the new virtual size: bytes or a size such as 20GiB")
    size.add_argument("--to-smallest", action="store_true",
                      help="shrink to the end of the last partition")
    parser.add_argument("--allow-unsafe", action="store_true",
                        help="shrink even past the end of a partition (its data is lost)")
    parser.add_argument("--json", action="store_true",
                        help="JSON lines on standard output: progress, then the result")
    parser.set_defaults(command=_resize_command)


def _resize_command(arguments: argparse.Namespace) -> int:
    display = progress_display(arguments.json)

    def body() -> int:
        with open_disk(arguments.path, read_only=False) as disk:
            if arguments.to_smallest:
                disk.resize_to_smallest(progress=display)
            else:
                disk.resize(arguments.size, allow_unsafe=arguments.allow_unsafe,
                            progress=display)
            size = disk.virtual_size
        display.result({"virtual_size": size}, format_size_with_bytes(size))
        return EXIT_OK

    return run_command("resize", body, display,
                       interrupted="interrupted; the resize was cancelled")
