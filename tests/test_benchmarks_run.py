"""The benchmark scripts still run: each one's --quick smoke run exits 0 and
prints its tables.  No timing is checked here; the figures are for people
reading the output (benchmarks/)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_quick(script: str) -> str:
    path = BENCHMARKS / script
    if not path.is_file():
        pytest.skip(f"{path} is not here (tests run outside the source tree)")
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed (the benchmarks time images it makes)")
    result = subprocess.run([sys.executable, str(path), "--quick"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"{script} --quick failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout



def run_counting_quick(script: str) -> str:
    """run_quick of a script that counts instructions with callgrind."""
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (the benchmark counts with callgrind)")
    return run_quick(script)


def test_bench_open_quick_prints_its_tables() -> None:
    output = run_quick("bench_open.py")
    for title in ("dynamic VHD, 1 GiB", "fixed VHD, 64 MiB", "dynamic VHDX, 1 GiB",
                  "dynamic VHDX, 1 TiB"):
        assert f"{title}: open + virtual size + close" in output
    assert output.count("us/call") >= 5
    assert "x _virtdisk" in output
    assert "\ntargets\n" in output
    assert "at most 20 us" in output
    assert "within 1.5x of pyvhdi" in output


def test_bench_overhead_quick_prints_its_tables() -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None and shutil.which("clang") is None:
        pytest.skip("no C compiler for the benchmark's C loop")
    output = run_quick("bench_overhead.py")
    for title in ("OpenVirtualDisk -> ERROR_INVALID_PARAMETER",
                  "GetVirtualDiskInformation(SIZE) on an open handle",
                  "open + GetVirtualDiskInformation(SIZE) + close, dynamic VHDX"):
        assert title in output
    assert output.count("ns/call") == 3
    assert "C loop (limit)" in output
    assert "target:" in output


def test_bench_create_quick_prints_its_tables() -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None and shutil.which("clang") is None:
        pytest.skip("no C compiler for the benchmark's C floor and C loop")
    output = run_quick("bench_create.py")
    for title in ("dynamic VHD, 1 GiB", "dynamic VHD, 2040 GiB", "dynamic VHDX, 1 GiB",
                  "dynamic VHDX, 2 TiB", "fixed VHD, 1 GiB", "fixed VHDX, 1 GiB"):
        assert f"{title}: create + close" in output
    assert output.count("us/create") == 9
    for path in ("C floor (limit)", "C loop (engine)", "_virtdisk", "virtdisk facade",
                 "qemu-img create", "cp (limit)", "qemu-img convert -> VHDX"):
        assert path in output
    assert "copy from a fixed VHD:" in output and "copy from a dynamic VHDX:" in output
    assert "\ntargets\n" in output
    assert "at most 60 us" in output and "0.95x of cp" in output


def test_bench_io_quick_prints_its_tables() -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None and shutil.which("clang") is None:
        pytest.skip("no C compiler for the benchmark's C paths")
    if shutil.which("qemu-io") is None:
        pytest.skip("qemu-io is not installed (the transfers' anchor)")
    output = run_quick("bench_io.py")
    places = 2 if Path("/dev/shm").is_dir() else 1     # the disk and tmpfs
    for title in ("dynamic VHDX, 8 MiB", "dynamic VHD, 8 MiB", "differencing VHDX, 8 MiB"):
        assert output.count(f"{title}, ") == places
    for path in ("pread/pwrite (limit)", "os.preadv/os.pwrite", "C API", "_virtdisk",
                 "facade", "qemu-io"):
        assert f"\n  {path} " in output
    for test in ("parent read", "first write", "overwrite", "random read", "random write"):
        assert test in output
    for conversion in ("raw -> dynamic VHDX", "raw -> dynamic VHD", "raw -> fixed VHD",
                       "dynamic VHDX -> raw"):
        assert conversion in output
    assert "virtdisk.convert" in output and "qemu-img convert" in output
    assert "\ntargets\n" in output
    assert ">= 0.9x of pread/pwrite (limit)" in output
    assert "within 10% of _virtdisk" in output
    assert ">= 1.4x of qemu-img convert" in output


def test_bench_ops_quick_prints_its_tables() -> None:
    output = run_quick("bench_ops.py")
    assert "merge of a 16 MiB differencing VHDX child" in output
    assert "compact of a 16 MiB dynamic VHDX, half of its blocks zero" in output
    assert "resize of an empty dynamic VHDX from 16 MiB to 2048 GiB" in output
    assert "resize of an empty dynamic VHD from 16 MiB to 2040 GiB" in output
    assert "mirror of a 16 MiB dynamic VHDX, every block written" in output
    for path in ("cp of the child (limit)", "virtdisk.merge(child)",
                 "MergeVirtualDisk (_virtdisk)", "qemu-img commit -d (qcow2)",
                 "cp of the bytes moved (limit)", "disk.compact()", "qemu-img convert qcow2",
                 "read of the bytes the scan reads", "ftruncate + fsync of the cut",
                 "the three above together (bound)",
                 "ResizeVirtualDisk (_virtdisk)", "disk.resize()", "qemu-img resize (qcow2)",
                 "os.pwrite of the BAT growth", "os.pwrite + os.fsync of the BAT growth",
                 "cp of the image (limit)", "disk.mirror() until broken"):
        assert f"\n  {path} " in output
    assert "\ntargets\n" in output
    assert "disk.compact() is " in output and "x the speed of that bound" in output
    # merge by the facade and the extension, compact, and mirror
    assert output.count(">= 0.9x of cp") == 4
    assert "under 1 ms apart from the BAT's growth, written and flushed" in output
    assert "mirror: disk.mirror() until broken >= 0.9x of cp" in output


def test_bench_answer_instructions_quick_prints_its_counts() -> None:
    output = run_counting_quick("bench_answer_instructions.py")
    for kind in ("fresh SIZE answer (raw handle)", "fresh SIZE answer, sizes not powers of two",
                 "repeated SIZE answer (VirtualDiskHandle)", "int answer (FRAGMENTATION)",
                 "RawSCSIVirtualDisk READ(16) of 4 KiB (VHD)",
                 "RawSCSIVirtualDisk READ(10) of 4 KiB (VHD)",
                 "RawSCSIVirtualDisk WRITE(16) of 4 KiB (VHD)",
                 "RawSCSIVirtualDisk READ(16) of 4 KiB (VHDX)",
                 "C API READ(16) of 4 KiB (VHD)", "C API WRITE(16) of 4 KiB (VHD)",
                 "C API READ(16) of 4 KiB (VHDX)", "C API WRITE(16) of 4 KiB (VHDX)"):
        assert f"\n  {kind} " in output
    assert output.count("instructions/call") == 12
    assert output.count("the extension's share of a ") == 3
    assert "building the four-field answer (powers of two):" in output
    assert "building the four-field answer (two ints made):" in output
    assert output.count("x the int answer's call") == 2


def test_bench_open_instructions_quick_prints_its_counts() -> None:
    output = run_counting_quick("bench_open_instructions.py")
    assert "\n  _virtdisk " in output
    assert "\n  virtdisk facade " in output
    assert output.count("instructions/job") == 2
    assert "the facade adds " in output
    assert "x the extension's job)" in output


def test_bench_io_instructions_quick_prints_its_counts() -> None:
    if shutil.which("qemu-io") is None:
        pytest.skip("qemu-io is not installed (it writes the image the requests read)")
    output = run_counting_quick("bench_io_instructions.py")
    for row in ("_virtdisk READ(16) of 4 KiB", "disk.readinto of 4 KiB, aligned",
                "_virtdisk WRITE(16) of 4 KiB", "disk.write of 4 KiB, aligned",
                "disk.readinto of 4 KiB at offset 100", "disk.write of 4 KiB at offset 100",
                "disk.read of 4 KiB, aligned", "content().readinto of 4 KiB after a seek"):
        assert f"\n  {row} " in output
    assert output.count("instructions/request") == 8
    assert output.count("the facade adds ") == 2
