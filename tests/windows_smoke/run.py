"""Runs the smoke tests of this directory on a Windows CPython.

    python.exe -B run.py EXTENSION_DIR SOURCE_DIR EXPECTED_JSON

The embeddable CPython that runs under Wine has no pytest, so this runner
does the little that is needed: it imports every smoke_*.py here, calls each
test_* function with the expected data, and prints one line per test and a
closing count.  Exit status 1 if any test failed.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from pathlib import Path


def main(argv: list[str]) -> int:
    extension_dir, source_dir, expected_path = argv[1:4]
    here = Path(__file__).resolve().parent
    sys.path[:0] = [extension_dir, source_dir, str(here)]
    expected = json.loads(Path(expected_path).read_text(encoding="utf-8"))

    passed = failed = skipped = 0
    for path in sorted(here.glob("smoke_*.py")):
        module = importlib.import_module(path.stem)
        skip = getattr(module, "Skip", ())
        for name, test in vars(module).items():
            if not (name.startswith("test_") and callable(test)):
                continue
            label = f"{path.stem}::{name}"
            try:
                test(expected)
            except skip as reason:
                skipped += 1
                print(f"SKIP {label}: {reason}")
            except Exception:  # noqa: BLE001 - every failure is reported
                failed += 1
                print(f"FAIL {label}")
                traceback.print_exc(file=sys.stdout)
            else:
                passed += 1
                print(f"PASS {label}")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    sys.stdout.flush()
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
