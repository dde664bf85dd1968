"""A Python child process, under strace when asked: for tests that count
what the engine asks of the host (flushes, reads, kernel copies) in an
operation run apart from the test process."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@functools.cache
def strace_can_trace() -> bool:
    """Whether strace is installed and may trace a child here: a container
    or a Yama ptrace_scope can deny ptrace, and strace then fails."""
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(["strace", "-f", "-qq", "-o", os.devnull, "true"],
                           capture_output=True)
    return probe.returncode == 0


def needs_strace(why: str) -> pytest.MarkDecorator:
    """A skip marker for a test that counts system calls with strace; `why`
    says what the count shows."""
    return pytest.mark.skipif(not strace_can_trace(),
                              reason=f"{why}; strace is missing or ptrace is denied here")


def run_traced(script: str, trace: Path | None, calls: str) -> list[str]:
    """Runs `script` in a Python child, under strace of the system calls
    `calls` (strace's ``-e trace=`` list) into `trace` when it is given; the
    trace's lines (none without a trace).  The child must succeed."""
    command = [sys.executable, "-c", script]
    if trace is not None:
        command = ["strace", "-f", "-qq", "-o", str(trace), "-e", f"trace={calls}", *command]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return trace.read_text().splitlines() if trace is not None else []
