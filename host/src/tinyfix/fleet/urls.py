# SPDX-License-Identifier: Apache-2.0
"""Files of a fleet through fsspec: a local folder by default, any URL fsspec has a backend
for (s3://, gs://, memory://, ...) when the user has that backend installed. Every read and
write of the fleet goes through here, so no other module cares where the fleet lives."""

from __future__ import annotations

import os
import posixpath
from typing import Any

from tinyfix.errors import TinyfixError


class FleetIOError(TinyfixError):
    """A fleet file cannot be read or written."""


def _fs(url: str) -> tuple[Any, str]:
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # e.g. s3:// without s3fs installed
        raise FleetIOError(f"{url}: {exc}") from None


def is_url(text: str) -> bool:
    return "://" in text


def is_local(url: str) -> bool:
    return not is_url(url) or url.startswith("file://")


def local_path(url: str) -> str:
    return url[len("file://"):] if url.startswith("file://") else url


def absolute(url: str) -> str:
    """A local path made absolute (tasks run in other processes, maybe other folders);
    URLs as they are."""
    return url if is_url(url) else os.path.abspath(url)


def join(base: str, *parts: str) -> str:
    """`base` (a folder URL or path) with relative parts appended; an absolute part (a URL
    or a path starting with /) replaces what comes before it."""
    out = base
    for part in parts:
        if is_url(part) or part.startswith("/"):
            out = part
        else:
            out = out.rstrip("/") + "/" + part if out else part
    return out


def parent(url: str) -> str:
    if is_url(url):
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{posixpath.dirname(rest)}"
    return posixpath.dirname(url) or "."


def read_bytes(url: str) -> bytes:
    fs, path = _fs(url)
    try:
        return bytes(fs.cat_file(path))
    except FileNotFoundError:
        raise FleetIOError(f"{url}: no such file") from None
    except OSError as exc:
        raise FleetIOError(f"{url}: cannot read ({exc})") from None


def read_text(url: str) -> str:
    data = read_bytes(url)
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise FleetIOError(f"{url}: not a text file") from None


def write_bytes(url: str, data: bytes) -> None:
    """Write a whole file (one put: object stores have no append), parents created."""
    fs, path = _fs(url)
    try:
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        fs.pipe_file(path, data)
    except OSError as exc:
        raise FleetIOError(f"{url}: cannot write ({exc})") from None


def write_text(url: str, text: str) -> None:
    write_bytes(url, text.encode())


def exists(url: str) -> bool:
    fs, path = _fs(url)
    return bool(fs.exists(path))


def glob(base: str, pattern: str) -> list[str]:
    """Files under `base` matching `pattern` (relative to it), as URLs in the base's
    scheme, sorted."""
    fs, path = _fs(join(base, pattern))
    found = sorted(fs.glob(path))
    if not is_url(base):
        return found
    return [fs.unstrip_protocol(p) for p in found]
