"""The ``virtdisk`` command.

``virtdisk info PATH`` prints what the Virtual Disk API knows of an image,
as a table or, with ``--json``, as one JSON object (sizes as plain numbers,
GUIDs as strings).  ``virtdisk create PATH --size 10GiB`` creates a VHD or
VHDX (see :func:`virtdisk.create`) and prints the new disk's information the
same way.  ``python -m virtdisk`` is the same command.

Exit status: 0 on success, 1 when the API refuses (the message goes to
standard error, without a traceback), 2 for a usage error.  Importing this
module does nothing; :func:`main` runs the command.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Sequence

from .create import DISK_TYPES, create
from .disk import open as open_disk
from .errors import VirtualDiskError
from .info import VirtualDiskInfo
from .sizes import format_size_with_bytes, parse_size

__all__ = ["main", "format_info"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_NOT_APPLICABLE = "n/a"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command with `argv` (default: ``sys.argv[1:]``) and returns
    its exit status."""
    parser = _parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as stop:
        # argparse exits for --help, --version and usage errors; a caller of
        # main() gets the status instead.
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    command: Callable[[argparse.Namespace], int] = arguments.command
    return command(arguments)


def _parser() -> argparse.ArgumentParser:
    from . import __version__  # read only when a command line is parsed

    parser = argparse.ArgumentParser(
        prog="virtdisk",
        description="Create and inspect VHD, VHDX and ISO images through the Windows Virtual "
                    "Disk API.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    info = commands.add_parser(
        "info", help="show what the API reports about an image",
        description="Open an image read-only and print its information.")
    info.add_argument("path", metavar="PATH", help="the VHD, VHDX or ISO image")
    info.add_argument("--json", action="store_true",
                      help="print one JSON object instead of a table")
    info.add_argument("--storage-type", choices=("iso", "vhd", "vhdx"),
                      help="the image format (default: from the extension, else the content)")
    info.add_argument("--no-parents", action="store_true",
                      help="do not open the parents of a differencing disk")
    info.set_defaults(command=_info_command)
    _add_create_parser(commands)
    return parser


def _info_command(arguments: argparse.Namespace) -> int:
    try:
        with open_disk(arguments.path, storage_type=arguments.storage_type,
                       no_parents=arguments.no_parents) as disk:
            information = disk.info()
    except VirtualDiskError as error:
        print(f"virtdisk: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    _print_info(information, arguments.json)
    return EXIT_OK


def _print_info(information: VirtualDiskInfo, as_json: bool) -> None:
    if as_json:
        json.dump(information.to_json_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_info(information))


# --------------------------------------------------------------------------- create

def _add_create_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    create_parser = commands.add_parser(
        "create", help="create a VHD or VHDX image",
        description="Create a VHD or VHDX image (never overwriting a file) and print its "
                    "information.  Sizes take units: 512K, 2MiB, 10GiB (powers of 1024), "
                    "10GB (powers of 1000).")
    create_parser.add_argument("path", metavar="PATH",
                               help="the new image (.vhd, .avhd, .vhdx or .avhdx)")
    create_parser.add_argument("--size", type=_size_argument,
                               help="the virtual size, e.g. 10GiB (not with --parent; "
                                    "default with --source: the source's)")
    create_parser.add_argument("--type", choices=DISK_TYPES,
                               help="dynamic (default), fixed, or differencing (implied by "
                                    "--parent)")
    create_parser.add_argument("--format", choices=("vhd", "vhdx"),
                               help="the image format (default: from the extension)")
    origin = create_parser.add_mutually_exclusive_group()
    origin.add_argument("--parent", metavar="P",
                        help="make a differencing disk whose parent is P")
    origin.add_argument("--source", metavar="S", help="copy the content of the image S")
    create_parser.add_argument("--block-size", type=_size_argument,
                               help="the block size of a dynamic or differencing disk, e.g. "
                                    "2MiB (default: Windows')")
    create_parser.add_argument("--sector-size", type=int, choices=(512, 4096),
                               help="the logical sector size (VHD: 512)")
    create_parser.add_argument("--physical-sector-size", type=int, choices=(512, 4096),
                               help="the physical sector size (VHD: 512)")
    create_parser.add_argument("--identifier", type=uuid.UUID, metavar="UUID",
                               help="the new disk's unique identifier (default: random)")
    create_parser.add_argument("--json", action="store_true",
                               help="print one JSON object instead of a table")
    create_parser.set_defaults(command=_create_command)


def _size_argument(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        # argparse shows an ArgumentTypeError's message as it is.
        raise argparse.ArgumentTypeError(str(error)) from None


def _create_command(arguments: argparse.Namespace) -> int:
    try:
        with create(arguments.path, arguments.size, format=arguments.format,
                    type=arguments.type, parent=arguments.parent, source=arguments.source,
                    block_size=arguments.block_size, sector_size=arguments.sector_size,
                    physical_sector_size=arguments.physical_sector_size,
                    identifier=arguments.identifier) as disk:
            information = disk.info()
    except VirtualDiskError as error:
        print(f"virtdisk: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except (TypeError, ValueError) as error:
        # The arguments break a rule of the format: a usage error.
        print(f"virtdisk create: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    _print_info(information, arguments.json)
    return EXIT_OK


def format_info(information: VirtualDiskInfo) -> str:
    """The table ``virtdisk info`` prints: one "label: value" line per
    item, sizes in binary units with the exact byte count."""
    def size(value: int | None) -> str:
        return _NOT_APPLICABLE if value is None else format_size_with_bytes(value)

    def text(value: object) -> str:
        if value is None:
            return _NOT_APPLICABLE
        if isinstance(value, bool):
            return "yes" if value else "no"
        name = getattr(value, "name", None)
        if isinstance(name, str):
            return name.lower()
        return str(value)

    tracking = information.change_tracking
    rows = [
        ("Path", information.path),
        ("Storage type", text(information.storage_type)),
        ("Provider subtype", text(information.provider_subtype)),
        ("Virtual size", size(information.virtual_size)),
        ("Physical size", size(information.physical_size)),
        ("Block size", size(information.block_size) if information.block_size else "none"),
        ("Sector size", size(information.sector_size)),
        ("Physical sector size", size(information.physical_sector_size)),
        ("Identifier", text(information.identifier)),
        ("Virtual disk id", text(information.virtual_disk_id)),
        ("4 KiB aligned", text(information.is_4k_aligned)),
        ("Smallest safe size", size(information.smallest_safe_virtual_size)),
        ("Fragmentation", _NOT_APPLICABLE if information.fragmentation is None
         else f"{information.fragmentation}%"),
        ("Attached", text(information.is_loaded)),
        ("Change tracking", _NOT_APPLICABLE if tracking is None
         else ("enabled" if tracking.enabled else "disabled")),
        ("Parent resolved", text(information.parent_resolved)),
    ]
    paths = information.parent_paths
    if paths is None:
        rows.append(("Parent path", _NOT_APPLICABLE))
    else:
        rows.extend(("Parent path", path) for path in paths or ("none recorded",))
    rows += [
        ("Parent identifier", text(information.parent_identifier)),
        ("Parent timestamp", _NOT_APPLICABLE if information.parent_timestamp is None
         else f"{information.parent_timestamp.isoformat()} ({information.parent_timestamp_raw})"),
        ("Host sector sizes", f"{information.host_logical_sector_size} logical, "
                              f"{information.host_physical_sector_size} physical"),
        ("Host disk remote", text(information.is_remote)),
    ]
    width = max(len(label) for label, _ in rows) + 1
    return "".join(f"{label + ':':<{width}} {value}\n" for label, value in rows)


if __name__ == "__main__":
    sys.exit(main())
