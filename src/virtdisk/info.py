"""Everything GetVirtualDiskInformation tells about one disk, in one value.

:class:`VirtualDiskInfo` is what :meth:`virtdisk.VirtualDisk.info` returns:
a frozen snapshot, safe to keep after the disk is closed, to compare and to
hash.  A field is None where the question does not apply to the disk (the
API answers ``ERROR_VHD_INVALID_TYPE``): the parent fields of a disk that is
not differencing, the identifiers and block facts of an ISO image, the
parent timestamp of a VHDX (the format has none).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from typing import Any

from _virtdisk import ChangeTrackingState, ProviderSubtype, VirtualStorageTypeDevice

__all__ = ["VHD_EPOCH", "VirtualDiskInfo", "vhd_timestamp"]

VHD_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
"""The origin of VHD time stamps (VHD specification, "Time Stamp")."""


def vhd_timestamp(seconds: int) -> datetime.datetime:
    """A VHD time stamp (seconds since 2000-01-01 00:00 UTC) as an aware
    datetime in UTC."""
    return VHD_EPOCH + datetime.timedelta(seconds=seconds)


@dataclasses.dataclass(frozen=True, slots=True)
class VirtualDiskInfo:
    """The information of one virtual disk; see the GET_VIRTUAL_DISK_INFO
    documentation for each item.

    Sizes are in bytes.  ``physical_size`` is the size of the image file
    (of the child alone, for a differencing disk).  ``block_size`` is 0 for
    fixed disks and ISO images.  ``sector_size`` and
    ``physical_sector_size`` describe the virtual disk; ``host_*`` and
    ``is_remote`` describe the disk the image file lives on.
    """

    path: str
    """The path the disk was opened with."""
    storage_type: VirtualStorageTypeDevice | int
    """The format the provider found (VIRTUAL_STORAGE_TYPE.DeviceId)."""
    vendor_id: uuid.UUID
    """VIRTUAL_STORAGE_TYPE.VendorId: the provider's vendor (Microsoft)."""
    provider_subtype: ProviderSubtype | int | None
    """Fixed, dynamic or differencing; None for ISO images."""
    virtual_size: int
    """The size the disk presents to its user."""
    physical_size: int
    """The size of the image file."""
    block_size: int
    """The allocation unit of a dynamic or differencing disk, else 0."""
    sector_size: int
    """The logical sector size of the virtual disk."""
    physical_sector_size: int | None
    """The physical sector size the virtual disk reports to its user
    (GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE); None for ISO images."""
    identifier: uuid.UUID | None
    """The disk's unique identifier: a VHD's footer UniqueId, a VHDX's
    DataWriteGuid (what a differencing child records as its parent)."""
    virtual_disk_id: uuid.UUID | None
    """The identity the disk shows its guest (VHDX Page 83 data)."""
    is_4k_aligned: bool | None
    """Whether the disk's data is aligned to 4 KiB."""
    smallest_safe_virtual_size: int | None
    """The smallest virtual size the disk can be shrunk to without losing
    data in its partitions."""
    fragmentation: int | None
    """The percentage of the disk's blocks that are out of order."""
    is_loaded: bool
    """Whether the disk is attached (surfaced) on this system."""
    change_tracking: ChangeTrackingState | None
    """Resilient change tracking: enabled, newer changes, most recent id."""
    parent_resolved: bool | None
    """Whether the parent was found and opened (differencing disks only)."""
    parent_paths: tuple[str, ...] | None
    """The resolved parent's path, or every location the child records for
    it when the parent was not opened."""
    parent_identifier: uuid.UUID | None
    """The identifier the child records for its parent."""
    parent_timestamp: datetime.datetime | None
    """The parent's modification time the child records (VHD only), UTC."""
    parent_timestamp_raw: int | None
    """The same, as stored: seconds since 2000-01-01 00:00 UTC."""
    host_logical_sector_size: int
    """The logical sector size of the disk that holds the image file."""
    host_physical_sector_size: int
    """The physical sector size of the disk that holds the image file."""
    is_remote: bool
    """Whether the image file is on a network file system."""

    @property
    def is_differencing(self) -> bool:
        """True for a differencing (child) disk."""
        return self.provider_subtype == ProviderSubtype.DIFFERENCING

    def to_json_dict(self) -> dict[str, Any]:
        """The fields as JSON types: numbers stay numbers, GUIDs become their
        lower-case string form, enumerations their lower-case names (the
        number when the value has no name), the time stamp ISO 8601."""
        result: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            result[field.name] = _json_value(getattr(self, field.name))
        return result


def _json_value(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, ChangeTrackingState):
        return {"enabled": value.enabled, "newer_changes": value.newer_changes,
                "most_recent_id": value.most_recent_id}
    if isinstance(value, tuple):
        return list(value)
    return value
