"""Instruction counts from valgrind's callgrind, for the benchmarks that
count instead of timing (the counts do not depend on what else the machine
is doing)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


def callgrind_instructions(arguments: Sequence[str], output: Path,
                           environment: Mapping[str, str] | None = None) -> int:
    """Runs this Python with `arguments` under callgrind, its profile written
    to `output`; the instructions the whole run executed.  `environment`
    adds variables to the inherited ones."""
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={output}",
         sys.executable, *arguments],
        check=True, capture_output=True,
        env=None if environment is None else {**os.environ, **environment})
    summary = re.search(r"^summary: (\d+)", output.read_text(), re.MULTILINE)
    if summary is None:
        sys.exit(f"callgrind wrote no summary to {output}")
    return int(summary.group(1))
