"""One description per item of disk information.

Each :class:`InfoItem` says, once, where an item comes from (the
GET_VIRTUAL_DISK_INFO version and the part of its answer), whether it can
be absent (None where the question does not apply to the disk), what it
means, and how ``virtdisk info`` shows it.  The same object is the
:class:`virtdisk.VirtualDisk` property, the source of the matching
:class:`virtdisk.VirtualDiskInfo` field in ``VirtualDisk.info()``, and the
row of the CLI's table.
"""

from __future__ import annotations

import datetime
import uuid
from operator import attrgetter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar, overload

from _virtdisk import (
    ChangeTrackingState, GetVirtualDiskInfoVersion, GetVirtualDiskInformation, PhysicalDisk,
    ProviderSubtype, VirtualDiskHandle, VirtualStorageTypeDevice,
)

from .errors import VirtualDiskError
from .info import VHD_EPOCH, VirtualDiskInfo, vhd_timestamp
from .sizes import format_size_with_bytes

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["InfoItem", "ITEMS", "NOT_APPLICABLE", "info_rows", "info_values"]

T = TypeVar("T")

NOT_APPLICABLE: Final = "n/a"
"""What the CLI shows for an item that does not apply to the disk."""


class _Disk(Protocol):
    """What an item needs of the disk it is read from."""

    _handle: VirtualDiskHandle

    def _raise_unless_not_applicable(self, error: VirtualDiskError,
                                     version: GetVirtualDiskInfoVersion, name: str) -> None: ...

    def _reraise(self, name: str) -> Any: ...


class InfoItem(property, Generic[T]):
    """One item of information: a read-only property of a disk.

    `version` is the GetVirtualDiskInformation item asked; `pick` turns its
    answer into the value (None: the answer is the value).  An `optional`
    item is None where the API answers that the question does not apply.
    `label` names the CLI row (None: not shown) and `show` renders a value
    that is not None as the row's text, or as several rows' texts.
    """

    def __init__(self, version: GetVirtualDiskInfoVersion, doc: str, *,
                 pick: Callable[[Any], T] | None = None, optional: bool = False,
                 label: str | None = None,
                 show: Callable[[Any], str | Sequence[str]] | None = None,
                 name: str = "") -> None:
        # A property, so that reading one calls its getter from C: a
        # __get__ written in Python costs a second call on every read.
        super().__init__(self._getter(version, pick))
        self.name = name
        self.version = version
        self.pick = pick
        self.optional = optional
        self.label = label
        self.show = show
        self.__doc__ = doc

    def _getter(self, version: GetVirtualDiskInfoVersion,
                pick: Callable[[Any], T] | None) -> Callable[[_Disk], T]:
        """fetch() without the answer cache, inline: this runs on every
        read of a property."""
        def get(disk: _Disk) -> T:
            try:
                answer: Any = GetVirtualDiskInformation(disk._handle, version)
            except VirtualDiskError as error:
                answer = self._absent(disk, error, self.name)
            if answer is None or pick is None:
                return answer  # type: ignore[no-any-return]
            return pick(answer)
        return get

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    if TYPE_CHECKING:
        # What mypy sees; at run time property.__get__ calls the getter.
        @overload
        def __get__(self, disk: None, owner: type | None = None) -> Self: ...
        @overload
        def __get__(self, disk: _Disk, owner: type | None = None) -> T: ...
        def __get__(self, disk: _Disk | None, owner: type | None = None) -> Self | T: ...

    def fetch(self, disk: _Disk, answers: dict[GetVirtualDiskInfoVersion, Any] | None,
              caller: str | None = None) -> T:
        """The item's value on `disk`; `answers` (when given) keeps each
        answer for the other items that share its version.  Errors name
        `caller` (default: the item) as the failing VirtualDisk member."""
        version = self.version
        if answers is not None and version in answers:
            answer = answers[version]
        else:
            try:
                answer = GetVirtualDiskInformation(disk._handle, version)
            except VirtualDiskError as error:
                answer = self._absent(disk, error, self.name if caller is None else caller)
            if answers is not None:
                answers[version] = answer
        if answer is None or self.pick is None:
            return answer  # type: ignore[no-any-return]
        return self.pick(answer)

    def _absent(self, disk: _Disk, error: VirtualDiskError, name: str) -> Any:
        """None when `error` says an optional item does not apply to `disk`;
        otherwise re-raises it (as the closed-disk error when the disk is
        closed), naming VirtualDisk.`name`.  Called from except blocks."""
        if not self.optional:
            disk._reraise(name)
        disk._raise_unless_not_applicable(error, self.version, name)
        return None

    def rows(self, value: T) -> list[tuple[str, str]]:
        """The CLI rows for `value`: none without a label, else one per text."""
        if self.label is None:
            return []
        if value is None:
            return [(self.label, NOT_APPLICABLE)]
        texts = text(value) if self.show is None else self.show(value)
        if isinstance(texts, str):
            return [(self.label, texts)]
        return [(self.label, line) for line in texts]


def text(value: object) -> str:
    """Names in lower case, booleans as yes/no, anything else as str()."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    name = getattr(value, "name", None)
    if isinstance(name, str):
        return name.lower()
    return str(value)


def _block_size(value: int) -> str:
    return format_size_with_bytes(value) if value else "none"


def _timestamp(value: datetime.datetime) -> str:
    seconds = int((value - VHD_EPOCH).total_seconds())
    return f"{value.isoformat()} ({seconds})"


_G = GetVirtualDiskInfoVersion


def _item(version: GetVirtualDiskInfoVersion, label: str | None, doc: str,
          pick: Callable[[Any], T] | None = None, *, optional: bool = False,
          show: Callable[[Any], str | Sequence[str]] | None = None,
          name: str = "") -> InfoItem[T]:
    return InfoItem(version, doc, pick=pick, optional=optional, label=label, show=show,
                    name=name)


# The items in the order of VirtualDiskInfo's fields (after `path`), which
# is also the order of the CLI's rows.
storage_type: InfoItem[VirtualStorageTypeDevice | int] = _item(
    _G.VIRTUAL_STORAGE_TYPE, "Storage type",
    "The format the provider found: ``VirtualStorageTypeDevice.ISO``, ``VHD`` or ``VHDX``.",
    attrgetter("device_id"))
vendor_id: InfoItem[uuid.UUID] = _item(
    _G.VIRTUAL_STORAGE_TYPE, None,
    "VIRTUAL_STORAGE_TYPE.VendorId: the provider's vendor (Microsoft).",
    attrgetter("vendor_id"), name="vendor_id")
provider_subtype: InfoItem[ProviderSubtype | int | None] = _item(
    _G.PROVIDER_SUBTYPE, "Provider subtype",
    "Fixed, dynamic or differencing; None for ISO images.", optional=True)
virtual_size: InfoItem[int] = _item(
    _G.SIZE, "Virtual size", "The size the disk presents to its user, in bytes.",
    attrgetter("virtual_size"), show=format_size_with_bytes)
physical_size: InfoItem[int] = _item(
    _G.SIZE, "Physical size",
    "The size of the image file in bytes (the child's alone, for a differencing disk).",
    attrgetter("physical_size"), show=format_size_with_bytes)
block_size: InfoItem[int] = _item(
    _G.SIZE, "Block size",
    "The allocation unit of a dynamic or differencing disk in bytes; 0 for fixed disks "
    "and ISO images.", attrgetter("block_size"), show=_block_size)
sector_size: InfoItem[int] = _item(
    _G.SIZE, "Sector size", "The logical sector size of the virtual disk in bytes.",
    attrgetter("sector_size"), show=format_size_with_bytes)
physical_sector_size: InfoItem[int | None] = _item(
    _G.VHD_PHYSICAL_SECTOR_SIZE, "Physical sector size",
    "The physical sector size the virtual disk reports to its user in bytes; None for "
    "ISO images.", optional=True, show=format_size_with_bytes)
identifier: InfoItem[uuid.UUID | None] = _item(
    _G.IDENTIFIER, "Identifier",
    "The disk's unique identifier (a VHD's footer UniqueId, a VHDX's DataWriteGuid: what "
    "a differencing child records as its parent's identifier); None for ISO images.",
    optional=True)
virtual_disk_id: InfoItem[uuid.UUID | None] = _item(
    _G.VIRTUAL_DISK_ID, "Virtual disk id",
    "The identity the disk shows its guest (a VHDX's Page 83 data); None for ISO images.",
    optional=True)
is_4k_aligned: InfoItem[bool | None] = _item(
    _G.IS_4K_ALIGNED, "4 KiB aligned",
    "Whether the disk's data is aligned to 4 KiB; None for ISO images.", optional=True)
smallest_safe_virtual_size: InfoItem[int | None] = _item(
    _G.SMALLEST_SAFE_VIRTUAL_SIZE, "Smallest safe size",
    "The smallest size the disk can shrink to without cutting into its partitions, in "
    "bytes; None where it does not apply.", optional=True, show=format_size_with_bytes)
fragmentation: InfoItem[int | None] = _item(
    _G.FRAGMENTATION, "Fragmentation",
    "The percentage of the disk's blocks stored out of order; None where it does not "
    "apply.", optional=True, show=lambda value: f"{value}%")
is_loaded: InfoItem[bool] = _item(
    _G.IS_LOADED, "Attached", "Whether the disk is attached (surfaced) on this system.")
change_tracking: InfoItem[ChangeTrackingState | None] = _item(
    _G.CHANGE_TRACKING_STATE, "Change tracking",
    "The resilient change tracking state (enabled, newer changes, most recent id); None "
    "where the disk has none.", optional=True,
    show=lambda value: "enabled" if value.enabled else "disabled")
parent_resolved: InfoItem[bool | None] = _item(
    _G.PARENT_LOCATION, "Parent resolved",
    "Whether the parent was found and opened; None for a disk that is not differencing.",
    attrgetter("parent_resolved"), optional=True)
parent_paths: InfoItem[tuple[str, ...] | None] = _item(
    _G.PARENT_LOCATION, "Parent path",
    "The resolved parent's path, or, when the parent was not opened, every location the "
    "child records for it, in search order; None for a disk that is not differencing.",
    lambda answer: tuple(answer.paths), optional=True,
    show=lambda value: value or ("none recorded",))
parent_identifier: InfoItem[uuid.UUID | None] = _item(
    _G.PARENT_IDENTIFIER, "Parent identifier",
    "The identifier the child records for its parent (equal to the parent's "
    ":attr:`identifier`); None for a disk that is not differencing.", optional=True)
parent_timestamp: InfoItem[datetime.datetime | None] = _item(
    _G.PARENT_TIMESTAMP, "Parent timestamp",
    "The parent's modification time the child records, in UTC; None for a disk that is "
    "not a differencing VHD (VHDX records none).", vhd_timestamp, optional=True,
    show=_timestamp)
parent_timestamp_raw: InfoItem[int | None] = _item(
    _G.PARENT_TIMESTAMP, None,
    "The parent's modification time as stored: seconds since 2000-01-01 00:00 UTC.",
    optional=True, name="parent_timestamp_raw")
physical_disk: InfoItem[PhysicalDisk] = _item(
    _G.PHYSICAL_DISK, None,
    "The disk that holds the image file: its logical and physical sector sizes and "
    "whether it is remote.")
host_logical_sector_size: InfoItem[int] = _item(
    _G.PHYSICAL_DISK, "Host logical sector size",
    "The logical sector size of the disk that holds the image file.",
    attrgetter("logical_sector_size"), name="host_logical_sector_size")
host_physical_sector_size: InfoItem[int] = _item(
    _G.PHYSICAL_DISK, "Host physical sector size",
    "The physical sector size of the disk that holds the image file.",
    attrgetter("physical_sector_size"), name="host_physical_sector_size")
is_remote: InfoItem[bool] = _item(
    _G.PHYSICAL_DISK, "Host disk remote", "Whether the image file is on a network file system.",
    attrgetter("is_remote"), name="is_remote")

# VirtualDiskInfo's fields besides `path`, in order (physical_disk is a
# property only: info() holds its parts).
ITEMS: Final[tuple[InfoItem[Any], ...]] = (
    storage_type, vendor_id, provider_subtype, virtual_size, physical_size, block_size,
    sector_size, physical_sector_size, identifier, virtual_disk_id, is_4k_aligned,
    smallest_safe_virtual_size, fragmentation, is_loaded, change_tracking, parent_resolved,
    parent_paths, parent_identifier, parent_timestamp, parent_timestamp_raw,
    host_logical_sector_size, host_physical_sector_size, is_remote)


def info_values(disk: _Disk) -> dict[str, Any]:
    """Every item of `disk` by field name, asking each version once; an
    error names VirtualDisk.info."""
    answers: dict[GetVirtualDiskInfoVersion, Any] = {}
    return {item.name: item.fetch(disk, answers, "info") for item in ITEMS}


def info_rows(information: VirtualDiskInfo) -> list[tuple[str, str]]:
    """The CLI's (label, text) rows for `information`."""
    rows = [("Path", information.path)]
    for item in ITEMS:
        rows += item.rows(getattr(information, item.name))
    return rows
