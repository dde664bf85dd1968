"""A disk's user metadata items as a mutable mapping.

A VHDX holds, besides the items its format defines (the file parameters,
the virtual size, the sector sizes, the Page 83 id, the parent locator),
items of its users: each a GUID naming up to 1 MiB of bytes ([MS-VHDX]
2.6.1.2, entries with IsUser set).  Windows reads and writes them with
Enumerate-, Get-, Set- and DeleteVirtualDiskMetadata; :attr:`VirtualDisk.
metadata <virtdisk.VirtualDisk.metadata>` shows them as a
``MutableMapping[uuid.UUID, bytes]``::

    item = uuid.UUID("...")
    with virtdisk.open("disk.vhdx", read_only=False) as disk:
        disk.metadata[item] = b"built by pipeline 42"
        print(dict(disk.metadata))
        del disk.metadata[item]

The mapping is a view: each operation asks the API, so it always shows the
file as it is.  Only user items are in it; the format's own items change
through the disk's ``set_*`` methods.  VHD has no metadata items: every
operation on a VHD's mapping raises :class:`UnsupportedOperationError`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Final, NoReturn

from _virtdisk import (
    VHDX_MAXIMUM_METADATA_ITEM_SIZE,
    VHDX_SYSTEM_METADATA_ITEMS,
    DeleteVirtualDiskMetadata,
    EnumerateVirtualDiskMetadata,
    GetVirtualDiskMetadata,
    SetVirtualDiskMetadata,
)

from .errors import ERROR_NOT_FOUND, InvalidHandleError, VirtualDiskError

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from .disk import VirtualDisk

__all__ = ["VirtualDiskMetadata", "MAXIMUM_ITEM_SIZE", "SYSTEM_ITEMS"]

MAXIMUM_ITEM_SIZE: Final = VHDX_MAXIMUM_METADATA_ITEM_SIZE
"""The largest metadata item VHDX allows, in bytes ([MS-VHDX] 2.6.1.2)."""

SYSTEM_ITEMS: Final = frozenset(VHDX_SYSTEM_METADATA_ITEMS)
"""The items [MS-VHDX] 2.6.2 defines, which the format manages: never in
the mapping, and refused as keys to set."""


class VirtualDiskMetadata(MutableMapping[uuid.UUID, bytes]):
    """The user metadata items of an open disk: keys are
    :class:`uuid.UUID`, values bytes.

    Get one from :attr:`VirtualDisk.metadata <virtdisk.VirtualDisk.metadata>`.
    Reading works on any handle; setting and deleting need a disk opened
    with ``read_only=False``.

    * ``mapping[item]`` raises KeyError for an item the disk does not
      hold; ``item in mapping``, ``len(mapping)`` and iteration list the
      items without reading their data.
    * ``mapping[item] = data`` creates or replaces an item; `data` is any
      bytes-like object of at most :data:`MAXIMUM_ITEM_SIZE` (1 MiB).  A
      metadata region without room for it raises :class:`DiskFullError`.
    * ``del mapping[item]`` raises KeyError for an item the disk does not
      hold.

    A key that is not a :class:`uuid.UUID` raises TypeError (``in``
    answers False); an item the format defines (:data:`SYSTEM_ITEMS`) is
    never in the mapping and raises ValueError as a key to set.  A change
    to a disk open read-only raises :class:`AccessDeniedError` before the
    call; a closed disk raises :class:`InvalidHandleError`; a VHD raises
    :class:`UnsupportedOperationError`.
    """

    __slots__ = ("_disk",)

    def __init__(self, disk: VirtualDisk) -> None:
        self._disk = disk

    def __getitem__(self, item: uuid.UUID) -> bytes:
        _check_key(item)
        if item in SYSTEM_ITEMS:
            raise KeyError(item)
        try:
            return GetVirtualDiskMetadata(self._disk.handle, item)
        except VirtualDiskError as error:
            self._raise(error, item, "metadata")

    def __setitem__(self, item: uuid.UUID, data: Buffer) -> None:
        _check_key(item)
        if item in SYSTEM_ITEMS:
            raise ValueError(
                f"{item} is an item the VHDX format defines and manages, not a user item: "
                f"change it through the disk's set_* methods")
        try:
            size = memoryview(data).nbytes
        except TypeError:
            raise TypeError(f"metadata values must be bytes-like (bytes, bytearray, "
                            f"memoryview), not {type(data).__name__}") from None
        if size > MAXIMUM_ITEM_SIZE:
            raise ValueError(f"a metadata item holds at most 1 MiB ({MAXIMUM_ITEM_SIZE} "
                             f"bytes), not {size} bytes")
        self._disk._check_writable("metadata")
        try:
            SetVirtualDiskMetadata(self._disk.handle, item, data)
        except InvalidHandleError:
            self._disk._reraise("metadata")

    def __delitem__(self, item: uuid.UUID) -> None:
        _check_key(item)
        if item in SYSTEM_ITEMS:
            raise KeyError(item)
        self._disk._check_writable("metadata")
        try:
            DeleteVirtualDiskMetadata(self._disk.handle, item)
        except VirtualDiskError as error:
            self._raise(error, item, "metadata")

    def __iter__(self) -> Iterator[uuid.UUID]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __contains__(self, item: object) -> bool:
        # Listing the GUIDs is cheaper than reading an item of up to 1 MiB.
        return isinstance(item, uuid.UUID) and item in self._items()

    def __repr__(self) -> str:
        return f"<VirtualDiskMetadata of {self._disk.path!r}>"

    def _items(self) -> list[uuid.UUID]:
        try:
            items = EnumerateVirtualDiskMetadata(self._disk.handle)
        except InvalidHandleError:
            self._disk._reraise("metadata")
        return [item for item in items if item not in SYSTEM_ITEMS]

    def _raise(self, error: VirtualDiskError, item: uuid.UUID, name: str) -> NoReturn:
        """Re-raises `error` as KeyError when it says the item does not
        exist, as the closed-disk error when the disk is closed, and as it
        is otherwise."""
        if error.winerror == ERROR_NOT_FOUND:
            raise KeyError(item) from None
        self._disk._reraise(name)


def _check_key(item: object) -> None:
    if not isinstance(item, uuid.UUID):
        raise TypeError(f"metadata keys must be uuid.UUID, not {type(item).__name__}")
