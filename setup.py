"""Build of the _virtdisk extension.

On Windows the extension links VirtDisk.lib.  Elsewhere it links the portable
engine (src/vdengine/), built first as a static library with its own strict
C11 flags, so the engine's warnings are never hidden by Cython's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
WINDOWS = sys.platform == "win32"

ENGINE_SOURCES = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "src/vdengine").rglob("*.c"))
ENGINE_FLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden", "-fPIC"]


class build_py_with_stubs(build_py):
    """Ships stubs/_virtdisk.pyi as the `_virtdisk-stubs` package.

    mypy ignores a top-level .pyi beside a compiled module in site-packages;
    a PEP 561 stub-only package named after the module is what it reads.
    Editable installs skip it: development uses mypy_path = "stubs".
    """

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            target = Path(self.build_lib, "_virtdisk-stubs")
            self.mkpath(str(target))
            self.copy_file(str(ROOT / "stubs/_virtdisk.pyi"), str(target / "__init__.pyi"))


if WINDOWS:
    libraries: list = []
    extension_libraries = ["virtdisk"]
    macros = [("_WIN32_WINNT", "0x0A00"), ("WIN32_LEAN_AND_MEAN", None)]
else:
    libraries = [("vdengine", {
        "sources": ENGINE_SOURCES,
        "include_dirs": ["src/include", "src/vdengine"],
        "cflags": ENGINE_FLAGS,
    })]
    extension_libraries = ["vdengine", "pthread"]
    macros = []

# Tracebacks name the .pyx line only (Cython's default); fixed at build time,
# a failing call skips the run-time lookup of cython_runtime.cline_in_traceback.
macros.append(("CYTHON_CLINE_IN_TRACEBACK", "0"))

extension = Extension(
    "_virtdisk",
    sources=["src/_virtdisk.pyx"],
    # src/vdengine: the format headers the extension takes its format facts
    # from include their neighbours by engine-relative paths.
    include_dirs=["src/include", "src", "src/vdengine"],
    libraries=extension_libraries,
    define_macros=macros,
)

setup(
    libraries=libraries,
    ext_modules=cythonize(
        [extension],
        include_path=["src"],
        compiler_directives={
            "language_level": 3,
            "binding": True,
            "embedsignature": True,
            "autotestdict": False,
        },
    ),
    cmdclass={"build_py": build_py_with_stubs},
)
