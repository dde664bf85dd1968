"""Writing an image's content through the engine's data path, with a raw
mirror to compare against.

`ContentSession` runs tests/c/content_main.c on one image: every write goes
to the image through the engine and, byte for byte, to a raw file of the
virtual size, so that `qemu-img compare` (or any other reader nobody here
wrote) can check the image against the mirror afterwards.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from c_harness import all_engine_sources, compile_harness

_BUILT: dict[tuple[Path, bool, tuple[str, ...]], Path] = {}


def build_content_harness(directory: Path, *, sanitize: bool = True,
                          defines: tuple[str, ...] = ()) -> Path:
    """tests/c/content_main.c linked with the whole engine."""
    key = (directory, sanitize, defines)
    if key not in _BUILT:
        _BUILT[key] = compile_harness(directory, "content_main", all_engine_sources(),
                                      defines=[*defines, "-pthread"], sanitize=sanitize)
    return _BUILT[key]


class ContentSession:
    """Commands for one image, run in one harness process by `run()`.

    `write` records the bytes in the mirror as it queues the command; the
    answers (one per command, "ok" or "error CODE") come back from `run`.
    """

    def __init__(self, harness: Path, image: Path, mirror: Path, virtual_size: int,
                 *, seed: int = 1, read_only: bool = False, version2: bool = False) -> None:
        self.harness = harness
        self.image = image
        self.mirror = mirror
        self.read_only = read_only
        self.version2 = version2
        self.random = random.Random(seed)
        self.data = image.with_name(image.name + ".data")
        self.data_bytes = bytearray()
        self.commands: list[str] = []
        if not mirror.exists():
            with open(mirror, "wb") as raw:
                raw.truncate(virtual_size)

    def write(self, offset: int, length: int, data: bytes | None = None) -> None:
        payload = data if data is not None else self.random.randbytes(length)
        self.commands.append(f"w {offset} {length} {len(self.data_bytes)}")
        self.data_bytes += payload
        with open(self.mirror, "r+b") as raw:
            raw.seek(offset)
            raw.write(payload)

    def unmap(self, offset: int, length: int, *, reads_as_zero: bool = True) -> None:
        self.commands.append(f"u {offset} {length}")
        if reads_as_zero:
            with open(self.mirror, "r+b") as raw:
                raw.seek(offset)
                raw.write(bytes(length))

    def flush(self) -> None:
        self.commands.append("f")

    def dump(self, out: Path) -> None:
        self.commands.append(f"d {out}")

    def command(self, line: str) -> None:
        self.commands.append(line)

    def run(self, *, environment: dict[str, str] | None = None,
            check: bool = True, prefix: Sequence[str] = ()) -> list[str]:
        """Runs the queued commands; the answers, "open N" first.  `prefix`
        goes in front of the harness's command line (a tracer, say)."""
        self.data.write_bytes(bytes(self.data_bytes))
        arguments = [*prefix, str(self.harness), str(self.image), str(self.data)]
        if self.read_only:
            arguments.append("ro")
        elif self.version2:
            arguments.append("v2")
        result = subprocess.run(arguments, input="".join(c + "\n" for c in self.commands),
                                capture_output=True, text=True,
                                env=dict(os.environ, **(environment or {})))
        answers = result.stdout.splitlines()
        self.commands.clear()
        self.data_bytes.clear()
        if check:
            assert result.returncode == 0 and answers[:1] == ["open 0"], (
                result.returncode, result.stdout[-2000:], result.stderr[-2000:])
            failed = [a for a in answers[1:] if a != "ok"]
            assert not failed, (failed, result.stderr[-2000:])
        return answers


def killed(session: ContentSession, *, prefix: Sequence[str] = ()) -> list[str]:
    """Runs the session's commands, then kills the harness (its `x`,
    SIGKILL: nothing is closed or flushed, as in a crash); the answers of
    the commands before it.  `prefix` as for ContentSession.run."""
    session.command("x")
    answers = session.run(check=False, prefix=prefix)
    assert answers[:1] == ["open 0"], answers
    return answers[1:]


def all_answered_ok(commands: int) -> Callable[[list[str]], bool]:
    """A `finished` for stop_after_each_file_change: the change is `commands`
    commands (a write and the flush that makes it durable, say), and it has
    finished when every one of them answered "ok"."""
    return lambda answers: answers[:commands] == ["ok"] * commands


def stop_after_each_file_change(fault_harness: Path, pristine: Path, directory: Path,
                                queue: Callable[[ContentSession], None],
                                check: Callable[[Path, int, bool], None],
                                *, version2: bool = False,
                                finished: Callable[[list[str]], bool] | None = None) -> int:
    """Runs one change of `pristine` again and again, each time on a new
    copy and stopped by fault injection after one more file change (write,
    flush or size change) than the time before, until it runs through.

    `queue` adds the change's commands to a session on the copy; `check`
    is given the copy, the number of changes it was allowed and whether the
    change finished, and asserts what must hold of it.  The copies stay in
    `directory`.  Returns how many stops there were before it finished,
    which the caller compares with how many file changes it expects.

    The change has finished when its first command answers "ok", or, with
    `finished`, when that says so of the answers after "k" (for a change
    of several commands, which queues the harness's `s` last).  `version2`
    opens the copy with a version 2 handle.
    """
    stops = 0
    while True:
        image = directory / f"stop{stops}{pristine.suffix}"
        shutil.copyfile(pristine, image)
        session = ContentSession(fault_harness, image, directory / f"stop{stops}.unused", 0,
                                 version2=version2)
        session.command(f"k {stops}")
        queue(session)
        answers = session.run(check=False)
        assert answers[:2] == ["open 0", "ok"], answers
        done = finished(answers[2:]) if finished is not None else answers[2] == "ok"
        if not done and finished is None:
            # The stop answers as an I/O failure of the file would.
            assert answers[2] == "error 29", (stops, answers)
        check(image, stops, done)
        if done:
            return stops
        stops += 1
