"""IS_4K_ALIGNED and FRAGMENTATION of a dynamic VHD come from its block
allocation table: the builder places the data blocks, so the answers follow
from how the file was laid out."""

from __future__ import annotations

from pathlib import Path

import pytest

import vhd_builder
import virtdisk

MiB = 1024 * 1024
SECTORS_PER_BLOCK = 2 * MiB // 512


def dynamic_vhd(path: Path, *, aligned: bool, order: list[int] | None) -> Path:
    sectors = {block * SECTORS_PER_BLOCK: bytes([block + 1]) * 512 for block in range(4)}
    path.write_bytes(vhd_builder.build_sparse(16 * MiB, 2 * MiB, sectors,
                                              align_data_4k=aligned, block_order=order))
    return path


@pytest.mark.parametrize("aligned", [True, False])
def test_alignment_follows_the_data_blocks(tmp_path: Path, aligned: bool) -> None:
    with virtdisk.open(dynamic_vhd(tmp_path / "disk.vhd", aligned=aligned, order=None)) as disk:
        assert disk.is_4k_aligned is aligned


def test_blocks_in_virtual_order_are_not_fragmented(tmp_path: Path) -> None:
    with virtdisk.open(dynamic_vhd(tmp_path / "disk.vhd", aligned=True, order=None)) as disk:
        assert disk.fragmentation == 0


def test_blocks_in_reverse_order_are_fragmented(tmp_path: Path) -> None:
    path = dynamic_vhd(tmp_path / "disk.vhd", aligned=True, order=[3, 2, 1, 0])
    with virtdisk.open(path) as disk:
        fragmentation = disk.fragmentation
        assert fragmentation is not None
        assert 0 < fragmentation <= 100
