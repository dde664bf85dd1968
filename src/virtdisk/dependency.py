"""Which image files a disk stands on, and which virtual disks a volume
holds (GetStorageDependencyInformation)::

    with virtdisk.open("child.vhdx") as disk:
        for entry in disk.storage_dependencies():
            print(entry.ancestor_level, entry.image_path)

    virtdisk.storage_dependencies("/dev/loop3")          # the disk's chain
    virtdisk.hosted_virtual_disks("/srv/images")        # disks attached from there

Entries come in the order the system gives them: for a disk, the image the
disk is made of first (``ancestor_level`` 1), then its parent (2), and so
on down the differencing chain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from _virtdisk import (
    DependentDiskFlag,
    GetStorageDependencyFlag,
    GetStorageDependencyInformation,
    StorageDependencyInfo,
    VirtualDiskHandle,
    VirtualStorageTypeDevice,
    open_device,
)

__all__ = ["StorageDependency", "hosted_virtual_disks", "storage_dependencies"]


@dataclass(frozen=True)
class StorageDependency:
    """One image file of a disk (STORAGE_DEPENDENCY_INFO_TYPE_2).

    ``device`` is the attached disk (``/dev/loopN``; ``\\\\.\\PhysicalDriveN``
    on Windows), empty when the disk is not attached to the host;
    ``host_volume`` the volume holding the image file (its mount point,
    ending in a separator); ``relative_path`` the image's path on that
    volume; ``dependent_volume`` the volume or disk that depends on it.
    """

    ancestor_level: int
    storage_type: VirtualStorageTypeDevice
    flags: DependentDiskFlag
    device: str
    host_volume: str
    dependent_volume: str
    relative_path: str

    @property
    def image_path(self) -> str:
        """The image file: the host volume joined with the relative path,
        as Windows callers join them."""
        return self.host_volume + self.relative_path

    @property
    def is_parent(self) -> bool:
        """Whether this image is a parent in the differencing chain."""
        return bool(self.flags & DependentDiskFlag.PARENT)

    @property
    def read_only(self) -> bool:
        """Whether the image is used read-only."""
        return bool(self.flags & DependentDiskFlag.READ_ONLY)


def _entry(info: StorageDependencyInfo) -> StorageDependency:
    return StorageDependency(
        ancestor_level=info.ancestor_level,
        storage_type=VirtualStorageTypeDevice(info.virtual_storage_type.device_id),
        flags=DependentDiskFlag(info.dependency_type_flags),
        device=info.dependency_device_name or "",
        host_volume=info.host_volume_name or "",
        dependent_volume=info.dependent_volume_name or "",
        relative_path=info.dependent_volume_relative_path or "",
    )


def query(handle: VirtualDiskHandle, flags: GetStorageDependencyFlag) -> list[StorageDependency]:
    """The version 2 entries GetStorageDependencyInformation gives for
    `handle` with `flags`."""
    return [_entry(info) for info in GetStorageDependencyInformation(handle, flags, 2)]


def storage_dependencies(path: str | os.PathLike[str]) -> list[StorageDependency]:
    """The image files of the disk at `path`: an attached disk's device
    (``/dev/loopN``) or a directory of a file system on it (its mount
    point).  Empty when it is no virtual disk."""
    with open_device(path) as handle:
        return query(handle, GetStorageDependencyFlag.HOST_VOLUMES)


def hosted_virtual_disks(path: str | os.PathLike[str]) -> list[StorageDependency]:
    """The attached virtual disks whose image file lies on the file system
    holding `path` (a mount point or any directory of it, or a device)."""
    with open_device(path) as handle:
        return query(handle, GetStorageDependencyFlag.NONE)
