"""A mirror stopped by fault injection after each of its file changes.

The whole life of a mirror runs in one harness process
(tests/c/content_main.c, built with -DVD_FAULT_INJECTION): the mirror file
created and the content copied (`m`), writes fanned out to both images, a
flush, the break (`b`), a write that after the break goes to the mirror
alone, and the close.  Each run lets one more file change (of either file)
through than the one before and fails every later one, as a power loss
would.  After each stop:

- the source opens (writable, so that a pending VHDX log is replayed) and
  reads one of the states it had: before the writes, or after the first of
  them, or after both (never a write half-done); qemu-img, which nobody
  here wrote, reads the same bytes, and checks a VHDX clean;
- the mirror file is absent, or it opens and is sound and reads one of
  the source's states; once the break has answered it reads the whole
  content, with or without the write made after the break.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import virtdisk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from content_driver import (ContentSession, build_content_harness,  # noqa: E402
                            stop_after_each_file_change)
from test_vhd_write import check_structure, dump  # noqa: E402

MiB = 1 << 20
SIZE = 4 * MiB
QEMU_FORMAT = {"vhd": "vpc", "vhdx": "vhdx"}
# Data in the first and the last copy step, and a run across two steps.
PRISTINE_WRITES = ((0, b"p" * 12288), (MiB + MiB // 2, b"q" * MiB), (SIZE - 4096, b"r" * 4096))
# Fanned out to both images, before the break.
MIRRORED_WRITES = ((4096, b"A" * 4096), (2 * MiB + 512, b"B" * 8192))
# To the mirror alone, after the break.
AFTER_BREAK_WRITE = (3 * MiB, b"C" * 4096)

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="drives the portable engine's data path"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img reads the images"),
]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_content_harness(tmp_path_factory.mktemp("mirror_faults"))


@pytest.fixture(scope="module")
def fault_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_content_harness(tmp_path_factory.mktemp("mirror_faults_injected"),
                                 defines=("-DVD_FAULT_INJECTION",))


def applied(content: bytes, *writes: tuple[int, bytes]) -> bytes:
    changed = bytearray(content)
    for offset, data in writes:
        changed[offset:offset + len(data)] = data
    return bytes(changed)


def target_of(image: Path) -> Path:
    return image.with_name(f"{image.stem}-mirror{image.suffix}")


def reads_soundly(harness: Path, image: Path, fmt: str) -> bytes:
    """The image's content through the engine (opened writable, which
    replays a pending log), after qemu-img has read the same bytes and, for
    a VHDX, checked the image clean."""
    out = image.with_suffix(".dump")
    content = dump(harness, image, out, read_only=False)
    compared = subprocess.run(["qemu-img", "compare", "-q", "-f", QEMU_FORMAT[fmt], "-F", "raw",
                               str(image), str(out)], capture_output=True, text=True)
    assert compared.returncode == 0, (image, compared.stdout + compared.stderr)
    if fmt == "vhdx":
        checked = subprocess.run(["qemu-img", "check", "-f", "vhdx", str(image)],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, (image, checked.stdout + checked.stderr)
    else:
        check_structure(image)
    return content


@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_a_stop_after_any_file_change_of_a_mirror_leaves_both_images_sound(
        harness: Path, fault_harness: Path, tmp_path: Path, fmt: str) -> None:
    pristine = tmp_path / f"pristine.{fmt}"
    with virtdisk.create(pristine, SIZE, format=fmt) as disk:
        for offset, data in PRISTINE_WRITES:
            disk.write(offset, data)
    before = applied(bytes(SIZE), *PRISTINE_WRITES)
    source_states = [applied(before, *MIRRORED_WRITES[:count])
                     for count in range(len(MIRRORED_WRITES) + 1)]
    broken_states = [source_states[-1], applied(source_states[-1], AFTER_BREAK_WRITE)]
    answers: list[str] = []
    # How the stops left the mirror file, so that every case is seen.
    seen = {"absent": 0, "unbroken": 0, "broken": 0}

    def mirror_its_life(session: ContentSession) -> None:
        session.command(f"m {target_of(session.image)}")
        for offset, data in MIRRORED_WRITES:
            session.write(offset, len(data), data)
        session.flush()
        session.command("b")
        session.write(AFTER_BREAK_WRITE[0], len(AFTER_BREAK_WRITE[1]), AFTER_BREAK_WRITE[1])
        session.flush()
        session.command("e")
        session.command("s")

    def ran_through(after_stop_command: list[str]) -> bool:
        answers[:] = after_stop_command
        return all(answer == "ok" for answer in after_stop_command)

    def both_sound(image: Path, changes: int, done: bool) -> None:
        mirrored, broken = answers[0] == "ok", answers[4] == "ok"
        source = reads_soundly(harness, image, fmt)
        assert source in source_states, (changes, answers)
        if broken:
            assert source == source_states[-1], (changes, answers)
        target = target_of(image)
        if not target.exists():
            # A mirror file exists from the copy's first step on: it may
            # be missing only where the mirror never was complete.
            assert not broken, (changes, answers)
            seen["absent"] += 1
            return
        seen["broken" if broken else "unbroken"] += 1
        content = reads_soundly(harness, target, fmt)
        if broken:
            assert content in broken_states, (changes, answers)
        else:
            # Each write reached the mirror whole or not at all.
            assert content in source_states, (changes, answers)
        if done:
            assert content == broken_states[-1]

    changes = stop_after_each_file_change(fault_harness, pristine, tmp_path, mirror_its_life,
                                          both_sound, version2=True, finished=ran_through)
    # Creating the mirror file, the copy's writes, the fanned-out writes
    # twice, the flushes, the break and the close were each a stop.
    assert changes > 10
    assert all(seen.values()), seen
