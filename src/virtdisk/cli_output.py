"""What the ``convert`` and ``dump`` commands share: exit statuses, the
one-line error message, and the progress bar.

Every failure is one line on standard error, ``virtdisk COMMAND: error:
...``, never a traceback.  The progress bar is drawn on standard error only
when that is a terminal, so that logs and pipes get no carriage returns.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Final, TextIO

from .sizes import format_size, parse_size

__all__ = ["EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_INTERRUPTED", "fail", "ProgressBar",
           "os_error_text", "size_argument"]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
# What a shell reports for a command killed by SIGINT (128 + 2).
EXIT_INTERRUPTED: Final = 130

_BAR_WIDTH: Final = 30


def fail(command: str, message: object, status: int = EXIT_FAILURE) -> int:
    """Prints ``virtdisk COMMAND: error: MESSAGE`` on standard error and
    returns `status`."""
    print(f"virtdisk {command}: error: {message}", file=sys.stderr)
    return status


def size_argument(text: str) -> int:
    """A size with units (``"2MiB"``), for argparse's ``type=``."""
    try:
        return parse_size(text)
    except ValueError as error:
        # argparse shows an ArgumentTypeError's message as it is.
        raise argparse.ArgumentTypeError(str(error)) from None


def os_error_text(error: OSError) -> str:
    """An OSError as ``'path': reason`` (the form cp and dd use), or its own
    text when it names no file."""
    if error.filename is not None and error.strerror:
        return f"{os.fsdecode(error.filename)!r}: {error.strerror}"
    return str(error)


class ProgressBar:
    """A ``progress(done, total)`` callback that draws one line on
    `stream`, redrawn in place, when `stream` is a terminal; elsewhere it
    does nothing.  :meth:`finish` ends the line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = sys.stderr if stream is None else stream
        self.enabled = _is_terminal(self._stream)
        self._shown: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        # Redraw only when the shown permille changes: a 1 TiB copy reports
        # progress every chunk, and a terminal need not see most of those.
        permille = 1000 if total <= 0 else min(1000, done * 1000 // total)
        if self._shown is not None and self._shown[0] == permille:
            return
        self._shown = (permille, total)
        filled = permille * _BAR_WIDTH // 1000
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        self._stream.write(f"\r{permille / 10:5.1f}% [{bar}] {format_size(done)} / "
                           f"{format_size(total)}\x1b[K")
        self._stream.flush()

    def finish(self) -> None:
        """Ends the bar's line, if one was drawn."""
        if self.enabled and self._shown is not None:
            self._stream.write("\n")
            self._stream.flush()
            self._shown = None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):   # a replaced or closed stream
        return False
