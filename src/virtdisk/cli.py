"""The ``virtdisk`` command.

``virtdisk info PATH`` prints what the Virtual Disk API knows of an image,
as a table or, with ``--json``, as one JSON object (sizes as plain numbers,
GUIDs as strings).  ``virtdisk create PATH --size 10GiB`` creates a VHD or
VHDX (see :func:`virtdisk.create`) and prints the new disk's information the
same way.  ``virtdisk set PATH --identifier random ...`` changes what
SetVirtualDiskInformation changes and the disk's user metadata, then prints
the information the same way; ``virtdisk metadata PATH`` lists the user
metadata items.  ``virtdisk attach``, ``detach`` and ``list`` attach images
as disks of the system (:mod:`virtdisk.cli_attach`); ``virtdisk convert`` and
``virtdisk dump`` copy content (:mod:`virtdisk.cli_convert`,
:mod:`virtdisk.cli_dump`); ``virtdisk resize PATH --size 20GiB`` changes an
image's virtual size (:mod:`virtdisk.cli_resize`); ``virtdisk compact PATH``
gives back the space of blocks that hold nothing (:mod:`virtdisk.cli_compact`);
``virtdisk merge PATH [--delete]`` merges a differencing image into its
parent (:mod:`virtdisk.cli_merge`); ``virtdisk mirror SRC DST`` copies an
image live into a new one (:mod:`virtdisk.cli_mirror`).  The long ones
(convert, dump, resize, compact, merge, mirror) draw progress as
:mod:`virtdisk.cli_output` describes.  ``python -m virtdisk`` is the same
command.

Exit status: 0 on success, 1 when the API refuses (the message goes to
standard error, without a traceback), 2 for a usage error, 130 when
interrupted (Ctrl-C cancels a long operation and waits for it first).
Importing this module does nothing; :func:`main` runs the command.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Sequence

from _virtdisk import VirtualDiskAccessMask

from .cli_attach import add_parsers as add_attach_parsers
from .cli_convert import add_parser as add_convert_parser
from .cli_dump import add_parser as add_dump_parser
from .cli_output import size_argument
from .cli_compact import add_parsers as add_compact_parsers
from .cli_merge import add_parsers as add_merge_parsers
from .cli_mirror import add_parsers as add_mirror_parsers
from .cli_resize import add_parsers as add_resize_parsers
from .create import DISK_TYPES, create
from .disk import VirtualDisk
from .disk import open as open_disk
from .errors import VirtualDiskError
from .info import VirtualDiskInfo
from .items import info_rows
from .metadata import MAXIMUM_ITEM_SIZE, SYSTEM_ITEMS
from .sizes import format_size_with_bytes

__all__ = ["main", "format_info"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


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
    _add_set_parser(commands)
    _add_metadata_parser(commands)
    add_attach_parsers(commands)
    add_convert_parser(commands)
    add_dump_parser(commands)
    add_resize_parsers(commands)
    add_compact_parsers(commands)
    add_merge_parsers(commands)
    add_mirror_parsers(commands)
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
    create_parser.add_argument("--size", type=size_argument,
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
    create_parser.add_argument("--block-size", type=size_argument,
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


# --------------------------------------------------------------------------- set

def _add_set_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    set_parser = commands.add_parser(
        "set", help="change a VHD or VHDX image's parent, identifiers, sector size or metadata",
        description="Open a VHD or VHDX image for writing, without its parents (so that a disk "
                    "whose parent moved can be repaired; with --depth N, with its chain open "
                    "for writing to depth N), apply the changes in this order: "
                    "parent, physical sector size, metadata deletions, metadata items, "
                    "virtual disk id, identifier; then print its information.  Every argument "
                    "is checked first; the first change the API refuses stops the command, "
                    "and the changes before it stay made.")
    set_parser.add_argument("path", metavar="PATH", help="the VHD or VHDX image")
    set_parser.add_argument("--parent", metavar="P",
                            help="record P as the parent of this differencing disk (P's "
                                 "identifier must be the one the disk records)")
    set_parser.add_argument("--ignore-id-mismatch", action="store_true",
                            help="with --parent: skip that check and record P's identifier as "
                                 "the parent's (only for a parent holding the data the disk "
                                 "was made from)")
    set_parser.add_argument("--depth", type=_depth_argument, metavar="N",
                            help="with --parent: change the disk at depth N of the chain "
                                 "instead (1, the default: this disk; 2: its parent; ...)")
    set_parser.add_argument("--physical-sector-size", type=int, choices=(512, 4096),
                            help="the physical sector size the disk reports (VHDX only)")
    set_parser.add_argument("--delete-metadata", type=_item_argument, action="append",
                            default=[], metavar="UUID",
                            help="delete the user metadata item UUID (VHDX only; repeatable)")
    set_parser.add_argument("--metadata", type=_hex_item_argument, action="append",
                            default=[], metavar="UUID=HEX",
                            help="create or replace the user metadata item UUID with the bytes "
                                 "written in hex (VHDX only; at most 1 MiB; repeatable)")
    set_parser.add_argument("--metadata-file", type=_file_item_argument, action="append",
                            default=[], metavar="UUID=FILE",
                            help="create or replace the user metadata item UUID with the "
                                 "content of FILE (VHDX only; at most 1 MiB; repeatable)")
    set_parser.add_argument("--virtual-disk-id", type=_uuid_or_random, metavar="UUID|random",
                            help="change the identity the disk shows its guest")
    set_parser.add_argument("--identifier", type=_uuid_or_random, metavar="UUID|random",
                            help="change the disk's identifier (its children then need "
                                 "'set --parent ... --ignore-id-mismatch')")
    set_parser.add_argument("--json", action="store_true",
                            help="print one JSON object instead of a table")
    set_parser.set_defaults(command=_set_command)


class _Refused(Exception):
    """A change the disk refused, with the message for standard error."""


def _set_command(arguments: argparse.Namespace) -> int:
    problem = _set_usage_problem(arguments)
    if problem is not None:
        print(f"virtdisk set: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with _open_for_change(arguments.path, arguments.depth) as disk:
            _apply_changes(disk, arguments)
        information = _information_after_change(arguments.path)
    except (VirtualDiskError, _Refused) as error:
        print(f"virtdisk: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except (TypeError, ValueError) as error:
        print(f"virtdisk set: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    _print_info(information, arguments.json)
    return EXIT_OK


def _set_usage_problem(arguments: argparse.Namespace) -> str | None:
    """What makes the request impossible before anything is opened, or None."""
    if arguments.parent is None:
        if arguments.ignore_id_mismatch:
            return "--ignore-id-mismatch applies to --parent"
        if arguments.depth is not None:
            return "--depth applies to --parent"
    elif arguments.ignore_id_mismatch and arguments.depth not in (None, 1):
        return ("--ignore-id-mismatch applies to the disk's own parent (--depth 1): open the "
                "disk at that depth and set its parent")
    if not (arguments.parent is not None or arguments.physical_sector_size is not None
            or arguments.delete_metadata or arguments.metadata or arguments.metadata_file
            or arguments.virtual_disk_id is not None or arguments.identifier is not None):
        return ("nothing to change: give --parent, --physical-sector-size, --metadata, "
                "--metadata-file, --delete-metadata, --virtual-disk-id or --identifier")
    seen: set[uuid.UUID] = set()
    for item in [*arguments.delete_metadata,
                 *(item for item, _ in arguments.metadata + arguments.metadata_file)]:
        if item in seen:
            return f"metadata item {item} is named more than once"
        seen.add(item)
    return None


def _open_for_change(path: str, depth: int | None) -> VirtualDisk:
    """The disk open for writing without its parents, as Microsoft's sample
    for SetVirtualDiskInformation opens it; for a change `depth` levels
    down the chain, with the chain open for writing to that depth."""
    if depth is None or depth == 1:
        return open_disk(path, read_only=False, no_parents=True)
    return open_disk(path, access=VirtualDiskAccessMask.METAOPS, rw_depth=depth)


def _apply_changes(disk: VirtualDisk, arguments: argparse.Namespace) -> None:
    """The changes, those the API may refuse for this disk's type or
    state first, so that a refusal leaves as little done as possible."""
    if arguments.parent is not None:
        disk.set_parent(arguments.parent, depth=arguments.depth or 1,
                        ignore_id_mismatch=arguments.ignore_id_mismatch)
    if arguments.physical_sector_size is not None:
        disk.set_physical_sector_size(arguments.physical_sector_size)
    metadata = disk.metadata
    for item in arguments.delete_metadata:
        try:
            del metadata[item]
        except KeyError:
            raise _Refused(f"{disk.path!r} has no metadata item {item}") from None
    for item, data in arguments.metadata + arguments.metadata_file:
        metadata[item] = data
    if arguments.virtual_disk_id is not None:
        disk.set_virtual_disk_id(arguments.virtual_disk_id)
    if arguments.identifier is not None:
        disk.set_identifier(arguments.identifier)


def _information_after_change(path: str) -> VirtualDiskInfo:
    """The disk's information read afresh, with its parents where they
    open, so that "Parent resolved" says whether the chain now holds."""
    try:
        with open_disk(path) as disk:
            return disk.info()
    except VirtualDiskError:
        with open_disk(path, no_parents=True) as disk:
            return disk.info()


def _depth_argument(text: str) -> int:
    try:
        depth = int(text)
    except ValueError:
        depth = 0
    if depth < 1:
        raise argparse.ArgumentTypeError(f"expected a depth of 1 or more, not {text!r}")
    return depth


def _uuid_or_random(text: str) -> uuid.UUID:
    return uuid.uuid4() if text == "random" else _uuid_argument(text)


def _uuid_argument(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid UUID {text!r}") from None


def _item_argument(text: str) -> uuid.UUID:
    """A user metadata item's UUID."""
    item = _uuid_argument(text)
    if item in SYSTEM_ITEMS:
        raise argparse.ArgumentTypeError(
            f"{item} is an item the VHDX format defines, not a user metadata item")
    return item


def _split_item(text: str, value_name: str) -> tuple[uuid.UUID, str]:
    item, separator, value = text.partition("=")
    if not separator:
        raise argparse.ArgumentTypeError(f"expected UUID={value_name}, not {text!r}")
    return _item_argument(item), value


def _checked_item_size(data: bytes, source: str) -> bytes:
    if len(data) > MAXIMUM_ITEM_SIZE:
        raise argparse.ArgumentTypeError(
            f"{source} is larger than a metadata item may be (1 MiB, {MAXIMUM_ITEM_SIZE} bytes)")
    return data


def _hex_item_argument(text: str) -> tuple[uuid.UUID, bytes]:
    item, value = _split_item(text, "HEX")
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid hex data {value!r} for item {item}") from None
    return item, _checked_item_size(data, f"the data for item {item}")


def _file_item_argument(text: str) -> tuple[uuid.UUID, bytes]:
    item, name = _split_item(text, "FILE")
    try:
        with open(name, "rb") as file:
            # One byte more than an item may hold tells a file that is too large.
            data = file.read(MAXIMUM_ITEM_SIZE + 1)
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {name!r}: {error.strerror}") from None
    return item, _checked_item_size(data, repr(name))


# --------------------------------------------------------------------------- metadata

def _add_metadata_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    metadata_parser = commands.add_parser(
        "metadata", help="list or read a VHDX image's user metadata items",
        description="Open a VHDX image read-only and list its user metadata items, one "
                    "\"UUID: size\" line each, or write one item's bytes to standard output.")
    metadata_parser.add_argument("path", metavar="PATH", help="the VHDX image")
    metadata_parser.add_argument("--get", type=_item_argument, metavar="UUID",
                                 help="write the bytes of item UUID to standard output")
    metadata_parser.add_argument("--json", action="store_true",
                                 help="print one JSON object mapping each item's UUID to its "
                                      "bytes in hex")
    metadata_parser.add_argument("--no-parents", action="store_true",
                                 help="do not open the parents of a differencing disk")
    metadata_parser.set_defaults(command=_metadata_command)


def _metadata_command(arguments: argparse.Namespace) -> int:
    item: uuid.UUID | None = arguments.get
    try:
        with open_disk(arguments.path, no_parents=arguments.no_parents) as disk:
            if item is None:
                items = dict(disk.metadata.items())
            else:
                try:
                    items = {item: disk.metadata[item]}
                except KeyError:
                    raise _Refused(f"{disk.path!r} has no metadata item {item}") from None
    except (VirtualDiskError, _Refused) as error:
        print(f"virtdisk: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    if arguments.json:
        json.dump({str(key): value.hex() for key, value in items.items()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif item is not None:
        sys.stdout.flush()
        sys.stdout.buffer.write(items[item])
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write("".join(f"{key}: {format_size_with_bytes(len(value))}\n"
                                 for key, value in items.items()))
    return EXIT_OK


def format_info(information: VirtualDiskInfo) -> str:
    """The table ``virtdisk info`` prints: one "label: value" line per
    item (as virtdisk.items describes it), sizes in binary units with the
    exact byte count."""
    rows = info_rows(information)
    width = max(len(label) for label, _ in rows) + 1
    return "".join(f"{label + ':':<{width}} {value}\n" for label, value in rows)


if __name__ == "__main__":
    sys.exit(main())
