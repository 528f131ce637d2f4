"""Files the platform keeps secrets or personal data in: created readable by their owner only.

A file is made 0600 in the call that creates it (never created first and narrowed after: in between,
anyone could open it and keep the handle); a directory the platform makes is 0700. Directories that
exist already are left as they are: they may be an operator's (/var/lib/…), not ours to change.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | Path) -> Path:
    """Make ``path`` and any missing parent, each 0700 (whatever the umask); existing ones are kept as they are."""
    path = Path(path)
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            p.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process
        os.chmod(p, DIR_MODE)  # mkdir's mode is narrowed by the umask, never widened: say it exactly
    return path


def create_private(path: str | Path, data: bytes = b"") -> bool:
    """Create ``path`` 0600 with ``data`` unless it exists (parents made 0700); True when this call created it."""
    path = Path(path)
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), FILE_MODE)
        f.write(data)
    return True


def readable_by_others(path: str | Path) -> bool:
    """Whether the group or anyone else may read, write or run it."""
    return bool(os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO))
