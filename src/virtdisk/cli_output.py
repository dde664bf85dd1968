"""What the commands share: exit statuses, the one-line error message, the
progress displays, and the mapping of a command's failures to its exit
status.

Every failure is one line on standard error, ``virtdisk COMMAND: error:
...``, never a traceback.  The progress bar is drawn on standard error only
when that is a terminal, so that logs and pipes get no carriage returns;
with ``--json`` a command writes JSON lines on standard output instead: one
``{"type": "progress", "done": D, "total": T}`` object per progress step
and a last ``{"type": "result", "ok": ...}`` object with the outcome.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Final, Protocol, TextIO

from .errors import VirtualDiskError
from .sizes import format_size, parse_size

__all__ = ["EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_INTERRUPTED", "fail", "ProgressBar",
           "JsonProgress", "ProgressDisplay", "progress_display", "run_command",
           "os_error_text", "size_argument"]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
# What a shell reports for a command killed by SIGINT (128 + 2).
EXIT_INTERRUPTED: Final = 130

_BAR_WIDTH: Final = 30
# The rate is shown once this much time has passed: before that it says
# more about the start than about the operation.
_RATE_AFTER: Final = 0.5


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


class ProgressDisplay(Protocol):
    """What a long command reports to: progress steps, then one outcome."""

    def __call__(self, done: int, total: int) -> None: ...

    def finish(self) -> None:
        """Ends the progress part of the display."""

    def result(self, fields: Mapping[str, object], text: str | None) -> None:
        """Reports success: `text` for a person, `fields` for a program."""

    def failure(self, message: str, status: int, winerror: int | None) -> None:
        """Reports a failure (its one line on standard error is printed
        apart)."""


class ProgressBar:
    """A ``progress(done, total)`` callback that draws one line on
    `stream`, redrawn in place, when `stream` is a terminal: the share
    done, the bytes, the rate and the time left.  Elsewhere it does
    nothing.  :meth:`finish` ends the line."""

    def __init__(self, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = sys.stderr if stream is None else stream
        self.enabled = _is_terminal(self._stream)
        self._clock = clock
        self._started: float | None = None
        self._shown: tuple[int, str] | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = self._clock()
        if self._started is None:
            self._started = now
        # Redraw only when the shown permille or rate changes: a 1 TiB copy
        # reports progress every chunk, and a terminal need not see most.
        permille = 1000 if total <= 0 else min(1000, done * 1000 // total)
        pace = _pace(done, total, now - self._started)
        if self._shown == (permille, pace):
            return
        self._shown = (permille, pace)
        filled = permille * _BAR_WIDTH // 1000
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        self._stream.write(f"\r{permille / 10:5.1f}% [{bar}] {format_size(done)} / "
                           f"{format_size(total)}{pace}\x1b[K")
        self._stream.flush()

    def finish(self) -> None:
        """Ends the bar's line, if one was drawn."""
        if self.enabled and self._shown is not None:
            self._stream.write("\n")
            self._stream.flush()
            self._shown = None

    def result(self, fields: Mapping[str, object], text: str | None) -> None:
        """Prints `text` on standard output (the bar has ended)."""
        self.finish()
        if text is not None:
            print(text)

    def failure(self, message: str, status: int, winerror: int | None) -> None:
        """Ends the bar's line, so that the error line starts its own."""
        self.finish()


def _pace(done: int, total: int, elapsed: float) -> str:
    """``", 85.3 MiB/s, 0:07 left"``, or nothing while too early to say."""
    if elapsed < _RATE_AFTER or done <= 0:
        return ""
    rate = done / elapsed
    left = max(0, total - done) / rate
    minutes, seconds = divmod(int(left + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    clock = f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"
    return f", {format_size(int(rate))}/s, {clock} left"


class JsonProgress:
    """The ``--json`` display: one JSON object a line on `stream` (standard
    output), one per change of the counts and one for the outcome."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = sys.stdout if stream is None else stream
        self._last: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._last == (done, total):
            return
        self._last = (done, total)
        self._write({"type": "progress", "done": done, "total": total})

    def finish(self) -> None:
        """Nothing to end: every line is whole."""

    def result(self, fields: Mapping[str, object], text: str | None) -> None:
        self._write({"type": "result", "ok": True, **fields})

    def failure(self, message: str, status: int, winerror: int | None) -> None:
        try:
            self._write({"type": "result", "ok": False, "error": message,
                         "winerror": winerror, "exit_status": status})
        except OSError:
            # Standard output gone (a closed pipe, often the failure
            # itself): the line on standard error still tells.
            pass

    def _write(self, value: Mapping[str, object]) -> None:
        self._stream.write(json.dumps(value) + "\n")
        self._stream.flush()


def progress_display(as_json: bool) -> ProgressDisplay:
    """JSON lines with ``--json``, otherwise the bar (drawn on a terminal
    only)."""
    return JsonProgress() if as_json else ProgressBar()


def run_command(command: str, body: Callable[[], int], display: ProgressDisplay | None = None,
                *, interrupted: str = "interrupted",
                usage_errors: tuple[type[Exception], ...] = (),
                failures: tuple[type[Exception], ...] = ()) -> int:
    """Runs a command's `body` and returns its exit status; a failure
    becomes its one line on standard error, told to `display` too.

    Ctrl-C gives `interrupted` and 130 (a long operation has been cancelled
    and waited for by then: the facade's blocking forms do that);
    :class:`VirtualDiskError` and other OSErrors give 1, as do `failures`;
    `usage_errors` give 2 (a rule the arguments break, found before
    anything was done)."""
    winerror: int | None = None
    try:
        return body()
    except KeyboardInterrupt:
        message, status = interrupted, EXIT_INTERRUPTED
    except VirtualDiskError as error:
        message, status, winerror = str(error), EXIT_FAILURE, error.winerror
    except OSError as error:
        message, status = os_error_text(error), EXIT_FAILURE
    except usage_errors as error:
        message, status = str(error), EXIT_USAGE
    except failures as error:
        message, status = str(error), EXIT_FAILURE
    if display is not None:
        display.failure(message, status, winerror)
    return fail(command, message, status)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):   # a replaced or closed stream
        return False
