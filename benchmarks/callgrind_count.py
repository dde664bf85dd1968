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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
        raise RuntimeError(f"callgrind wrote no summary to {output}")
    return int(summary.group(1))


@dataclass(frozen=True)
class Row:
    """One row of a counting script: ``script --loop *arguments N`` is its
    measured loop, run with N = `repeats` and with twice as many; its
    profiles are written next to `output`."""
    script: str
    arguments: Sequence[str]
    repeats: int
    output: Path
    environment: Mapping[str, str] | None = None

    def runs(self) -> list[tuple[list[str], Path]]:
        return [([self.script, "--loop", *self.arguments, str(count)],
                 self.output.with_name(f"{self.output.name}.{count}"))
                for count in (self.repeats, 2 * self.repeats)]


def instructions_per_repeat_of_rows(rows: Sequence[Row]) -> list[float]:
    """The instructions one repeat of each row's loop executes: the
    difference of its two runs divided by `repeats`, which leaves start-up
    out.  Rows are counted side by side, one per CPU (callgrind counts
    instructions, which do not depend on what else the machine runs, and
    each run spends seconds starting alone); a row's own two runs follow
    each other, so a row may open its image for writing."""
    def count(row: Row) -> float:
        once, twice = (callgrind_instructions(arguments, output, row.environment)
                       for arguments, output in row.runs())
        return (twice - once) / row.repeats

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(count, rows))


def image_of_row(image: Path, tag: str) -> Path:
    """A copy of `image` for one row alone: rows count side by side, and a
    row that opens its image for writing takes the file's lock."""
    copy = image.with_name(f"{image.stem}.{tag}{image.suffix}")
    shutil.copyfile(image, copy)
    return copy


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
