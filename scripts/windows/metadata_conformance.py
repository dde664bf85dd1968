#!/usr/bin/env python3
"""Compare src/include/virtdisk_api.h with Microsoft's SDK metadata.

The facts of virtdisk.h come from win32metadata (win32metadata.py reads the
pinned PyPI package); the header's come from compiling it.  Every record of
both is laid out by clang under four targets, MSVC's and GCC's rules on x64
and x86 (clangwin.py): the metadata's records as C declarations generated
from it, the header's as the header declares them, with its own typedef path
(``-U_WIN32 -ffreestanding``).  Compared are

* every constant and enumerator value, and every GUID's bytes,
* every enum type's members and size,
* every record's members (as offsetof() paths), size, and each member's
  offset and size, on each of the four targets; the header's own GUID and
  OVERLAPPED (its non-Windows typedefs) too,
* every function: the DLL, the calling convention (WINAPI, __stdcall on
  x86), and the parameter list, names and types in order, and the return.

Differences the header makes on purpose are listed in DELIBERATE with the
reason; a difference not listed there fails, and a listed one that no longer
shows is reported too, so the list cannot go stale.

Exit status: 0 when everything agrees, 1 on a difference, 2 when clang or the
package is missing.
"""

from __future__ import annotations

import argparse
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clangwin  # noqa: E402
import vdheader  # noqa: E402
import win32metadata  # noqa: E402

VHD = win32metadata.NAMESPACE
# Records of other namespaces that the header defines itself off Windows.
OWN_TYPEDEFS = {"OVERLAPPED": "Windows.Win32.System.IO"}

# tag -> why; each tag is the first part of the difference lines it covers.
DELIBERATE = {
    "alias CREATE_VIRTUAL_DISK_FLAG_USE_RCT_SOURCE_LIMIT":
        "the SDK's macro alias of CREATE_VIRTUAL_DISK_FLAG_USE_CHANGE_TRACKING_SOURCE_LIMIT; "
        "win32metadata keeps no macro aliases of enumerators",
    "alias GET_STORAGE_DEPENDENCY_FLAG_PARENTS":
        "the SDK's macro alias of GET_STORAGE_DEPENDENCY_FLAG_HOST_VOLUMES; "
        "win32metadata keeps no macro aliases of enumerators",
    "size STORAGE_DEPENDENCY_INFO":
        "the SDK ends it with flexible arrays in a union, which win32metadata records as "
        "one-element arrays; the header has the SDK's form, so its entries start at 8 as "
        "the metadata's do, and its sizeof is the compiler's (no part of the ABI)",
    "member size STORAGE_DEPENDENCY_INFO.Version1Entries": "the same flexible array",
    "member size STORAGE_DEPENDENCY_INFO.Version2Entries": "the same flexible array",
    "returns":
        "the SDK's C declares DWORD, win32metadata the enumeration WIN32_ERROR over UInt32: "
        "the same 32-bit unsigned return",
}

# The header's parameter types, in the metadata's names (const dropped: the
# package does not carry it).
OUR_TYPES = {
    "DWORD": "UInt32", "ULONG": "UInt32", "ULONG64": "UInt64", "ULONGLONG": "UInt64",
    "HANDLE": "HANDLE", "PHANDLE": "HANDLE*", "PULONG": "UInt32*", "PULONG64": "UInt64*",
    "PCWSTR": "PWSTR", "PWSTR": "PWSTR", "PVOID": "VoidPtr", "void*": "VoidPtr",
    "PSECURITY_DESCRIPTOR": "PSECURITY_DESCRIPTOR", "LPOVERLAPPED": "OVERLAPPED*",
    "GUID*": "Guid*",
}


@dataclass
class Result:
    differences: list[str] = field(default_factory=list)
    deliberate: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def differ(self, tag: str, detail: str) -> None:
        line = f"{tag}: {detail}"
        if tag in DELIBERATE:
            self.deliberate.setdefault(tag, []).append(line)
        else:
            self.differences.append(line)

    @property
    def stale(self) -> list[str]:
        return sorted(set(DELIBERATE) - set(self.deliberate))


def _key(*parts: str) -> str:
    return "__".join(part.replace(".", "_D_") for part in parts)


@dataclass
class Layout:
    """What one side's probe asks about its records."""
    records: dict[str, list[str]]  # record -> member paths
    c_names: dict[str, str]  # record -> its C type name on that side

    def probe(self, prelude: str, extra: str = "") -> str:
        lines = [prelude, extra]
        for record, paths in self.records.items():
            c = self.c_names[record]
            lines.append(f"const unsigned long long vd_{_key('size', record)} = sizeof({c});")
            for path in paths:
                lines.append(f"const unsigned long long vd_{_key('offset', record, path)} = "
                             f"offsetof({c}, {path});")
                lines.append(f"const unsigned long long vd_{_key('msize', record, path)} = "
                             f"sizeof((({c} *)0)->{path});")
        return "\n".join(lines) + "\n"


def _our_functions(header: Path) -> dict[str, list[tuple[str, str]]]:
    """Each function type's parameters, (name, type as written)."""
    text = vdheader._api_part(vdheader._strip_comments(header.read_text()))
    functions = {}
    for name, body in re.findall(r"typedef\s+DWORD\s*\(\s*WINAPI\s+VIRTDISK_FN_(\w+)\s*\)\s*"
                                 r"\(([^;]*)\)\s*;", text):
        parameters = []
        for parameter in body.split(","):
            words = parameter.replace("*", " * ").split()
            parameters.append((words[-1], " ".join(words[:-1])))
        functions[name] = parameters
    return functions


def _our_pointer_typedefs(header: Path) -> dict[str, str]:
    text = vdheader._strip_comments(header.read_text())
    return {pointer: f"{name}*" for name, pointer in re.findall(r"\}\s*(\w+)\s*,\s*\*\s*(\w+)\s*;", text)}


def _canonical(written: str, pointers: dict[str, str], named: set[str]) -> str:
    words = [w for w in written.split() if w != "const"]
    text = "".join(words)
    if text in OUR_TYPES:
        return OUR_TYPES[text]
    if text in pointers and pointers[text].rstrip("*") in named:
        return pointers[text]
    if text.rstrip("*") in named:
        return text
    return f"?{written}"


def _guid_initializers(header: Path) -> dict[str, bytes]:
    text = header.read_text()
    result = {}
    for name, body in re.findall(r"#define\s+(VIRTDISK_API_VENDOR_\w+_INIT)\s*\\\s*\n\s*(\{.*?\}\s*\})",
                                 text, flags=re.S):
        numbers = [int(n, 16) for n in re.findall(r"0x([0-9a-fA-F]+)", body)]
        data = numbers[0].to_bytes(4, "little") + numbers[1].to_bytes(2, "little") \
            + numbers[2].to_bytes(2, "little") + bytes(numbers[3:])
        result[name] = data
    return result


def compare(header: Path = vdheader.HEADER) -> Result:
    """Everything; raises win32metadata.Unavailable or clangwin.Unavailable."""
    clangwin.clang()
    metadata = win32metadata.Metadata()
    vhd = metadata.vhd
    ours = vdheader.read(header, vdheader.DISPATCH)
    result = Result()

    # -- constants, enumerators, GUIDs -------------------------------------
    our_enumerators = {m: e for e, members in ours.enums.items() for m in members}
    our_names = sorted(set(ours.constants) | set(our_enumerators))
    theirs = {name: value for name, (_, value) in vhd.constants.items()}
    value_source = "\n".join(
        f"const unsigned long long vd_{_key('value', name)} = (unsigned long long)({name});"
        for name in our_names)
    enum_source = "\n".join(f"const unsigned long long vd_{_key('enum', name)} = sizeof({name});"
                            for name in ours.enums)

    # -- records -----------------------------------------------------------
    records = sorted(set(ours.structs) | set(vhd.records))
    for name in sorted(set(vhd.records) - set(ours.structs)):
        result.differ(f"record {name}", "in the metadata, not in the header")
    for name in sorted(set(ours.structs) - set(vhd.records)):
        result.differ(f"record {name}", "in the header, not in the metadata")
    shared = [name for name in records if name in ours.structs and name in vhd.records]
    their_paths = {name: metadata.member_paths(VHD, name) for name in shared}
    for name, namespace in OWN_TYPEDEFS.items():
        their_paths[name] = metadata.member_paths(namespace, name)
    their_paths["Guid"] = ["Data1", "Data2", "Data3", "Data4"]
    our_paths = {name: ours.structs[name].fields for name in shared}
    our_paths.update({name: their_paths[name] for name in OWN_TYPEDEFS})
    our_paths["Guid"] = their_paths["Guid"]
    for name in shared:
        if our_paths[name] != their_paths[name]:
            result.differ(f"members {name}", f"header {our_paths[name]}, metadata {their_paths[name]}")
    both = {name: [p for p in our_paths[name] if p in their_paths[name]] for name in our_paths}
    our_layout = Layout(both, {name: "GUID" if name == "Guid" else name for name in both})
    their_layout = Layout(both, {name: f"md_{name}" for name in both})
    declarations = metadata.c_declarations(
        [(VHD, name) for name in shared] + [(ns, name) for name, ns in OWN_TYPEDEFS.items()])
    our_source = our_layout.probe('#include <stddef.h>\n#include "virtdisk_api.h"\n',
                                  value_source + "\n" + enum_source)
    their_source = their_layout.probe("#include <stddef.h>\n" + declarations)

    jobs = [(side, target) for side in ("ours", "theirs") for target in clangwin.TARGETS]

    def measure(job: tuple[str, str]) -> dict[str, int]:
        side, target = job
        source = our_source if side == "ours" else their_source
        return clangwin.measure(source, target, include=header.parent)

    with ThreadPoolExecutor(max_workers=2) as pool:
        numbers = dict(zip(jobs, pool.map(measure, jobs)))

    first = numbers[("ours", "x64-msvc")]
    for name in our_names:
        value = first[_key("value", name)]
        if name not in theirs:
            result.differ(f"alias {name}" if name in ours.constants else f"constant {name}",
                          f"header {value:#x}, not in the metadata")
        elif value != theirs[name] & 0xFFFFFFFFFFFFFFFF:
            result.differ(f"constant {name}", f"header {value:#x}, metadata {theirs[name]:#x}")
    for name in sorted(set(theirs) - set(our_names)):
        result.differ(f"constant {name}", "in the metadata, not in the header")
    for target in clangwin.TARGETS:
        if any(numbers[("ours", target)][_key("value", n)] != first[_key("value", n)]
               for n in our_names):
            result.differ(f"constant values on {target}", "differ from x64-msvc")

    their_guids = vhd.guids
    our_guids = _guid_initializers(header)
    for name, data in their_guids.items():
        initializer = f"VIRTDISK_API_{name.removeprefix('VIRTUAL_STORAGE_TYPE_')}_INIT"
        if our_guids.get(initializer) != data:
            result.differ(f"guid {name}", f"{initializer} is "
                          f"{our_guids.get(initializer, b'').hex() or 'missing'}, "
                          f"metadata {data.hex()}")

    their_enums = vhd.enum_members()
    for name in sorted(set(their_enums) | set(ours.enums)):
        if name not in ours.enums or name not in their_enums:
            result.differ(f"enum {name}", "only in the " + ("metadata" if name in their_enums
                                                              else "header"))
            continue
        if set(ours.enums[name]) != set(their_enums[name]):
            result.differ(f"enum {name}", f"members differ: header {sorted(ours.enums[name])}, "
                          f"metadata {sorted(their_enums[name])}")
        underlying = metadata.resolve(win32metadata.Ref("named", name, VHD))
        width = {"Int32": 4, "UInt32": 4}.get(getattr(underlying, "name", ""), 0)
        for target in clangwin.TARGETS:
            size = numbers[("ours", target)][_key("enum", name)]
            if size != width:
                result.differ(f"enum size {name}", f"{target}: header {size}, metadata {width}")

    for name, paths in both.items():
        for target in clangwin.TARGETS:
            mine, other = numbers[("ours", target)], numbers[("theirs", target)]
            a, b = mine[_key("size", name)], other[_key("size", name)]
            if a != b:
                result.differ(f"size {name}", f"{target}: header {a}, metadata {b}")
            for path in paths:
                for kind, label in (("offset", "offset"), ("msize", "member size")):
                    a, b = mine[_key(kind, name, path)], other[_key(kind, name, path)]
                    if a != b:
                        result.differ(f"{label} {name}.{path}", f"{target}: header {a}, metadata {b}")

    # -- functions ---------------------------------------------------------
    our_functions = _our_functions(header)
    pointers = _our_pointer_typedefs(header)
    named = set(ours.structs) | set(ours.enums) | {"HANDLE", "Guid", "OVERLAPPED"}
    for name in sorted(set(vhd.functions) | set(our_functions)):
        if name not in our_functions or name not in vhd.functions:
            result.differ(f"function {name}", "only in the " + ("metadata" if name in vhd.functions
                                                                else "header"))
            continue
        function = vhd.functions[name]
        if function.dll != "VirtDisk.dll" or function.convention != "winfunctype":
            result.differ(f"function {name}", f"metadata has {function.convention}"
                          f"({function.dll!r}); the header links VirtDisk.dll with WINAPI")
        mine_params = [(p, _canonical(t, pointers, named)) for p, t in our_functions[name]]
        their_params = [(p.name, str(p.type)) for p in function.parameters]
        if mine_params != their_params:
            result.differ(f"parameters {name}", f"header {mine_params}, metadata {their_params}")
        returns = metadata.resolve(function.returns) if function.returns.kind == "named" \
            else function.returns
        if str(function.returns) != "UInt32":
            result.differ("returns", f"{name}: header DWORD, metadata {function.returns}")
        if str(returns) != "UInt32":
            result.differ(f"return {name}", f"metadata {function.returns} is {returns}, not UInt32")

    result.counts = {
        "constants": len(theirs), "GUIDs": len(their_guids), "enums": len(their_enums),
        "records": len(shared), "own typedefs": len(OWN_TYPEDEFS) + 1,
        "member offsets": sum(len(p) for n, p in both.items() if n in shared),
        "functions": len(vhd.functions),
        "parameters": sum(len(f.parameters) for f in vhd.functions.values()),
        "targets": len(clangwin.TARGETS),
    }
    result.notes.append(f"{win32metadata.DISTRIBUTION} {win32metadata.distribution_version()}, "
                        f"{clangwin.version()}")
    return result


def report(result: Result) -> list[str]:
    lines = ["compared with Microsoft's metadata (" + result.notes[0] + "): "
             + ", ".join(f"{n} {what}" for what, n in result.counts.items())
             + " (x64 and x86, MSVC's and GCC's rules)"]
    for tag, where in sorted(result.deliberate.items()):
        lines.append(f"deliberate {tag}: {DELIBERATE[tag]}")
        lines += [f"    {line}" for line in where[:4]]
        if len(where) > 4:
            lines.append(f"    and {len(where) - 4} more")
    lines += [f"STALE deliberate difference {tag}: no longer seen" for tag in result.stale]
    lines += [f"FAIL {line}" for line in result.differences]
    ok = not result.differences and not result.stale
    lines.append("metadata conformance: " + ("ok" if ok else "FAILED"))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--header", type=Path, default=vdheader.HEADER,
                        help="check this copy of virtdisk_api.h")
    args = parser.parse_args(argv)
    try:
        result = compare(args.header.resolve())
    except (clangwin.Unavailable, win32metadata.Unavailable) as reason:
        print(f"metadata conformance: {reason}", file=sys.stderr)
        return 2
    lines = report(result)
    print("\n".join(lines))
    return 0 if lines[-1].endswith(": ok") else 1


if __name__ == "__main__":
    sys.exit(main())
