"""Writing outputs atomically: everything goes to a hidden temporary path next to its destination and is
renamed into place only when complete, so a failed or killed run never leaves a half-written artifact."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary path next to ``final_path``; rename it into place on success, delete it on any
    error. Works for files and directories (.mlpackage)."""
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = final_path.parent / f".tmp-{uuid.uuid4().hex[:8]}-{final_path.name}"
    try:
        yield tmp
        if not tmp.exists():
            raise ValueError(f"nothing was written for {final_path.name}")
        replace_path(tmp, final_path)
    finally:
        remove_path(tmp)


def replace_path(src: Path, dst: Path) -> None:
    if src.is_dir():
        if dst.exists():
            old = dst.parent / f".old-{uuid.uuid4().hex[:8]}-{dst.name}"
            os.replace(dst, old)
            os.replace(src, dst)
            remove_path(old)
        else:
            os.replace(src, dst)
    else:
        if dst.is_dir():
            shutil.rmtree(dst)
        os.replace(src, dst)


def current_umask() -> int:
    """The process umask (read from /proc where possible: setting it to read it races with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_default_modes(path: str | os.PathLike) -> None:
    """Give ``path`` and everything below it the modes a plain ``open``/``mkdir`` gives (0666 / 0777 less the
    umask): some writers (coremltools' package writer) create private 0600 files and 0700 directories."""
    umask = current_umask()
    root = Path(path)
    entries = [root, *root.rglob("*")] if root.is_dir() else [root]
    for entry in entries:
        if not entry.is_symlink():
            entry.chmod((0o777 if entry.is_dir() else 0o666) & ~umask)


def remove_path(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data, **dumps_options) -> None:
    """Write ``data`` as JSON to ``path`` atomically (``dumps_options`` go to ``json.dumps``)."""
    write_text(path, json.dumps(data, **dumps_options))
