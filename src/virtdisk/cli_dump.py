"""The ``dump`` command of ``virtdisk``.

``virtdisk dump PATH [-o FILE]`` writes the content of the VHD, VHDX or ISO
image PATH (a differencing disk's with its parents) as raw bytes: to
standard output, for pipelines (``virtdisk dump disk.vhdx | sha256sum``),
or to the new file FILE, which is never overwritten, is sparse where the
content is zeros, and is removed when the dump fails.  Standard output
that is a terminal is refused: raw disk content is not for reading there.

Exit status: 0 on success; 1 when the image cannot be read, FILE exists or
standard output closes early (a broken pipe, e.g. ``| head -c 100``); 2 for
a usage error; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import BinaryIO, Final

from .cli_output import EXIT_OK, EXIT_USAGE, ProgressBar, fail, run_command
from .convert import convert
from .detect import detect_storage_type
from .disk import VirtualDisk
from .disk import open as open_disk

__all__ = ["add_parser"]

# One read per 8 MiB: the engine's SCSI target moves at most that much per
# command, and a pipe takes writes of any size.
_CHUNK: Final = 8 << 20


class _OutputClosed(Exception):
    """Standard output closed before the whole content was written."""

    def __init__(self, written: int, total: int) -> None:
        super().__init__(f"standard output closed after {written} of {total} bytes "
                         f"(broken pipe)")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``dump`` on the ``virtdisk`` parser."""
    parser = commands.add_parser(
        "dump", help="write an image's raw content to standard output or a file",
        description="Write the raw content of a VHD, VHDX or ISO image (a differencing disk's "
                    "with its parents) to standard output, or to the new file FILE (sparse "
                    "where the content is zeros; never overwriting a file).")
    parser.add_argument("path", metavar="PATH", help="the VHD, VHDX or ISO image")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write to the new file FILE instead of standard output")
    parser.set_defaults(command=_dump_command)


def _dump_command(arguments: argparse.Namespace) -> int:
    path: str = arguments.path
    if arguments.output is None and _stdout_is_terminal():
        return fail("dump", "standard output is a terminal: pipe the content into a command "
                            "or give -o FILE", EXIT_USAGE)
    if arguments.output is not None and os.path.lexists(arguments.output):
        return fail("dump", f"{arguments.output!r} exists; dump never overwrites a file")
    bar = ProgressBar()

    def body() -> int:
        if not os.path.exists(path):
            raise FileNotFoundError(2, os.strerror(2), path)
        if detect_storage_type(path) is None:
            return fail("dump", f"{path!r} is not a VHD, VHDX or ISO image (no known extension "
                                f"or signature); for a raw copy use cp or dd")
        try:
            if arguments.output is None:
                with open_disk(path) as disk:
                    _write_content(disk, sys.stdout.buffer)
            else:
                convert(path, arguments.output, format="raw", type="dynamic",
                        progress=bar if bar.enabled else None)
        except _OutputClosed as error:
            _silence_stdout()
            return fail("dump", error)
        bar.finish()
        return EXIT_OK

    # An EOFError is content that ended before the disk's size.
    return run_command("dump", body, bar, failures=(EOFError,))


def _write_content(disk: VirtualDisk, output: BinaryIO) -> None:
    """Writes the whole content of `disk` to `output`, one chunk at a time
    through one buffer."""
    size = disk.virtual_size
    buffer = bytearray(min(_CHUNK, size))
    view = memoryview(buffer)
    offset = 0
    while offset < size:
        length = min(len(buffer), size - offset)
        count = disk.readinto(offset, view[:length])
        if count <= 0:
            raise EOFError(f"the content ended at {offset} bytes, before its size of {size}")
        try:
            output.write(view[:count])
        except BrokenPipeError:
            raise _OutputClosed(offset, size) from None
        offset += count
    try:
        output.flush()
    except BrokenPipeError:
        raise _OutputClosed(offset, size) from None


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _silence_stdout() -> None:
    """Points standard output at the null device, so that the interpreter's
    flush at exit meets no broken pipe (and prints no second error)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass
