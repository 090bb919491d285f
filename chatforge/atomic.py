"""Atomic writes: a reader sees the old file (or directory) or the new one, never a part.

Files are written to a temporary name in the same directory, flushed, fsynced and
renamed over the target; the directory is fsynced so the rename itself survives a
power cut. Directories (datasets, checkpoints, model dirs) are built in a staging
directory beside the target and swapped in whole: with Linux `renameat2(RENAME_EXCHANGE)`
when the target exists (one atomic step), otherwise with a plain rename.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chatforge.errors import UserError


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (new names, renames) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_name(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def make_parent(path: Path) -> None:
    """Create `path`'s parent directories, with a clear error if a file is in the way."""
    for ancestor in Path(path).parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise UserError(f"{path}: {ancestor} is a file, not a directory")
            break
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{path}: cannot create its parent directory: {e.strerror}") from None


def named(e: OSError, path: Path) -> OSError:
    """`e` with `path` as its file name if it has none (a full disk's ENOSPC from a write, or a
    library's OSError, names no file; the message must say which output failed)."""
    if e.filename:
        return e
    return OSError(e.errno, e.strerror or str(e), str(path))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers never see a partial file."""
    path = Path(path)
    make_parent(path)
    tmp = _tmp_name(path, "tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise named(e, path) from e
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write JSON (indented, UTF-8, trailing newline) atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under `root` (bottom-up)."""
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux >= 3.15); False if the system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (38, 22, 95):  # ENOSYS, EINVAL, EOPNOTSUPP: fall back
            return False
        raise OSError(err, os.strerror(err), str(b))
    return True


def replace_dir(src: Path, dst: Path) -> None:
    """Move directory `src` to `dst`, replacing an existing `dst` atomically."""
    if not dst.exists():
        os.rename(src, dst)
        fsync_dir(dst.parent)
        return
    if _rename_exchange(src, dst):
        # `src` now holds the old contents.
        fsync_dir(dst.parent)
        shutil.rmtree(src)
        return
    # No atomic swap on this system: move the old dir aside, then the new one in. If we
    # are stopped between the two renames, the old dir is put back (here, or by
    # `recover_interrupted` on the next run if the process was killed).
    old = _tmp_name(dst, "old")
    os.rename(dst, old)
    try:
        os.rename(src, dst)
    except BaseException:
        os.rename(old, dst)
        raise
    fsync_dir(dst.parent)
    shutil.rmtree(old)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_interrupted(target: Path) -> None:
    """Clean up after writers of `target` that were killed.

    Their staging dirs are deleted. An old copy moved aside by a fallback swap
    (`.NAME.old-PID-*`) is put back if `target` itself is missing, else deleted.
    """
    if not target.parent.is_dir():
        return
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(staging|old|tmp)-(\d+)-[0-9a-f]+")
    for p in sorted(target.parent.glob(f".{glob.escape(target.name)}.*-*-*")):
        m = pattern.fullmatch(p.name)
        if m is None:
            continue
        kind, pid = m.group(1), int(m.group(2))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        if kind == "old" and p.is_dir() and not os.path.lexists(target):
            os.rename(p, target)
            fsync_dir(target.parent)
        elif p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_dir(
    target: Path,
    *,
    overwrite: bool = False,
    replaceable: Callable[[Path], bool] | None = None,
    what: str = "a chatforge output",
) -> Iterator[Path]:
    """Yield an empty staging directory that replaces `target` if the block succeeds.

    On any exception (or Ctrl-C) the staging directory is deleted and `target` is
    left exactly as it was. An existing `target` is replaced only with `overwrite`, and
    only if it is empty or `replaceable(target)` says it is what we would write (a
    dataset, say): `--overwrite` must never delete a folder of someone's files.
    """
    target = Path(target)
    if target.is_symlink():
        raise UserError(f"{target}: is a symbolic link; give the real path")
    recover_interrupted(target)
    if target.exists():
        if not target.is_dir():
            raise UserError(f"{target}: exists and is not a directory")
        if not overwrite:
            raise UserError(f"{target}: already exists; pass --overwrite to replace it, or choose another --out")
        if any(target.iterdir()) and not (replaceable is not None and replaceable(target)):
            raise UserError(f"{target}: exists and is not {what}; refusing to replace it (choose another --out)")
        here = Path.cwd().resolve()
        if target.resolve() == here or target.resolve() in here.parents:
            raise UserError(f"{target}: is the current directory or contains it; choose another --out")
    make_parent(target)
    tmp = _tmp_name(target, "staging")
    tmp.mkdir()
    try:
        yield tmp
        fsync_tree(tmp)
        replace_dir(tmp, target)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise named(e, target) from e
        raise


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open `path` for writing; the file appears (whole) only if the block succeeds."""
    path = Path(path)
    make_parent(path)
    tmp = _tmp_name(path, "tmp")
    if "b" in mode:
        f = open(tmp, mode)  # noqa: SIM115 - closed below
    else:
        f = open(tmp, mode, encoding=encoding, newline="")  # noqa: SIM115
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as e:
        with contextlib.suppress(OSError):
            f.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise named(e, path) from e
        raise
