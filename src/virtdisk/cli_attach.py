"""The ``attach``, ``detach`` and ``list`` commands of ``virtdisk``.

``virtdisk attach PATH [--read-only] [--permanent] [--json]`` attaches an
image and prints its device.  With ``--permanent`` the command returns and
the disk stays attached until ``virtdisk detach PATH``; without it the
attach lasts as long as the command, which waits until it is interrupted
(Ctrl-C, SIGTERM) and then detaches.  ``virtdisk list [--json]`` prints
every attached image of the system, from any process.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from types import FrameType

from .attach import Attachment, attached, detach
from .disk import open as open_disk
from .errors import VirtualDiskError

__all__ = ["add_parsers"]

EXIT_OK = 0
EXIT_FAILURE = 1


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers the three commands on the ``virtdisk`` parser."""
    attach_parser = commands.add_parser(
        "attach", help="attach an image as a disk of this system",
        description="Attach an image and print its device.  Without --permanent the command "
                    "holds the attach until it is interrupted, then detaches.")
    attach_parser.add_argument("path", metavar="PATH", help="the VHD, VHDX or ISO image")
    attach_parser.add_argument("--read-only", action="store_true",
                               help="a read-only device (always for ISO images)")
    attach_parser.add_argument("--permanent", action="store_true",
                               help="keep the disk attached after the command, until "
                                    "'virtdisk detach'")
    attach_parser.add_argument("--json", action="store_true",
                               help="print one JSON object instead of the device")
    attach_parser.set_defaults(command=_attach_command)

    detach_parser = commands.add_parser(
        "detach", help="detach an attached image",
        description="Detach an image attached with --permanent, by any process.")
    detach_parser.add_argument("path", metavar="PATH", help="the attached image")
    detach_parser.set_defaults(command=_detach_command)

    list_parser = commands.add_parser(
        "list", help="list the attached images",
        description="Print every attached image and its device, one per line.")
    list_parser.add_argument("--json", action="store_true",
                             help="print a JSON array of objects")
    list_parser.set_defaults(command=_list_command)


def _as_json(attachment: Attachment) -> dict[str, object]:
    return {"path": attachment.path, "image_path": attachment.image_path,
            "read_only": attachment.read_only, "permanent": attachment.permanent}


def _interrupted(signal_number: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _attach_command(arguments: argparse.Namespace) -> int:
    read_only = bool(arguments.read_only) or str(arguments.path).lower().endswith(".iso")
    try:
        with open_disk(arguments.path, read_only=read_only) as disk:
            attachment = disk.attach(permanent=arguments.permanent)

            def announce() -> None:
                if arguments.json:
                    json.dump(_as_json(attachment), sys.stdout)
                    sys.stdout.write("\n")
                else:
                    print(attachment.path)
                sys.stdout.flush()

            if arguments.permanent:
                announce()
            else:
                _hold(attachment, announce)
    except VirtualDiskError as error:
        print(f"virtdisk: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _hold(attachment: Attachment, announce: Callable[[], None]) -> None:
    """Announces the device, waits for SIGINT or SIGTERM, then detaches.
    The SIGTERM handler comes first: a caller that reads the device and
    signals at once must find the attach detached, not the process
    killed."""
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        announce()
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        attachment.detach()


def _detach_command(arguments: argparse.Namespace) -> int:
    try:
        detach(arguments.path)
    except VirtualDiskError as error:
        print(f"virtdisk: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _list_command(arguments: argparse.Namespace) -> int:
    try:
        attachments = attached()
    except VirtualDiskError as error:
        print(f"virtdisk: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    if arguments.json:
        json.dump([_as_json(attachment) for attachment in attachments], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for attachment in attachments:
            print(f"{attachment.path}\t{attachment.image_path}")
    return EXIT_OK
