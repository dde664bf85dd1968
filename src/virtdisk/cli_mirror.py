"""The ``mirror`` command of ``virtdisk``.

``virtdisk mirror SRC DST`` copies the VHD or VHDX image SRC into a new
image DST of the same format, type and sizes (a differencing SRC arrives
flattened into a dynamic DST) with MirrorVirtualDisk, breaks the mirror
once the copy is complete, and prints DST.  A progress bar goes to
standard error when that is a terminal.  Ctrl-C cancels: SRC stays the
disk in use, and a DST the copy had not finished is removed.
"""

from __future__ import annotations

import argparse

from .cli_output import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, ProgressBar, fail, os_error_text
from .disk import open as open_disk
from .errors import VirtualDiskError
from .mirror import Mirror

__all__ = ["add_parsers"]

# How often the bar is redrawn while the copy runs.
_PROGRESS_INTERVAL = 0.1


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``mirror`` on the ``virtdisk`` parser."""
    parser = commands.add_parser(
        "mirror", help="copy an image live into a new one and switch to it",
        description="Mirror the VHD or VHDX image SRC into a new image DST of the same format, "
                    "type and sizes (a differencing image is copied flattened into a dynamic "
                    "one), then break the mirror and print DST.  SRC is left as it was.")
    parser.add_argument("source", metavar="SRC", help="the VHD or VHDX image to copy")
    parser.add_argument("destination", metavar="DST", help="the new image; must not exist")
    parser.set_defaults(command=_mirror_command)


def _copy(mirror: Mirror, bar: ProgressBar) -> None:
    """Draws the copy's progress until it is complete, then breaks."""
    while not mirror.wait_mirrored(_PROGRESS_INTERVAL):
        _, current, total = mirror.progress()
        bar(current, total)
    _, current, total = mirror.progress()
    bar(current, total)
    mirror.break_()


def _mirror_command(arguments: argparse.Namespace) -> int:
    bar = ProgressBar()
    try:
        with open_disk(arguments.source, read_only=False) as disk:
            mirror = disk.mirror(arguments.destination)
            try:
                _copy(mirror, bar)
            except KeyboardInterrupt:
                mirror.cancel()
                mirror.wait()
                raise
        bar.finish()
    except KeyboardInterrupt:
        bar.finish()
        return fail("mirror", "interrupted", EXIT_INTERRUPTED)
    except VirtualDiskError as error:
        bar.finish()
        return fail("mirror", error)
    except OSError as error:
        bar.finish()
        return fail("mirror", os_error_text(error), EXIT_FAILURE)
    print(arguments.destination)
    return EXIT_OK
