"""What users install: the wheel carries the typed stubs where type checkers
look, the sdist carries every source, and both build with build isolation
from a clean copy of the tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.slow,
    # The wheel jobs test the wheel they just built; rebuilding it from a
    # copy of the tree there would test nothing more.
    pytest.mark.skipif(os.environ.get("CIBUILDWHEEL") == "1",
                       reason="runs in the source tree, not in the wheel jobs"),
]

CONSUMER = '''\
import uuid

import _virtdisk
import virtdisk
from virtdisk.errors import VirtualDiskError

storage = _virtdisk.VirtualStorageType(
    _virtdisk.VirtualStorageTypeDevice.VHDX, _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT)
mask: _virtdisk.VirtualDiskAccessMask = _virtdisk.VirtualDiskAccessMask.NONE


def size_of(path: str) -> int:
    try:
        with _virtdisk.OpenVirtualDisk(storage, path, mask, 0, 2, read_only=True) as handle:
            size = _virtdisk.GetVirtualDiskInformation(
                handle, _virtdisk.GetVirtualDiskInfoVersion.SIZE)
            identifier: uuid.UUID = _virtdisk.GetVirtualDiskInformation(
                handle, _virtdisk.GetVirtualDiskInfoVersion.IDENTIFIER)
            print(identifier)
            return size.virtual_size
    except VirtualDiskError as error:
        code: int = error.winerror
        return -code


features: dict[str, bool] = virtdisk.features()
wrong: str = size_of("x.vhdx")  # the deliberate error mypy must report
'''


def clean_copy(destination: Path) -> Path:
    """The tracked and new files of the tree, without build products."""
    ignore = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "*.so",
                                    "_virtdisk.c", ".mypy_cache", ".pytest_cache", ".git")
    shutil.copytree(ROOT, destination, ignore=ignore)
    return destination


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("packaging")
    source = clean_copy(work / "source")
    dist = work / "dist"
    # `pip wheel` and `build` isolate the build: they install setuptools and
    # Cython from pyproject.toml into a fresh environment.
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist),
                    str(source)], check=True, capture_output=True)
    wheel = next(dist.glob("*.whl"))
    sdist = next(dist.glob("*.tar.gz"))
    return {"wheel": wheel, "sdist": sdist, "work": work}


def test_wheel_contents(artifacts: dict[str, Path]) -> None:
    names = zipfile.ZipFile(artifacts["wheel"]).namelist()
    assert "_virtdisk-stubs/__init__.pyi" in names
    assert "virtdisk/py.typed" in names
    assert "virtdisk/errors.py" in names
    assert any(name.startswith("_virtdisk.") and name.endswith((".so", ".pyd")) for name in names)
    assert not any(name.endswith((".pyx", ".c")) for name in names)


def test_sdist_contents(artifacts: dict[str, Path]) -> None:
    with tarfile.open(artifacts["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for required in ["src/_virtdisk.pyx", "src/virtdisk_api.pxd", "src/_virtdisk_enums.pxi",
                     "src/include/virtdisk_api.h", "src/include/virtdisk_dispatch.h",
                     "stubs/_virtdisk.pyi", "setup.py", "pyproject.toml", "src/virtdisk/py.typed"]:
        assert required in names, required
    engine = {name for name in names if name.startswith("src/vdengine/")}
    on_disk = {path.relative_to(ROOT).as_posix() for path in (ROOT / "src/vdengine").rglob("*")
               if path.suffix in {".c", ".h"}}
    assert on_disk <= engine


def test_users_type_checker_sees_the_stubs(artifacts: dict[str, Path]) -> None:
    """mypy --strict, run on a consumer against a fresh venv holding only the
    wheel, type-checks both modules and reports exactly the planted error."""
    environment = artifacts["work"] / "venv"
    venv.create(environment, with_pip=True)
    python = environment / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    str(artifacts["wheel"])], check=True)
    consumer = artifacts["work"] / "consumer.py"
    consumer.write_text(CONSUMER)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--python-executable", str(python), str(consumer)],
        capture_output=True, text=True, cwd=artifacts["work"])
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout
    planted = CONSUMER.splitlines().index(
        'wrong: str = size_of("x.vhdx")  # the deliberate error mypy must report') + 1
    assert f"consumer.py:{planted}:" in errors[0]
    assert "Incompatible types in assignment" in errors[0]
    # And the installed package works at run time, outside the source tree.
    run = subprocess.run([str(python), "-c", textwrap.dedent("""
        import _virtdisk, virtdisk
        assert len(_virtdisk.features()) == 29
        print(_virtdisk.VirtualDiskAccessMask.READ == 0xd0000)
    """)], capture_output=True, text=True, check=True, cwd=artifacts["work"])
    assert run.stdout.strip() == "True"
