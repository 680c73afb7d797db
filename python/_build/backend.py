# SPDX-License-Identifier: MIT
"""An in-tree PEP 517 build backend for the dstack-p2p package, standard library only.

`pip install ./python` then needs nothing from a package index (pip's build isolation
installs `requires = []`): the wheel is the package's files plus the metadata below, the
sdist the tree. Only what pip and `python -m build` call is here: build_wheel,
build_sdist, and the optional hooks answering "no extra requirements".
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _project() -> Dict[str, str]:
    """The plain `key = "value"` lines of pyproject.toml's [project] table (tomllib is 3.11+)."""
    fields: Dict[str, str] = {}
    table = ""
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        for line in f:
            head = re.match(r"\s*\[([^\]]+)\]\s*$", line)
            if head:
                table = head.group(1).strip()
            m = re.match(r'\s*([A-Za-z-]+)\s*=\s*"([^"]*)"\s*$', line)
            if table == "project" and m:
                fields[m.group(1)] = m.group(2)
    return fields


PROJECT = _project()
DIST = PROJECT["name"]
NAME = DIST.replace("-", "_")
VERSION = PROJECT["version"]
SUMMARY = PROJECT["description"]
PACKAGE_FILES = ("__init__.py", "files.py", "sdk.py", "sync.py", "py.typed")
SDIST_FILES = ("pyproject.toml", "README.md", "_build/backend.py") + tuple(
    f"{NAME}/{f}" for f in PACKAGE_FILES)
# Fixed times: the same tree gives the same archives.
EPOCH = (1980, 1, 1, 0, 0, 0)


def _metadata() -> bytes:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return (f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {VERSION}\nSummary: {SUMMARY}\n"
            f"License: MIT\nRequires-Python: {PROJECT['requires-python']}\n"
            "Description-Content-Type: text/markdown\n\n"
            + readme).encode()


def _wheel_file() -> bytes:
    return (b"Wheel-Version: 1.0\nGenerator: dstack-p2p in-tree backend\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n")


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _write_wheel(directory: str, files: Dict[str, bytes]) -> str:
    info = f"{NAME}-{VERSION}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = _metadata()
    files[f"{info}/WHEEL"] = _wheel_file()
    record = [_record_line(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            entry = zipfile.ZipInfo(path, EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, data)
    return name


def _read(rel: str) -> bytes:
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


def build_wheel(wheel_directory: str, config_settings: Optional[dict] = None,
                metadata_directory: Optional[str] = None) -> str:
    return _write_wheel(wheel_directory, {f"{NAME}/{f}": _read(f"{NAME}/{f}") for f in PACKAGE_FILES})


def build_editable(wheel_directory: str, config_settings: Optional[dict] = None,
                   metadata_directory: Optional[str] = None) -> str:
    """`pip install -e ./python`: a .pth file that puts this tree on sys.path."""
    return _write_wheel(wheel_directory, {f"{NAME}.pth": (ROOT + "\n").encode()})


def build_sdist(sdist_directory: str, config_settings: Optional[dict] = None) -> str:
    base = f"{DIST}-{VERSION}"
    name = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as t:
        for rel in SDIST_FILES + ("PKG-INFO",):
            data = _metadata() if rel == "PKG-INFO" else _read(rel)
            entry = tarfile.TarInfo(f"{base}/{rel}")
            entry.size, entry.mode, entry.mtime = len(data), 0o644, 315532800
            t.addfile(entry, io.BytesIO(data))
    return name


def _no_requirements(config_settings: Optional[dict] = None) -> List[str]:
    return []


get_requires_for_build_wheel = _no_requirements
get_requires_for_build_editable = _no_requirements
get_requires_for_build_sdist = _no_requirements
