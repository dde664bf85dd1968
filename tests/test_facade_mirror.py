"""disk.mirror and ``virtdisk mirror``: the facade's Mirror operation, the
version 2 handle it opens on the caller's behalf, and the command that
copies, breaks, cancels on Ctrl-C and writes JSON lines with --json."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import _virtdisk as vd
import virtdisk
from test_mirror import (HOLD_VARIABLE, MIB, SIZE, content, hold, make_child, make_disk,  # noqa: F401
                         needs_qemu, qemu_compare)
from test_cli_long_operations import interrupt_at_the_hold, interruptible
from virtdisk.cli import main
from virtdisk.mirror import Mirror


def held(mirror: Mirror) -> None:
    """Until the first step is copied (the hold stops the copy there)."""
    while mirror.progress().current == 0:
        mirror.wait(0.001)


@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_mirror_break_switches_the_disk_to_the_copy(tmp_path: Path, fmt: str) -> None:
    source = make_disk(tmp_path / f"source.{fmt}", fmt)
    target = tmp_path / f"copy.{fmt}"
    with virtdisk.open(source, read_only=False) as disk:
        mirror = disk.mirror(target)
        assert isinstance(mirror, Mirror)
        assert mirror.wait_mirrored()
        assert mirror.mirrored() and not mirror.done()
        assert mirror.progress() == (997, SIZE, SIZE)
        assert disk.path == str(source)          # mirrored, not yet switched
        mirror.break_()
        assert mirror.done()
        assert mirror.progress() == (0, SIZE, SIZE)
        disk.write(0, b"M" * 4096)
        # The disk, its handle and the errors of calls on it name the copy.
        assert disk.path == disk.handle.path == disk.info().path == str(target)
        assert repr(disk).startswith(f"<VirtualDisk {str(target)!r}")
        with pytest.raises(virtdisk.InvalidStateError) as again:
            mirror.break_()                      # no mirror any more
        assert again.value.filename == str(target)
    assert content(target)[:4096] == b"M" * 4096
    assert content(source)[:4096] == b"A" * 4096
    assert content(target)[4096:] == content(source)[4096:]


# Run in a process of its own: the content is read while the mirror runs
# (the SCSI target then made names the source), and after the break a file
# size limit (RLIMIT_FSIZE, SIGXFSZ ignored) of 1 MiB makes a write past
# that offset of the copy fail, and so the SCSI write: an error of that
# target.
_FAILED_WRITE_AFTER_BREAK = """
import resource, signal, sys
import virtdisk
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
source, copy, offset = sys.argv[1], sys.argv[2], int(sys.argv[3])
with virtdisk.open(source, read_only=False) as disk:
    mirror = disk.mirror(copy)
    assert mirror.wait_mirrored()
    disk.read(0, 512)
    mirror.break_()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        disk.write(offset, b"N" * 4096)
    except virtdisk.VirtualDiskError as error:
        print(type(error).__name__, error.filename, sep="\\t")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
"""


@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_content_errors_after_a_break_name_the_copy(tmp_path: Path, fmt: str) -> None:
    """The SCSI target made for the disk's content while it was mirrored
    names the copy in its errors once the break has switched the disk to
    it."""
    source = make_disk(tmp_path / f"source.{fmt}", fmt)
    target = tmp_path / f"copy.{fmt}"
    unallocated = 12 * MIB
    out = subprocess.run([sys.executable, "-c", _FAILED_WRITE_AFTER_BREAK, str(source),
                          str(target), str(unallocated)],
                         check=True, capture_output=True, text=True).stdout
    kind, _, filename = out.strip().partition("\t")
    assert kind, "the write past the file size limit succeeded"
    assert filename == str(target), kind


def test_a_cancelled_mirror_leaves_the_path(tmp_path: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    with virtdisk.open(source, read_only=False) as disk:
        mirror = disk.mirror(tmp_path / "copy.vhdx")
        assert mirror.wait_mirrored()
        assert mirror.cancel() is True
        with pytest.raises(virtdisk.OperationAbortedError):
            mirror.result(60)
        with pytest.raises(virtdisk.InvalidStateError):
            vd.BreakMirrorVirtualDisk(disk.handle)
        assert disk.path == str(source)
        # A second mirror, broken, names its own copy.
        second = disk.mirror(tmp_path / "second.vhdx")
        assert second.wait_mirrored()
        second.break_()
        assert disk.path == str(tmp_path / "second.vhdx")


def test_a_version_1_disk_is_opened_again_as_version_2(tmp_path: Path) -> None:
    _, child = make_child(tmp_path, "vhdx")
    expected = content(child)
    target = tmp_path / "copy.vhdx"
    with virtdisk.open(child, access=virtdisk.VirtualDiskAccessMask.ALL, rw_depth=1) as disk:
        mirror = disk.mirror(target)
        assert mirror.wait_mirrored()
        mirror.break_()
        assert disk.read(0, SIZE) == expected
        assert disk.parent_paths is None
    assert content(target) == expected


def test_wait_mirrored_times_out_and_break_is_refused_while_copying(tmp_path: Path,
                                                                    hold: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    target = tmp_path / "copy.vhdx"
    with virtdisk.open(source, read_only=False) as disk:
        mirror = disk.mirror(target)
        held(mirror)
        assert mirror.wait_mirrored(timeout=0) is False
        assert "copying" in repr(mirror)
        with pytest.raises(virtdisk.InvalidStateError):
            mirror.break_()
        hold.unlink()
        assert mirror.wait_mirrored(timeout=60)
        assert "mirrored" in repr(mirror)
        mirror.break_()


def test_cancel_keeps_the_original(tmp_path: Path, hold: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    target = tmp_path / "copy.vhdx"
    with virtdisk.open(source, read_only=False) as disk:
        mirror = disk.mirror(target)
        held(mirror)
        assert mirror.cancel() is True
        with pytest.raises(virtdisk.OperationAbortedError):
            mirror.result(60)
        with pytest.raises(virtdisk.OperationAbortedError):
            mirror.wait_mirrored()
        assert mirror.cancel() is False
        disk.write(MIB, b"O" * 4096)
    assert not target.exists()
    assert content(source)[MIB:MIB + 4096] == b"O" * 4096


def test_existing_copies_into_an_image_already_there(tmp_path: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    target = tmp_path / "copy.vhdx"
    virtdisk.create(target, SIZE, format="vhdx").close()
    with virtdisk.open(source, read_only=False) as disk:
        with pytest.raises(FileExistsError):
            disk.mirror(target)
        mirror = disk.mirror(target, existing=True)
        assert mirror.wait_mirrored()
        mirror.break_()
    assert content(target) == content(source)


def test_mirror_arguments_are_checked(tmp_path: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    with virtdisk.open(source, read_only=False) as disk:
        with pytest.raises(TypeError):
            disk.mirror(tmp_path / "copy.vhdx", existing=1)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            disk.mirror(b"copy.vhdx")  # type: ignore[arg-type]
    with pytest.raises(virtdisk.InvalidHandleError):
        disk.mirror(tmp_path / "copy.vhdx")


def test_a_mirror_can_be_awaited_once_broken(tmp_path: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    target = tmp_path / "copy.vhdx"

    async def run() -> None:
        with virtdisk.open(source, read_only=False) as disk:
            mirror = disk.mirror(target)
            assert await asyncio.get_running_loop().run_in_executor(None, mirror.wait_mirrored)
            vd.BreakMirrorVirtualDisk(disk.handle)
            await mirror

    asyncio.run(run())
    assert content(target) == content(source)


# ----------------------------------------------------------------------------- CLI

@needs_qemu
def test_cli_mirror_copies_and_prints_the_copy(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _, child = make_child(tmp_path, "vhdx")
    chain = tmp_path / "chain.raw"
    chain.write_bytes(content(child))
    target = tmp_path / "copy.vhdx"
    assert main(["mirror", str(child), str(target)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(target)
    assert captured.err == ""                 # no bar outside a terminal
    qemu_compare(target, "vhdx", chain, "raw")
    assert main(["mirror", str(child), str(target)]) == 1
    assert "ERROR_FILE_EXISTS" in capsys.readouterr().err


def test_cli_mirror_interrupted_cancels_and_leaves_the_source(tmp_path: Path,
                                                              hold: Path) -> None:
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    before = content(source)
    target = tmp_path / "copy.vhdx"
    process = subprocess.Popen([sys.executable, "-m", "virtdisk", "mirror", str(source),
                                str(target)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=dict(os.environ, **{HOLD_VARIABLE: str(hold)}),
                               preexec_fn=interruptible)
    # The copy file exists once the mirror runs; the hold keeps it copying.
    while not target.exists() and process.poll() is None:
        try:
            process.wait(0.01)
        except subprocess.TimeoutExpired:
            pass
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert out == ""
    assert "interrupted" in err
    assert not target.exists()
    assert content(source) == before


@needs_qemu
def test_cli_mirror_json_lines_show_the_copy_then_the_result(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_disk(tmp_path / "source.vhd", "vhd")
    target = tmp_path / "copy.vhd"
    assert main(["mirror", str(source), str(target), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    steps, result = lines[:-1], lines[-1]
    assert steps and all(line["type"] == "progress" for line in steps)
    done = [line["done"] for line in steps]
    assert done == sorted(done) and steps[-1] == {"type": "progress", "done": SIZE,
                                                  "total": SIZE}
    assert result == {"type": "result", "ok": True, "source": str(source),
                      "destination": str(target)}
    qemu_compare(target, "vpc", source, "vpc")
    # The file is there now: the failure is a result line too.
    assert main(["mirror", str(source), str(target), "--json"]) == 1
    failure = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert failure["ok"] is False and failure["winerror"] == 80 and failure["exit_status"] == 1


def test_cli_mirror_json_interrupted_ends_with_a_failed_result(tmp_path: Path) -> None:
    if vd.PLATFORM != "engine":
        pytest.skip("the engine's test hold")
    source = make_disk(tmp_path / "source.vhdx", "vhdx")
    before = content(source)
    target = tmp_path / "copy.vhdx"
    status, err, lines = interrupt_at_the_hold(tmp_path, "mirror", source, target)
    assert status == 130
    assert err == ("virtdisk mirror: error: interrupted; the mirror was cancelled, SRC is as "
                   "it was and an unfinished DST was removed\n")
    assert lines[-1] == {"type": "result", "ok": False, "error": err.split("error: ", 1)[1][:-1],
                         "winerror": None, "exit_status": 130}
    assert not target.exists()
    assert content(source) == before


@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_the_copy_is_complete_only_once_flushed(tmp_path: Path, fmt: str, hold: Path) -> None:
    # Held after the last step, before the copy's flush of the target: the
    # progress is one byte short of the total and a break is refused, since
    # a break then would take the target from under that flush (which then
    # failed, and the copy, counted as unfinished, was removed).
    hold.write_text(str(SIZE - 1))
    source = make_disk(tmp_path / f"source.{fmt}", fmt)
    target = tmp_path / f"copy.{fmt}"
    with virtdisk.open(source, read_only=False) as disk:
        mirror = disk.mirror(target)
        deadline = time.monotonic() + 60
        while mirror.progress().current < SIZE - 1 and time.monotonic() < deadline:
            mirror.wait(0.01)
        assert tuple(mirror.progress()) == (997, SIZE - 1, SIZE), \
            "the copy showed the whole content before its flush"
        assert not mirror.mirrored()
        with pytest.raises(virtdisk.InvalidStateError):
            mirror.break_()
        hold.unlink()
        assert mirror.wait_mirrored(timeout=60)
        mirror.break_()
    assert target.exists()
    assert content(target) == content(source)
