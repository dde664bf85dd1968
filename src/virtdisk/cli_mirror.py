"""The ``mirror`` command of ``virtdisk``.

``virtdisk mirror SRC DST [--json]`` copies the VHD or VHDX image SRC into
a new image DST of the same format, type and sizes (a differencing SRC
arrives flattened into a dynamic DST) with MirrorVirtualDisk, breaks the
mirror once the copy is complete, and prints DST.  Progress is drawn as
:mod:`virtdisk.cli_output` describes.  Ctrl-C cancels (exit status 130):
SRC stays the disk in use, and a DST the copy had not finished is
removed.
"""

from __future__ import annotations

import argparse

from .cli_output import EXIT_OK, ProgressDisplay, progress_display, run_command
from .disk import open as open_disk
from .mirror import Mirror

__all__ = ["add_parsers"]

# How often the progress is shown while the copy runs.
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
    parser.add_argument("--json", action="store_true",
                        help="JSON lines on standard output: progress, then the result")
    parser.set_defaults(command=_mirror_command)


def _copy(mirror: Mirror, display: ProgressDisplay) -> None:
    """Shows the copy's progress until it is complete, then breaks."""
    while not mirror.wait_mirrored(_PROGRESS_INTERVAL):
        _, current, total = mirror.progress()
        display(current, total)
    _, current, total = mirror.progress()
    display(current, total)
    mirror.break_()


def _mirror_command(arguments: argparse.Namespace) -> int:
    display = progress_display(arguments.json)

    def body() -> int:
        with open_disk(arguments.source, read_only=False) as disk:
            mirror = disk.mirror(arguments.destination)
            try:
                _copy(mirror, display)
            except KeyboardInterrupt:
                # The facade's mirror runs until told: stop it here, so
                # that SRC stays in use and an unfinished DST goes.
                mirror.cancel()
                mirror.wait()
                raise
        display.result({"source": arguments.source, "destination": arguments.destination},
                       arguments.destination)
        return EXIT_OK

    return run_command("mirror", body, display,
                       interrupted="interrupted; the mirror was cancelled, SRC is as it was "
                                   "and an unfinished DST was removed")
