"""The ``convert`` command of ``virtdisk``.

``virtdisk convert SRC DST [--format F] [--type T] [--block-size B]
[--sector-size S]`` copies the content of SRC (a VHD, VHDX or ISO image, a
raw image file or a block device) into the new file DST, as
:func:`virtdisk.convert` does: DST is never overwritten and is removed when
the conversion fails or is interrupted.  A progress bar is drawn on
standard error when it is a terminal, none in a pipe or a log.

Exit status: 0 on success; 1 when the source cannot be read, the
destination exists or the API refuses; 2 for a usage error (including a
raw source that breaks the destination format's rules); 130 when
interrupted.
"""

from __future__ import annotations

import argparse

from .cli_output import EXIT_OK, ProgressBar, run_command, size_argument
from .convert import CONVERT_FORMATS, convert

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``convert`` on the ``virtdisk`` parser."""
    parser = commands.add_parser(
        "convert", help="copy a disk's content into a new VHD, VHDX or raw image",
        description="Copy the content of SRC (VHD, VHDX, ISO, raw image or block device) into "
                    "the new file DST, never overwriting a file.  A failed or interrupted "
                    "conversion removes DST.  Sizes take units: 512K, 2MiB.")
    parser.add_argument("source", metavar="SRC", help="the image, raw file or block device")
    parser.add_argument("destination", metavar="DST",
                        help="the new file (.vhd, .vhdx, or .img/.raw for raw content)")
    parser.add_argument("--format", choices=CONVERT_FORMATS,
                        help="the destination's format (default: from DST's extension)")
    parser.add_argument("--type", choices=("dynamic", "fixed"), default="dynamic",
                        help="dynamic (default: zero blocks unallocated; a sparse raw file) "
                             "or fixed")
    parser.add_argument("--block-size", type=size_argument,
                        help="the block size of a dynamic VHD or VHDX, e.g. 2MiB")
    parser.add_argument("--sector-size", type=int, choices=(512, 4096),
                        help="the logical sector size of a VHDX destination (VHD: 512)")
    parser.set_defaults(command=_convert_command)


def _convert_command(arguments: argparse.Namespace) -> int:
    bar = ProgressBar()

    def body() -> int:
        convert(arguments.source, arguments.destination, format=arguments.format,
                type=arguments.type, block_size=arguments.block_size,
                sector_size=arguments.sector_size, progress=bar if bar.enabled else None)
        bar.finish()
        return EXIT_OK

    # A TypeError or ValueError is a rule of the destination format, named
    # before anything was made; an EOFError a source that shrank while read.
    return run_command("convert", body, bar,
                       interrupted=f"interrupted; {arguments.destination!r} was removed",
                       usage_errors=(TypeError, ValueError), failures=(EOFError,))
