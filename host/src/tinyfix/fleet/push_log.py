# SPDX-License-Identifier: Apache-2.0
"""The push log: one JSON line per device event, appended and synced before the next
device, so an interrupted `fleet push` resumes without pushing a device twice.

Events: "pushed" (the device took the set and reports its CRC), "active" (it already ran
the set), "refused" (the device's SMP group said no: `rc`, `text`), "unreachable", "wrong
model" (the device runs another model: not sent), "mismatch" (it answered with another
CRC). A device is done for a set once a "pushed" or "active" line names that set's CRC.
A torn last line (the process died writing it) is ignored on open.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tinyfix.errors import TinyfixError

DONE = ("pushed", "active")


@dataclass(frozen=True)
class PushEntry:
    device_id: str
    params_crc: str
    event: str
    url: str = ""
    rc: int | None = None
    text: str = ""
    device_crc: str | None = None
    persisted: bool | None = None
    time: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}


class PushLog:
    """The log at `path` (created if missing); `entries` are the lines found on open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[PushEntry] = []
        if path.exists():
            lines = path.read_text().splitlines()
            for n, line in enumerate(lines, 1):
                try:
                    data = json.loads(line)
                    self.entries.append(PushEntry(**data))
                except (ValueError, TypeError) as exc:
                    if n == len(lines):
                        break  # torn last line
                    raise TinyfixError(f"{path}:{n}: not a push log line ({exc})") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a")

    def last(self, device_id: str, params_crc: str) -> PushEntry | None:
        """The latest event of this device for this set."""
        for entry in reversed(self.entries):
            if entry.device_id == device_id and entry.params_crc == params_crc:
                return entry
        return None

    def done(self, device_id: str, params_crc: str) -> bool:
        return any(e.device_id == device_id and e.params_crc == params_crc and e.event in DONE
                   for e in self.entries)

    def append(self, entry: PushEntry) -> PushEntry:
        if not entry.time:
            entry = PushEntry(**{**asdict(entry), "time": round(time.time(), 3)})
        self._file.write(json.dumps(entry.as_dict(), sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.entries.append(entry)
        return entry

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PushLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
