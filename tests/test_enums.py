"""Every enum member of the extension equals the C compiler's value of the
header constant it names, and the stub says the same.

The C values come from a program compiled against src/include/virtdisk_api.h
here, independently of Cython; the stub values are read from
stubs/_virtdisk.pyi with ast, since stubtest does not compare values.
"""

from __future__ import annotations

import ast
import enum
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import _virtdisk

ROOT = Path(__file__).resolve().parent.parent


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_enums", ROOT / "scripts/generate_enums.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


GENERATOR = load_generator()
ENUMS = GENERATOR.parse_header((ROOT / "src/include/virtdisk_api.h").read_text())
ALL_MEMBERS = [(e.python_name, name, c_name) for e in ENUMS for name, c_name, _ in e.members]


@pytest.fixture(scope="module")
def c_values(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler")
    directory = tmp_path_factory.mktemp("enum_values")
    lines = ['#include <stdio.h>', '#include "virtdisk_api.h"', "int main(void) {"]
    lines += [f'    printf("{c_name} %llu\\n", (unsigned long long)({c_name}));'
              for _, _, c_name in ALL_MEMBERS]
    lines += ["    return 0;", "}"]
    source = directory / "values.c"
    source.write_text("\n".join(lines) + "\n")
    program = directory / "values"
    subprocess.run([compiler, "-std=c11", "-Wall", "-Wextra", "-Werror",
                    f"-I{ROOT / 'src/include'}", str(source), "-o", str(program)], check=True)
    output = subprocess.run([str(program)], check=True, capture_output=True, text=True).stdout
    return {name: int(value) for name, value in (line.split() for line in output.splitlines())}


def stub_values() -> dict[tuple[str, str], int]:
    tree = ast.parse((ROOT / "stubs/_virtdisk.pyi").read_text())
    values = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                if (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant)
                        and isinstance(statement.value.value, int)
                        and isinstance(statement.targets[0], ast.Name)):
                    values[(node.name, statement.targets[0].id)] = statement.value.value
    return values


def test_the_header_has_every_enum_of_the_sdk() -> None:
    # 36 enum types of the current SDK's virtdisk.h plus the device ids and
    # provider subtypes, which the SDK writes as plain numbers.
    assert len(ENUMS) == 38
    assert len(ALL_MEMBERS) == 164


@pytest.mark.parametrize(("class_name", "member", "c_name"), ALL_MEMBERS)
def test_member_equals_compiled_c_value(
    c_values: dict[str, int], class_name: str, member: str, c_name: str
) -> None:
    python_member = getattr(_virtdisk, class_name)[member]
    assert int(python_member) == c_values[c_name]
    assert int(getattr(_virtdisk, c_name)) == c_values[c_name]
    assert getattr(_virtdisk, c_name) is python_member


def test_stub_states_the_same_values() -> None:
    stub = stub_values()
    for class_name, member, _ in ALL_MEMBERS:
        assert stub[(class_name, member)] == int(getattr(_virtdisk, class_name)[member]), (
            class_name, member)
    stub_classes = {class_name for class_name, _ in stub}
    enum_classes = {class_name for class_name, _, _ in ALL_MEMBERS}
    assert enum_classes <= stub_classes


@pytest.mark.parametrize("definition", ENUMS, ids=lambda e: e.python_name)
def test_flags_are_intflag_and_enumerations_intenum(definition: Any) -> None:
    cls = getattr(_virtdisk, definition.python_name)
    if definition.is_flag:
        assert issubclass(cls, enum.IntFlag)
    else:
        assert issubclass(cls, enum.IntEnum)
        assert not issubclass(cls, enum.Flag)
    assert cls.__module__ == "_virtdisk"
    assert all(int(member) >= 0 for member in cls.__members__.values())


def test_flag_arithmetic_keeps_the_type() -> None:
    mask = _virtdisk.VirtualDiskAccessMask
    combined = mask.ATTACH_RO | mask.GET_INFO | mask.DETACH
    assert isinstance(combined, mask)
    assert combined == mask.READ
    assert mask(0x3F0000) is mask.ALL


def test_documented_values() -> None:
    # Spot checks against the values Microsoft documents (REFERENCE.md §2).
    assert int(_virtdisk.VIRTUAL_DISK_ACCESS_ATTACH_RO) == 0x10000
    assert int(_virtdisk.VIRTUAL_DISK_ACCESS_WRITABLE) == 0x320000
    assert int(_virtdisk.OPEN_VIRTUAL_DISK_FLAG_CUSTOM_DIFF_CHAIN) == 0x10
    assert int(_virtdisk.GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE) == 15
    assert int(_virtdisk.ATTACH_VIRTUAL_DISK_FLAG_AT_BOOT) == 0x400
    assert int(_virtdisk.VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET) == 4


def test_vendor_guids() -> None:
    assert str(_virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT) == "ec984aec-a0f9-47e9-901f-71415a66345b"
    assert _virtdisk.VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN.int == 0


def test_generated_files_are_current() -> None:
    assert GENERATOR.main(["--check"]) == 0
