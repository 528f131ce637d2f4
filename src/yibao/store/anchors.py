"""The audit chain's anchors: an append-only file outside the database where each region's chain head is
checkpointed (services/books/audit.py writes and reads the lines; this is only the file).

Someone able to write the database can rewrite the chain and its head together; they cannot reach back
into this file (the operator keeps it on other storage: another disk, `chattr +a`, a log shipper to a
WORM store). Lines are appended with O_APPEND, one write per batch, then fsync'd; the file is created
0600. Configured by YIBAO_AUDIT_ANCHOR (default `.yibao/audit-anchors.log`, beside the demo database).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

DEFAULT_PATH = ".yibao/audit-anchors.log"


class AnchorLog:
    """One anchor file. `append` skips a topic (a region) whose state this object already wrote last, so
    anchoring on every verify or every few seconds adds a line only when a head moved."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> AnchorLog:
        return cls(os.environ.get("YIBAO_AUDIT_ANCHOR") or DEFAULT_PATH)

    def read(self) -> list[str]:
        """Every complete line (a line still being written by another process, without its newline, is left
        for the next read); none when the file does not exist yet."""
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        lines = text.split("\n")
        return [line for line in lines[:-1] if line.strip()]  # the last piece is "" or an unfinished line

    def append(self, items: Mapping[str, tuple[str, str]]) -> int:
        """Append ``line`` for each ``topic: (state, line)`` whose state changed since this object last wrote
        it; returns how many lines were written."""
        with self._lock:
            todo = {topic: (state, line) for topic, (state, line) in items.items() if self._last.get(topic) != state}
            if not todo:
                return 0
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, "".join(line + "\n" for _, line in todo.values()).encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            for topic, (state, _) in todo.items():
                self._last[topic] = state
            return len(todo)
