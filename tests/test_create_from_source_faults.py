"""Crash safety of CreateVirtualDisk from a source (the engine's
conversions), by fault injection.

tests/c/fault_main.c, built with -DVD_FAULT_INJECTION and run under
ASan/UBSan, creates an image from a source while every file change after
the first K fails, as a full disk or an I/O error would.  For each source
and target the harness first counts the N changes a whole create makes;
then for every K below N the create must fail, leave no file behind and
leave the source as it was, and the create with every change allowed must
make an image whose content qemu-img finds equal to the source's.  The
error paths of the run-by-run copy (disk/source_copy.c) and of each
format's creator run here, where no ordinary test reaches them.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from conversion_sources import written_child
from test_engine_vhdx_c import run
from test_fault_injection import Harness, harness, with_data  # noqa: F401 - the module's harness fixture

ERROR_WRITE_FAULT = 29
MiB = 1 << 20

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
                                reason="qemu-img and qemu-io make the sources and compare the results")

QEMU_FORMAT = {"vhd": "vpc", "vhdx": "vhdx"}


def source_image(directory: Path, fmt: str) -> Path:
    """A dynamic source with data in two places, made by qemu-img."""
    path = directory / f"source.{fmt}"
    run("qemu-img", "create", "-q", "-f", QEMU_FORMAT[fmt], path, "8M")
    with_data(path, QEMU_FORMAT[fmt])
    return path


def raw_content(path: Path, fmt: str) -> bytes:
    """The virtual content of a parentless image, as qemu-img reads it."""
    raw = path.with_suffix(".raw")
    run("qemu-img", "convert", "-f", QEMU_FORMAT[fmt], "-O", "raw", path, raw)
    content = raw.read_bytes()
    raw.unlink()
    return content


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def create(harness: Harness, out: Path, source: Path, fixed: bool, fault: int | None = None) -> dict[str, Any]:
    arguments: list[str | int | Path] = [out, "--create-from", source]
    if fixed:
        arguments.append("--fixed")
    if fault is not None:
        arguments += ["--fault", fault]
    return harness(*arguments)


CASES = [(source, target, fixed) for source in ("vhdx", "vhd") for target in ("vhdx", "vhd")
         for fixed in (False, True)]


@pytest.mark.parametrize(("source_format", "target_format", "fixed"), CASES,
                         ids=[f"{s}-to-{'fixed' if f else 'dynamic'}-{t}" for s, t, f in CASES])
def test_an_interrupted_create_from_a_source_leaves_nothing_behind(
        harness: Harness, tmp_path: Path, source_format: str, target_format: str, fixed: bool) -> None:
    source = source_image(tmp_path, source_format)
    before = digest(source)
    out = tmp_path / f"out.{target_format}"

    whole = create(harness, out, source, fixed)
    assert whole["create"] == 0 and whole["exists"], whole
    changes = whole["changes"]
    assert changes > 0, whole
    run("qemu-img", "compare", "-q", "-f", QEMU_FORMAT[source_format], "-F", QEMU_FORMAT[target_format],
        source, out)
    out.unlink()

    for fault in range(changes):
        answer = create(harness, out, source, fixed, fault)
        assert answer == {"create": ERROR_WRITE_FAULT, "changes": -1, "exists": False}, (fault, answer)
        assert digest(source) == before, fault

    assert create(harness, out, source, fixed, changes)["create"] == 0
    if target_format == "vhdx":                  # qemu's VHD driver has no check
        run("qemu-img", "check", "-q", "-f", "vhdx", out)
    run("qemu-img", "compare", "-q", "-f", QEMU_FORMAT[source_format], "-F", QEMU_FORMAT[target_format],
        source, out)


@pytest.mark.parametrize("fmt", ["vhdx", "vhd"])
def test_an_interrupted_flattening_of_a_chain_leaves_nothing_behind(
        harness: Harness, tmp_path: Path, fmt: str) -> None:
    """A differencing child as the source: the copy switches between the
    child's runs and its parent's, and every stop on the way fails clean."""
    parent = source_image(tmp_path, fmt)
    chain = tmp_path / f"child.{fmt}"
    merged = tmp_path / "merged.raw"
    written_child(parent, chain, [(1 * MiB + 4096, 8192), (3 * MiB, 64 * 1024), (7 * MiB, 4096)],
                  raw_content(parent, fmt), merged)
    before = (digest(parent), digest(chain))
    out = tmp_path / f"flat.{fmt}"

    whole = create(harness, out, chain, fixed=False)
    assert whole["create"] == 0 and whole["exists"], whole
    run("qemu-img", "compare", "-q", "-f", "raw", "-F", QEMU_FORMAT[fmt], merged, out)
    out.unlink()

    for fault in range(whole["changes"]):
        answer = create(harness, out, chain, False, fault)
        assert answer == {"create": ERROR_WRITE_FAULT, "changes": -1, "exists": False}, (fault, answer)
        assert (digest(parent), digest(chain)) == before, fault
