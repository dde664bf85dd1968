"""The ``merge`` command of ``virtdisk``.

``virtdisk merge PATH [--depth N] [--delete] [--json]`` merges the
differencing image PATH (and, with ``--depth N``, the N - 1 images above
it) into the image above them, the way ``Merge-VHD`` does, and prints the
path of that image, which now holds the content PATH had.  The merged
images stay, and no longer open, unless ``--delete`` deletes them once the
merge has succeeded.  Progress is drawn as :mod:`virtdisk.cli_output`
describes.  Ctrl-C cancels (exit status 130, nothing deleted); running the
command again finishes the merge.
"""

from __future__ import annotations

import argparse

from .checkpoint import merge, merge_chain
from .cli_output import EXIT_OK, progress_display, run_command

__all__ = ["add_parsers"]


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``merge`` on the ``virtdisk`` parser."""
    parser = commands.add_parser(
        "merge", help="merge a differencing image into its parent",
        description="Write the content of a differencing VHD or VHDX image (a checkpoint, "
                    ".avhdx) into its parent (or, with --depth N, into the image N levels up) "
                    "and print that image's path.  The merged images stay unless --delete.")
    parser.add_argument("path", metavar="PATH", help="the differencing VHD or VHDX image")
    parser.add_argument("--depth", type=_depth, default=1,
                        help="how many images, PATH first, to merge (default 1: PATH alone)")
    parser.add_argument("--delete", action="store_true",
                        help="delete the merged images once the merge has succeeded")
    parser.add_argument("--json", action="store_true",
                        help="JSON lines on standard output: progress, then the result")
    parser.set_defaults(command=_merge_command)


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _merge_command(arguments: argparse.Namespace) -> int:
    display = progress_display(arguments.json)

    def body() -> int:
        merged = merge_chain(arguments.path, arguments.depth)[:-1]
        target = merge(arguments.path, depth=arguments.depth, delete=arguments.delete,
                       progress=display)
        display.result({"target": target, "merged": merged, "deleted": arguments.delete},
                       target)
        return EXIT_OK

    return run_command("merge", body, display, interrupted="interrupted; the merge was "
                       "cancelled and nothing was deleted (run it again to finish it)")
