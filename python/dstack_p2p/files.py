# SPDX-License-Identifier: MIT
"""Writing the files apps configure themselves from, the way the agent writes its own."""
from __future__ import annotations

import os


def write_atomically(path: str, text: str) -> None:
    """Replace path with text: a temporary file in the same directory, fsync, rename.

    A reader sees the old file or the new one, never half of one.
    """
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
