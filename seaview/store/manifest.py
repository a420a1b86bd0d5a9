"""run.json: the manifest of a run folder, read and replaced atomically."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from ..errors import RunFormatError
from .schema import FORMAT_VERSION

MANIFEST = "run.json"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def parse_manifest(raw: bytes, where: str) -> dict[str, Any]:
    """Parse and check a manifest; raises :class:`RunFormatError` naming ``where``."""
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise RunFormatError(where, "not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise RunFormatError(where, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise RunFormatError(where, f"expected a JSON object, found {type(data).__name__}")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RunFormatError(where, f"missing or non-integer 'format_version' ({version!r})")
    if version > FORMAT_VERSION:
        raise RunFormatError(
            where,
            f"format version {version} is newer than this seaview reads ({FORMAT_VERSION}); upgrade seaview",
        )
    if version < 1:
        raise RunFormatError(where, f"unknown format version {version}")
    for key, (kind, item) in _FIELDS.items():
        value = data.get(key)
        if value is None:
            continue
        what = {dict: "an object", list: "a list", str: "a string"}[kind]
        if not isinstance(value, kind):
            raise RunFormatError(where, f"'{key}' should be {what}, found {_json_kind(value)}")
        if item is not None:
            for v in value:
                if not isinstance(v, item) or isinstance(v, bool):
                    items = {str: "strings", int: "integers"}[item]
                    raise RunFormatError(where, f"'{key}' should be {what} of {items}, found {_json_kind(v)} in it")
    return data


# the manifest's fields readers use: (JSON type, type of each item); null is as if absent
_FIELDS: dict[str, tuple[type, type | None]] = {
    "name": (str, None), "model": (str, None), "created": (str, None), "params": (dict, None),
    "source": (dict, None), "tables": (list, str), "ranks": (list, int), "tags": (list, str),
}


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return "a number"
    if v is None:
        return "null"
    return {str: "a string", list: "a list"}.get(type(v), "an object")


@contextlib.contextmanager
def _locked(run_dir: str) -> Iterator[None]:
    """An exclusive lock on the run's manifest (POSIX; no-op where flock is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(os.path.join(run_dir, ".run.json.lock"), os.O_CREAT | os.O_RDWR, 0o666)  # the umask applies
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def current_umask() -> int:
    """The process's umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_new_file(path: str) -> None:
    """Give a file made by ``tempfile.mkstemp`` (always 0600) the mode the user's umask gives
    any new file, so colleagues and CI jobs on a shared disk can read what seaview writes."""
    os.chmod(path, 0o666 & ~current_umask())


def as_new_folder(path: str) -> None:
    """The same for a folder made by ``tempfile.mkdtemp`` (always 0700)."""
    os.chmod(path, 0o777 & ~current_umask())


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        as_new_file(tmp)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def update_manifest(run_dir: str, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into ``run_dir/run.json`` under a lock and replace it atomically.

    ``tables`` is merged as a set union and ``params``/``tags``-like dicts are updated,
    so several ranks can update the manifest concurrently without losing each other's data.
    """
    path = os.path.join(run_dir, MANIFEST)
    with _locked(run_dir):
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = parse_manifest(f.read(), path)
        else:
            data = {"format_version": FORMAT_VERSION, "created": now_iso(), "tables": []}
        data = merge_manifest_fields(data, fields)
        atomic_write_bytes(path, json.dumps(data, indent=2, sort_keys=True, default=str).encode())
        return data


def merge_manifest_fields(data: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``fields`` merged in: tables and ranks as unions, dicts updated, None skipped."""
    for key, value in fields.items():
        if value is None:
            continue
        if key == "tables":
            data["tables"] = sorted(set(data.get("tables", [])) | set(value))
        elif key == "ranks":
            data["ranks"] = sorted(set(data.get("ranks", [])) | set(value))
        elif isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    data["format_version"] = max(int(data.get("format_version", FORMAT_VERSION)), FORMAT_VERSION)
    return data
