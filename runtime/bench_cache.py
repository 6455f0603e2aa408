"""The benchmark's result cache: a measurement is reused when everything it depends on is unchanged.

A cached entry is keyed by what the figure depends on: the model files' sha256, the runtime and its library
version, threads, precision, the machine (CPU model, ISA extensions, cores: ``deepsquare.runtime.machine``) and
the protocol settings (rounds, warm-up, time budget, batch, data, images, cold starts). Three kinds of entries:

- ``cell``: the interleaved timing of one (arch, input size) group in one runtime and thread count: the paired
  per-round times of every file of the group (a ratio pairs rounds, so a group is re-timed whole when one of
  its files changed);
- ``accuracy``: per held-out image, whether a file's (or the PyTorch model's) top-1 is right;
- ``cold``: load time, first-inference time and peak memory of a file in fresh child processes.

The cache is one JSON file, ``bench-cache.json`` beside ``bench.json`` in the report folder (``--out``): the
same command with the same ``--out`` measures only what changed; ``--no-cache`` measures everything again (and
refreshes the file). Each entry keeps when it was measured; the report marks reused rows with that time. No torch.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

from .files import write_text_atomically

SCHEMA = "deepsquare-bench-cache/1"
FILE_NAME = "bench-cache.json"
PROTOCOL = 1  # bump when the timing protocol changes what a figure means: older entries are then never reused


def file_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's files (names and bytes, in sorted order: a .mlpackage)."""
    digest = hashlib.sha256()
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in paths:
        if path.is_dir():
            digest.update(str(p.relative_to(path)).encode() + b"\0")
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class BenchCache:
    """Entries loaded from ``path`` (none when it is absent, unreadable or of another schema); ``enabled=False``
    reuses nothing but still records what is measured (``--no-cache`` refreshes the file)."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self.entries: dict[str, dict[str, Any]] = {}
        self.hits = 0
        self.misses = 0
        self._hashes: dict[Path, str] = {}
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and data.get("schema") == SCHEMA and isinstance(data.get("entries"), dict):
                self.entries = data["entries"]
        except (OSError, ValueError):
            pass

    def sha256(self, path: Path) -> str:
        """A file's sha256, computed once per run."""
        key = Path(path).resolve()
        if key not in self._hashes:
            self._hashes[key] = file_sha256(key)
        return self._hashes[key]

    @staticmethod
    def key(kind: str, **parts: Any) -> str:
        """One key from the parts a measurement depends on (JSON-able values)."""
        text = json.dumps({"kind": kind, "protocol": PROTOCOL, **parts}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        """``{"value": ..., "measured_at": ISO time}``, or None (a miss, or the cache is off)."""
        entry = self.entries.get(key) if self.enabled else None
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def put(self, key: str, value: Any) -> str:
        """Store a fresh measurement; its time of measurement is returned."""
        when = now()
        self.entries[key] = {"measured_at": when, "value": value}
        return when

    def save(self) -> None:
        """Write the cache file whole (the report folder exists by then)."""
        text = json.dumps({"schema": SCHEMA, "entries": self.entries}, separators=(",", ":")) + "\n"
        write_text_atomically(self.path, text)

    def summary(self) -> str:
        """``3 of 4 measurements from the cache (bench-cache.json)``."""
        total = self.hits + self.misses
        return f"{self.hits} of {total} measurements from the cache ({self.path})"
