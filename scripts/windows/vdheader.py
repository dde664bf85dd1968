"""Read the declarations of src/include/virtdisk_api.h.

The header is written in a regular style (one enumerator or field per line,
``typedef enum``/``typedef struct`` blocks, ``VIRTDISK_FN_<Name>`` function
types), which this small reader relies on.  It serves two purposes: the
conformance check proves that its list names every declaration of the header,
and the cross-build check takes from it which functions are linked and which
are resolved at run time.  It reads only the part after ``extern "C" {``; the
type shims for platforms without <windows.h> come before it and are not part
of the API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "src" / "include" / "virtdisk_api.h"
DISPATCH = ROOT / "src" / "include" / "virtdisk_dispatch.h"

# Macros of the header's own machinery, not of the API.
_PRIVATE_MACRO = re.compile(r"VIRTDISK_API_|VIRTDISKAPI$")


@dataclass
class Struct:
    name: str
    # Member paths as offsetof() accepts them ("Version2.ParentPath"), in
    # declaration order, including named nested structs ("Version2").
    fields: list[str] = field(default_factory=list)


@dataclass
class Header:
    constants: list[str] = field(default_factory=list)
    guid_initializers: list[str] = field(default_factory=list)
    enums: dict[str, list[str]] = field(default_factory=dict)
    structs: dict[str, Struct] = field(default_factory=dict)
    functions: list[str] = field(default_factory=list)
    linked_functions: list[str] = field(default_factory=list)
    runtime_resolved: list[str] = field(default_factory=list)


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _api_part(text: str) -> str:
    marker = 'extern "C" {'
    start = text.find(marker)
    if start < 0:
        raise ValueError("virtdisk_api.h: no extern \"C\" block found")
    return text[start + len(marker):]


def _struct_fields(body: str) -> list[str]:
    """Member paths of a struct body, nested unions and structs included."""
    tokens = re.findall(r"[A-Za-z_][A-Za-z_0-9]*|\[[^\]]*\]|[{};*,]", body)
    paths: list[str] = []

    def members(pos: int, prefix: str) -> int:
        while pos < len(tokens) and tokens[pos] != "}":
            if tokens[pos] in ("struct", "union") and tokens[pos + 1] == "{":
                inner: list[str] = []
                start = len(paths)
                pos = members(pos + 2, "")
                pos += 1  # the closing brace
                if tokens[pos] == ";":  # anonymous: members belong to the parent
                    inner = paths[start:]
                    del paths[start:]
                    paths.extend(prefix + p for p in inner)
                    pos += 1
                    continue
                name = tokens[pos]
                inner = paths[start:]
                del paths[start:]
                paths.append(prefix + name)
                paths.extend(prefix + name + "." + p for p in inner)
                pos += 2  # name and ';'
                continue
            declarator: list[str] = []
            while tokens[pos] != ";":
                declarator.append(tokens[pos])
                pos += 1
            pos += 1
            names = [t for t in declarator if re.fullmatch(r"[A-Za-z_]\w*", t)]
            paths.append(prefix + names[-1])
        return pos

    members(0, "")
    return paths


def read(header: Path = HEADER, dispatch: Path = DISPATCH) -> Header:
    text = _api_part(_strip_comments(header.read_text()))
    result = Header()

    for name, value in re.findall(r"^\s*#\s*define\s+(\w+)\s+(.*?)\s*$", text, flags=re.M):
        if _PRIVATE_MACRO.match(name):
            if name.endswith("_INIT"):
                result.guid_initializers.append(name)
            continue
        result.constants.append(name)

    for body, name in re.findall(r"typedef\s+enum\s+\w+\s*\{(.*?)\}\s*(\w+)\s*;", text, flags=re.S):
        result.enums[name] = re.findall(r"(\w+)\s*=", body)

    for match in re.finditer(r"typedef\s+struct\s+\w+\s*\{", text):
        depth, pos = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[pos], 0)
            pos += 1
        body = text[match.end():pos - 1]
        name = re.match(r"\s*(\w+)", text[pos:]).group(1)
        result.structs[name] = Struct(name, _struct_fields(body))

    result.functions = re.findall(r"typedef\s+DWORD\s*\(\s*WINAPI\s+VIRTDISK_FN_(\w+)\s*\)", text)
    declared = re.findall(r"^VIRTDISKAPI\s+VIRTDISK_FN_(\w+)\s+(\w+)\s*;", text, flags=re.M)
    for type_name, name in declared:
        if type_name != name:
            raise ValueError(f"virtdisk_api.h declares {name} with the type of {type_name}")
    dispatch_text = _strip_comments(dispatch.read_text())
    block = re.search(r"#define\s+VIRTDISK_RUNTIME_RESOLVED\(X\)(.*?)\n\s*\n", dispatch_text, flags=re.S)
    if block is None:
        raise ValueError("virtdisk_dispatch.h: VIRTDISK_RUNTIME_RESOLVED not found")
    result.runtime_resolved = re.findall(r"X\((\w+)\)", block.group(1))
    result.linked_functions = [n for n in result.functions if n not in result.runtime_resolved]
    if sorted(n for _, n in declared) != sorted(result.functions):
        raise ValueError("virtdisk_api.h: the VIRTDISK_FN_ typedefs and the declarations differ")
    return result


if __name__ == "__main__":
    h = read()
    print(len(h.constants), "constants,", len(h.enums), "enums,",
          sum(len(v) for v in h.enums.values()), "enumerators,",
          len(h.structs), "structs,", sum(len(s.fields) for s in h.structs.values()), "fields,",
          len(h.functions), "functions (", len(h.linked_functions), "linked,",
          len(h.runtime_resolved), "resolved at run time )")
