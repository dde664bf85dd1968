"""Fixtures shared by the test modules.

* ``images``: images made once per session by tools nobody here wrote
  (qemu-img, xorriso, genisoimage, mkudffs), by name from IMAGE_SPECS.  A
  test whose tool is missing is skipped, saying which tool.
* ``small_file_system``: a 12 MiB tmpfs (Linux and root, skipped
  otherwise), where writing more than that meets a full host.
* An automatic check that every test closes the virtual disk handles it
  opens: ``_virtdisk.live_handle_count()`` must be back to its starting
  value when the test ends.  Tests of the C engine alone do not need the
  extension, so the check is skipped when it cannot be imported.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

_virtdisk: ModuleType | None
try:
    import _virtdisk
except ImportError:
    _virtdisk = None


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """How to make one test image.

    ``command`` is the argument list after the tool, with ``{path}`` for
    the output file and ``{content}`` for a small directory of files to put
    in an ISO; ``kind`` is "vhd", "vhdx" or "iso"; ``subformat`` the disk
    type the tool was asked for ("fixed", "dynamic"; None for ISO)."""

    name: str
    file_name: str
    tool: str
    command: tuple[str, ...]
    kind: str
    subformat: str | None = None


def _qemu(name: str, kind: str, subformat: str, size: str, options: str = "") -> ImageSpec:
    fmt = "vpc" if kind == "vhd" else "vhdx"
    option_text = f"subformat={subformat}" + (f",{options}" if options else "")
    return ImageSpec(name, f"{name}.{kind}", "qemu-img",
                     ("create", "-q", "-f", fmt, "-o", option_text, "{path}", size),
                     kind, subformat)


IMAGE_SPECS: dict[str, ImageSpec] = {spec.name: spec for spec in (
    # VHD: qemu rounds the size to a CHS geometry unless force_size is given.
    _qemu("vhd-dynamic-64M", "vhd", "dynamic", "64M"),
    _qemu("vhd-dynamic-1G-exact", "vhd", "dynamic", "1G", "force_size=on"),
    _qemu("vhd-fixed-10M-exact", "vhd", "fixed", "10M", "force_size=on"),
    _qemu("vhd-fixed-33M", "vhd", "fixed", "33M"),
    _qemu("vhdx-dynamic-100M-block-1M", "vhdx", "dynamic", "100M", "block_size=1M"),
    _qemu("vhdx-dynamic-1G-block-32M", "vhdx", "dynamic", "1G", "block_size=32M"),
    _qemu("vhdx-dynamic-3G-block-256M", "vhdx", "dynamic", "3G", "block_size=256M"),
    _qemu("vhdx-dynamic-5G-default-block", "vhdx", "dynamic", "5G"),
    _qemu("vhdx-fixed-8M", "vhdx", "fixed", "8M"),
    ImageSpec("iso9660-xorriso", "iso9660-xorriso.iso", "xorriso",
              ("-as", "mkisofs", "-quiet", "-o", "{path}", "{content}"), "iso"),
    ImageSpec("udf-hybrid-genisoimage", "udf-hybrid-genisoimage.iso", "genisoimage",
              ("-quiet", "-udf", "-o", "{path}", "{content}"), "iso"),
    # 2048 blocks of 2048 bytes: the smallest UDF mkudffs makes for a hard disk.
    ImageSpec("udf-mkudffs", "udf-mkudffs.iso", "mkudffs",
              ("--blocksize=2048", "--media-type=hd", "--new-file", "{path}", "2048"), "iso"),
)}

QEMU_IMAGES = [name for name, spec in IMAGE_SPECS.items() if spec.tool == "qemu-img"]
ISO_IMAGES = [name for name, spec in IMAGE_SPECS.items() if spec.kind == "iso"]


def require_tool(tool: str) -> str:
    """The tool's path, or a skip that names it."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("images")


@pytest.fixture(scope="session")
def _made_images() -> dict[str, Path]:
    return {}


@pytest.fixture
def images(image_dir: Path, _made_images: dict[str, Path]) -> Callable[[str], Path]:
    """``images(name)``: the path of the image IMAGE_SPECS[name] describes,
    made on first use and shared by the whole session (tests must not
    modify it)."""

    def get(name: str) -> Path:
        made = _made_images.get(name)
        if made is not None:
            return made
        spec = IMAGE_SPECS[name]
        tool = require_tool(spec.tool)
        content = image_dir / "content"
        if not content.exists():
            (content / "docs").mkdir(parents=True)
            (content / "readme.txt").write_text("virtdisk test image\n")
            (content / "docs" / "data.bin").write_bytes(bytes(range(256)) * 64)
        path = image_dir / spec.file_name
        arguments = [part.format(path=path, content=content) for part in spec.command]
        result = subprocess.run([tool, *arguments], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"{spec.tool} could not make {spec.name}: {result.stderr.strip()}")
        _made_images[name] = path
        return path

    return get


@pytest.fixture
def operation_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The engine's test hold file, present: long operations wait at their
    first checkpoint until it is removed or they are cancelled
    (VIRTDISK_TEST_OPERATION_HOLD, api/operation.h)."""
    path = tmp_path / "hold"
    path.touch()
    monkeypatch.setenv("VIRTDISK_TEST_OPERATION_HOLD", str(path))
    yield path


@pytest.fixture(autouse=True)
def _no_leaked_handles() -> Iterator[None]:
    """Fails a test that leaves virtual disk handles open."""
    if _virtdisk is None:
        yield
        return
    before = _virtdisk.live_handle_count()
    yield
    after = _virtdisk.live_handle_count()
    if after != before:
        # A handle kept alive only by a reference cycle is closed by the
        # collector; one still open after that was really leaked.
        gc.collect()
        after = _virtdisk.live_handle_count()
    assert after == before, f"the test left {after - before} virtual disk handle(s) open"


@pytest.fixture
def small_file_system(tmp_path: Path) -> Iterator[Path]:
    """A 12 MiB tmpfs: a conversion or a disk written past that fills it."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs Linux and root")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True)
