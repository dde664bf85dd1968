"""src/include/virtdisk_api.h under clang's Windows targets, both rule sets.

The wheels for Windows are built with MSVC, whose record-layout rules differ
from GCC's (MinGW-w64) in corners such as empty unions and zero-length
arrays.  Clang emulates either set by target: ``*-pc-windows-msvc`` lays
records out as MSVC does, ``*-w64-windows-gnu`` as MinGW's GCC does.  With
``-U_WIN32 -ffreestanding`` no Windows SDK is needed: the header takes its own
typedef path (fixed-width types of the Windows widths), and the layout pins
apply because _MSC_VER or __MINGW32__ is still defined.

Two services:

* ``header_checks``: the header, with its pins, compiles warning-free under
  the MSVC targets in C11, C99 (the pins' typedef fallback) and C++17, and
  every pin line of the header is in force there.
* ``measure``: compiles a probe unit whose file-scope constants
  ``vd_<key>`` hold numbers (sizes, offsets, values) and reads them back from
  clang's LLVM IR, so nothing has to run on Windows.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
INCLUDE = ROOT / "src" / "include"

# name -> (clang target, rule set, pointer width as in sdk=X64/X86)
TARGETS = {
    "x64-msvc": ("x86_64-pc-windows-msvc", "msvc", "x64"),
    "x86-msvc": ("i686-pc-windows-msvc", "msvc", "x86"),
    "x64-gnu": ("x86_64-w64-windows-gnu", "gnu", "x64"),
    "x86-gnu": ("i686-w64-windows-gnu", "gnu", "x86"),
}
MSVC_TARGETS = [name for name, (_, rules, _) in TARGETS.items() if rules == "msvc"]
FREESTANDING = ["-U_WIN32", "-ffreestanding"]
WARNINGS = ["-Wall", "-Wextra", "-Werror"]
LANGUAGES = {"C11": ["-x", "c", "-std=c11"], "C99": ["-x", "c", "-std=c99"],
             "C++17": ["-x", "c++", "-std=c++17"]}

# A pin line of the header: the macro at the start of a line, not its
# definition.
_PIN_LINE = re.compile(r"^VIRTDISK_API_(?:ASSERT|SIZE|OFFSET)\(", re.M)
_PINS_EXPANDED = re.compile(r"\b(?:_Static_assert|static_assert)\b|\bvirtdisk_api_assert_\w+\[")
_IR_CONSTANT = re.compile(r"^@vd_(\w+) = [^\n]*?constant i64 (-?\d+)", re.M)


class Unavailable(Exception):
    """Clang (Debian: clang) is not installed."""


def clang() -> str:
    path = shutil.which("clang")
    if path is None:
        raise Unavailable("needs clang (Debian: clang), which the test command installs")
    return path


def version() -> str:
    run = subprocess.run([clang(), "--version"], capture_output=True, text=True, check=True)
    return run.stdout.splitlines()[0]


@dataclass(frozen=True)
class Check:
    ok: bool
    message: str


def _compile(arguments: list[str], source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([clang(), *arguments, "-"], input=source, capture_output=True,
                          text=True, timeout=120)


def pin_count(header: Path) -> int:
    """How many layout pins the header states."""
    return len(_PIN_LINE.findall(header.read_text()))


def header_checks(header: Path = INCLUDE / "virtdisk_api.h") -> list[Check]:
    """The header and its pins under clang's MSVC targets."""
    include = ["-I", str(header.parent)]
    source = f'#include "{header.name}"\n'
    wanted = pin_count(header)
    checks: list[Check] = []
    for name in MSVC_TARGETS:
        triple = TARGETS[name][0]
        for language, flags in LANGUAGES.items():
            run = _compile([f"--target={triple}", *FREESTANDING, *WARNINGS, *flags, *include,
                            "-fsyntax-only"], source)
            detail = "compiles with -Wall -Wextra -Werror" if run.returncode == 0 else \
                "does not compile:\n      " + "\n      ".join(run.stderr.strip().splitlines()[:12])
            checks.append(Check(run.returncode == 0, f"{triple} {language}: {header.name} {detail}"))
        run = _compile([f"--target={triple}", *FREESTANDING, "-x", "c", "-std=c11", *include,
                        "-E", "-P"], source)
        live = len(_PINS_EXPANDED.findall(run.stdout)) if run.returncode == 0 else -1
        checks.append(Check(live == wanted, f"{triple}: {live} of the header's {wanted} "
                                            "layout pins are in force"))
    return checks


def measure(source: str, target: str, language: str = "c",
            include: Path = INCLUDE) -> dict[str, int]:
    """Compiles `source` for `target` (a key of TARGETS) and returns the value
    of each of its ``const unsigned long long vd_<key> = ...;`` definitions by
    key.  Raises RuntimeError with clang's messages when it does not compile."""
    triple = TARGETS[target][0]
    flags = ["-x", "c", "-std=c11"] if language == "c" else ["-x", "c++", "-std=c++17"]
    with tempfile.TemporaryDirectory(prefix="vd-clangwin-") as tmp:
        out = Path(tmp) / "probe.ll"
        run = _compile([f"--target={triple}", *FREESTANDING, *flags, "-I", str(include),
                        "-w", "-O0", "-S", "-emit-llvm", "-o", str(out)], source)
        if run.returncode != 0:
            raise RuntimeError(f"{triple}: the probe did not compile:\n{run.stderr}")
        ir = out.read_text()
    return {key: int(value) for key, value in _IR_CONSTANT.findall(ir)}
