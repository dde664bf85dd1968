"""The engine's flag masks (src/vdengine/api/flag_masks.h) name every flag
the SDK header (src/include/virtdisk_api.h) defines for their type, and
nothing else: a flag the header gains without a mask that names it, or a
mask typed as a number, fails here.  Read as text: the header is the source
the engine compiles, so its enums are the facts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "src" / "include" / "virtdisk_api.h"
MASKS = ROOT / "src" / "vdengine" / "api" / "flag_masks.h"

# mask macro -> the typedef'd enum it covers
MASK_ENUMS = {
    "VD_ATTACH_FLAGS_KNOWN": "ATTACH_VIRTUAL_DISK_FLAG",
    "VD_DEPENDENCY_FLAGS_KNOWN": "GET_STORAGE_DEPENDENCY_FLAG",
    "VD_COMPACT_FLAGS_KNOWN": "COMPACT_VIRTUAL_DISK_FLAG",
    "VD_EXPAND_FLAGS_KNOWN": "EXPAND_VIRTUAL_DISK_FLAG",
    "VD_RESIZE_FLAGS_KNOWN": "RESIZE_VIRTUAL_DISK_FLAG",
    "VD_MIRROR_FLAGS_KNOWN": "MIRROR_VIRTUAL_DISK_FLAG",
    "VD_TAKE_SNAPSHOT_FLAGS_KNOWN": "TAKE_SNAPSHOT_VHDSET_FLAG",
    "VD_DELETE_SNAPSHOT_FLAGS_KNOWN": "DELETE_SNAPSHOT_VHDSET_FLAG",
    "VD_MODIFY_VHDSET_FLAGS_KNOWN": "MODIFY_VHDSET_FLAG",
    "VD_APPLY_SNAPSHOT_FLAGS_KNOWN": "APPLY_SNAPSHOT_VHDSET_FLAG",
    "VD_FORK_FLAGS_KNOWN": "FORK_VIRTUAL_DISK_FLAG",
}


def enum_members(name: str) -> dict[str, int]:
    """Members of `typedef enum _NAME {...} NAME;` with their values."""
    text = HEADER.read_text()
    match = re.search(r"typedef\s+enum\s+_?" + name + r"\s*\{(.*?)\}\s*" + name + r"\s*[,;]",
                      text, re.S)
    assert match is not None, name
    body = re.sub(r"/\*.*?\*/|//[^\n]*", "", match.group(1), flags=re.S)
    members = {}
    for item in body.split(","):
        if "=" in item:
            key, value = (part.strip() for part in item.split("=", 1))
            members[key] = int(value, 0)
    return members


def mask_names() -> dict[str, set[str]]:
    text = MASKS.read_text().replace("\\\n", " ")
    found = {}
    for match in re.finditer(r"#define\s+(VD_\w+_FLAGS_KNOWN)\s+(.*)", text):
        found[match.group(1)] = set(re.findall(r"[A-Za-z_]\w*", match.group(2)))
        assert not re.search(r"\b0x|\b\d", match.group(2)), f"{match.group(1)} types a number"
    return found


def test_every_mask_is_listed() -> None:
    assert set(mask_names()) == set(MASK_ENUMS)


@pytest.mark.parametrize("mask,enum", sorted(MASK_ENUMS.items()))
def test_mask_names_every_flag_of_its_enum(mask: str, enum: str) -> None:
    members = enum_members(enum)
    flags = {name for name, value in members.items() if value != 0}
    assert flags, enum
    assert mask_names()[mask] == flags
