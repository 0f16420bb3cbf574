"""Local files: the one atomic writer, the one "is this folder ours" check, deletes and
chmods that never follow a symlink, and bounded reads of configuration and records."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from refarch.errors import UnreadableFile, UnsafeLocalState

LOCAL_DIR = ".refarch"
# Larger than any real configuration or record, small enough to keep in memory: a file
# above it is a mistake (a log, a disk image, /dev/zero behind a symlink), never config.
MAX_READ_BYTES = 16 * 1024 * 1024
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH
KEY_FILE = "local-state.key"
KEY_BYTES = 32


def write_atomic(path: Path, data: str | bytes, *, mode: int = 0o600) -> Path:
    """Replace `path` with `data` so that a reader sees the old file or the new one, never
    half of one, even after a crash: a temp file in the same folder, fsync, chmod `mode`,
    rename, fsync of the folder. A missing folder is created 0700."""
    path = Path(path)
    check_local_parent(path)
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable (best effort: some filesystems refuse fsync on a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def check_ours(path: Path) -> Path:
    """`path` itself (never what a symlink points at) if it is owned by this user and not
    writable by group or others; else UnsafeLocalState naming the fix."""
    path = Path(path)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeLocalState(
            path, "is a symbolic link", f"remove the link (rm {path}); refarch creates a real folder"
        )
    uid = os.getuid()
    if info.st_uid != uid:
        raise UnsafeLocalState(
            path,
            f"is owned by uid {info.st_uid}, not by you (uid {uid})",
            f"chown -R {uid} {path}, or remove it if you did not make it",
        )
    if info.st_mode & _WRITABLE_BY_OTHERS:
        raise UnsafeLocalState(
            path,
            f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})",
            f"chmod go-w {path}",
        )
    return path


def local_dir(root: Path, *parts: str, create: bool = True) -> Path:
    """`root/.refarch/<parts>`, every level from `.refarch` down checked with `check_ours`
    (refarch's local state is used only if it is ours) and created 0700 where missing;
    with `create=False` a missing level ends the checks (there is nothing to trust yet)."""
    top = Path(root) / LOCAL_DIR
    levels = [top]
    for part in parts:
        levels.append(levels[-1] / part)
    for current in levels:
        if create:
            with contextlib.suppress(FileExistsError):
                current.mkdir(mode=0o700, parents=current == top)
        elif not os.path.lexists(current):
            return Path(root, LOCAL_DIR, *parts)
        check_ours(current)
        if not stat.S_ISDIR(os.lstat(current).st_mode):
            raise UnsafeLocalState(current, "is not a folder", f"remove it (rm {current})")
    return levels[-1]


def check_local_parent(path: Path, *, create: bool = True) -> None:
    """When `path` lies under a `.refarch` folder, apply `local_dir` to its folder: every
    file refarch writes or trusts there sits in folders that are ours alone."""
    parts = Path(path).parts[:-1]
    if LOCAL_DIR not in parts:
        return
    index = parts.index(LOCAL_DIR)
    local_dir(Path(*parts[:index]) if index else Path(), *parts[index + 1 :], create=create)


def remove(path: Path) -> None:
    """Delete a file, a symlink (the link, not its target) or a folder tree without
    following any symlink inside it. A missing path is not an error."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        # On Linux rmtree works on file descriptors (O_NOFOLLOW): a symlink inside the tree
        # is unlinked, never entered. Where it cannot guarantee that, refuse rather than risk it.
        if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - not on Linux
            raise UnsafeLocalState(
                path, "cannot be deleted safely on this platform", f"delete {path} by hand"
            )
        shutil.rmtree(path)
    else:
        path.unlink()


def chmod(path: Path, mode: int) -> None:
    """chmod `path` itself; a symlink is refused (Linux cannot chmod a link, and following
    it could hand someone else's file to this user's mode)."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_PATH", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if path.is_symlink():
            raise UnsafeLocalState(path, "is a symbolic link", f"remove the link (rm {path})") from None
        raise exc from None
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):  # O_PATH | O_NOFOLLOW opened the link itself
            raise UnsafeLocalState(path, "is a symbolic link", f"remove the link (rm {path})")
        if getattr(os, "O_PATH", 0):
            Path(f"/proc/self/fd/{fd}").chmod(mode)
        else:  # pragma: no cover - not on Linux
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def read_bounded(path: Path, *, limit: int = MAX_READ_BYTES, shown: str | None = None) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. A FIFO, a device or a folder
    is refused without waiting on it (opened non-blocking, checked with fstat), and a
    larger file without reading it whole: UnreadableFile naming `shown` (default: path)."""
    name = shown or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except IsADirectoryError:
        raise UnreadableFile("is a folder, not a file", path=name) from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror}", path=name) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFile("is a folder, not a file", path=name)
        if not stat.S_ISREG(info.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
            raise UnreadableFile(f"is {kind}, not a regular file: refarch does not read it", path=name)
        if info.st_size > limit:
            raise UnreadableFile(f"is {info.st_size} bytes, more than the {limit} refarch reads", path=name)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # grew while it was read
        raise UnreadableFile(f"is more than the {limit} bytes refarch reads", path=name)
    return data


def decode_utf8(data: bytes, *, shown: str) -> str:
    """`data` as UTF-8 text, or UnreadableFile naming the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UnreadableFile("is not UTF-8 text (a binary file?)", path=shown, line=line) from None


def read_text(path: Path, *, limit: int = MAX_READ_BYTES, shown: str | None = None) -> str:
    """A bounded read (see `read_bounded`) decoded as UTF-8."""
    return decode_utf8(read_bounded(path, limit=limit, shown=shown), shown=shown or str(path))


# -- this user's key: files refarch wrote and reads back are signed -------------------------
def key_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where this user's key lives: $XDG_CONFIG_HOME/refarch, else ~/.config/refarch."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "refarch" / KEY_FILE


def user_key(path: Path | None = None) -> bytes:
    """This user's key (it signs the unit cache and the demo's saved AWS), made on first
    use: 32 random bytes, 0600 in a 0700 folder.
    Raises UnsafeLocalState when the key or its folder could be read or changed by others."""
    path = path or key_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_ours(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(KEY_BYTES))
    check_ours(path)
    if path.stat().st_mode & 0o077:
        raise UnsafeLocalState(path, "can be read by group or others", f"chmod 600 {path}")
    key = read_bounded(path, limit=4096)
    if len(key) != KEY_BYTES:
        raise UnsafeLocalState(path, "is not a refarch key", f"remove it (rm {path}); a new one is made")
    return key


def sign(magic: bytes, key: bytes, payload: bytes) -> bytes:
    """A signed file's bytes: `magic` (what the file is), HMAC-SHA256 of both, payload."""
    return magic + hmac.new(key, magic + payload, hashlib.sha256).digest() + payload


def verified_payload(magic: bytes, key: bytes, data: bytes) -> bytes | None:
    """The payload of a file `sign` wrote with `magic` and `key`, else None: a file this
    user's refarch did not write (or that was cut short) is never trusted."""
    head = len(magic) + hashlib.sha256().digest_size
    if len(data) < head or not data.startswith(magic):
        return None
    mac, payload = data[len(magic) : head], data[head:]
    expected = hmac.new(key, magic + payload, hashlib.sha256).digest()
    return payload if hmac.compare_digest(mac, expected) else None
