"""What ``virtdisk resize``, ``compact`` and ``merge`` share: the progress
bar on a terminal (rate, time left) and nothing in a pipe, JSON lines with
``--json``, Ctrl-C that cancels (status 130, one line, the image as the
cancel leaves it), and compact's Optimize-VHD modes.

Ctrl-C is sent to a command waiting at the engine's test hold (the
operation waits at its first checkpoint while VIRTDISK_TEST_OPERATION_HOLD
names a file), once its first JSON line says that it runs: nothing here
depends on time."""
from __future__ import annotations

import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import _virtdisk as vd
import virtdisk
from test_compact import _clean, _identical, _make
from test_merge import content, make_chain
from virtdisk.cli import main
from virtdisk.cli_output import EXIT_INTERRUPTED, JsonProgress, ProgressBar

MiB = 1 << 20

needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
                                reason="needs qemu-img and qemu-io")
needs_hold = pytest.mark.skipif(vd.PLATFORM != "engine", reason="the engine's test hold")


def interruptible() -> None:
    """In a child before it runs the command: SIGINT back to its default, as
    in a terminal's foreground job.  A test session started in the
    background of a shell inherits SIGINT ignored, and Python then installs
    no KeyboardInterrupt for it, so the Ctrl-C tests would wait for ever."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def command(*arguments: object, env: dict[str, str] | None = None,
            stdout: int | None = None, stderr: int | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "virtdisk", *map(str, arguments)],
                            env={**os.environ, **(env or {})}, stdout=stdout, stderr=stderr,
                            preexec_fn=interruptible)


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


# -- the displays ----------------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_rate_and_time_left_on_a_terminal() -> None:
    now = [100.0]
    stream = Terminal()
    bar = ProgressBar(stream, clock=lambda: now[0])
    bar(0, 100 * MiB)
    now[0] += 2.0
    bar(25 * MiB, 100 * MiB)
    bar.finish()
    drawn = stream.getvalue()
    assert drawn.startswith("\r  0.0% [")
    # 25 MiB in 2 s: 12.5 MiB/s, 75 MiB left: 6 s.
    assert " 25.0% [#######......................." in drawn
    assert "12.5 MiB/s, 0:06 left" in drawn
    assert drawn.endswith("\n")


def test_the_bar_draws_nothing_elsewhere() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar(1, 2)
    bar.finish()
    bar.result({"size": 1}, "the text")
    assert stream.getvalue() == ""


def test_json_progress_writes_one_object_per_step_and_the_result() -> None:
    stream = io.StringIO()
    display = JsonProgress(stream)
    for done in (0, 0, 5, 10):
        display(done, 10)
    display.result({"size": 7}, "ignored")
    assert json_lines(stream.getvalue()) == [
        {"type": "progress", "done": 0, "total": 10},
        {"type": "progress", "done": 5, "total": 10},
        {"type": "progress", "done": 10, "total": 10},
        {"type": "result", "ok": True, "size": 7},
    ]


# -- --json and pipes ----------------------------------------------------------------

@needs_qemu
def test_compact_json_lines_end_with_the_result(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    image, raw = _make(tmp_path)
    before = image.stat().st_size
    assert main(["compact", str(image), "--json"]) == 0
    lines = json_lines(capsys.readouterr().out)
    steps, result = lines[:-1], lines[-1]
    assert steps and all(step["type"] == "progress" for step in steps)
    done = [int(str(step["done"])) for step in steps]
    assert done == sorted(done)
    assert steps[-1]["done"] == steps[-1]["total"]
    assert result == {"type": "result", "ok": True, "mode": "full", "size_before": before,
                      "size_after": image.stat().st_size}
    assert _identical(image, raw)


def test_resize_and_merge_json_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, leaf = make_chain(tmp_path, "vhdx", 2)
    assert main(["merge", str(leaf), "--json"]) == 0
    result = json_lines(capsys.readouterr().out)[-1]
    assert result == {"type": "result", "ok": True, "target": str(base.resolve()),
                      "merged": [str(leaf)], "deleted": False}
    assert main(["resize", str(base), "--size", "32MiB", "--json"]) == 0
    assert json_lines(capsys.readouterr().out)[-1] == {"type": "result", "ok": True,
                                                       "virtual_size": 32 * MiB}


def test_a_failure_is_one_line_and_a_json_result(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    base = make_chain(tmp_path, "vhdx", 1)[0]
    assert main(["merge", str(base), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("virtdisk merge: error: merge failed on ")
    result = json_lines(captured.out)[-1]
    assert result["ok"] is False and result["exit_status"] == 1
    assert result["winerror"] == virtdisk.errors.ERROR_VHD_INVALID_TYPE
    assert main(["resize", str(tmp_path / "missing.vhdx"), "--size", "8MiB"]) == 1
    assert capsys.readouterr().err.startswith("virtdisk resize: error: ")


def test_in_a_pipe_only_the_result_is_printed(tmp_path: Path) -> None:
    base, leaf = make_chain(tmp_path, "vhdx", 2)
    done = command("merge", leaf, "--delete", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0
    assert err == b""
    assert out.decode() == f"{base.resolve()}\n"
    assert not leaf.exists()


def test_on_a_terminal_the_bar_is_drawn_on_standard_error(tmp_path: Path) -> None:
    pty = pytest.importorskip("pty", reason="needs a pseudo-terminal (POSIX)")
    image = make_chain(tmp_path, "vhdx", 1)[0]
    leader, follower = pty.openpty()
    try:
        done = command("resize", image, "--size", "32MiB", stdout=subprocess.PIPE,
                       stderr=follower)
        os.close(follower)
        out, _ = done.communicate(timeout=120)
        drawn = b""
        while select.select([leader], [], [], 0)[0]:
            try:
                part = os.read(leader, 4096)
            except OSError:      # the terminal's other end closed
                break
            if not part:
                break
            drawn += part
    finally:
        os.close(leader)
    assert done.returncode == 0
    assert b"\r100.0% [##############################]" in drawn
    assert out.decode().startswith("32.0 MiB")


# -- Ctrl-C ----------------------------------------------------------------------

def interrupt_at_the_hold(tmp_path: Path, *arguments: object) -> tuple[int, str, list[dict[str, object]]]:
    """Runs the command with --json at the test hold, sends SIGINT once its
    first progress line is out, and returns its status, standard error and
    JSON lines."""
    hold = tmp_path / "hold"
    hold.touch()
    running = command(*arguments, "--json", env={"VIRTDISK_TEST_OPERATION_HOLD": str(hold)},
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert running.stdout is not None
    try:
        first = running.stdout.readline()
        assert json.loads(first)["type"] == "progress"
        running.send_signal(signal.SIGINT)
        out, err = running.communicate(timeout=120)
    finally:
        if running.poll() is None:
            running.kill()
            running.wait()
    hold.unlink()
    return running.returncode, err.decode(), json_lines((first + out).decode())


@needs_hold
@needs_qemu
def test_ctrl_c_cancels_a_compact(tmp_path: Path) -> None:
    image, raw = _make(tmp_path)
    pristine = image.read_bytes()
    status, err, lines = interrupt_at_the_hold(tmp_path, "compact", image)
    assert status == EXIT_INTERRUPTED
    assert err == ("virtdisk compact: error: interrupted; the compact was cancelled and the "
                   "image reads as before\n")
    assert lines[-1] == {"type": "result", "ok": False, "error": err.split("error: ", 1)[1][:-1],
                         "winerror": None, "exit_status": EXIT_INTERRUPTED}
    # Cancelled at its first checkpoint: nothing was changed.
    assert image.read_bytes() == pristine
    assert _identical(image, raw) and _clean(image)


@needs_hold
def test_ctrl_c_cancels_a_resize(tmp_path: Path) -> None:
    image = make_chain(tmp_path, "vhdx", 1)[0]
    expected = content(image)
    status, err, _ = interrupt_at_the_hold(tmp_path, "resize", image, "--size", "64MiB")
    assert status == EXIT_INTERRUPTED
    assert err == "virtdisk resize: error: interrupted; the resize was cancelled\n"
    with virtdisk.open(image) as disk:
        assert disk.virtual_size == len(expected)
    assert content(image) == expected


@needs_hold
def test_ctrl_c_cancels_a_merge_and_deletes_nothing(tmp_path: Path) -> None:
    base, leaf = make_chain(tmp_path, "vhdx", 2)
    expected = content(leaf)
    status, err, _ = interrupt_at_the_hold(tmp_path, "merge", leaf, "--delete")
    assert status == EXIT_INTERRUPTED
    assert err.startswith("virtdisk merge: error: interrupted; the merge was cancelled")
    assert err.count("\n") == 1
    assert leaf.exists()
    assert content(leaf) == expected          # the chain still opens
    assert main(["merge", str(leaf), "--delete"]) == 0
    assert not leaf.exists()
    assert content(base) == expected


# -- compact's modes -------------------------------------------------------------

@needs_qemu
def test_compact_modes_map_onto_the_zero_scan(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The image holds data, blocks qemu wrote as zero (unmapped for
    VHDX's purposes) and blocks written with zero bytes: a mode without the
    zero scan gives back the first kind only."""
    sizes = {}
    for options in (["--mode", "full"], ["--mode", "prezeroed"], ["--mode", "quick"],
                    ["--mode", "pretrimmed"], ["--no-zero-scan"], []):
        place = tmp_path / "-".join(options or ["default"])
        place.mkdir()
        image, raw = _make(place)
        before = image.stat().st_size
        assert main(["compact", str(image), *options]) == 0
        sizes[" ".join(options)] = image.stat().st_size
        assert sizes[" ".join(options)] < before
        assert _identical(image, raw) and _clean(image)
    capsys.readouterr()
    scanned = {sizes["--mode full"], sizes["--mode prezeroed"], sizes[""]}
    unscanned = {sizes["--mode quick"], sizes["--mode pretrimmed"], sizes["--no-zero-scan"]}
    assert len(scanned) == 1 and len(unscanned) == 1
    assert scanned.pop() < unscanned.pop()


def test_retrim_is_refused_before_anything_opens(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    image = make_chain(tmp_path, "vhdx", 1)[0]
    before = image.read_bytes()
    assert main(["compact", str(image), "--mode", "retrim"]) == 2
    assert "--mode retrim is not available" in capsys.readouterr().err
    assert image.read_bytes() == before
    assert main(["compact", str(image), "--mode", "full", "--no-zero-scan"]) == 2
    assert main(["compact", str(image), "--mode", "fast"]) == 2
    capsys.readouterr()
