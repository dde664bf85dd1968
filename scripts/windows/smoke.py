"""Run tests/windows_smoke/ on the Windows embeddable CPython under Wine.

The expected data the smoke tests compare against is prepared here, on the
host, from sources that do not depend on the Windows build: the enum values
written in stubs/_virtdisk.pyi, what the Linux build of _virtdisk raises for
the same calls (when it is importable), and the export table of Wine's own
VirtDisk.dll (which decides what features() must report).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import crossbuild  # noqa: E402
import vdheader  # noqa: E402

ROOT = vdheader.ROOT
SMOKE = ROOT / "tests" / "windows_smoke"
STUB = ROOT / "stubs" / "_virtdisk.pyi"
WINE_PREFIX = ROOT / "build" / "wine"
LINUX_MISSING_PATH = "/nonexistent-virtdisk-smoke-test/disk.vhdx"


def stub_enums(stub: Path = STUB) -> dict[str, dict[str, Any]]:
    tree = ast.parse(stub.read_text())
    result = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [b.attr for b in node.bases if isinstance(b, ast.Attribute)
                 and isinstance(b.value, ast.Name) and b.value.id == "enum"]
        if not bases:
            continue
        members = {}
        for statement in node.body:
            if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                    and isinstance(statement.targets[0], ast.Name)):
                members[statement.targets[0].id] = ast.literal_eval(statement.value)
        result[node.name] = {"base": bases[0], "members": members}
    return result


def linux_expectations() -> tuple[Any, Any]:
    """Enum values and argument-check outcomes of the Linux build, or Nones."""
    code = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(SMOKE)!r}, {str(ROOT / 'src')!r}]\n"
        "import _virtdisk, cases\n"
        f"calls = cases.open_argument_cases(_virtdisk, {LINUX_MISSING_PATH!r})\n"
        "print(json.dumps([cases.enum_values(_virtdisk),\n"
        "                  {n: cases.outcome(c) for n, c in calls.items()}]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if run.returncode != 0:
        return None, None
    enums, outcomes = json.loads(run.stdout)
    return enums, outcomes


def wine_virtdisk_dll() -> Path | None:
    for pattern in ("/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/virtdisk.dll",
                    "/usr/lib/wine/x86_64-windows/virtdisk.dll",
                    "/usr/lib64/wine/x86_64-windows/virtdisk.dll"):
        if Path(pattern).is_file():
            return Path(pattern)
    return None


def write_expected(path: Path, pyd: Path, header: vdheader.Header) -> dict[str, Any]:
    linux_enums, linux_outcomes = linux_expectations()
    dll = wine_virtdisk_dll()
    if dll is None:
        raise FileNotFoundError("Wine's virtdisk.dll (x86_64) was not found")
    expected = {
        "pyd_name": pyd.name,
        "stub_enums": stub_enums(),
        "linux_enums": linux_enums,
        "linux_open_outcomes": linux_outcomes,
        "wine_virtdisk_exports": sorted(crossbuild.export_table("x86_64", dll)),
        "linked_functions": header.linked_functions,
        "runtime_resolved": header.runtime_resolved,
    }
    path.write_text(json.dumps(expected, indent=1, sort_keys=True))
    return expected


def _windows_path(path: Path) -> str:
    # Wine maps the Unix root to drive Z: in every new prefix.
    return "Z:" + str(path.resolve()).replace("/", "\\")


def wine_version() -> str:
    run = subprocess.run(["wine", "--version"], capture_output=True, text=True)
    return run.stdout.strip()


def run(python_dir: Path, pyd: Path, expected: Path, timeout: float = 600) -> tuple[int, str]:
    WINE_PREFIX.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "WINEPREFIX": str(WINE_PREFIX),
        "WINEDEBUG": "-all",
        # No Mono or Gecko installer when the prefix is created.
        "WINEDLLOVERRIDES": "mscoree,mshtml=",
        "WINEARCH": "win64",
    }
    # Python refuses to start when a standard handle is invalid, which Wine
    # gives it for a regular file: stdin is /dev/null, the rest a pipe.
    command = ["wine", str(python_dir / "python.exe"), "-B", "-X", "utf8",
               _windows_path(SMOKE / "run.py"), _windows_path(pyd.parent),
               _windows_path(ROOT / "src"), _windows_path(expected)]
    completed = subprocess.run(command, env=environment, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, errors="replace", timeout=timeout, cwd=ROOT)
    lines = [line for line in completed.stdout.splitlines()
             if not re.match(r"wine: (failed to open .*rundll32|configuration in .* has been updated)", line)]
    return completed.returncode, "\n".join(lines)


def have_wine() -> bool:
    return shutil.which("wine") is not None
