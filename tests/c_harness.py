"""Building and running the engine's C test harnesses (tests/c/*.c).

Each harness is a small program that calls engine functions and prints the
answers; the tests compile it with the project's warning flags, run it and
compare its output with the spec or with tools nobody here wrote.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "src" / "vdengine"
HARNESSES = ROOT / "tests" / "c"

NOBODY = 65534


def engine_source(name: str) -> Path:
    """The engine source file called `name`, wherever it sits under
    src/vdengine (file names are unique across the engine's folders)."""
    direct = ENGINE / name
    if direct.exists():
        return direct
    found = sorted(ENGINE.rglob(Path(name).name))
    return found[0] if found else direct


def all_engine_sources() -> list[Path]:
    """Every engine source file."""
    return sorted(ENGINE.rglob("*.c"))


def compile_harness(directory: Path, harness: str, engine_sources: Sequence[str | Path],
                    *, defines: Sequence[str] = (), sanitize: bool = False) -> Path:
    """Compiles tests/c/<harness>.c with the engine sources into `directory`.

    `engine_sources` are names in src/vdengine or paths.  With `sanitize`
    the program runs under AddressSanitizer and UBSan where the compiler has
    them (falling back to a plain build where it has not)."""
    if sys.platform == "win32":
        pytest.skip("the portable engine's C tests run on POSIX hosts; Windows runs VirtDisk")
    if not ENGINE.is_dir():
        pytest.skip("the engine sources are not beside these tests")
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler")
    binary = directory / harness
    sources = [str(source if isinstance(source, Path) else engine_source(source))
               for source in engine_sources]
    # Every layer records failure details (base/detail.c), as every layer
    # may set errno: each harness links it.
    detail = str(engine_source("detail.c"))
    if detail not in sources:
        sources.append(detail)
    command = [compiler, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
               *defines, f"-I{ENGINE}", f"-I{ROOT / 'src' / 'include'}", "-pthread",
               str(HARNESSES / f"{harness}.c"), *sources,
               "-o", str(binary)]
    if sanitize:
        sanitized = subprocess.run(command + ["-fsanitize=address,undefined",
                                              "-fno-sanitize-recover=all"],
                                   capture_output=True)
        if sanitized.returncode == 0:
            return binary
    subprocess.run(command, check=True)
    return binary


def drop_to_nobody() -> None:
    """preexec_fn for running a harness as an unprivileged user."""
    os.setgid(NOBODY)
    os.setuid(NOBODY)


@contextlib.contextmanager
def unprivileged_area(*binaries: Path) -> Iterator[tuple[Path, list[Path]]]:
    """A directory user "nobody" can enter, with copies of `binaries` in it.

    Root ignores permission bits, so permission cases run the harness as
    "nobody"; pytest's own temporary directories are closed to other users.
    Skips when the tests do not run as root."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the harness as another user")
    area = Path(tempfile.mkdtemp(prefix="vd-unprivileged-", dir="/tmp"))
    try:
        area.chmod(0o755)
        copies = []
        for binary in binaries:
            copy = area / binary.name
            shutil.copy2(binary, copy)
            copy.chmod(0o755)
            copies.append(copy)
        yield area, copies
    finally:
        shutil.rmtree(area)
