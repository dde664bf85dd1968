"""Checks of the Windows side that run on Linux.

* src/include/virtdisk_api.h against MinGW-w64's <virtdisk.h> (x86_64 and
  i686) and the SDK's layouts: scripts/windows/conformance.py, driven by
  scripts/windows/conformance.list.  Needs Debian's mingw-w64.
* The wheel configuration: cibuildwheel's Windows build identifiers, the
  [tool.cibuildwheel] table equal to scripts/windows/cibuildwheel.toml, and
  .github/workflows/wheels.yml against GitHub's workflow schema.

The cross-build and the Wine smoke test are scripts/check-windows, which the
test command runs after pytest.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from windows_scripts import load

ROOT = Path(__file__).resolve().parent.parent
WINDOWS_SCRIPTS = ROOT / "scripts" / "windows"
CONFORMANCE = WINDOWS_SCRIPTS / "conformance.py"
MINGW_TOOLS = [f"{target}-w64-mingw32-{tool}" for target in ("x86_64", "i686")
               for tool in ("gcc", "g++", "objcopy")]

if not CONFORMANCE.is_file():
    pytest.skip("the Windows checks live in the source tree (scripts/windows/)",
                allow_module_level=True)

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli")


vdheader = load("vdheader")
conformance = load("conformance")

needs_mingw = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in MINGW_TOOLS),
    reason="needs MinGW-w64 (Debian: mingw-w64), which the test command installs")


def run_conformance(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CONFORMANCE), *arguments],
                          capture_output=True, text=True, timeout=600)


# ---------------------------------------------------------------------------
# The header


def test_the_list_names_every_declaration_of_the_header() -> None:
    listed = conformance.parse_list()
    assert conformance.completeness_errors(listed, vdheader.read()) == []


def test_the_list_notices_a_new_declaration(tmp_path: Path) -> None:
    header = tmp_path / "virtdisk_api.h"
    text = vdheader.HEADER.read_text()
    text = text.replace("    DETACH_VIRTUAL_DISK_FLAG_NONE = 0x00000000\n",
                        "    DETACH_VIRTUAL_DISK_FLAG_NONE = 0x00000000,\n"
                        "    DETACH_VIRTUAL_DISK_FLAG_NEW = 0x00000001\n")
    header.write_text(text)
    shutil.copy(vdheader.DISPATCH, tmp_path)
    errors = conformance.completeness_errors(conformance.parse_list(),
                                             vdheader.read(header, tmp_path / "virtdisk_dispatch.h"))
    assert errors == ["virtdisk_api.h declares member DETACH_VIRTUAL_DISK_FLAG_NEW, which "
                      "conformance.list lacks"]


def test_the_header_reads_as_the_sdk_declares_it() -> None:
    header = vdheader.read()
    assert len(header.functions) == 29
    assert len(header.linked_functions) == 20
    assert len(header.runtime_resolved) == 9


@needs_mingw
def test_header_agrees_with_mingw_and_the_sdk() -> None:
    run = run_conformance()
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.rstrip().endswith("conformance: ok")
    # Each known MinGW defect is listed by name, with where it shows.
    assert "known MinGW difference create-v2" in run.stdout
    assert "CREATE_VIRTUAL_DISK_PARAMETERS.Version2.ParentPath (x86_64)" in run.stdout
    assert "known MinGW difference storage-dependency-array" in run.stdout


@needs_mingw
def test_a_wrong_declaration_fails_the_check(tmp_path: Path) -> None:
    """The check must be able to fail: one wrong value, one wrong parameter
    type and one wrong SDK figure each give their own FAIL line."""
    include = tmp_path / "include"
    include.mkdir()
    text = vdheader.HEADER.read_text()
    wrong = {
        "OPEN_VIRTUAL_DISK_FLAG_CACHED_IO = 0x00000008": "OPEN_VIRTUAL_DISK_FLAG_CACHED_IO = 0x00000080",
        "HANDLE VirtualDiskHandle, DETACH_VIRTUAL_DISK_FLAG Flags, ULONG ProviderSpecificFlags)":
            "HANDLE VirtualDiskHandle, DETACH_VIRTUAL_DISK_FLAG Flags, ULONGLONG ProviderSpecificFlags)",
    }
    for old, new in wrong.items():
        assert old in text
        text = text.replace(old, new)
    (include / "virtdisk_api.h").write_text(text)
    shutil.copy(vdheader.DISPATCH, include)
    listing = conformance.LIST.read_text()
    old_line = next(line for line in listing.splitlines()
                    if line.startswith("struct VIRTUAL_DISK_PROGRESS"))
    listing = listing.replace(old_line, old_line.replace("sdk=24/24", "sdk=24/32"))
    (tmp_path / "conformance.list").write_text(listing)

    run = run_conformance("--header", str(include / "virtdisk_api.h"),
                          "--list", str(tmp_path / "conformance.list"))
    failures = [line for line in run.stdout.splitlines() if line.startswith("FAIL ")]
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL x86_64: OPEN_VIRTUAL_DISK_FLAG_CACHED_IO: ours 0x80, MinGW 0x8" in failures
    assert "FAIL i686: OPEN_VIRTUAL_DISK_FLAG_CACHED_IO: ours 0x80, MinGW 0x8" in failures
    assert any(line.startswith("FAIL x86_64: DetachVirtualDisk: ours uint32 (void *, "
                               "DETACH_VIRTUAL_DISK_FLAG, uint64)") for line in failures), failures
    assert any(line.startswith("FAIL i686: DetachVirtualDisk:") for line in failures), failures
    assert "FAIL i686: VIRTUAL_DISK_PROGRESS: our header has size 24, the SDK 32" in failures
    assert len(failures) == 5, failures


# ---------------------------------------------------------------------------
# The wheel configuration


def _expected_windows_identifiers() -> set[str]:
    """What "every supported CPython" means: every CPython cibuildwheel can
    build for Windows (its own platform table), free-threaded included, that
    pyproject.toml's requires-python admits."""
    import cibuildwheel
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    table = Path(cibuildwheel.__file__).parent / "resources" / "build-platforms.toml"
    platforms = tomllib.loads(table.read_text())
    requires = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())
                            ["project"]["requires-python"])
    identifiers = set()
    for config in platforms["windows"]["python_configurations"]:
        identifier, version = config["identifier"], Version(config["version"])
        if identifier.startswith("cp") and not version.is_prerelease \
                and f"{version.major}.{version.minor}" in requires:
            identifiers.add(identifier)
    return identifiers


def test_cibuildwheel_builds_every_supported_cpython_for_windows() -> None:
    if shutil.which("cibuildwheel") is None:
        pytest.skip("needs cibuildwheel (requirements-test.txt)")
    run = subprocess.run(["cibuildwheel", "--print-build-identifiers", "--platform", "windows",
                          str(ROOT)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    identifiers = set(run.stdout.split())
    print(" ".join(sorted(identifiers)))
    assert identifiers == _expected_windows_identifiers()
    for arch in ("win32", "win_amd64", "win_arm64"):
        assert {f"cp310-{arch}", f"cp314t-{arch}"} <= identifiers


def test_pyproject_carries_the_cibuildwheel_configuration() -> None:
    wanted = tomllib.loads((WINDOWS_SCRIPTS / "cibuildwheel.toml").read_text())["tool"]["cibuildwheel"]
    present = tomllib.loads((ROOT / "pyproject.toml").read_text()).get("tool", {}).get("cibuildwheel")
    assert present == wanted, "pyproject.toml's [tool.cibuildwheel] differs from " \
                              "scripts/windows/cibuildwheel.toml"


def test_pyproject_passes_its_schema_with_cibuildwheel_options() -> None:
    if shutil.which("validate-pyproject") is None:
        pytest.skip("needs validate-pyproject (requirements-test.txt)")
    run = subprocess.run(["validate-pyproject", str(ROOT / "pyproject.toml")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_wheels_workflow_passes_the_github_workflow_schema() -> None:
    if shutil.which("check-jsonschema") is None:
        pytest.skip("needs check-jsonschema (requirements-test.txt)")
    run = subprocess.run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows",
                          str(ROOT / ".github" / "workflows" / "wheels.yml")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
