"""The engine and benchmarks/c/io_loops.c built as one shared library and
loaded with ctypes: the C paths of bench_io.py and the C rows of
bench_answer_instructions.py.  A module of its own, so that a process
counted by callgrind loads it without bench_io's imports (the facade among
them), whose start-up would be counted in every run."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_library(directory: Path) -> Path:
    """Compiles the engine and benchmarks/c/io_loops.c into one shared
    library in `directory`; its path."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        sys.exit("a C compiler is needed for the C paths")
    path = directory / "libvdio.so"
    sources = sorted(str(source) for source in (ROOT / "src/vdengine").rglob("*.c"))
    subprocess.run([compiler, "-std=c11", "-O2", "-fvisibility=hidden", "-shared", "-fPIC",
                    f"-I{ROOT / 'src/include'}", f"-I{ROOT / 'src/vdengine'}", *sources,
                    str(ROOT / "benchmarks/c/io_loops.c"), "-lpthread", "-o", str(path)],
                   check=True)
    return path


class Library:
    """The library build_library made, loaded.  Its engine is a second
    copy, beside the extension's, with its own handles."""

    def __init__(self, path: Path) -> None:
        library = ctypes.CDLL(str(path))
        u64p = ctypes.POINTER(ctypes.c_uint64)
        self.raw_loop = library.bench_raw_loop
        self.raw_loop.argtypes = [ctypes.c_int, ctypes.c_int, u64p, ctypes.c_uint64,
                                  ctypes.c_void_p, ctypes.c_uint64]
        self.raw_loop.restype = ctypes.c_int
        self.open_attached = library.bench_open_attached
        self.open_attached.argtypes = [ctypes.c_char_p, ctypes.c_int,
                                       ctypes.POINTER(ctypes.c_void_p)]
        self.open_attached.restype = ctypes.c_uint32
        self.scsi_loop = library.bench_scsi_loop
        self.scsi_loop.argtypes = [ctypes.c_void_p, ctypes.c_int, u64p, ctypes.c_uint64,
                                   ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32]
        self.scsi_loop.restype = ctypes.c_uint32
        self.close = library.bench_close
        self.close.argtypes = [ctypes.c_void_p]
        self.close.restype = ctypes.c_uint32
