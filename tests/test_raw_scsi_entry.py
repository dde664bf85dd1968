"""RawSCSIVirtualDisk's two ways in (src/_virtdisk_raw_scsi_entry.h): the
common form, handle and cdb by position and the rest by keyword, which the
entry takes without the general argument parsing, and every other form,
which goes to the Cython function.  Each form is taken, both give the same
answer and the same error for the same wrong value, and neither keeps a
reference to what it was given."""

from __future__ import annotations

import gc
import inspect
import struct
import sys
from collections.abc import Callable

import _virtdisk
import pytest

from test_raw_scsi_arguments import PATTERN, handle  # noqa: F401 (the fixture)

pytestmark = pytest.mark.skipif(not _virtdisk.features().get("RawSCSIVirtualDisk", False),
                                reason="RawSCSIVirtualDisk is not available here")

GOOD = 0x00
READ_16 = struct.pack(">BBQIBB", 0x88, 0, 0, 8, 0, 0)
KEYWORDS = ["data_in", "data", "data_transfer_length", "sense_info_length", "srb_flags",
            "rsvd_handle", "flags", "version"]


def uninterned(name: str) -> str:
    """`name` as a new string object, equal but not the interned one."""
    made = "".join([name[:1], name[1:]])
    assert made == name and made is not sys.intern(name)
    return made


def test_the_signature_is_the_stubs() -> None:
    signature = inspect.signature(_virtdisk.RawSCSIVirtualDisk)
    assert list(signature.parameters) == ["handle", "cdb", *KEYWORDS]
    assert [name for name, parameter in signature.parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY] == KEYWORDS
    assert "rawscsivirtualdisk" in (_virtdisk.RawSCSIVirtualDisk.__doc__ or "")


@pytest.mark.parametrize("form", ["positional", "all keywords", "keywords reversed",
                                  "names not interned", "handle by keyword",
                                  "cdb by keyword", "raw handle value"])
def test_every_form_reads_the_same(handle: _virtdisk.VirtualDiskHandle, form: str) -> None:
    buffer = bytearray(4096)
    every = {"data_in": True, "data": buffer, "data_transfer_length": 4096,
             "sense_info_length": 18, "srb_flags": 0, "rsvd_handle": False, "flags": 0,
             "version": 1}
    call = _virtdisk.RawSCSIVirtualDisk
    if form == "positional":
        answer = call(handle, READ_16, data_in=True, data=buffer)
    elif form == "all keywords":
        answer = call(handle, READ_16, **every)  # type: ignore[arg-type]
    elif form == "keywords reversed":
        answer = call(handle, READ_16, **dict(reversed(every.items())))  # type: ignore[arg-type]
    elif form == "names not interned":
        renamed = {uninterned(name): value for name, value in every.items()}
        answer = call(handle, READ_16, **renamed)  # type: ignore[arg-type]
    elif form == "handle by keyword":
        answer = call(handle=handle, cdb=READ_16, data_in=True, data=buffer)
    elif form == "cdb by keyword":
        answer = call(handle, cdb=READ_16, data_in=True, data=buffer)
    else:
        answer = call(handle.value, READ_16, data_in=True, data=buffer)
    assert answer == (GOOD, b"", 4096) and buffer == PATTERN


@pytest.mark.parametrize("keyword", KEYWORDS[1:])
def test_each_keyword_alone_is_its_default(handle: _virtdisk.VirtualDiskHandle,
                                           keyword: str) -> None:
    defaults = {"data": None, "data_transfer_length": None, "sense_info_length": 18,
                "srb_flags": 0, "rsvd_handle": False, "flags": 0, "version": 1}
    signature = inspect.signature(_virtdisk.RawSCSIVirtualDisk)
    assert signature.parameters[keyword].default == defaults[keyword]
    answer = _virtdisk.RawSCSIVirtualDisk(handle, READ_16[:1] + bytes(9), data_in=True,
                                          **{keyword: defaults[keyword]})  # type: ignore[arg-type]
    assert answer == _virtdisk.RawSCSIVirtualDisk(handle, READ_16[:1] + bytes(9), data_in=True)


@pytest.mark.parametrize(("arguments", "error"), [
    ({"cdb": b""}, ValueError),
    ({"cdb": bytes(256)}, ValueError),
    ({"cdb": None}, TypeError),
    ({"cdb": "\x28"}, TypeError),
    ({"sense_info_length": 256}, ValueError),
    ({"sense_info_length": -1}, ValueError),
    ({"sense_info_length": 1 << 70}, ValueError),
    ({"sense_info_length": 18.0}, TypeError),
    ({"data_transfer_length": 4097}, ValueError),
    ({"data_transfer_length": -1}, OverflowError),
    ({"data": b"read-only"}, BufferError),
    ({"data": 7}, TypeError),
    ({"srb_flags": -1}, OverflowError),
    ({"flags": "0"}, TypeError),
    ({"version": 2**40}, OverflowError),
    ({"bogus": 1}, TypeError),
])
def test_a_wrong_value_is_the_same_error_either_way(handle: _virtdisk.VirtualDiskHandle,
                                                    arguments: dict[str, object],
                                                    error: type[Exception]) -> None:
    given: dict[str, object] = {"cdb": READ_16, "data_in": True, "data": bytearray(4096)}
    given.update(arguments)
    cdb = given.pop("cdb")
    with pytest.raises(error) as common:          # the entry's form
        _virtdisk.RawSCSIVirtualDisk(handle, cdb, **given)  # type: ignore[arg-type]
    with pytest.raises(error) as other:           # the Cython function's
        _virtdisk.RawSCSIVirtualDisk(handle, cdb=cdb, **given)  # type: ignore[arg-type]
    assert str(common.value) == str(other.value)


@pytest.mark.parametrize(("call", "message"), [
    (lambda f, h: f(h, READ_16), "RawSCSIVirtualDisk() needs keyword-only argument data_in"),
    (lambda f, h: f(h, READ_16, data=bytearray(8)),
     "RawSCSIVirtualDisk() needs keyword-only argument data_in"),
    (lambda f, h: f(h, READ_16, True, data_in=True),
     "RawSCSIVirtualDisk() takes exactly 2 positional arguments (3 given)"),
    (lambda f, h: f(h, data_in=True),
     "RawSCSIVirtualDisk() takes exactly 2 positional arguments (1 given)"),
    (lambda f, h: f(h, READ_16, data_in=True, bogus=1),
     "RawSCSIVirtualDisk() got an unexpected keyword argument 'bogus'"),
])
def test_a_form_the_entry_does_not_take_is_refused_as_before(handle: _virtdisk.VirtualDiskHandle,
                                                             call: Callable[..., object],
                                                             message: str) -> None:
    with pytest.raises(TypeError) as raised:
        call(_virtdisk.RawSCSIVirtualDisk, handle)
    assert str(raised.value) == message


def test_neither_way_keeps_a_reference(handle: _virtdisk.VirtualDiskHandle) -> None:
    buffer = bytearray(4096)
    # An int the interpreter does not share, as it shares True, None and
    # the small ints (whose counts move with whatever else runs).
    length, room, version = int("4096"), 18, 1
    watched = (buffer, READ_16, handle, length)
    call = _virtdisk.RawSCSIVirtualDisk
    for _ in range(100):
        call(handle, READ_16, data_in=True, data=buffer)
        call(handle, cdb=READ_16, data_in=True, data=buffer)
    refused = 0
    gc.collect()
    before = [sys.getrefcount(item) for item in watched]
    for _ in range(10_000):
        call(handle, READ_16, data_in=True, data=buffer, data_transfer_length=length,
             sense_info_length=room, version=version)
        call(handle, READ_16, data_in=True, data=buffer)
        call(handle, cdb=READ_16, data_in=True, data=buffer, sense_info_length=room)
        try:
            call(handle, READ_16, data_in=True, data=buffer, sense_info_length=256)
        except ValueError:
            refused += 1
    gc.collect()
    assert [sys.getrefcount(item) for item in watched] == before
    assert refused == 10_000
    buffer.append(0)     # no buffer export left behind
