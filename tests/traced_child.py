"""A Python child process, under strace when asked: for tests that count
what the engine asks of the host (flushes, reads, kernel copies) in an
operation run apart from the test process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
