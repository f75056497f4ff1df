"""Atomic writes: a target is either its old content or the complete new one, never half-written.

Everything is written to a hidden temp sibling (same directory, so ``os.replace`` is an atomic rename
on the same filesystem) and renamed onto the target only once the writer has finished without error.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "atomic_write_dir", "write_json_atomic", "write_text_atomic"]


def _temp_sibling(path: Path, kind: str) -> Path:
    # Keep the real suffix last so that suffix-sniffing encoders (PyAV, PIL) pick the right format.
    return path.with_name(f".{path.stem}.{kind}-{secrets.token_hex(4)}{path.suffix}")


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success fsync it and rename it onto ``path``.

    The temp file is not created for you (so it gets normal umask permissions); write it by name.
    On any exception (KeyboardInterrupt included) the temp file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(target, "tmp")
    try:
        yield tmp
        # Flush to disk before the rename so a crash cannot leave a renamed-but-empty file.
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_write_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Like :func:`atomic_write` for a directory: yield a fresh temp directory, swap it in on success.

    An existing target directory is renamed aside first and deleted only after the new one is in
    place (directories cannot be ``os.replace``-d onto non-empty ones); if the swap fails the old
    directory is moved back. Callers decide whether the old directory may be replaced at all.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(target, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            old = _temp_sibling(target, "old")
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old, target)
                raise
            _remove(old)
        else:
            os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> Path:
    """Serialise ``obj`` as JSON (trailing newline) and write it atomically; returns the path.

    Serialisation happens before the temp file is touched, so an unserialisable object raises
    ``TypeError`` without creating anything.
    """
    text = json.dumps(obj, indent=indent, ensure_ascii=False) + "\n"
    return write_text_atomic(path, text)
