"""virtdisk.merge(child_path): a checkpoint merged into its parent by path,
as Merge-VHD does, and deleted only after a merge that succeeded.

The chain's content before the merge is read by libvhdi (pyvhdi of the
system's Python, the child given its parent); after a merge into the base,
qemu, which reads no VHDX parents, compares the base with it and checks
the base's structures."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import _virtdisk as vd
import virtdisk
from test_merge import SIZE, content, make_chain

needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")

_PYVHDI_CHAIN = """
import sys, pyvhdi
child, parent = pyvhdi.file(), pyvhdi.file()
child.open(sys.argv[1])
parent.open(sys.argv[2])
child.set_parent(parent)
sys.stdout.buffer.write(child.read_buffer(child.get_media_size()))
"""


def pyvhdi_chain_view(child: Path, parent: Path) -> bytes:
    """What libvhdi reads through `child` over `parent` (a base)."""
    if subprocess.run(["/usr/bin/python3", "-c", "import pyvhdi"],
                      capture_output=True).returncode != 0:
        pytest.skip("pyvhdi is not installed for /usr/bin/python3")
    return subprocess.run(["/usr/bin/python3", "-c", _PYVHDI_CHAIN, str(child), str(parent)],
                          capture_output=True, check=True).stdout


def checkpoint_chain(directory: Path, fmt: str) -> tuple[Path, Path]:
    """A base and a checkpoint of it, named as Hyper-V names them."""
    base, child = make_chain(directory, fmt, 2)
    checkpoint = child.with_suffix(".avhdx" if fmt == "vhdx" else ".avhd")
    # The child records its parent, not its own name: a rename keeps the chain.
    child.rename(checkpoint)
    return base, checkpoint


@needs_qemu
@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_merge_writes_the_checkpoint_into_its_parent_and_deletes_it(tmp_path: Path,
                                                                    fmt: str) -> None:
    base, checkpoint = checkpoint_chain(tmp_path, fmt)
    expected = pyvhdi_chain_view(checkpoint, base)
    assert len(expected) == SIZE
    assert expected == content(checkpoint)
    seen: list[tuple[int, int]] = []
    target = virtdisk.merge(checkpoint, delete=True,
                            progress=lambda done, total: seen.append((done, total)))
    assert Path(target).resolve() == base.resolve()
    assert not checkpoint.exists()
    assert seen and seen[-1][0] == seen[-1][1]
    raw = tmp_path / "expected.raw"
    raw.write_bytes(expected)
    qemu_format = "vhdx" if fmt == "vhdx" else "vpc"
    compared = subprocess.run(["qemu-img", "compare", "-f", qemu_format, "-F", "raw",
                               str(base), str(raw)], capture_output=True, text=True)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    if fmt == "vhdx":
        checked = subprocess.run(["qemu-img", "check", "-f", "vhdx", str(base)],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout


def test_without_delete_the_merged_image_stays_and_no_longer_opens(tmp_path: Path) -> None:
    base, checkpoint = checkpoint_chain(tmp_path, "vhdx")
    expected = content(checkpoint)
    assert virtdisk.merge(str(checkpoint)) == str(base.resolve())
    assert checkpoint.exists()
    assert content(base) == expected
    with pytest.raises(virtdisk.ParentMismatchError):
        virtdisk.open(checkpoint).close()


def test_depth_merges_the_images_above_and_deletes_them_all(tmp_path: Path) -> None:
    base, middle, leaf = make_chain(tmp_path, "vhdx", 3)
    expected = content(leaf)
    assert virtdisk.merge(leaf, depth=2, delete=True) == str(base.resolve())
    assert not leaf.exists() and not middle.exists()
    assert content(base) == expected


@pytest.mark.parametrize("fmt", ["vhd", "vhdx"])
def test_an_image_that_is_not_differencing_is_refused_untouched(tmp_path: Path,
                                                               fmt: str) -> None:
    base = make_chain(tmp_path, fmt, 1)[0]
    before = base.read_bytes()
    with pytest.raises(virtdisk.UnsupportedOperationError) as raised:
        virtdisk.merge(base, delete=True)
    assert raised.value.winerror == virtdisk.errors.ERROR_VHD_INVALID_TYPE
    assert "not a differencing image" in str(raised.value)
    assert base.read_bytes() == before


def test_a_depth_past_the_chain_is_refused_and_nothing_is_deleted(tmp_path: Path) -> None:
    base, leaf = make_chain(tmp_path, "vhdx", 2)
    leaf_before, base_before = leaf.read_bytes(), base.read_bytes()
    with pytest.raises(virtdisk.InvalidParameterError, match="the chain has 2"):
        virtdisk.merge(leaf, depth=2, delete=True)
    assert leaf.read_bytes() == leaf_before and base.read_bytes() == base_before
    with pytest.raises(ValueError):
        virtdisk.merge(leaf, depth=0)
    with pytest.raises(TypeError):
        virtdisk.merge(leaf, depth=True)


def test_a_missing_image_and_a_missing_parent(tmp_path: Path) -> None:
    with pytest.raises(virtdisk.ImageNotFoundError):
        virtdisk.merge(tmp_path / "missing.avhdx")
    base, checkpoint = checkpoint_chain(tmp_path, "vhdx")
    base.unlink()
    with pytest.raises(virtdisk.ParentNotFoundError):
        virtdisk.merge(checkpoint, delete=True)
    assert checkpoint.exists()


def test_a_cancelled_merge_deletes_nothing_and_a_rerun_finishes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if vd.PLATFORM != "engine":
        pytest.skip("the engine's test hold")
    base, checkpoint = checkpoint_chain(tmp_path, "vhdx")
    expected = content(checkpoint)
    hold = tmp_path / "hold"
    hold.touch()
    monkeypatch.setenv("VIRTDISK_TEST_OPERATION_HOLD", str(hold))

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        virtdisk.merge(checkpoint, delete=True, progress=interrupt)
    assert checkpoint.exists()
    hold.unlink()
    virtdisk.merge(checkpoint, delete=True)
    assert not checkpoint.exists()
    assert content(base) == expected


def test_the_package_name_stays_the_function_after_a_disk_merge(tmp_path: Path) -> None:
    """virtdisk.merge is the function, though a submodule of that name
    exists and the disk's methods import it."""
    import importlib

    from virtdisk import checkpoint

    base, leaf = make_chain(tmp_path, "vhd", 2)
    with virtdisk.open(leaf) as disk:
        disk.merge()
    assert virtdisk.merge is checkpoint.merge
    assert importlib.import_module("virtdisk.merge").start_merge is not None
