"""_virtdisk.copy_from_file while the same handle's disk grows: a resize
reads the image again through a new descriptor of its file and closes the
old one, between two of the copy's runs, so a run must go to the
descriptor the disk has then, not the one the copy began with.  The copy
must succeed and the image must hold the source (qemu-img compare)."""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path

import pytest

import _virtdisk
import virtdisk
from test_create_vhd import run, tool

MiB = 1 << 20
SIZE = 64 * MiB
QEMU_FORMAT = {".vhd": "vpc", ".vhdx": "vhdx"}


@pytest.mark.parametrize("suffix", [".vhd", ".vhdx"])
def test_a_copy_from_a_file_goes_on_right_while_the_disk_grows(tmp_path: Path,
                                                               suffix: str) -> None:
    source = tmp_path / "source.raw"
    source.write_bytes(random.Random(7).randbytes(SIZE))
    image = tmp_path / f"disk{suffix}"
    virtdisk.create(image, SIZE).close()
    errors: list[BaseException] = []
    stop = threading.Event()
    with virtdisk.open(image, read_only=False) as disk:

        def grow() -> None:
            size = SIZE
            while not stop.is_set():
                size += MiB
                try:
                    disk.resize(size)
                except BaseException as error:  # noqa: BLE001 - reported below
                    errors.append(error)
                    return

        grower = threading.Thread(target=grow)
        fd = os.open(source, os.O_RDONLY)
        grower.start()
        try:
            for offset in range(0, SIZE, 8 * MiB):
                _virtdisk.copy_from_file(disk.handle, fd, offset, 8 * MiB, MiB)
        finally:
            stop.set()
            grower.join()
            os.close(fd)
    assert errors == []
    # The grown part reads zeros, which compare (not strict) takes as equal.
    run(tool("qemu-img"), "compare", "-f", "raw", "-F", QEMU_FORMAT[suffix], source, image)
