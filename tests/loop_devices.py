"""Loop devices over raw files, for tests that need a real block device.

A loop device needs Linux, root (CAP_SYS_ADMIN), losetup and the loop
driver; `attached` skips the test, saying which is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def attached(backing: Path) -> Iterator[Path]:
    """A read-only loop device over `backing`, detached afterwards."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("a loop device needs Linux, root and losetup")
    made = subprocess.run(["losetup", "--find", "--show", "--read-only", str(backing)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"no loop device here: {made.stderr.strip()}")
    device = Path(made.stdout.strip())
    try:
        yield device
    finally:
        subprocess.run(["losetup", "--detach", str(device)], capture_output=True)
