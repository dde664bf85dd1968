"""The ``merge`` command of ``virtdisk``.

``virtdisk merge PATH [--depth N]`` merges the differencing image PATH
(and, with ``--depth N``, the N - 1 images above it) into the image above
them, the way ``Merge-VHD`` does, and prints the path of that image, which
now holds the content PATH had.  The merged images are left in place for
the caller to delete: they no longer open.  Ctrl-C cancels; running the
command again finishes the merge.
"""

from __future__ import annotations

import argparse
import sys

from .disk import open as open_disk
from .errors import VirtualDiskError

__all__ = ["add_parsers"]

EXIT_OK = 0
EXIT_FAILURE = 1


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``merge`` on the ``virtdisk`` parser."""
    parser = commands.add_parser(
        "merge", help="merge a differencing image into its parent",
        description="Write the content of a differencing VHD or VHDX image into its parent "
                    "(or, with --depth N, into the image N levels up) and print that image's "
                    "path.  The merged images stay; delete them afterwards.")
    parser.add_argument("path", metavar="PATH", help="the differencing VHD or VHDX image")
    parser.add_argument("--depth", type=_depth, default=1,
                        help="how many images, PATH first, to merge (default 1: PATH alone)")
    parser.set_defaults(command=_merge_command)


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _target_path(path: str, depth: int) -> str:
    """The path of the image `depth` levels above `path`, as the API
    resolves it (each image's parent opened with its chain)."""
    for _ in range(depth):
        with open_disk(path) as disk:
            parents = disk.parent_paths
        if not parents:
            # Not differencing, or past the end of the chain: the merge
            # gives the API's answer for it.
            return path
        path = parents[0]
    return path


def _merge_command(arguments: argparse.Namespace) -> int:
    try:
        target = _target_path(arguments.path, arguments.depth)
        with open_disk(arguments.path) as disk:
            disk.merge(arguments.depth)
    except VirtualDiskError as error:
        print(f"virtdisk: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(target)
    return EXIT_OK
