"""io.c: opening host files with Windows' error codes and sharing rules.

The expected codes are the Win32 values of winerror.h for the situation
Windows documents (CreateFile on a missing file, a missing directory, a
directory, a file opened by a writer, ...).  A small C harness
(tests/c/io_main.c) calls the engine and prints what it returned.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from c_harness import compile_harness, drop_to_nobody, unprivileged_area

# winerror.h
ERROR_SUCCESS = 0
ERROR_FILE_NOT_FOUND = 2
ERROR_PATH_NOT_FOUND = 3
ERROR_TOO_MANY_OPEN_FILES = 4
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_HANDLE = 6
ERROR_NOT_ENOUGH_MEMORY = 8
ERROR_SHARING_VIOLATION = 32
ERROR_HANDLE_EOF = 38
ERROR_FILE_EXISTS = 80
ERROR_INVALID_PARAMETER = 87
ERROR_DISK_FULL = 112
ERROR_FILENAME_EXCED_RANGE = 206
ERROR_UNSUPPORTED_COMPRESSION = 618
ERROR_IO_DEVICE = 1117
ERROR_DISK_QUOTA_EXCEEDED = 1295
ERROR_CANT_RESOLVE_FILENAME = 1921
ERROR_FILE_ENCRYPTED = 6002


# io_main.c includes io.c itself, to reach its static attribute mapping.
VARIANTS = {
    "linux": [],                               # statx + open file description locks
    "portable": ["-DIO_PORTABLE_PATHS"],       # fstat + flock, as on macOS
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def harness(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """io.c as built here and as built where Linux-only calls are missing:
    both must follow the same Windows rules."""
    directory = tmp_path_factory.mktemp(f"io_harness_{request.param}")
    return compile_harness(directory, "io_main", [], defines=VARIANTS[request.param],
                           sanitize=True)


@pytest.fixture(scope="module")
def native_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_harness(tmp_path_factory.mktemp("io_harness_native"), "io_main", [],
                           sanitize=True)


def run(harness: Path, *args: str, cwd: Path | None = None,
        preexec_fn: Callable[[], None] | None = None) -> dict[str, Any]:
    result = subprocess.run([str(harness), *args], check=True, capture_output=True,
                            text=True, timeout=30, cwd=cwd, preexec_fn=preexec_fn)
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def open_status(harness: Path, path: str, mode: str = "ro", *, cwd: Path | None = None,
                preexec_fn: Callable[[], None] | None = None) -> int:
    status: int = run(harness, "open", path, mode, cwd=cwd, preexec_fn=preexec_fn)["status"]
    return status


@pytest.fixture()
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(range(256)) * 17)
    return path


# ---- opening ---------------------------------------------------------------

def test_open_reports_size_and_absolute_path_of_relative_name(harness: Path,
                                                              sample: Path) -> None:
    answer = run(harness, "open", sample.name, "ro", cwd=sample.parent)
    assert answer["status"] == ERROR_SUCCESS
    assert answer["size"] == sample.stat().st_size
    assert answer["path"] == str(sample)
    assert answer["fd_open"]


def test_open_keeps_an_absolute_name_as_given(harness: Path, sample: Path) -> None:
    answer = run(harness, "open", str(sample), "rw")
    assert (answer["status"], answer["path"]) == (ERROR_SUCCESS, str(sample))


def test_failed_open_leaves_no_descriptor(harness: Path, tmp_path: Path) -> None:
    answer = run(harness, "open", str(tmp_path / "missing"), "ro")
    assert answer == {"status": ERROR_FILE_NOT_FOUND, "size": 0, "fd_open": False,
                      "path": None}


@pytest.mark.parametrize(("relative", "expected"), [
    ("missing.vhd", ERROR_FILE_NOT_FOUND),          # directory exists, file does not
    ("nodir/missing.vhd", ERROR_PATH_NOT_FOUND),    # a directory on the way is missing
    ("nodir/deeper/missing.vhd", ERROR_PATH_NOT_FOUND),
    ("disk.img/inner.vhd", ERROR_PATH_NOT_FOUND),   # a file used as a directory
])
def test_missing_names(harness: Path, sample: Path, relative: str, expected: int) -> None:
    assert open_status(harness, str(sample.parent / relative)) == expected
    assert open_status(harness, relative, cwd=sample.parent) == expected


def test_empty_path_is_path_not_found(harness: Path) -> None:
    assert open_status(harness, "") == ERROR_PATH_NOT_FOUND


def test_directory_is_access_denied(harness: Path, tmp_path: Path) -> None:
    assert open_status(harness, str(tmp_path), "ro") == ERROR_ACCESS_DENIED
    assert open_status(harness, str(tmp_path), "rw") == ERROR_ACCESS_DENIED


def test_fifo_is_refused_without_blocking(harness: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert open_status(harness, str(fifo), "ro") == ERROR_ACCESS_DENIED


def test_symlink_loop_cannot_be_resolved(harness: Path, tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert open_status(harness, str(tmp_path / "a")) == ERROR_CANT_RESOLVE_FILENAME


def test_symlink_to_missing_target_is_file_not_found(harness: Path, tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "target")
    assert open_status(harness, str(tmp_path / "dangling")) == ERROR_FILE_NOT_FOUND


def test_name_too_long(harness: Path, tmp_path: Path) -> None:
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    assert open_status(harness, str(tmp_path / ("x" * (limit + 1)))) \
        == ERROR_FILENAME_EXCED_RANGE


def test_permission_denied_for_an_unprivileged_user(harness: Path) -> None:
    """Root ignores permission bits, so the case runs as user "nobody"."""
    with unprivileged_area(harness) as (area, (binary,)):
        private = area / "private.img"
        private.write_bytes(b"\0" * 4096)
        private.chmod(0o600)
        readable = area / "readable.img"
        readable.write_bytes(b"\0" * 4096)
        readable.chmod(0o644)
        for path, mode, expected in [(private, "ro", ERROR_ACCESS_DENIED),
                                     (readable, "ro", ERROR_SUCCESS),
                                     (readable, "rw", ERROR_ACCESS_DENIED)]:
            assert open_status(binary, str(path), mode, preexec_fn=drop_to_nobody) == expected


# ---- sharing -----------------------------------------------------------------

@pytest.mark.parametrize(("first", "second", "expected"), [
    ("rw", "rw", ERROR_SHARING_VIOLATION),
    ("rw", "ro", ERROR_SHARING_VIOLATION),
    ("ro", "rw", ERROR_SHARING_VIOLATION),
    ("ro", "ro", ERROR_SUCCESS),
])
def test_sharing_within_one_process(harness: Path, sample: Path, first: str, second: str,
                                    expected: int) -> None:
    answer = run(harness, "twice", str(sample), first, second)
    assert answer == {"first": ERROR_SUCCESS, "second": expected}


class Holder:
    """A second process that keeps the file open until told to let go."""

    def __init__(self, harness: Path, path: Path, mode: str) -> None:
        self.process = subprocess.Popen([str(harness), "hold", str(path), mode],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout is not None
        self.status = json.loads(self.process.stdout.readline())["status"]

    def release(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()


@pytest.mark.parametrize(("held", "second", "expected"), [
    ("rw", "rw", ERROR_SHARING_VIOLATION),
    ("rw", "ro", ERROR_SHARING_VIOLATION),
    ("ro", "rw", ERROR_SHARING_VIOLATION),
    ("ro", "ro", ERROR_SUCCESS),
])
def test_sharing_across_processes(harness: Path, sample: Path, held: str, second: str,
                                  expected: int) -> None:
    holder = Holder(harness, sample, held)
    try:
        assert holder.status == ERROR_SUCCESS
        assert open_status(harness, str(sample), second) == expected
    finally:
        holder.release()
    assert open_status(harness, str(sample), second) == ERROR_SUCCESS


@pytest.mark.parametrize("held", ["rw", "ro"])
def test_locks_are_visible_to_posix_record_locks(native_harness: Path, sample: Path,
                                                 held: str) -> None:
    """Other programs that lock with fcntl (lockf) see the same rules."""
    holder = Holder(native_harness, sample, held)
    try:
        with open(sample, "r+b") as other:
            if held == "rw":
                with pytest.raises(OSError) as refused:
                    fcntl.lockf(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
                assert refused.value.errno in (errno.EAGAIN, errno.EACCES)
            else:
                fcntl.lockf(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.lockf(other, fcntl.LOCK_UN)
                with pytest.raises(OSError):
                    fcntl.lockf(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        holder.release()


# ---- reading and writing -----------------------------------------------------

@pytest.mark.parametrize(("offset", "length"), [(0, 1), (0, 4352), (100, 1000), (4351, 1),
                                                (4352, 0)])
def test_read_returns_the_file_bytes(harness: Path, sample: Path, tmp_path: Path,
                                     offset: int, length: int) -> None:
    out = tmp_path / "out.bin"
    answer = run(harness, "read", str(sample), str(offset), str(length), str(out))
    assert answer["status"] == ERROR_SUCCESS
    assert out.read_bytes() == sample.read_bytes()[offset:offset + length]


@pytest.mark.parametrize(("offset", "length"), [(4351, 2), (4352, 1), (10**6, 1),
                                                (2**63 - 1, 2), (2**64 - 1, 1)])
def test_read_past_the_end_is_handle_eof(harness: Path, sample: Path, tmp_path: Path,
                                         offset: int, length: int) -> None:
    out = tmp_path / "out.bin"
    answer = run(harness, "read", str(sample), str(offset), str(length), str(out))
    assert answer["status"] == ERROR_HANDLE_EOF
    assert not out.exists()


def test_write_needs_a_writable_open(harness: Path, sample: Path) -> None:
    before = sample.read_bytes()
    assert run(harness, "write", str(sample), "ro", "10", "hello")["status"] \
        == ERROR_ACCESS_DENIED
    assert sample.read_bytes() == before
    assert run(harness, "write", str(sample), "rw", "10", "hello")["status"] == ERROR_SUCCESS
    assert sample.read_bytes() == before[:10] + b"hello" + before[15:]


def test_write_past_the_end_extends_the_file(harness: Path, sample: Path) -> None:
    size = sample.stat().st_size
    assert run(harness, "write", str(sample), "rw", str(size + 100), "tail")["status"] == 0
    data = sample.read_bytes()
    assert len(data) == size + 104
    assert data[size:size + 100] == bytes(100) and data[-4:] == b"tail"


# ---- error translation -------------------------------------------------------

ERRNO_TO_WIN32 = {
    errno.ENOENT: ERROR_FILE_NOT_FOUND,
    errno.ENOTDIR: ERROR_PATH_NOT_FOUND,
    errno.EACCES: ERROR_ACCESS_DENIED,
    errno.EPERM: ERROR_ACCESS_DENIED,
    errno.EROFS: ERROR_ACCESS_DENIED,
    errno.EISDIR: ERROR_ACCESS_DENIED,
    errno.EMFILE: ERROR_TOO_MANY_OPEN_FILES,
    errno.ENFILE: ERROR_TOO_MANY_OPEN_FILES,
    errno.ENOMEM: ERROR_NOT_ENOUGH_MEMORY,
    errno.ENAMETOOLONG: ERROR_FILENAME_EXCED_RANGE,
    errno.ELOOP: ERROR_CANT_RESOLVE_FILENAME,
    errno.ENOSPC: ERROR_DISK_FULL,
    errno.EDQUOT: ERROR_DISK_QUOTA_EXCEEDED,
    errno.EEXIST: ERROR_FILE_EXISTS,
    errno.EIO: ERROR_IO_DEVICE,
    errno.EAGAIN: ERROR_SHARING_VIOLATION,
    errno.ETXTBSY: ERROR_SHARING_VIOLATION,
    errno.EBADF: ERROR_INVALID_HANDLE,
    errno.EINVAL: ERROR_INVALID_PARAMETER,
    0: ERROR_SUCCESS,
}


def test_errno_translation(native_harness: Path) -> None:
    numbers = [str(n) for n in ERRNO_TO_WIN32]
    result = subprocess.run([str(native_harness), "errno", *numbers], check=True,
                            capture_output=True, text=True)
    answers = {int(n): int(code) for n, code in
               (line.split() for line in result.stdout.splitlines())}
    assert answers == ERRNO_TO_WIN32


def test_unknown_errno_is_a_general_failure(native_harness: Path) -> None:
    result = subprocess.run([str(native_harness), "errno", "100000"], check=True,
                            capture_output=True, text=True)
    assert result.stdout.split() == ["100000", "31"]   # ERROR_GEN_FAILURE


# ---- compressed and encrypted host files -----------------------------------------

def test_attribute_mapping(native_harness: Path) -> None:
    """A set bit counts only where the file system says it reports it; when a
    file is both, compression is named first (a file system compresses data
    before it encrypts it, so the compressed state is what the reader meets)."""
    result = subprocess.run([str(native_harness), "attributes"], check=True,
                            capture_output=True, text=True)
    seen = {}
    for line in result.stdout.splitlines():
        compressed, encrypted, knows_c, knows_e, code = map(int, line.split())
        seen[compressed, encrypted, knows_c, knows_e] = code
    for (compressed, encrypted, knows_c, knows_e), code in seen.items():
        if compressed and knows_c:
            assert code == ERROR_UNSUPPORTED_COMPRESSION
        elif encrypted and knows_e:
            assert code == ERROR_FILE_ENCRYPTED
        else:
            assert code == ERROR_SUCCESS
    assert len(seen) == 16


def _set_compressed_flag(path: Path) -> bool:
    chattr = shutil.which("chattr")
    lsattr = shutil.which("lsattr")
    if chattr is None or lsattr is None:
        return False
    if subprocess.run([chattr, "+c", str(path)], capture_output=True).returncode != 0:
        return False
    listing = subprocess.run([lsattr, "-d", str(path)], capture_output=True, text=True)
    return listing.returncode == 0 and "c" in listing.stdout.split()[0]


def test_compressed_host_file_is_refused(native_harness: Path, sample: Path) -> None:
    """chattr +c works on ext4 and btrfs (not on tmpfs or overlayfs); the
    kernel reports it through statx as STATX_ATTR_COMPRESSED."""
    if not _set_compressed_flag(sample):
        pytest.skip("this file system does not take the compressed attribute")
    try:
        for mode in ("ro", "rw"):
            assert open_status(native_harness, str(sample), mode) \
                == ERROR_UNSUPPORTED_COMPRESSION
    finally:
        subprocess.run(["chattr", "-c", str(sample)], check=True)
    assert open_status(native_harness, str(sample), "ro") == ERROR_SUCCESS

