"""A short libFuzzer run of every fuzz target (fuzz/fuzz_*.c) on seeds made
from real images, under AddressSanitizer and UndefinedBehaviorSanitizer.

fuzz/build.sh builds the targets; ``fuzz/run seeds`` writes the seed
corpora (images from qemu-img, xorriso, genisoimage, mkudffs and
tests/image_corpus.py, in the form each target reads).  Each target then
runs for a few seconds (fuzz_scsi: a few thousand inputs) and must end
normally, having executed inputs, without a crash, leak, timeout or
out-of-memory reproducer.  The long runs
are in fuzz/README.md.  Skipped where clang with libFuzzer is missing, and
outside the source tree (the wheel job), where fuzz/ is not present.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
SECONDS = 5
# Targets that run a number of inputs rather than for SECONDS (each input of
# fuzz_scsi is a whole attach session of several commands, so a few seconds
# are few inputs); CEILING_SECONDS bounds them on a busy machine.
EXECUTIONS = {"scsi": 3000}
CEILING_SECONDS = 120
# Above every target's own limit (fuzz/run): seeds are never cut short.
MAX_LEN = 70000
ARTEFACT_PREFIXES = ("crash-", "leak-", "timeout-", "oom-", "slow-unit-")
TARGETS = sorted(path.stem.removeprefix("fuzz_") for path in FUZZ.glob("fuzz_*.c"))

pytestmark = pytest.mark.slow


def libfuzzer_missing(directory: Path) -> str | None:
    """Why clang cannot build a libFuzzer binary here, or None."""
    clang = shutil.which("clang")
    if clang is None:
        return "clang is not installed"
    probe = directory / "probe.c"
    probe.write_text("#include <stddef.h>\n#include <stdint.h>\n"
                     "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
                     "{ (void)d; (void)n; return 0; }\n")
    result = subprocess.run([clang, "-fsanitize=fuzzer,address,undefined", str(probe),
                             "-o", str(directory / "probe")], capture_output=True, text=True)
    if result.returncode != 0:
        return f"clang cannot link libFuzzer (libclang-rt-*-dev?): {result.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(directory of the binaries, directory of the seed corpora)."""
    if not (FUZZ / "build.sh").is_file():
        pytest.skip("fuzz/ is not here (tests run outside the source tree)")
    if not TARGETS:
        pytest.skip("no fuzz/fuzz_*.c targets")
    out = tmp_path_factory.mktemp("fuzz")
    reason = libfuzzer_missing(out)
    if reason is not None:
        pytest.skip(reason)
    build = subprocess.run([str(FUZZ / "build.sh")], capture_output=True, text=True,
                           env={**os.environ, "FUZZ_OUT": str(out)}, timeout=600)
    assert build.returncode == 0, f"fuzz/build.sh failed:\n{build.stdout}\n{build.stderr}"
    seeds = out / "seeds"
    made = subprocess.run([sys.executable, str(FUZZ / "run"), "seeds", str(seeds)],
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, f"fuzz/run seeds failed:\n{made.stdout}\n{made.stderr}"
    return out, seeds


@pytest.mark.parametrize("target", TARGETS)
def test_target_runs_clean(target: str, built: tuple[Path, Path], tmp_path: Path) -> None:
    out, seeds = built
    binary = out / f"fuzz_{target}"
    assert binary.is_file(), f"fuzz/build.sh did not make {binary}"
    target_seeds = seeds / target
    assert target_seeds.is_dir() and any(target_seeds.iterdir()), \
        f"no seeds for {target} in {target_seeds}"
    corpus = tmp_path / "corpus"
    artefacts = tmp_path / "artefacts"
    corpus.mkdir()
    artefacts.mkdir()
    budget = ([f"-runs={EXECUTIONS[target]}", f"-max_total_time={CEILING_SECONDS}"]
              if target in EXECUTIONS else [f"-max_total_time={SECONDS}"])
    result = subprocess.run(
        [str(binary), *budget, f"-max_len={MAX_LEN}", "-timeout=10",
         "-rss_limit_mb=2048", f"-artifact_prefix={artefacts}/", str(corpus),
         str(target_seeds)],
        cwd=tmp_path, capture_output=True, text=True, errors="replace",
        timeout=max(SECONDS, CEILING_SECONDS) + 120)
    log = result.stderr
    reproducers = sorted(path.name for path in artefacts.iterdir()
                         if path.name.startswith(ARTEFACT_PREFIXES))
    reproducers += sorted(path.name for path in tmp_path.iterdir()
                          if path.name.startswith(ARTEFACT_PREFIXES))
    assert result.returncode == 0 and not reproducers, (
        f"fuzz_{target} exited {result.returncode} with {reproducers} in {artefacts}:\n"
        f"{log[-6000:]}")
    seeded = re.search(r"INFO: seed corpus: files: (\d+)", log)
    assert seeded is not None and int(seeded.group(1)) >= 1, \
        f"fuzz_{target} read no seeds:\n{log[-3000:]}"
    done = re.search(r"Done (\d+) runs in", log)
    assert done is not None, f"fuzz_{target} did not finish its time:\n{log[-3000:]}"
    assert int(done.group(1)) > 100, f"fuzz_{target} ran only {done.group(1)} inputs"
