"""Return codes of RawSCSIVirtualDisk and of NO_LOCAL_HOST AttachVirtualDisk
/ DetachVirtualDisk, through tests/c/raw_scsi_main.c (the public C API only,
under ASan/UBSan).

Where each expected value comes from (the research is
/work/shared/research/attach-and-long-operations.md and virtdisk-api.md):

* [sdk] virtdisk.h defines RAW_SCSI_VIRTUAL_DISK_FLAG_NONE and VERSION_1
  only, ATTACH versions 1 and 2, DETACH_VIRTUAL_DISK_FLAG_NONE only, and
  the DataIn values of SCSI_PASS_THROUGH (0, 1, 2); anything else is
  ERROR_INVALID_PARAMETER (87), the code every VirtDisk function returns
  for an argument it refuses.
* [doc] RawSCSIVirtualDisk: "A return of ERROR_SUCCESS only means the
  request was received by the virtual disk. The SCSI command itself could
  have failed" - so a CHECK CONDITION is code 0 with the outcome in the
  response.  OpenVirtualDisk's access mask pages: a read-write attach needs
  ATTACH_RW, a detach needs DETACH (otherwise ERROR_ACCESS_DENIED, 5).
  DetachVirtualDisk of a disk that is not attached: ERROR_NOT_READY (21),
  which os-win's detach ignores.
* [guess] where Windows' answer is not documented, the engine's choice:
  RawSCSIVirtualDisk on a handle without a NO_LOCAL_HOST attach answers
  21, as Detach does for a disk that is not attached (the SDK's raw I/O
  sample only says "NO_LOCAL_HOST is required for RawIO"); a second attach
  of an attached image answers ERROR_SHARING_VIOLATION (32), the code of the
  message Mount-DiskImage prints for it; a NULL handle answers
  ERROR_INVALID_HANDLE (6) (Wine's stub answers 87 for Detach(NULL), but
  Wine is no reference for Windows); a CDB over 16 bytes answers 87
  (SCSI_PASS_THROUGH.Cdb holds 16).  tests/test_windows.py runs the
  documented parts on Windows.
* [spc] SPC-5 / SBC-4 for the SCSI outcome: fixed-format sense, ILLEGAL
  REQUEST (5) / INVALID COMMAND OPERATION CODE (0x20/0x00), DATA PROTECT (7)
  / WRITE PROTECTED (0x27/0x00); READ CAPACITY (10) gives the last LBA.

The image is qemu-img's, its data qemu-io's, and what the harness writes is
read back by qemu-io.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from c_harness import ROOT, all_engine_sources, compile_harness
from conftest import require_tool

ERROR_SUCCESS = 0
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_HANDLE = 6
ERROR_NOT_READY = 21
ERROR_SHARING_VIOLATION = 32
ERROR_INVALID_PARAMETER = 87

GOOD = 0
CHECK_CONDITION = 2
ILLEGAL_REQUEST = 5
DATA_PROTECT = 7
MIB = 1 << 20


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_harness(tmp_path_factory.mktemp("raw_scsi_harness"), "raw_scsi_main",
                           all_engine_sources(), defines=[f"-I{ROOT / 'src' / 'include'}"],
                           sanitize=True)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raw_scsi_image") / "disk.vhdx"
    subprocess.run([require_tool("qemu-img"), "create", "-q", "-f", "vhdx", "-o",
                    "subformat=dynamic", str(path), "64M"], check=True)
    subprocess.run([require_tool("qemu-io"), "-f", "vhdx", "-c", "write -P 0xab 1M 4k",
                    str(path)], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def cases(harness: Path, image: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # Detaching an unattached disk looks for a permanent attach record.
    run_dir = tmp_path_factory.mktemp("raw_scsi_run")
    result = subprocess.run([str(harness), str(image)], capture_output=True, text=True,
                            env={"VIRTDISK_RUN_DIR": str(run_dir), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    answers: dict[str, Any] = json.loads(result.stdout)
    return answers


def received(answer: object, status: int, transferred: int, *, key: int = -1,
             asc: int = -1, ascq: int = -1, sense_length: int = 0) -> None:
    """Code 0 and the SCSI outcome in a version 1 response."""
    assert answer == {"code": 0, "version": 1, "status": status, "key": key, "asc": asc,
                      "ascq": ascq, "sense_length": sense_length, "transferred": transferred}


@pytest.mark.parametrize("case", [
    "raw_null_parameters", "raw_null_response", "raw_flags_1", "raw_version_0",
    "raw_version_2", "raw_rsvd_handle", "raw_data_in_3", "raw_cdb_length_0", "raw_cdb_null",
    "raw_cdb_length_17", "raw_sense_length_without_buffer", "raw_data_length_without_buffer",
])
def test_raw_scsi_bad_parameters_are_87(cases: dict[str, Any], case: str) -> None:
    # Each case breaks one rule of a good INQUIRY on an attached handle.
    assert cases[case] == ERROR_INVALID_PARAMETER


def test_raw_scsi_allowed_parameters(cases: dict[str, Any]) -> None:
    # No sense buffer at all, and no data buffer with no data, are allowed.
    received(cases["raw_no_sense_buffer"], GOOD, 36)
    received(cases["raw_test_unit_ready"], GOOD, 0)


@pytest.mark.parametrize("case", ["raw_null_handle", "raw_invalid_handle_value",
                                  "raw_closed_handle", "attach_null_handle",
                                  "detach_null_handle", "detach_closed_handle"])
def test_bad_handles_are_6(cases: dict[str, Any], case: str) -> None:
    assert cases[case] == ERROR_INVALID_HANDLE


def test_a_handle_without_a_no_local_host_attach_is_not_ready(cases: dict[str, Any]) -> None:
    assert cases["open"] == ERROR_SUCCESS
    assert cases["raw_unattached"] == ERROR_NOT_READY
    assert cases["raw_after_detach"] == ERROR_NOT_READY


def test_attach_argument_rules(cases: dict[str, Any]) -> None:
    assert cases["attach_unknown_flag"] == ERROR_INVALID_PARAMETER
    assert cases["attach_version_3"] == ERROR_INVALID_PARAMETER
    assert cases["detach_flag_1"] == ERROR_INVALID_PARAMETER


def test_a_second_attach_is_a_sharing_violation(cases: dict[str, Any]) -> None:
    assert cases["attach_rw"] == ERROR_SUCCESS
    # Again through the same handle, either kind.
    assert cases["attach_rw_again"] == ERROR_SHARING_VIOLATION
    assert cases["attach_ro_again"] == ERROR_SHARING_VIOLATION
    # Through another (read-only, shared) handle of the same file.
    assert cases["attach_ro_after_close"] == ERROR_SUCCESS
    assert cases["open_second_reader"] == ERROR_SUCCESS
    assert cases["attach_second_handle"] == ERROR_SHARING_VIOLATION


def test_detach_of_a_disk_that_is_not_attached(cases: dict[str, Any]) -> None:
    assert cases["detach_unattached"] == ERROR_NOT_READY
    assert cases["detach_attached"] == ERROR_SUCCESS
    assert cases["detach_twice"] == ERROR_NOT_READY


def test_access_rights(cases: dict[str, Any]) -> None:
    assert cases["open_attach_ro_mask"] == ERROR_SUCCESS
    assert cases["attach_rw_with_attach_ro_mask"] == ERROR_ACCESS_DENIED
    assert cases["attach_ro_without_detach_right"] == ERROR_SUCCESS
    assert cases["detach_without_detach_right"] == ERROR_ACCESS_DENIED


def test_closing_the_handle_detaches(cases: dict[str, Any]) -> None:
    assert cases["attach_before_close"] == ERROR_SUCCESS
    # The next handle of the file attaches: the close released the attach.
    assert cases["attach_ro_after_close"] == ERROR_SUCCESS


def test_commands_on_a_read_write_attach(cases: dict[str, Any], image: Path) -> None:
    received(cases["inquiry"], GOOD, 36)
    # Peripheral device type 0 (direct access block device), VERSION 6 (SPC-4).
    assert cases["inquiry_peripheral_and_version"] == [0, 6]
    received(cases["read_capacity_10"], GOOD, 8)
    size = 64 * MIB
    assert cases["read_capacity_10_data"] == [size // 512 - 1, 512]
    received(cases["read_qemu_data"], GOOD, 4096)
    assert cases["read_qemu_data_is_0xab"] is True
    received(cases["write_rw"], GOOD, 4096)
    received(cases["read_rw"], GOOD, 4096)
    assert cases["read_rw_first_byte"] == 0x5A
    # qemu-io reads what WRITE(10) wrote at LBA 100 (and -P checks every byte).
    check = subprocess.run([require_tool("qemu-io"), "-f", "vhdx", "-r", "-c",
                            "read -P 0x5a 51200 4096", str(image)],
                           capture_output=True, text=True)
    assert check.returncode == 0 and "Pattern verification failed" not in check.stdout, \
        check.stdout


def test_scsi_failures_are_received(cases: dict[str, Any]) -> None:
    # A READ(10) CDB cut to 6 bytes reaches the target, which refuses it.
    received(cases["read_10_short_cdb"], CHECK_CONDITION, 0, key=ILLEGAL_REQUEST, asc=0x20,
             ascq=0, sense_length=18)
    # An unknown opcode with an 8-byte sense buffer: the sense is cut to it
    # (key readable, no ASC), and nothing past it is written.
    received(cases["unknown_opcode_8_byte_sense"], CHECK_CONDITION, 0, key=ILLEGAL_REQUEST,
             sense_length=8)
    assert cases["sense_bytes_past_8_untouched"] is True


def test_a_write_on_a_read_only_attach_is_data_protect(cases: dict[str, Any]) -> None:
    assert cases["attach_ro"] == ERROR_SUCCESS
    received(cases["write_ro"], CHECK_CONDITION, 0, key=DATA_PROTECT, asc=0x27, ascq=0,
             sense_length=18)
    # The read after it finds the read-write attach's data, not the refused one.
    received(cases["read_ro"], GOOD, 4096)
    assert cases["read_ro_first_byte"] == 0x5A
    assert cases["detach_ro"] == ERROR_SUCCESS
