"""Runs mypy --strict on a snippet of code against the project's stubs and
sources, for tests of what the type checker reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_mypy(directory: Path, source: str) -> subprocess.CompletedProcess[str]:
    """mypy --strict on `source`, written to `directory`/snippet.py (line 1
    is the source's first line), with stubs/ and src/ on the path."""
    snippet = directory / "snippet.py"
    snippet.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(directory / "mypy-cache"), "--config-file", "/dev/null",
         str(snippet)],
        capture_output=True, text=True, cwd=directory, check=False,
        env={"MYPYPATH": f"{ROOT / 'stubs'}:{ROOT / 'src'}", "PATH": ""})
