"""Cross-build _virtdisk for Windows with MinGW-w64 and inspect the result.

The build follows setup.py's Windows branch: the same Cython directives,
_WIN32_WINNT=0x0A00 and WIN32_LEAN_AND_MEAN, our header and
virtdisk_dispatch.h (so <windows.h> comes in but MinGW's <virtdisk.h> does
not), linked against MinGW's libvirtdisk.a and an import library for
python3XY.dll made from the PyAPI_FUNC/PyAPI_DATA declarations of CPython's
headers.  The resulting .pyd's import table is then checked: it must import
from VirtDisk.dll exactly the functions the header links, resolve the newer
ones by name at run time, and carry nothing of the portable engine.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vdheader  # noqa: E402

ROOT = vdheader.ROOT
PYX = ROOT / "src" / "_virtdisk.pyx"
ENGINE = ROOT / "src" / "vdengine"

# Mirrors setup.py, so that the cross-build compiles what the wheel compiles.
CYTHON_DIRECTIVES = "language_level=3,binding=True,embedsignature=True,autotestdict=False"
WINDOWS_MACROS = ["-D_WIN32_WINNT=0x0A00", "-DWIN32_LEAN_AND_MEAN"]

TARGETS = {
    "x86_64": ("x86_64-w64-mingw32", "win_amd64"),
    "i686": ("i686-w64-mingw32", "win32"),
}
# PC/pyconfig.h derives MS_WIN64 from _WIN64 only for MSVC.
TARGET_MACROS = {"x86_64": ["-DMS_WIN64"], "i686": []}

# DLLs every Windows has.  Anything else (libgcc_s, libwinpthread) would
# make the module fail to load on a machine without MinGW's runtime.
SYSTEM_DLLS = {"kernel32.dll", "msvcrt.dll", "advapi32.dll", "user32.dll", "shell32.dll",
               "virtdisk.dll"}


@dataclass
class Check:
    ok: bool
    message: str


@dataclass
class Build:
    target: str
    pyd: Path
    warnings: list[str] = field(default_factory=list)


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)


def cythonize(workdir: Path, pyx: Path = PYX) -> Path:
    out = workdir / "_virtdisk.c"
    run = _run([sys.executable, "-m", "cython", "-3", "--directive", CYTHON_DIRECTIVES,
                "-I", pyx.parent, "-o", out, pyx])
    if run.returncode != 0:
        raise RuntimeError(f"cython failed:\n{run.stdout}{run.stderr}")
    return out


def python_dll_name(include: Path) -> str:
    patchlevel = (include / "patchlevel.h").read_text()
    major = re.search(r"#define\s+PY_MAJOR_VERSION\s+(\d+)", patchlevel).group(1)
    minor = re.search(r"#define\s+PY_MINOR_VERSION\s+(\d+)", patchlevel).group(1)
    return f"python{major}{minor}"


def python_exports(include: Path) -> tuple[set[str], set[str]]:
    """Functions and data CPython's headers declare as exported (PyAPI_FUNC,
    PyAPI_DATA): the export table of python3XY.dll, as far as an extension
    can see it."""
    functions: set[str] = set()
    data: set[str] = set()
    declaration = r"\s*\((?:[^()]|\([^()]*\))*\)\s*\(?\s*\*?\s*((?:_?Py)\w*)"
    for header in include.rglob("*.h"):
        text = re.sub(r"/\*.*?\*/", " ", header.read_text(errors="replace"), flags=re.S)
        functions.update(re.findall(r"PyAPI_FUNC" + declaration, text))
        data.update(re.findall(r"PyAPI_DATA" + declaration, text))
    return functions - data, data


def python_import_library(target: str, include: Path, workdir: Path) -> Path:
    triplet = TARGETS[target][0]
    dll = python_dll_name(include)
    functions, data = python_exports(include)
    definition = workdir / f"{dll}-{target}.def"
    definition.write_text(f"LIBRARY {dll}.dll\nEXPORTS\n"
                          + "".join(f"    {name}\n" for name in sorted(functions))
                          + "".join(f"    {name} DATA\n" for name in sorted(data)))
    library = workdir / f"lib{dll}-{target}.a"
    run = _run([f"{triplet}-dlltool", "-d", definition, "-l", library, "-D", f"{dll}.dll"])
    if run.returncode != 0:
        raise RuntimeError(f"dlltool failed:\n{run.stderr}")
    return library


def compile_and_link(target: str, c_file: Path, include: Path, workdir: Path) -> Build:
    triplet, platform_tag = TARGETS[target]
    dll = python_dll_name(include)
    obj = workdir / f"_virtdisk-{target}.o"
    run = _run([f"{triplet}-gcc", "-c", "-O2", "-Wall", *WINDOWS_MACROS, *TARGET_MACROS[target],
                "-I", include, "-I", ROOT / "src" / "include", "-I", ROOT / "src",
                "-I", ROOT / "src" / "vdengine", c_file, "-o", obj])
    if run.returncode != 0:
        raise RuntimeError(f"{triplet}-gcc failed:\n{run.stderr}")
    warnings = [line for line in run.stderr.splitlines() if ": warning:" in line]
    library = python_import_library(target, include, workdir)
    pyd = workdir / f"_virtdisk.cp{dll[len('python'):]}-{platform_tag}.pyd"
    run = _run([f"{triplet}-gcc", "-shared", "-static-libgcc", "-o", pyd, obj,
                library, "-lvirtdisk"])
    if run.returncode != 0:
        raise RuntimeError(f"linking {pyd.name} failed:\n{run.stderr}")
    return Build(target, pyd, warnings)


def import_table(target: str, binary: Path) -> dict[str, set[str]]:
    """DLL (lower case) -> imported names, from objdump -p."""
    text = _run([f"{TARGETS[target][0]}-objdump", "-p", binary], check=True).stdout
    imports: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in text.splitlines():
        if line.startswith("The "):  # the next table of objdump's report
            current = None
        match = re.match(r"\s*DLL Name:\s*(\S+)", line)
        if match:
            current = imports.setdefault(match.group(1).lower(), set())
            continue
        # "<vma> <hint> <name>" lines list one import each.
        entry = re.match(r"\s*[0-9a-f]+\s+[0-9a-f]+\s+(\S+)\s*$", line)
        if current is not None and entry:
            current.add(entry.group(1))
    return imports


def export_table(target: str, binary: Path) -> set[str]:
    text = _run([f"{TARGETS[target][0]}-objdump", "-p", binary], check=True).stdout
    table = text.split("[Ordinal/Name Pointer] Table", 1)
    if len(table) < 2:
        return set()
    return set(re.findall(r"^\s*\[\s*\d+\]\s+(\S+)", table[1], flags=re.M))


def symbols(target: str, binary: Path) -> set[str]:
    text = _run([f"{TARGETS[target][0]}-nm", binary]).stdout
    names = set()
    for line in text.splitlines():
        parts = line.split()
        if parts:
            name = parts[-1]
            names.add(name[1:] if target == "i686" and name.startswith("_") else name)
    return names


def engine_names() -> set[str]:
    """Everything the portable engine declares for other files to call."""
    names: set[str] = set()
    for header in ENGINE.rglob("*.h"):
        text = re.sub(r"/\*.*?\*/", " ", header.read_text(), flags=re.S)
        names.update(re.findall(r"\b(vd_\w+)\s*\(", text))
    return names


def inspect(build: Build, header: vdheader.Header, python_dll: Path | None,
            python_dll_base: str) -> list[Check]:
    checks: list[Check] = []
    imports = import_table(build.target, build.pyd)
    name = f"{build.target} {build.pyd.name}"

    virtdisk = imports.get("virtdisk.dll", set())
    linked = set(header.linked_functions)
    checks.append(Check(
        virtdisk == linked,
        f"{name}: imports {len(virtdisk)} functions from VirtDisk.dll, the {len(linked)} "
        f"the header links" + _difference(virtdisk, linked)))

    resolved = set(header.runtime_resolved)
    imported_late = resolved & set().union(*imports.values())
    content = build.pyd.read_bytes()
    named = {n for n in resolved if n.encode() + b"\0" in content}
    kernel32 = imports.get("kernel32.dll", set())
    checks.append(Check(
        not imported_late and named == resolved
        and {"LoadLibraryExW", "GetProcAddress"} <= kernel32,
        f"{name}: resolves the {len(resolved)} newer functions by name at import "
        f"(LoadLibraryExW + GetProcAddress), imports none of them"
        + (f"; imported: {sorted(imported_late)}" if imported_late else "")
        + (f"; names missing: {sorted(resolved - named)}" if named != resolved else "")))

    # An engine linked in would define its vd_* functions and the API names
    # themselves; imported API names only have their import thunks.
    table = symbols(build.target, build.pyd)
    found = engine_names() & table
    defined_api = {n for n in header.functions if n in table and n not in virtdisk}
    checks.append(Check(
        "PyInit__virtdisk" in table and not found and not defined_api,
        f"{name}: carries no engine symbol ({len(table)} symbols read)"
        + (f"; found {sorted(found | defined_api)}" if found or defined_api else "")))

    dlls = set(imports)
    foreign = dlls - SYSTEM_DLLS - {f"{python_dll_base}.dll"}
    checks.append(Check(
        not foreign and f"{python_dll_base}.dll" in dlls,
        f"{name}: imports only from {', '.join(sorted(dlls))}"
        + (f"; not on every Windows: {sorted(foreign)}" if foreign else "")))

    if python_dll is not None:
        wanted = imports.get(f"{python_dll_base}.dll", set())
        missing = wanted - export_table(build.target, python_dll)
        checks.append(Check(
            not missing,
            f"{name}: all {len(wanted)} names it imports from {python_dll_base}.dll are "
            f"exported by the real {python_dll.name}"
            + (f"; missing: {sorted(missing)}" if missing else "")))

    exports = export_table(build.target, build.pyd)
    checks.append(Check(exports == {"PyInit__virtdisk"},
                        f"{name}: exports PyInit__virtdisk only"
                        + ("" if exports == {"PyInit__virtdisk"} else f"; exports {sorted(exports)}")))
    return checks


def _difference(got: set[str], wanted: set[str]) -> str:
    extra, missing = sorted(got - wanted), sorted(wanted - got)
    return (f"; unexpected: {extra}" if extra else "") + (f"; missing: {missing}" if missing else "")
