#!/usr/bin/env python3
"""Generate the enum layer of the extension from src/include/virtdisk_api.h.

The C header is the one place where constants are written.  This script reads
its enums and device/subtype macros and writes, between GENERATED markers:

* src/virtdisk_api.pxd   -- the ``cdef extern`` declarations of every member,
* src/_virtdisk_enums.pxi -- the Python ``IntFlag``/``IntEnum`` classes, whose
  values are the extern constants (so the C compiler supplies the numbers),
* stubs/_virtdisk.pyi     -- the same classes with literal values for type
  checkers (stubtest cannot see values; tests/test_enums.py compares them).

``--check`` rewrites nothing and exits 1 if any file is out of date, which the
test command runs so that a header change without regeneration fails.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "src" / "include" / "virtdisk_api.h"
PXD = ROOT / "src" / "virtdisk_api.pxd"
PXI = ROOT / "src" / "_virtdisk_enums.pxi"
STUB = ROOT / "stubs" / "_virtdisk.pyi"

BEGIN = "# --- BEGIN GENERATED ENUMS (scripts/generate_enums.py) ---"
END = "# --- END GENERATED ENUMS ---"

# Macro families of the header that are plain enumerations in Python.
MACRO_ENUMS = {
    "VIRTUAL_STORAGE_TYPE_DEVICE_": "VirtualStorageTypeDevice",
    "VIRTDISK_API_PROVIDER_SUBTYPE_": "ProviderSubtype",
}


@dataclass(frozen=True)
class Enum:
    c_type: str            # e.g. OPEN_VIRTUAL_DISK_FLAG (or a macro prefix)
    python_name: str       # e.g. OpenVirtualDiskFlag
    is_flag: bool
    members: tuple[tuple[str, str, int], ...]  # (python member, C name, value)
    is_macro: bool = False


def camel_case(c_type: str) -> str:
    special = {"VHDSET": "VhdSet", "SCSI": "Scsi", "4K": "4k"}
    return "".join(special.get(part, part.capitalize()) for part in c_type.split("_"))


def member_name(c_name: str, prefix: str) -> str:
    """Drops the shared prefix; a member that would start with a digit keeps
    the word before it (OPEN_VIRTUAL_DISK_VERSION_1 -> VERSION_1)."""
    rest = c_name[len(prefix):]
    if rest[:1].isdigit():
        keep = prefix.rstrip("_").rsplit("_", 1)[-1]
        return f"{keep}_{rest}"
    return rest


def common_prefix(names: list[str]) -> str:
    first = names[0]
    length = len(first)
    for name in names[1:]:
        length = min(length, len(name))
        while not name.startswith(first[:length]):
            length -= 1
    prefix = first[:length]
    return prefix[: prefix.rfind("_") + 1]


def parse_header(text: str) -> list[Enum]:
    enums: list[Enum] = []
    for match in re.finditer(r"typedef enum _(\w+) \{(.*?)\} (\w+);", text, re.S):
        c_type = match.group(3)
        entries = re.findall(r"(\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)", match.group(2))
        names = [name for name, _ in entries]
        prefix = common_prefix(names) if len(names) > 1 else c_type + "_"
        if not names[0].startswith(prefix):
            prefix = c_type + "_"
        members = tuple((member_name(n, prefix), n, int(v, 0)) for n, v in entries)
        is_flag = c_type.endswith(("_FLAG", "_MASK"))
        enums.append(Enum(c_type, camel_case(c_type), is_flag, members))
    for prefix, python_name in MACRO_ENUMS.items():
        entries = re.findall(rf"#define ({prefix}\w+) (\d+)", text)
        members = tuple((n[len(prefix):], n, int(v)) for n, v in entries)
        enums.append(Enum(prefix, python_name, False, members, is_macro=True))
    return enums


def render_pxd(enums: list[Enum]) -> str:
    lines = ['cdef extern from "virtdisk_api.h" nogil:']
    for enum in enums:
        if enum.is_macro:
            lines.append("    enum:")
        else:
            lines.append(f"    ctypedef enum {enum.c_type}:")
        lines.extend(f"        {c_name}" for _, c_name, _ in enum.members)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_pxi(enums: list[Enum]) -> str:
    lines = []
    for enum in enums:
        base = "enum.IntFlag" if enum.is_flag else "enum.IntEnum"
        source = f"{enum.c_type}* macros" if enum.is_macro else enum.c_type
        lines.append(f"class {enum.python_name}({base}):")
        lines.append(f'    """``{source}`` of virtdisk.h."""')
        lines.extend(f"    {name} = api.{c_name}" for name, c_name, _ in enum.members)
        lines.append("")
        lines.append("")
    # The C names are C constants inside this module (cimported), so the
    # Python aliases of the same names go straight into the module dict, one
    # store each: a dict literal this large is built presized, with a keys
    # table CPython marks as general, and merging it in with update() would
    # mark the module's own table general too -- and then no attribute
    # lookup on the module (``_virtdisk.GetVirtualDiskInformation``) gets
    # the interpreter's specialized, cached path.
    lines.append("cdef dict _module_dict = globals()")
    lines.extend(f'_module_dict["{c_name}"] = {enum.python_name}.{name}'
                 for enum in enums for name, c_name, _ in enum.members)
    lines.append("")
    lines.append("ENUM_CLASSES = (")
    lines.extend(f'    "{enum.python_name}",' for enum in enums)
    lines.append(")")
    lines.append("ENUM_ALIASES = (")
    lines.extend(f'    "{c_name}",' for enum in enums for _, c_name, _ in enum.members)
    lines.append(")")
    return "\n".join(lines) + "\n"


def render_stub(enums: list[Enum]) -> str:
    lines = []
    for enum in enums:
        base = "enum.IntFlag" if enum.is_flag else "enum.IntEnum"
        lines.append(f"class {enum.python_name}({base}):")
        lines.extend(f"    {name} = {value:#x}" if enum.is_flag else f"    {name} = {value}"
                     for name, _, value in enum.members)
        lines.append("")
    aliases = [f"{c_name}: Final = {enum.python_name}.{name}"
               for enum in enums for name, c_name, _ in enum.members]
    lines.append("ENUM_CLASSES: tuple[str, ...]")
    lines.append("ENUM_ALIASES: tuple[str, ...]")
    lines.append("")
    lines.extend(aliases)
    lines.append("")
    lines.append("__all__ += [")
    lines.extend(f'    "{enum.python_name}",' for enum in enums)
    lines.extend(f'    "{c_name}",' for enum in enums for _, c_name, _ in enum.members)
    lines.append("]")
    return "\n".join(lines) + "\n"


def splice(path: Path, body: str) -> str:
    text = path.read_text(encoding="utf-8") if path.exists() else f"{BEGIN}\n{END}\n"
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END)
    return text[:start] + "\n" + body + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if files are stale")
    options = parser.parse_args(argv)
    enums = parse_header(HEADER.read_text(encoding="utf-8"))
    outputs = {PXD: render_pxd(enums), PXI: render_pxi(enums), STUB: render_stub(enums)}
    stale = []
    for path, body in outputs.items():
        new_text = splice(path, body)
        old_text = path.read_text(encoding="utf-8") if path.exists() else ""
        if new_text != old_text:
            stale.append(path.relative_to(ROOT))
            if not options.check:
                path.write_text(new_text, encoding="utf-8")
    if options.check and stale:
        print("out of date, run scripts/generate_enums.py:", *stale, file=sys.stderr)
        return 1
    member_count = sum(len(enum.members) for enum in enums)
    print(f"{len(enums)} enums, {member_count} members", "checked" if options.check else "written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
