"""MirrorVirtualDisk's copy and write fan-out under concurrent writers
(disk/mirror_copy.c), through tests/c/mirror_main.c built with the thread
sanitizer and with the address and undefined-behaviour sanitizers.

Four threads write and unmap runs of sectors all over the disk while the
copy runs, so writes land ahead of the copy, behind it and across its step
in whatever order the scheduler gives; the mirror must read exactly what
the disk read when it was broken (the harness compares, and qemu-img
compares the two files), with no data race reported."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from c_harness import (ENGINE, ROOT, all_engine_sources, compile_harness,
                       skip_without_sanitizer)

ERROR_SUCCESS = 0
ERROR_IO_PENDING = 997
QEMU_IMAGES = {"vhdx": ("vhdx", []), "vhd": ("vpc", ["-o", "subformat=dynamic"])}

needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")


def thread_sanitized(directory: Path) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not ENGINE.is_dir():
        pytest.skip("no C compiler or no engine sources")
    skip_without_sanitizer("-fsanitize=thread")
    binary = directory / "mirror_main_tsan"
    result = subprocess.run([compiler, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
                             "-fsanitize=thread", f"-I{ENGINE}", f"-I{ROOT / 'src' / 'include'}",
                             str(ROOT / "tests" / "c" / "mirror_main.c"),
                             *map(str, all_engine_sources()), "-pthread", "-o", str(binary)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return binary


@needs_qemu
@pytest.mark.parametrize("fmt", ["vhdx", "vhd"])
@pytest.mark.parametrize("sanitizer", ["thread", "address"])
def test_concurrent_writers_during_the_copy_are_all_mirrored(tmp_path: Path, fmt: str,
                                                             sanitizer: str) -> None:
    binary = (thread_sanitized(tmp_path) if sanitizer == "thread"
              else compile_harness(tmp_path, "mirror_main", all_engine_sources(), sanitize=True))
    qemu_format, options = QEMU_IMAGES[fmt]
    source = tmp_path / f"source.{fmt}"
    target = tmp_path / f"mirror.{fmt}"
    subprocess.run(["qemu-img", "create", "-q", "-f", qemu_format, *options, str(source), "16M"],
                   check=True)
    environment = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66",
                       ASAN_OPTIONS="detect_leaks=1")
    environment.pop("VIRTDISK_TEST_OPERATION_HOLD", None)
    result = subprocess.run([str(binary), str(source), str(target), "4", "400"],
                            capture_output=True, text=True, timeout=600, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING: ThreadSanitizer" not in result.stderr, result.stderr[-3000:]
    answer = json.loads(result.stdout)
    assert answer == {"start": ERROR_IO_PENDING, "failures": 0,
                      "mirrored_status": ERROR_IO_PENDING, "break": ERROR_SUCCESS,
                      "ended": ERROR_SUCCESS, "final": ERROR_SUCCESS, "equal": 1,
                      "close": ERROR_SUCCESS, "handles": 0}
    compared = subprocess.run(["qemu-img", "compare", "-f", qemu_format, "-F", qemu_format,
                               str(source), str(target)], capture_output=True, text=True)
    assert compared.returncode == 0, compared.stdout + compared.stderr


@needs_qemu
@pytest.mark.parametrize("fmt", ["vhdx", "vhd"])
def test_a_break_the_moment_the_copy_is_complete_meets_no_copy_at_work(tmp_path: Path,
                                                                       fmt: str) -> None:
    # The copy ends with a flush of the target; the progress shows the
    # whole content only after it, so the break that follows at once never
    # takes the target while the copy still uses it (the thread sanitizer
    # reports the race when it does, and the copy, counted as unfinished,
    # was removed after a successful break).
    binary = thread_sanitized(tmp_path)
    qemu_format, options = QEMU_IMAGES[fmt]
    environment = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66")
    environment.pop("VIRTDISK_TEST_OPERATION_HOLD", None)
    for attempt in range(4):
        source = tmp_path / f"source{attempt}.{fmt}"
        target = tmp_path / f"mirror{attempt}.{fmt}"
        subprocess.run(["qemu-img", "create", "-q", "-f", qemu_format, *options, str(source),
                        "16M"], check=True)
        subprocess.run(["qemu-io", "-f", qemu_format, "-c", "write -P 0x5a 1M 3M", str(source)],
                       check=True, capture_output=True)
        result = subprocess.run([str(binary), str(source), str(target), "0", "0"],
                                capture_output=True, text=True, timeout=600, env=environment)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "WARNING: ThreadSanitizer" not in result.stderr, result.stderr[-3000:]
        answer = json.loads(result.stdout)
        assert answer["break"] == ERROR_SUCCESS and answer["final"] == ERROR_SUCCESS, answer
        assert target.exists(), f"attempt {attempt}: the copy broken to was removed"
        compared = subprocess.run(["qemu-img", "compare", "-f", qemu_format, "-F", qemu_format,
                                   str(source), str(target)], capture_output=True, text=True)
        assert compared.returncode == 0, compared.stdout + compared.stderr
