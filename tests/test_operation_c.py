"""The long operations' model in the engine (api/operation.c, host/event.c).

tests/c/operation_main.c runs a body of its own through the model, one step
at a time as the harness releases them, so each observation below is made
at a known point of the operation.  The expected codes are winerror.h's
for what Windows documents: ERROR_IO_PENDING from a call given an
OVERLAPPED, the OVERLAPPED's event signalled at the end, progress in bytes
with the final code once done, ERROR_OPERATION_ABORTED after CancelIoEx and
ERROR_NOT_FOUND from CancelIoEx when nothing runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from c_harness import all_engine_sources, compile_harness, skip_without_sanitizer

ERROR_SUCCESS = 0
ERROR_INVALID_HANDLE = 6
ERROR_INVALID_PARAMETER = 87
ERROR_DISK_FULL = 112
ERROR_BUSY = 170
WAIT_TIMEOUT = 258
ERROR_OPERATION_ABORTED = 995
ERROR_IO_PENDING = 997
ERROR_NOT_FOUND = 1168
STATUS_PENDING = 0x103
STEP = 4096

Program = Callable[..., dict[str, Any]]


def _runner(binary: Path, environment: dict[str, str] | None = None) -> Program:
    def run(*args: str | int | Path) -> dict[str, Any]:
        result = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                                timeout=600, env=environment)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "WARNING: ThreadSanitizer" not in result.stderr, result.stderr[-3000:]
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer
    return run


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Program:
    binary = compile_harness(tmp_path_factory.mktemp("operation"), "operation_main",
                             all_engine_sources(), sanitize=True)
    return _runner(binary, dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img not installed")
    path = tmp_path / "disk.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(path), "8M"], check=True)
    return path


def test_without_overlapped_the_call_is_synchronous(program: Program, image: Path) -> None:
    got = program("sync", image)
    assert got == {"plain": ERROR_SUCCESS, "failing": ERROR_OPERATION_ABORTED,
                   "cancel_after": ERROR_NOT_FOUND, "close": ERROR_SUCCESS}


@pytest.mark.parametrize("steps", [1, 5])
def test_overlapped_call_is_pending_with_monotone_progress_in_bytes(program: Program, image: Path,
                                                                     steps: int) -> None:
    got = program("async", image, steps)
    assert got["start"] == ERROR_IO_PENDING
    assert got["internal_running"] == STATUS_PENDING
    assert got["set_running"] == 0          # the start reset the event it was given set
    rows = got["steps"]
    assert len(rows) == steps
    for index, (code, status, current, completion, event_set) in enumerate(rows):
        assert (code, status, event_set) == (ERROR_SUCCESS, ERROR_IO_PENDING, 0)
        assert completion == steps * STEP
        assert current == index * STEP
    currents = [row[2] for row in rows]
    assert currents == sorted(currents)
    assert got["wait"] == ERROR_SUCCESS and got["internal"] == ERROR_SUCCESS
    # Progress keeps answering after completion, with the final code and
    # CurrentValue == CompletionValue.
    assert got["after"] == got["again"] == [ERROR_SUCCESS, ERROR_SUCCESS, steps * STEP,
                                            steps * STEP]
    assert got["cancel_after"] == ERROR_NOT_FOUND
    assert got["other_overlapped"][0] == ERROR_NOT_FOUND
    # The same OVERLAPPED used again answers for the newer operation.
    assert got["restart"] in (ERROR_IO_PENDING, ERROR_SUCCESS)
    assert got["restarted"] == [ERROR_SUCCESS, ERROR_DISK_FULL, STEP, STEP]
    assert got["close"] == ERROR_SUCCESS


@pytest.mark.parametrize("at", [0, 1, 3])
def test_cancel_io_ends_the_operation_with_operation_aborted(program: Program, image: Path,
                                                             at: int) -> None:
    got = program("cancel", image, 5, at)
    assert got["start"] == ERROR_IO_PENDING
    assert got["wrong_overlapped"] == ERROR_NOT_FOUND
    assert got["cancel"] == ERROR_SUCCESS
    assert got["internal"] == ERROR_OPERATION_ABORTED
    assert got["reached"] == at
    assert got["after"] == [ERROR_SUCCESS, ERROR_OPERATION_ABORTED, at * STEP, 5 * STEP]
    assert got["close"] == ERROR_SUCCESS


def test_second_operation_on_a_busy_handle_gets_error_busy(program: Program, image: Path) -> None:
    other = image.with_name("other.vhdx")
    shutil.copyfile(image, other)
    got = program("busy", image, other)
    assert got["start"] == ERROR_IO_PENDING
    assert got["async_second"] == ERROR_BUSY
    assert got["sync_second"] == ERROR_BUSY
    assert got["second_progress"] == ERROR_NOT_FOUND
    assert got["second_event_set"] == 0
    assert got["other_handle"] in (ERROR_IO_PENDING, ERROR_SUCCESS)
    assert got["other_internal"] == ERROR_SUCCESS
    assert got["first"] == ERROR_SUCCESS
    assert got["after"] == ERROR_SUCCESS


@pytest.mark.parametrize("at", [0, 2])
def test_close_cancels_and_waits(program: Program, image: Path, at: int) -> None:
    got = program("close", image, at)
    assert got["start"] == ERROR_IO_PENDING
    assert got["close"] == ERROR_SUCCESS
    assert got["body_done_first"] == 1
    assert got["internal"] == ERROR_OPERATION_ABORTED
    assert got["event_set"] == 1
    assert got["handles"] == 0
    assert got["closed_handle"][0] == ERROR_INVALID_HANDLE
    assert got["cancel_closed"] == ERROR_INVALID_HANDLE


def test_a_thousand_short_operations_leave_no_thread_fd_or_handle(program: Program,
                                                                  image: Path) -> None:
    got = program("leak", image, 1000)
    assert got["wrong"] == 0
    assert got["threads_after"] == got["threads_before"]
    # At most the finished operation's thread waits to be joined.
    assert got["peak_threads"] <= got["threads_before"] + 1
    assert got["fds_after"] == got["fds_before"]
    assert got["handles"] == 0


def test_codes_without_an_operation(program: Program, image: Path) -> None:
    got = program("codes", image)
    assert got == {
        "progress_unused": ERROR_NOT_FOUND,
        "progress_null_overlapped": ERROR_INVALID_PARAMETER,
        "progress_null_progress": ERROR_INVALID_PARAMETER,
        "progress_bad_handle": ERROR_INVALID_HANDLE,
        "cancel_none": ERROR_NOT_FOUND,
        "cancel_unused": ERROR_NOT_FOUND,
        "cancel_bad_handle": ERROR_INVALID_HANDLE,
        "no_event_start": ERROR_IO_PENDING,
        "no_event_status": ERROR_SUCCESS,
        "close": ERROR_SUCCESS,
    }


def test_events_are_manual_reset_and_poll_readable_while_set(program: Program) -> None:
    got = program("events")
    assert got == {
        "create": ERROR_SUCCESS, "fd": 1, "created_set": 0, "created_readable": 0,
        "wait_reset": WAIT_TIMEOUT,
        "set_twice": 1, "readable": 1, "wait_set": ERROR_SUCCESS, "still_set": 1,
        "reset": 0, "reset_readable": 0, "reset_twice": 0,
        "create_null": ERROR_INVALID_PARAMETER, "set_null": ERROR_INVALID_HANDLE, "fd_null": -1,
    }


def test_model_is_race_free_under_thread_sanitizer(tmp_path: Path, image: Path) -> None:
    skip_without_sanitizer("-fsanitize=thread")
    binary = compile_harness(tmp_path, "operation_main", all_engine_sources(),
                             defines=["-fsanitize=thread"])
    run = _runner(binary, {"TSAN_OPTIONS": "halt_on_error=1 exitcode=66", "PATH": "/usr/bin:/bin"})
    assert run("cancel", image, 5, 2)["internal"] == ERROR_OPERATION_ABORTED
    assert run("close", image, 1)["body_done_first"] == 1
    other = image.with_name("other.vhdx")
    shutil.copyfile(image, other)
    assert run("busy", image, other)["async_second"] == ERROR_BUSY
    assert run("leak", image, 200)["wrong"] == 0
