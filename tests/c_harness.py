"""Building and running the engine's C test harnesses (tests/c/*.c).

Each harness is a small program that calls engine functions and prints the
answers; the tests compile it with the project's warning flags, run it and
compare its output with the spec or with tools nobody here wrote.
"""

from __future__ import annotations

import atexit
import concurrent.futures
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


def _compiler() -> str:
    if sys.platform == "win32":
        pytest.skip("the portable engine's C tests run on POSIX hosts; Windows runs VirtDisk")
    if not ENGINE.is_dir():
        pytest.skip("the engine sources are not beside these tests")
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler")
    return compiler


_sanitizer_answers: dict[str, bool] = {}


def skip_without_sanitizer(flag: str) -> None:
    """Skips the test unless the compiler builds and runs a trivial program
    with `flag` (e.g. ``-fsanitize=thread``): a harness that then fails to
    compile has a real error, which must fail the test, not skip it."""
    compiler = _compiler()
    if flag not in _sanitizer_answers:
        with tempfile.TemporaryDirectory() as directory:
            source, binary = Path(directory) / "probe.c", Path(directory) / "probe"
            source.write_text("int main(void) { return 0; }\n")
            built = subprocess.run([compiler, flag, str(source), "-o", str(binary)],
                                   capture_output=True)
            _sanitizer_answers[flag] = (built.returncode == 0
                                        and subprocess.run([str(binary)]).returncode == 0)
    if not _sanitizer_answers[flag]:
        pytest.skip(f"{flag} is not available with {compiler} here")


_FLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g", "-pthread",
          f"-I{ENGINE}", f"-I{ROOT / 'src' / 'include'}"]
_SANITIZERS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
_libraries: dict[tuple[str, ...], Path] = {}
_harnesses: dict[tuple[str, ...], Path] = {}
_library_area: list[Path] = []


def _session_directory() -> Path:
    """A new directory in the session's build area, removed at exit."""
    if not _library_area:
        area = Path(tempfile.mkdtemp(prefix="vd-engine-lib-"))
        atexit.register(shutil.rmtree, area, True)
        _library_area.append(area)
    return Path(tempfile.mkdtemp(dir=_library_area[0]))


def _engine_library(compiler: str, flags: Sequence[str]) -> Path:
    """The whole engine as a static library built with `flags`, once per test
    session.  Harnesses link it after their own sources, so a harness names
    only the sources it replaces or must have, and a new dependency between
    engine files never breaks a harness's link."""
    key = tuple(flags)
    if key in _libraries:
        return _libraries[key]
    directory = _session_directory()

    def build(source: Path) -> Path:
        name = source.relative_to(ENGINE).with_suffix(".o").as_posix().replace("/", "_")
        target = directory / name
        result = subprocess.run([compiler, *flags, "-c", str(source), "-o", str(target)],
                                capture_output=True)
        if result.returncode != 0:
            # The compiler's message, not only its exit status, in the report.
            raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout,
                                                result.stderr.decode(errors="replace"))
        return target

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 4) as pool:
        objects = list(pool.map(build, all_engine_sources()))
    library = directory / "libvdengine.a"
    subprocess.run(["ar", "rcs", str(library), *map(str, objects)], check=True)
    _libraries[key] = library
    return library


def compile_harness(directory: Path, harness: str, engine_sources: Sequence[str | Path],
                    *, defines: Sequence[str] = (), sanitize: bool = False) -> Path:
    """Compiles tests/c/<harness>.c with the engine sources into `directory`,
    then the rest of the engine from a library built with the same flags.

    `engine_sources` are names in src/vdengine or paths: the files the
    harness must link whole (the library supplies whatever else they call).
    A harness that replaces engine functions with fakes leaves their files
    out.  With `sanitize` the program runs under AddressSanitizer and UBSan
    where the compiler has them (falling back to a plain build where it has
    not)."""
    compiler = _compiler()
    binary = directory / harness
    sources = [str(source if isinstance(source, Path) else engine_source(source))
               for source in engine_sources]
    # The sources do not change during a session: a harness built once with
    # the same sources and flags is copied, not built again (most test
    # files build the same few harnesses).
    key = (harness, *sources, "--", *defines, "sanitize" if sanitize else "plain")
    if key in _harnesses:
        shutil.copy2(_harnesses[key], binary)
        return binary

    def build(flags: list[str]) -> subprocess.CompletedProcess[bytes]:
        library = _engine_library(compiler, flags)
        return subprocess.run([compiler, *flags, str(HARNESSES / f"{harness}.c"), *sources,
                               str(library), "-o", str(binary)], capture_output=True)

    def remember() -> Path:
        kept = _session_directory() / harness
        shutil.copy2(binary, kept)
        _harnesses[key] = kept
        return binary

    flags = [*_FLAGS, *defines]
    if sanitize:
        try:
            if build(flags + _SANITIZERS).returncode == 0:
                return remember()
        except subprocess.CalledProcessError:
            pass   # no sanitizer runtime here: the plain build below
    result = build(flags)
    if result.returncode != 0:
        sys.stderr.write(result.stderr.decode(errors="replace"))
        raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout,
                                            result.stderr.decode(errors="replace"))
    return remember()


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
