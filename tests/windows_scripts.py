"""Loading the helpers of scripts/windows/ from the tests.

scripts/windows/ is no package: check-windows puts the folder on sys.path,
and so does this loader, so that the helpers' imports of each other resolve.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
WINDOWS_SCRIPTS = ROOT / "scripts" / "windows"


def available(name: str) -> bool:
    """Whether scripts/windows/<name>.py is here (it is not in an sdist's tests)."""
    return (WINDOWS_SCRIPTS / f"{name}.py").is_file()


def load(name: str) -> ModuleType:
    """scripts/windows/<name>.py, imported once under its own name."""
    if name in sys.modules:
        return sys.modules[name]
    if str(WINDOWS_SCRIPTS) not in sys.path:
        sys.path.insert(0, str(WINDOWS_SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, WINDOWS_SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def require(*names: str) -> list[ModuleType]:
    """The named helpers, or a skip of the calling test module when the
    source tree's scripts/windows/ is not here."""
    import pytest

    if not all(available(name) for name in names):
        pytest.skip("the Windows checks live in the source tree (scripts/windows/)",
                    allow_module_level=True)
    return [load(name) for name in names]
