"""Merging a checkpoint by its path, as ``Merge-VHD`` does.

A Hyper-V checkpoint is a differencing image (``.avhdx``, ``.avhd``, or any
``.vhdx``/``.vhd`` child) whose content is the guest's since the checkpoint
was taken.  :func:`merge` writes it into its parent through
MergeVirtualDisk, opening the handle the merge needs, and can delete it
afterwards: only once the merge has succeeded and the handle is closed, so
that a failed or interrupted merge never loses a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .disk import _path_text
from .disk import open as open_disk
from .errors import (
    ERROR_INVALID_PARAMETER,
    ERROR_VHD_INVALID_TYPE,
    InvalidParameterError,
    UnsupportedOperationError,
)
# Loaded here, before the package binds its name to merge() below: the
# first import of a submodule sets the package's attribute of its name.
from .merge import merge as _merge_disk  # noqa: F401

__all__ = ["merge", "merge_chain"]

_FUNCTION = "merge"


def merge_chain(child_path: str | os.PathLike[str], depth: int = 1) -> list[str]:
    """The paths a merge of `depth` images from `child_path` involves:
    the `depth` merged images, `child_path` first, then the target.  Each
    parent is the one its child's chain resolves (the path OpenVirtualDisk
    opened).  Raises :class:`UnsupportedOperationError` when `child_path`
    is not a differencing image and :class:`InvalidParameterError` when the
    chain has fewer than ``depth + 1`` images."""
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise TypeError(f"depth must be an int, not {type(depth).__name__}")
    if depth < 1:
        raise ValueError(f"depth must be 1 or more, not {depth}")
    path = _path_text(child_path)
    chain = [path]
    for level in range(depth):
        with open_disk(chain[-1]) as disk:
            parents = disk.parent_paths
        if not parents:
            if level == 0:
                raise UnsupportedOperationError(
                    ERROR_VHD_INVALID_TYPE, _FUNCTION, path,
                    "not a differencing image: it has no parent to merge into")
            raise InvalidParameterError(
                ERROR_INVALID_PARAMETER, _FUNCTION, path,
                f"a merge of depth {depth} needs {depth + 1} images; the chain has {level + 1}")
        chain.append(parents[0])
    return chain


def merge(child_path: str | os.PathLike[str], *, depth: int = 1, delete: bool = False,
          progress: Callable[[int, int], object] | None = None) -> str:
    """Merges the differencing image at `child_path` into its parent and
    returns the parent's path, which then reads what the child read, at
    the child's size when the child was resized alone (the parent grows to
    it, or shrinks where the child's partition table shows its tail free).

    `depth` N merges the child and the N - 1 images above it into the image
    N levels up.  `progress(done, total)` is called, in bytes, while it
    runs; Ctrl-C cancels and waits (running the merge again finishes it).
    With `delete`, the merged images are deleted once the merge has
    succeeded and the handle is closed, as ``Merge-VHD`` deletes its source;
    otherwise they stay, and no longer open (their parent changed).

    Raises :class:`UnsupportedOperationError` for an image that is not
    differencing, :class:`InvalidParameterError` for a depth past the chain,
    and the open's errors (:class:`ImageNotFoundError`,
    :class:`ParentNotFoundError`, ...) as :func:`virtdisk.open` does."""
    chain = merge_chain(child_path, depth)
    with open_disk(chain[0]) as disk:
        disk.merge(depth, progress=progress)
    if delete:
        for merged in chain[:-1]:
            os.remove(merged)
    return chain[-1]
