#!/usr/bin/env python3
"""Prove src/include/virtdisk_api.h equal to MinGW-w64's <virtdisk.h> and the SDK.

Both headers cannot share a translation unit (ours claims MinGW's include
guard, and they declare the same names), so the comparison goes through
numbers: for each target (x86_64, i686) and each header this script generates

* a C11 unit whose array ``vd_values`` holds, in the order of
  conformance.list, every constant and enumerator value, every type size and
  every member offset and size, and
* a C++17 unit whose array ``vd_signatures`` describes every function (number
  of parameters, calling convention, and for the return value and each
  parameter: kind, size, signedness, and the type pointed to, by name) and
  holds the bytes of every GUID (C cannot take a function type apart; C++
  templates can, and the struct layouts stay with the C compiler),

compiles them with MinGW-w64, copies the arrays out of the object files'
own sections with objcopy and compares the numbers.  Nothing is run, so no
Windows and no Wine is needed.

Items the MinGW header lacks show up as compile errors on their own line of
the generated unit; they are left out of that side and reported, not compared.
Our side must compile cleanly, with -Wall -Wextra -Werror.

Exit status: 0 when everything agrees (known differences aside), 1 on any
disagreement or incomplete list, 2 when a compiler is missing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vdheader  # noqa: E402

ROOT = vdheader.ROOT
LIST = Path(__file__).resolve().parent / "conformance.list"
TARGETS = {"x86_64": 0, "i686": 1}  # index into sdk=X64/X86
MAX_PARAMS = 10
TYPE_WORDS = 7
SIGNATURE_WORDS = 2 + TYPE_WORDS * (1 + MAX_PARAMS)
KINDS = {1: "void", 2: "integer", 3: "enum", 4: "pointer", 5: "struct"}


@dataclass
class Item:
    kind: str  # const, guid, enum, member, struct, field, function
    name: str  # for field: "TYPE PATH"
    line: int
    owner: str = ""  # enum type of a member, struct type of a field
    path: str = ""
    initializer: str = ""
    sdk: tuple[int, int] | None = None
    difference: str = ""

    @property
    def label(self) -> str:
        if self.kind == "field":
            return f"{self.owner}.{self.path}"
        return self.name

    def words(self) -> int:
        return {"field": 2, "function": SIGNATURE_WORDS, "guid": 16}.get(self.kind, 1)


@dataclass
class ConformanceList:
    items: list[Item] = field(default_factory=list)
    differences: dict[str, str] = field(default_factory=dict)


def parse_list(path: Path = LIST) -> ConformanceList:
    result = ConformanceList()
    owner = ("", "")
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        text = raw.split("#", 1)[0].rstrip()
        if not text.strip():
            continue
        if text.startswith("difference "):
            _, tag, description = text.split(None, 2)
            result.differences[tag] = description
            continue
        words = text.split()
        options = dict(w.split("=", 1) for w in words if "=" in w)
        words = [w for w in words if "=" not in w]
        sdk = None
        if "sdk" in options:
            x64, x86 = options.pop("sdk").split("/")
            sdk = (int(x64), int(x86))
        difference = options.pop("mingw", "")
        if options:
            raise ValueError(f"{path.name}:{number}: unknown option {sorted(options)}")
        if raw[:1].isspace():
            kind_of_owner, owner_name = owner
            if kind_of_owner == "enum":
                item = Item("member", words[0], number, owner=owner_name)
            elif kind_of_owner == "struct":
                item = Item("field", f"{owner_name} {words[0]}", number, owner=owner_name, path=words[0])
            else:
                raise ValueError(f"{path.name}:{number}: indented line outside an enum or struct")
        else:
            kind = words[0]
            if kind not in ("const", "guid", "enum", "struct", "function"):
                raise ValueError(f"{path.name}:{number}: unknown kind {kind!r}")
            item = Item(kind, words[1], number)
            if kind == "guid":
                item.initializer = words[2]
            owner = (kind, words[1]) if kind in ("enum", "struct") else ("", "")
        item.sdk = sdk
        item.difference = difference
        if difference and difference not in result.differences:
            raise ValueError(f"{path.name}:{number}: difference {difference!r} is not declared")
        if sdk is not None and item.kind not in ("struct", "field"):
            raise ValueError(f"{path.name}:{number}: sdk= applies to structs and members only")
        result.items.append(item)
    return result


def completeness_errors(listed: ConformanceList, header: vdheader.Header) -> list[str]:
    """What the header declares and the list lacks, and the other way round."""
    declared: set[tuple[str, str]] = set()
    declared.update(("const", c) for c in header.constants)
    declared.update(("guid-initializer", g) for g in header.guid_initializers)
    for enum, members in header.enums.items():
        declared.add(("enum", enum))
        declared.update(("member", m) for m in members)
    for struct_ in header.structs.values():
        declared.add(("struct", struct_.name))
        declared.update(("field", f"{struct_.name} {p}") for p in struct_.fields)
    declared.update(("function", f) for f in header.functions)

    in_list: set[tuple[str, str]] = set()
    for item in listed.items:
        if item.kind == "guid":
            in_list.add(("guid-initializer", item.initializer))
        else:
            in_list.add((item.kind, item.name))
    errors = [f"virtdisk_api.h declares {kind} {name.replace(' ', '.')}, which "
              f"conformance.list lacks" for kind, name in sorted(declared - in_list)]
    errors += [f"conformance.list names {kind} {name.replace(' ', '.')}, which "
               f"virtdisk_api.h does not declare" for kind, name in sorted(in_list - declared)]
    return errors


# ---------------------------------------------------------------------------
# Generated translation units

C_PRELUDE = {
    "ours": '#include <stddef.h>\n#include "virtdisk_api.h"\n',
    "mingw": "#include <stddef.h>\n#include <windows.h>\n#include <virtdisk.h>\n",
}

# MinGW's DEFINE_GUID declares an extern object (or defines one under
# INITGUID); a constexpr object lets the GUID's bytes into the table.
CXX_PRELUDE = {
    "ours": '#include "virtdisk_api.h"\n',
    "mingw": (
        "#define _INC_VIRTDISK\n#include <windows.h>\n#undef _INC_VIRTDISK\n"
        "#undef DEFINE_GUID\n"
        "#define DEFINE_GUID(n, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) \\\n"
        "    constexpr GUID n = {l, w1, w2, {b1, b2, b3, b4, b5, b6, b7, b8}};\n"
        "#include <virtdisk.h>\n"
    ),
}

CXX_DESCRIBE = r"""
#include <type_traits>

typedef unsigned long long vd_word;

struct vd_signature { vd_word v[%(words)d]; };
struct vd_guid_bytes { vd_word v[16]; };

template <class T> constexpr vd_word vd_type_id();

/* kind, size, signed, name id; then the same three (size or id) of the
   pointed-to type: enough to tell apart every ABI-relevant difference. */
template <class T> constexpr void vd_describe_type(vd_word *out)
{
    using U = typename std::remove_cv<T>::type;
    if constexpr (std::is_void<U>::value) {
        out[0] = 1;
    } else if constexpr (std::is_enum<U>::value) {
        out[0] = 3; out[1] = sizeof(U); out[3] = vd_type_id<U>();
    } else if constexpr (std::is_integral<U>::value) {
        out[0] = 2; out[1] = sizeof(U); out[2] = std::is_signed<U>::value;
    } else if constexpr (std::is_pointer<U>::value) {
        out[0] = 4; out[1] = sizeof(U);
        using P = typename std::remove_cv<typename std::remove_pointer<U>::type>::type;
        if constexpr (std::is_void<P>::value) {
            out[4] = 1;
        } else if constexpr (std::is_enum<P>::value || std::is_class<P>::value || std::is_union<P>::value) {
            out[4] = std::is_enum<P>::value ? 3 : 5; out[5] = vd_type_id<P>();
        } else {
            out[4] = std::is_pointer<P>::value ? 4 : 2; out[5] = sizeof(P);
            out[6] = std::is_signed<P>::value;
        }
    } else {
        out[0] = 5; out[1] = sizeof(U); out[3] = vd_type_id<U>();
    }
}

template <class R, class... A> constexpr vd_signature vd_describe(vd_word callconv)
{
    vd_signature s{};
    s.v[0] = sizeof...(A);
    s.v[1] = callconv;
    vd_describe_type<R>(s.v + 2);
    vd_word *out = s.v + 2 + %(type_words)d;
    ((vd_describe_type<A>(out), out += %(type_words)d), ...);
    return s;
}

/* On i686 the calling convention is part of the function type; elsewhere
   __stdcall is ignored and one overload is all there is. */
#ifdef __i386__
template <class R, class... A> constexpr vd_signature vd_sig(R(__stdcall *)(A...)) { return vd_describe<R, A...>(1); }
template <class R, class... A> constexpr vd_signature vd_sig(R(__cdecl *)(A...)) { return vd_describe<R, A...>(2); }
#else
template <class R, class... A> constexpr vd_signature vd_sig(R (*)(A...)) { return vd_describe<R, A...>(0); }
#endif

constexpr vd_guid_bytes vd_guid(const GUID &g)
{
    vd_guid_bytes b{};
    for (int i = 0; i < 4; i++) b.v[i] = (g.Data1 >> (8 * i)) & 0xff;
    for (int i = 0; i < 2; i++) b.v[4 + i] = (g.Data2 >> (8 * i)) & 0xff;
    for (int i = 0; i < 2; i++) b.v[6 + i] = (g.Data3 >> (8 * i)) & 0xff;
    for (int i = 0; i < 8; i++) b.v[8 + i] = g.Data4[i];
    return b;
}
"""


@dataclass
class Unit:
    source: str
    line_items: dict[int, int]  # source line -> index of the item (or named type)


def _c_unit(side: str, items: list[Item], absent: set[int]) -> Unit:
    lines = C_PRELUDE[side].splitlines()
    lines.append('__attribute__((section(".vdval"), used))')
    lines.append("const unsigned long long vd_values[] = {")
    line_items = {}
    for index, item in enumerate(items):
        if item.kind in ("function", "guid"):
            continue
        if index in absent:
            expr = ", ".join(["0"] * item.words())
        elif item.kind in ("const", "member"):
            expr = f"(unsigned long long)({item.name})"
        elif item.kind in ("enum", "struct"):
            expr = f"sizeof({item.name})"
        else:
            expr = f"offsetof({item.owner}, {item.path}), sizeof((({item.owner} *)0)->{item.path})"
        lines.append(f"    {expr},")
        line_items[len(lines)] = index
    lines.append("};")
    # Functions and GUIDs are measured by the C++ unit; naming them here
    # finds out in the same compile whether the header has them.
    lines.append("const void *const vd_probes[] = {")
    for index, item in enumerate(items):
        if item.kind in ("function", "guid") and index not in absent:
            named = item.name if item.kind == "function" or side == "mingw" else \
                f"(const GUID){item.initializer}"
            lines.append(f"    (const void *)&{named},")
            line_items[len(lines)] = index
    lines.append("    0,")
    lines.append("};")
    return Unit("\n".join(lines) + "\n", line_items)


def _cxx_unit(side: str, items: list[Item], type_names: list[str], absent: set[int],
              absent_types: set[int]) -> Unit:
    lines = CXX_PRELUDE[side].splitlines()
    lines += (CXX_DESCRIBE % {"words": SIGNATURE_WORDS, "type_words": TYPE_WORDS}).splitlines()
    line_items: dict[int, int] = {}
    lines.append("template <class T> constexpr vd_word vd_type_id() { return")
    for number, name in enumerate(type_names):
        if number not in absent_types:
            lines.append(f"    std::is_same<T, {name}>::value ? {number + 1} :")
            line_items[len(lines)] = -1 - number
    lines.append("    0; }")

    lines.append('extern "C" __attribute__((section(".vdsig"), used))')
    lines.append("const vd_signature vd_signatures[] = {")
    for index, item in enumerate(items):
        if item.kind != "function":
            continue
        lines.append("    vd_signature{}," if index in absent else f"    vd_sig(&{item.name}),")
        line_items[len(lines)] = index
    lines.append("    vd_signature{},")  # keeps the array non-empty
    lines.append("};")

    guids = [(index, item) for index, item in enumerate(items) if item.kind == "guid"]
    for index, item in guids:
        if index not in absent:
            value = item.name if side == "mingw" else item.initializer
            lines.append(f"constexpr GUID vd_guid_{index} = {value};")
            line_items[len(lines)] = index
    lines.append('extern "C" __attribute__((section(".vdguid"), used))')
    lines.append("const vd_guid_bytes vd_guids[] = {")
    for index, item in guids:
        lines.append("    vd_guid_bytes{}," if index in absent else f"    vd_guid(vd_guid_{index}),")
        line_items[len(lines)] = index
    lines.append("    vd_guid_bytes{},")
    lines.append("};")
    return Unit("\n".join(lines) + "\n", line_items)


# ---------------------------------------------------------------------------
# Compiling and reading back


class CompileError(Exception):
    pass


# What GCC says when a line names something the header does not declare.  Any
# other error (a type that does not fit, an ambiguous call) is not taken for
# absence: it fails the check.
ABSENT_NAME = re.compile(
    r"undeclared|was not declared in this scope|has no member named|unknown type name"
    r"|does not name a type|expected expression before|expected specifier-qualifier-list before"
    r"|template argument \d+ is invalid")


def _compile(compiler: list[str], source_path: Path, unit: Unit) -> tuple[Path, set[int], str]:
    """Compiles; returns the object, the items on failing lines, and the log."""
    source_path.write_text(unit.source)
    obj = source_path.with_suffix(".o")
    run = subprocess.run(compiler + ["-c", str(source_path), "-o", str(obj)],
                         capture_output=True, text=True)
    if run.returncode == 0:
        return obj, set(), run.stderr
    failing: set[int] = set()
    stray = []
    for match in re.finditer(rf"^{re.escape(str(source_path))}:(\d+):\d+: error: (.*)$",
                             run.stderr, flags=re.M):
        line = int(match.group(1))
        if line in unit.line_items and ABSENT_NAME.search(match.group(2)):
            failing.add(unit.line_items[line])
        else:
            stray.append(match.group(0))
    if stray or not failing:
        raise CompileError(run.stderr)
    return obj, failing, run.stderr


def _section_words(objcopy: str, obj: Path, section: str) -> list[int]:
    out = obj.with_suffix(section)
    subprocess.run([objcopy, "-O", "binary", f"--only-section={section}", str(obj), str(out)],
                   check=True)
    data = out.read_bytes()
    return list(struct.unpack(f"<{len(data) // 8}Q", data[: len(data) // 8 * 8]))


@dataclass
class SideResult:
    values: dict[int, list[int]]  # item index -> words
    absent: set[int]
    absent_types: set[int]
    version: str = ""


def measure(side: str, target: str, listed: ConformanceList, type_names: list[str],
            workdir: Path, include_dir: Path = vdheader.HEADER.parent) -> SideResult:
    items = listed.items
    gcc = [f"{target}-w64-mingw32-gcc", "-std=c11", "-D_WIN32_WINNT=0x0A00", "-O0"]
    gxx = [f"{target}-w64-mingw32-g++", "-std=c++17", "-D_WIN32_WINNT=0x0A00", "-O0"]
    if side == "ours":
        flags = ["-Wall", "-Wextra", "-Werror", f"-I{include_dir}"]
        gcc += flags
        gxx += flags
    else:
        gcc.append("-w")
        gxx.append("-w")
    objcopy = f"{target}-w64-mingw32-objcopy"

    absent: set[int] = set()
    absent_types: set[int] = set()
    for _ in range(4):
        obj, failing, log = _compile(gcc, workdir / f"{side}_{target}_values.c",
                                     _c_unit(side, items, absent))
        if not failing:
            break
        if side == "ours":
            raise CompileError(log)
        absent |= failing
    else:
        raise CompileError(log)
    values_words = _section_words(objcopy, obj, ".vdval")

    absent_types = {type_names.index(items[i].name) for i in absent
                    if items[i].kind in ("enum", "struct")}
    for _ in range(4):
        unit = _cxx_unit(side, items, type_names, absent, absent_types)
        cxx_obj, failing, log = _compile(gxx, workdir / f"{side}_{target}_signatures.cpp", unit)
        if not failing:
            break
        if side == "ours":
            raise CompileError(log)
        absent |= {i for i in failing if i >= 0}
        absent_types |= {-1 - i for i in failing if i < 0}
    else:
        raise CompileError(log)
    signature_words = _section_words(objcopy, cxx_obj, ".vdsig")
    guid_words = _section_words(objcopy, cxx_obj, ".vdguid")

    values: dict[int, list[int]] = {}
    cursor = {"values": 0, "sig": 0, "guid": 0}
    for index, item in enumerate(items):
        n = item.words()
        if item.kind == "function":
            words, key = signature_words, "sig"
        elif item.kind == "guid":
            words, key = guid_words, "guid"
        else:
            words, key = values_words, "values"
        values[index] = words[cursor[key]: cursor[key] + n]
        cursor[key] += n
    return SideResult(values, absent, absent_types)


def mingw_version(target: str, workdir: Path) -> str:
    source = workdir / f"version_{target}.c"
    source.write_text("#include <_mingw.h>\n__MINGW64_VERSION_MAJOR.__MINGW64_VERSION_MINOR\n")
    run = subprocess.run([f"{target}-w64-mingw32-gcc", "-E", "-P", str(source)],
                         capture_output=True, text=True, check=True)
    return run.stdout.strip().splitlines()[-1].replace(" ", "")


# ---------------------------------------------------------------------------
# Comparing


def _describe_signature(words: list[int], type_names: list[str]) -> str:
    def one(w: list[int]) -> str:
        kind = KINDS.get(w[0], "?")
        if kind == "void":
            return "void"
        if kind in ("enum", "struct"):
            return type_names[w[3] - 1] if w[3] else f"{kind}{w[1] * 8}"
        if kind == "integer":
            return f"{'int' if w[2] else 'uint'}{w[1] * 8}"
        pointee = KINDS.get(w[4], "?")
        if pointee in ("enum", "struct"):
            target = type_names[w[5] - 1] if w[5] else pointee
        elif pointee == "void":
            target = "void"
        elif pointee == "pointer":
            target = f"ptr{w[5] * 8}"
        else:
            target = f"{'int' if w[6] else 'uint'}{w[5] * 8}"
        return f"{target} *"

    count, callconv = words[0], words[1]
    types = [one(words[2 + TYPE_WORDS * i: 2 + TYPE_WORDS * (i + 1)]) for i in range(count + 1)]
    convention = {0: "", 1: "__stdcall ", 2: "__cdecl "}.get(callconv, "?")
    return f"{types[0]} {convention}({', '.join(types[1:])})"


def _show(item: Item, words: list[int], type_names: list[str]) -> str:
    if item.kind == "function":
        return _describe_signature(words, type_names)
    if item.kind == "field":
        return f"offset {words[0]}, size {words[1]}"
    if item.kind == "guid":
        return bytes(words).hex()
    if item.kind in ("enum", "struct"):
        return f"size {words[0]}"
    return hex(words[0])


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def compare(listed: ConformanceList, type_names: list[str], ours: dict[str, SideResult],
            mingw: dict[str, SideResult]) -> Report:
    report = Report()
    items = listed.items
    seen_differences: dict[str, set[str]] = {tag: set() for tag in listed.differences}
    sdk_checked = 0
    for target, column in TARGETS.items():
        for index, item in enumerate(items):
            mine = ours[target].values[index]
            if item.sdk is not None:
                sdk_checked += 1
                expected = item.sdk[column]
                got = mine[0]
                if got != expected:
                    report.failures.append(
                        f"{target}: {item.label}: our header has {'size' if item.kind == 'struct' else 'offset'} "
                        f"{got}, the SDK {expected}")
            if index in mingw[target].absent:
                continue
            theirs = mingw[target].values[index]
            if mine == theirs:
                continue
            shown = (f"{target}: {item.label}: ours {_show(item, mine, type_names)}, "
                     f"MinGW {_show(item, theirs, type_names)}")
            if item.difference:
                seen_differences[item.difference].add(f"{item.label} ({target})")
            else:
                report.failures.append(shown)

    kinds = [("constants and enumerators", ("const", "member")), ("type sizes", ("enum", "struct")),
             ("member offsets and sizes", ("field",)), ("signatures", ("function",)),
             ("GUIDs", ("guid",))]
    for target in TARGETS:
        absent = mingw[target].absent
        counts = ", ".join(
            f"{label} {sum(1 for i, it in enumerate(items) if it.kind in group and i not in absent)}"
            f"/{sum(1 for it in items if it.kind in group)}" for label, group in kinds)
        report.lines.append(f"{target}: compared {len(items) - len(absent)} of {len(items)} items "
                            f"with MinGW-w64 ({counts}); MinGW-w64 lacks the other {len(absent)}")
    lacking_functions = sorted({items[i].name for t in TARGETS for i in mingw[t].absent
                                if items[i].kind == "function"})
    report.lines.append(f"functions MinGW-w64 lacks: {', '.join(lacking_functions) or 'none'}")
    report.lines.append(f"checked {sdk_checked // len(TARGETS)} sizes and offsets of our header against "
                        f"the SDK's (research/virtdisk-api.md section 2.5) for x64 and x86")
    for tag, description in listed.differences.items():
        where = sorted(seen_differences[tag])
        if where:
            report.lines.append(f"known MinGW difference {tag}: {description}")
            report.lines.append(f"    differs at: {', '.join(where)}")
        else:
            report.lines.append(f"known MinGW difference {tag}: not present in this MinGW-w64")
    return report


def _shown_path(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="list the items MinGW-w64 lacks")
    parser.add_argument("--workdir", type=Path, help="keep the generated units here")
    parser.add_argument("--list", type=Path, default=LIST, help="use this conformance list")
    parser.add_argument("--header", type=Path, default=vdheader.HEADER,
                        help="check this copy of virtdisk_api.h (its directory must also "
                             "hold virtdisk_dispatch.h)")
    args = parser.parse_args(argv)

    missing = [f"{t}-w64-mingw32-{tool}" for t in TARGETS for tool in ("gcc", "g++", "objcopy")
               if shutil.which(f"{t}-w64-mingw32-{tool}") is None]
    if missing:
        print(f"conformance: missing {', '.join(missing)} (Debian: mingw-w64)", file=sys.stderr)
        return 2

    listed = parse_list(args.list)
    header = args.header.resolve()
    errors = completeness_errors(listed, vdheader.read(header, header.parent / "virtdisk_dispatch.h"))
    if errors:
        print("\n".join(f"FAIL {e}" for e in errors))
        return 1
    type_names = ["GUID", "OVERLAPPED"] + [i.name for i in listed.items if i.kind in ("enum", "struct")]

    with tempfile.TemporaryDirectory(prefix="vd-conformance-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        jobs = [(side, target) for side in ("ours", "mingw") for target in TARGETS]
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                results = dict(zip(jobs, pool.map(
                    lambda job: measure(*job, listed, type_names, workdir, header.parent), jobs)))
        except CompileError as error:
            print(f"FAIL a generated unit did not compile:\n{error}")
            return 1
        version = mingw_version("x86_64", workdir)
    ours = {t: results[("ours", t)] for t in TARGETS}
    mingw = {t: results[("mingw", t)] for t in TARGETS}

    report = compare(listed, type_names, ours, mingw)
    print(f"conformance of {_shown_path(header)} ({len(listed.items)} items in "
          f"{_shown_path(args.list)}) with MinGW-w64 {version} <virtdisk.h>")
    for line in report.lines:
        print(line)
    if args.verbose:
        for target in TARGETS:
            names = [listed.items[i].label for i in sorted(mingw[target].absent)]
            print(f"{target}: MinGW-w64 lacks: {', '.join(names)}")
    for failure in report.failures:
        print(f"FAIL {failure}")
    print("conformance: " + ("FAILED" if report.failures else "ok"))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
