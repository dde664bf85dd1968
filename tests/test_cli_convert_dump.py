"""``virtdisk convert`` and ``virtdisk dump`` as a user runs them: in a
subprocess, with pipes and with a pseudo-terminal.

Expected content comes from qemu-img and qemu-io (images written by qemu-io,
raw content from ``qemu-img convert -O raw``, comparisons by ``qemu-img
compare``), hashes from coreutils' sha256sum, sector sizes from vhdiinfo.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

import virtdisk.cli_output
from conftest import require_tool
from virtdisk.cli import main

MIB = 1 << 20
COMMAND = [sys.executable, "-m", "virtdisk"]


def run(*arguments: str | Path, **options: object) -> subprocess.CompletedProcess[bytes]:
    result: subprocess.CompletedProcess[bytes] = subprocess.run(
        [*COMMAND, *map(str, arguments)], capture_output=True,
        **options)  # type: ignore[call-overload]
    return result


def qemu_image(path: Path, fmt: str, size: str, writes: list[str],
               options: str = "") -> Path:
    """An image made by qemu-img and filled by qemu-io (``-c`` commands)."""
    arguments = ["create", "-q", "-f", fmt, *(["-o", options] if options else []),
                 str(path), size]
    subprocess.run([require_tool("qemu-img"), *arguments], check=True)
    if writes:
        commands = [part for write in writes for part in ("-c", write)]
        subprocess.run([require_tool("qemu-io"), "-f", fmt, *commands, str(path)],
                       check=True, capture_output=True)
    return path


def qemu_raw(path: Path, fmt: str, target: Path) -> bytes:
    subprocess.run([require_tool("qemu-img"), "convert", "-f", fmt, "-O", "raw", str(path),
                    str(target)], check=True)
    return target.read_bytes()


def read_with_pyvhdi(path: Path) -> bytes:
    """The content libvhdi reads (pyvhdi of the system's Python)."""
    code = ("import sys, pyvhdi\nf = pyvhdi.file()\nf.open(sys.argv[1])\n"
            "sys.stdout.buffer.write(f.read_buffer(f.get_media_size()))\nf.close()\n")
    if subprocess.run(["/usr/bin/python3", "-c", "import pyvhdi"],
                      capture_output=True).returncode != 0:
        pytest.skip("pyvhdi is not installed for /usr/bin/python3")
    return subprocess.run(["/usr/bin/python3", "-c", code, str(path)], capture_output=True,
                          check=True).stdout


def sha256sum(data: bytes) -> str:
    result = subprocess.run([require_tool("sha256sum")], input=data, capture_output=True,
                            check=True)
    return result.stdout.split()[0].decode()


def qemu_compare(image: Path, fmt: str, other: Path, other_fmt: str) -> None:
    result = subprocess.run([require_tool("qemu-img"), "compare", "-f", fmt, "-F", other_fmt,
                             str(image), str(other)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


WRITES = ["write -P 0xab 1M 3M", "write -P 0x11 40M 100k", "write -P 0x5c 63M 1M"]


@pytest.fixture
def vhdx(tmp_path: Path) -> Path:
    return qemu_image(tmp_path / "disk.vhdx", "vhdx", "64M", WRITES, "subformat=dynamic")


@pytest.fixture
def vhd(tmp_path: Path) -> Path:
    return qemu_image(tmp_path / "disk.vhd", "vpc", "64M", WRITES,
                      "subformat=dynamic,force_size=on")


# --------------------------------------------------------------------------- dump

@pytest.mark.parametrize("kind", ["vhdx", "vhd"])
def test_dump_through_a_pipe_hashes_as_qemu_raw(kind: str, request: pytest.FixtureRequest,
                                                tmp_path: Path) -> None:
    image: Path = request.getfixturevalue(kind)
    expected = qemu_raw(image, "vhdx" if kind == "vhdx" else "vpc", tmp_path / "qemu.raw")
    # The shell's pipeline, as a user types it.
    result = subprocess.run(f"{' '.join(COMMAND)} dump {image} | "
                            f"{require_tool('sha256sum')}", shell=True,
                            capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.split()[0] == sha256sum(expected)
    assert len(expected) == 64 * MIB


def test_dump_of_an_iso_is_its_bytes(tmp_path: Path) -> None:
    iso = tmp_path / "disk.iso"
    content = tmp_path / "content"
    content.mkdir()
    (content / "a.txt").write_text("dumped\n")
    tool = require_tool("genisoimage")
    subprocess.run([tool, "-quiet", "-o", str(iso), str(content)], check=True)
    result = run("dump", iso)
    assert result.returncode == 0, result.stderr
    assert result.stdout == iso.read_bytes()


def test_dump_to_a_file_equals_qemu_raw_and_is_sparse(vhdx: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.img"
    result = run("dump", vhdx, "-o", output)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert output.read_bytes() == qemu_raw(vhdx, "vhdx", tmp_path / "qemu.raw")
    # 5.1 MiB of data in a 64 MiB disk: the zeros are holes.
    assert output.stat().st_blocks * 512 < 16 * MIB


def test_dump_never_overwrites_its_output(vhdx: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.img"
    output.write_bytes(b"keep me")
    result = run("dump", vhdx, "-o", output)
    assert result.returncode == 1
    assert result.stderr.decode() == (f"virtdisk dump: error: {str(output)!r} exists; dump "
                                      f"never overwrites a file\n")
    assert output.read_bytes() == b"keep me"


def test_dump_of_a_missing_image(tmp_path: Path) -> None:
    missing = tmp_path / "missing.vhdx"
    result = run("dump", missing)
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode() == (f"virtdisk dump: error: {str(missing)!r}: No such file "
                                      f"or directory\n")


def test_dump_of_a_file_that_is_no_image(tmp_path: Path) -> None:
    plain = tmp_path / "plain.dat"
    plain.write_bytes(bytes(4096))
    result = run("dump", plain)
    assert result.returncode == 1
    assert b"is not a VHD, VHDX or ISO image" in result.stderr
    assert result.stdout == b""


def test_dump_into_a_closed_pipe_says_so_once(vhdx: Path) -> None:
    # head reads 10 bytes and exits; dump's next write meets EPIPE.
    result = subprocess.run(f"{' '.join(COMMAND)} dump {vhdx} | head -c 10 >/dev/null; "
                            f"echo status=${{PIPESTATUS[0]}}", shell=True,
                            executable="/bin/bash", capture_output=True, text=True)
    assert result.stdout == "status=1\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(r"virtdisk dump: error: standard output closed after \d+ of "
                        r"67108864 bytes \(broken pipe\)", lines[0])


def run_on_terminal(arguments: list[str], stdout_on_terminal: bool,
                    stderr_on_terminal: bool) -> tuple[int, bytes, bytes]:
    """Runs the command with standard output and/or error on a
    pseudo-terminal; returns (status, terminal output, piped output)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*COMMAND, *arguments], stdin=subprocess.DEVNULL,
        stdout=terminal if stdout_on_terminal else subprocess.PIPE,
        stderr=terminal if stderr_on_terminal else subprocess.PIPE)
    os.close(terminal)
    shown = bytearray()
    while True:
        ready, _, _ = select.select([controller], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:      # EIO: every writer of the terminal has exited
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    piped_stream = process.stderr if stdout_on_terminal else process.stdout
    assert piped_stream is not None
    piped = piped_stream.read()
    piped_stream.close()
    return process.wait(timeout=60), bytes(shown), piped


def test_dump_refuses_a_terminal(vhdx: Path) -> None:
    status, shown, piped = run_on_terminal(["dump", str(vhdx)], True, False)
    assert status == 2
    assert shown == b""
    assert piped == (b"virtdisk dump: error: standard output is a terminal: pipe the content "
                     b"into a command or give -o FILE\n")


# --------------------------------------------------------------------------- convert

@pytest.mark.parametrize(("source_kind", "target", "target_fmt"),
                         [("vhdx", "out.vhd", "vpc"), ("vhd", "out.vhdx", "vhdx"),
                          ("vhdx", "out.img", "raw")])
def test_convert_between_formats(source_kind: str, target: str, target_fmt: str,
                                 request: pytest.FixtureRequest, tmp_path: Path) -> None:
    source: Path = request.getfixturevalue(source_kind)
    destination = tmp_path / target
    result = run("convert", source, destination)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"" and result.stderr == b""   # a pipe: no bar
    qemu_compare(destination, target_fmt, source, "vhdx" if source_kind == "vhdx" else "vpc")


def sparse_raw(path: Path) -> bytes:
    """A 32 MiB raw image with data in two places, 27 MiB apart."""
    data = bytearray(32 * MIB)
    data[5 * MIB:5 * MIB + 4096] = os.urandom(4096)
    data[-512:] = b"\x7e" * 512
    path.write_bytes(data)
    return bytes(data)


def test_convert_raw_with_a_block_size(tmp_path: Path) -> None:
    raw = tmp_path / "source.img"
    sparse_raw(raw)
    destination = tmp_path / "out.vhdx"
    result = run("convert", raw, destination, "--block-size", "8MiB")
    assert result.returncode == 0, result.stderr
    qemu_compare(destination, "vhdx", raw, "raw")
    check = subprocess.run([require_tool("qemu-img"), "check", "-f", "vhdx", str(destination)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # Only the two 8 MiB blocks that hold data are in the file (qemu-img map
    # reports no VHDX allocation): 2 blocks and the metadata fit in 24 MiB,
    # 3 of the 4 blocks would not.
    assert 16 * MIB < destination.stat().st_size < 24 * MIB


def test_convert_raw_with_a_sector_size(tmp_path: Path) -> None:
    raw = tmp_path / "source.img"
    data = sparse_raw(raw)
    destination = tmp_path / "out.vhdx"
    result = run("convert", raw, destination, "--sector-size", "4096")
    assert result.returncode == 0, result.stderr
    # qemu opens no 4096-byte-sector VHDX; libvhdi does.
    info = subprocess.run([require_tool("vhdiinfo"), str(destination)], capture_output=True,
                          text=True, check=True).stdout
    assert re.search(r"Bytes per sector\s*:\s*4096 bytes", info), info
    assert sha256sum(read_with_pyvhdi(destination)) == sha256sum(data)


def test_convert_draws_a_bar_on_a_terminal(tmp_path: Path) -> None:
    raw = tmp_path / "source.img"
    raw.write_bytes(os.urandom(40 * MIB))
    # 1 MiB blocks: the copy goes in 8 MiB chunks, one frame each.
    status, shown, piped = run_on_terminal(["convert", str(raw), str(tmp_path / "out.vhdx"),
                                            "--block-size", "1MiB"], False, True)
    assert status == 0, shown
    assert piped == b""
    # The terminal turns the final newline into CR LF.
    frames = shown.decode().replace("\r\n", "\n").split("\r")
    assert frames[0] == ""
    assert frames[-1].startswith("100.0% [" + "#" * 30 + "] 40.0 MiB / 40.0 MiB")
    assert frames[-1].endswith("\n")
    # One frame per 8 MiB chunk at least, each farther than the last.
    percents = [float(frame.split("%")[0]) for frame in frames[1:]]
    assert len(percents) >= 5
    assert percents == sorted(percents) and percents[0] == 0.0
    qemu_compare(tmp_path / "out.vhdx", "vhdx", raw, "raw")


def test_convert_in_a_pipe_draws_nothing(tmp_path: Path) -> None:
    raw = tmp_path / "source.img"
    raw.write_bytes(os.urandom(16 * MIB))
    result = run("convert", raw, tmp_path / "out.vhdx")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_convert_never_overwrites(vhdx: Path, tmp_path: Path) -> None:
    destination = tmp_path / "out.vhd"
    destination.write_bytes(b"keep me")
    result = run("convert", vhdx, destination)
    assert result.returncode == 1
    assert b"the destination exists; convert never overwrites a file" in result.stderr
    assert result.stderr.count(b"\n") == 1
    assert destination.read_bytes() == b"keep me"


def test_convert_of_a_missing_source_makes_nothing(tmp_path: Path) -> None:
    result = run("convert", tmp_path / "missing.vhdx", tmp_path / "out.vhd")
    assert result.returncode == 1
    assert result.stderr.decode() == (f"virtdisk convert: error: "
                                      f"{str(tmp_path / 'missing.vhdx')!r}: No such file or "
                                      f"directory\n")
    assert not (tmp_path / "out.vhd").exists()


@pytest.mark.parametrize(("size", "arguments", "expected"), [
    (MIB + 100, [], "not a whole number of 512-byte sectors"),
    (MIB + 512, ["--type", "fixed"], "whole number of MiB"),
    (0, [], "is empty"),
])
def test_convert_of_a_raw_source_breaking_the_rules(size: int, arguments: list[str],
                                                   expected: str, tmp_path: Path) -> None:
    raw = tmp_path / "source.img"
    raw.write_bytes(b"\x01" * size)
    result = run("convert", raw, tmp_path / "out.vhd", *arguments)
    assert result.returncode == 2
    assert expected in result.stderr.decode()
    assert not (tmp_path / "out.vhd").exists()


def test_convert_usage_errors(tmp_path: Path) -> None:
    result = run("convert", tmp_path / "a.img", tmp_path / "b.vhdx", "--block-size", "lots")
    assert result.returncode == 2
    assert b"--block-size" in result.stderr
    result = run("convert", tmp_path / "a.img", tmp_path / "b.vhdx", "--format", "qcow2")
    assert result.returncode == 2
    assert b"invalid choice: 'qcow2'" in result.stderr


def test_interrupted_convert_removes_the_destination(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "source.img"
    raw.write_bytes(os.urandom(24 * MIB))
    destination = tmp_path / "out.vhdx"
    calls: list[int] = []

    def interrupt(self: virtdisk.cli_output.ProgressBar, done: int, total: int) -> None:
        calls.append(done)
        if done >= 8 * MIB:
            raise KeyboardInterrupt

    # The bar is drawn (as on a terminal) and Ctrl-C arrives after a chunk.
    monkeypatch.setattr(virtdisk.cli_output, "_is_terminal", lambda stream: True)
    monkeypatch.setattr(virtdisk.cli_output.ProgressBar, "__call__", interrupt)
    assert main(["convert", str(raw), str(destination), "--block-size", "1MiB"]) == 130
    assert calls[-1] == 8 * MIB
    assert not destination.exists()
    assert capsys.readouterr().err.endswith(
        f"virtdisk convert: error: interrupted; {str(destination)!r} was removed\n")
