"""Instruction counts from valgrind's callgrind, for the benchmarks that
count instead of timing (the counts do not depend on what else the machine
is doing)."""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
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


def instructions_per_repeat(script: str, arguments: Sequence[str], repeats: int,
                            output: Path, environment: Mapping[str, str] | None = None
                            ) -> float:
    """The instructions one repeat of `script`'s measured loop executes:
    ``script --loop *arguments N`` runs with `repeats` and with twice as
    many, and the difference divided by `repeats` leaves start-up out.
    The profiles are written next to `output`, with the counts appended."""
    counts = [callgrind_instructions([script, "--loop", *arguments, str(count)],
                                     output.with_name(f"{output.name}.{count}"), environment)
              for count in (repeats, 2 * repeats)]
    return (counts[1] - counts[0]) / repeats


def quick_or_loop(description: str, loop: Callable[..., None], loop_names: Sequence[str],
                  tools: Sequence[str]) -> bool:
    """The command line of a counting script: ``--loop NAMES... N`` (how
    the script runs itself under callgrind) calls ``loop(*names, N)`` and
    exits; otherwise, once each of `tools` is found, whether ``--quick``
    was given."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--loop", nargs=len(loop_names) + 1,
                        metavar=(*(name.upper() for name in loop_names), "REPEATS"),
                        help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.loop:
        *names, repeats = options.loop
        loop(*names, int(repeats))
        sys.exit(0)
    for tool in ("valgrind", *tools):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed")
    return bool(options.quick)
