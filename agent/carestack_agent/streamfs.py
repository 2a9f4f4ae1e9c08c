"""Serve one streamed file through FUSE, so restic reads a pipe as a regular file.

Why this exists: restic 0.14 cannot put `--stdin` and paths into one snapshot
(`--stdin-from-command` arrived in 0.17), and it archives a named pipe as a
special file without content (verified with the real 0.14 binary: a FIFO is
stored as `prw-r--r-- 0 bytes`). To keep "files and database in one snapshot"
*and* "the dump is streamed, never written to disk", the agent mounts a tiny
read-only FUSE file system with a single regular file whose reads are served
straight from `mariadb-dump`'s stdout. The file is opened with FOPEN_DIRECT_IO,
so the kernel forwards every read to us regardless of the advertised size and
restic reads until we answer EOF.

The dump's exit status is part of the content: at the end of the stream the
server waits for the producer and answers the final read with EIO when it
failed, so restic itself reports the file as unreadable (exit code 3) and the
caller forgets that snapshot.

This speaks the kernel's FUSE protocol directly over /dev/fuse (stdlib only,
no libfuse); it needs root (CAP_SYS_ADMIN) and /dev/fuse, which the agent has.
Only the handful of operations restic performs are implemented; everything
else is answered with ENOSYS.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

# Opcodes (linux/fuse.h)
LOOKUP, FORGET, GETATTR = 1, 2, 3
OPEN, READ, STATFS, RELEASE = 14, 15, 17, 18
GETXATTR, LISTXATTR, FLUSH, INIT = 22, 23, 25, 26
OPENDIR, READDIR, RELEASEDIR, ACCESS = 27, 28, 29, 34
INTERRUPT, DESTROY, BATCH_FORGET = 36, 38, 42

FOPEN_DIRECT_IO = 1 << 0
FOPEN_NONSEEKABLE = 1 << 2
FUSE_MAX_PAGES = 1 << 22
MAX_PAGES = 256  # 1 MiB reads

IN_HEADER = struct.Struct("<IIQQIIIHH")  # 40 bytes
OUT_HEADER = struct.Struct("<IiQ")  # 16 bytes
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")  # 88 bytes
READ_IN = struct.Struct("<QQIIQII")
INIT_IN = struct.Struct("<IIII")
INIT_OUT = struct.Struct("<IIIIHHIIHHI7I")  # 64 bytes

ROOT_ID = 1
FILE_ID = 2

MS_NOSUID, MS_NODEV = 2, 4
MNT_DETACH = 2

# glibc's soname on Debian: find_library("c") would run `ldconfig -p` at every job's start.
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class StreamFsError(RuntimeError):
    pass


def _mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    rc = _libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode())
    if rc != 0:
        err = ctypes.get_errno()
        raise StreamFsError(f"mount {target}: {os.strerror(err)} (needs root / CAP_SYS_ADMIN)")


def umount(target: str | Path) -> bool:
    """Lazily unmount `target`; True if something was unmounted."""
    rc = _libc.umount2(str(target).encode(), MNT_DETACH)
    return bool(rc == 0)


def is_mountpoint(path: Path) -> bool:
    want = str(path)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and fields[4].replace("\\040", " ") == want:
                    return True
    except OSError:
        return False
    return False


def clear_stale_mount(path: Path) -> None:
    """Remove a mount left behind by a crashed run (reads would fail with ENOTCONN)."""
    while is_mountpoint(path):
        if not umount(path):
            break


def _widen_pipe(fd: int) -> None:
    """Let the producer run up to 1 MiB ahead of restic's reads.

    With the default 64 KiB pipe, producer and reader ping-pong on every few
    pages: measured 14.8 s to stream a 213 MB dump vs 4.2 s with a 1 MiB pipe
    (the dump alone takes 3.5 s).
    """
    try:
        with open("/proc/sys/fs/pipe-max-size", encoding="ascii") as f:
            size = min(int(f.read()), 16 << 20)
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
    except (OSError, ValueError):
        pass  # not a pipe, or not allowed: correct, only slower


class StreamFile:
    """A FUSE mount at `mountpoint` exposing `filename`, read once, sequentially, from `source_fd`.

    `finish()` is called when the source reaches EOF; it returns None when the
    producer succeeded, or a one-line reason when it failed (the final read is
    then answered with EIO).
    """

    def __init__(
        self,
        mountpoint: Path,
        filename: str,
        source_fd: int,
        finish: Callable[[], str | None],
    ) -> None:
        self.mountpoint = mountpoint
        self.filename = filename.encode()
        self.source_fd = source_fd
        self.finish = finish
        self.now = time.time_ns()  # fresh mtime each run: restic must never reuse a parent's content
        self.pos = 0
        self.eof = False
        self.failure: str | None = None
        self.bytes_served = 0
        self.protocol_error: str | None = None
        self._fd = -1
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> StreamFile:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        _widen_pipe(self.source_fd)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        clear_stale_mount(self.mountpoint)
        try:
            self._fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            raise StreamFsError(
                f"/dev/fuse: {e.strerror}; the streamed dump needs FUSE "
                '(or set [agent] dump_transport = "spool" on this host)'
            ) from None
        try:
            _mount(
                "carestack-dump",
                str(self.mountpoint),
                "fuse.carestack",
                MS_NOSUID | MS_NODEV,
                f"fd={self._fd},rootmode=40000,user_id=0,group_id=0,default_permissions",
            )
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            raise
        self._thread = threading.Thread(target=self._serve, name="streamfs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        umount(self.mountpoint)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # -- protocol --------------------------------------------------------------------

    def _attr(self, node: int) -> bytes:
        s, ns = divmod(self.now, 1_000_000_000)
        if node == ROOT_ID:
            mode, nlink = stat.S_IFDIR | 0o500, 2
        else:
            mode, nlink = stat.S_IFREG | 0o400, 1
        return ATTR.pack(node, 0, 0, s, s, s, ns, ns, ns, mode, nlink, 0, 0, 0, 4096, 0)

    def _reply(self, unique: int, payload: bytes = b"", error: int = 0) -> None:
        data = payload if error == 0 else b""
        try:
            os.write(self._fd, OUT_HEADER.pack(OUT_HEADER.size + len(data), -error, unique) + data)
        except OSError as e:  # ENOENT: the request was interrupted; nothing to do
            if e.errno not in (errno.ENOENT, errno.ENODEV):
                raise

    def _serve(self) -> None:
        bufsize = MAX_PAGES * 4096 + 4096
        while True:
            try:
                req = os.read(self._fd, bufsize)
            except OSError as e:
                if e.errno in (errno.EINTR, errno.EAGAIN, errno.ENOENT):
                    continue
                return  # ENODEV: unmounted
            if not req:
                return
            try:
                if not self._handle(req):
                    return
            except Exception as e:  # never let the kernel wait on a dead server
                self.protocol_error = f"{type(e).__name__}: {e}"
                _, _, unique, *_ = IN_HEADER.unpack_from(req)
                self._reply(unique, error=errno.EIO)

    def _handle(self, req: bytes) -> bool:
        _len, opcode, unique, nodeid, _uid, _gid, _pid, _ext, _pad = IN_HEADER.unpack_from(req)
        body = req[IN_HEADER.size :]
        if opcode == INIT:
            major, minor, max_readahead, _flags = INIT_IN.unpack_from(body)
            if major != 7:
                self._reply(unique, error=errno.EPROTO)
                return False
            out = INIT_OUT.pack(
                7, min(minor, 31), max_readahead, FUSE_MAX_PAGES,
                1, 1, 4096, 1, MAX_PAGES, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            )  # fmt: skip
            self._reply(unique, out)
        elif opcode == LOOKUP:
            name = body.split(b"\0", 1)[0]
            if nodeid == ROOT_ID and name == self.filename:
                self._reply(unique, struct.pack("<QQQQII", FILE_ID, 1, 1, 1, 0, 0) + self._attr(FILE_ID))
            else:
                self._reply(unique, error=errno.ENOENT)
        elif opcode == GETATTR:
            self._reply(unique, struct.pack("<QII", 1, 0, 0) + self._attr(nodeid))
        elif opcode in (OPEN, OPENDIR):
            flags = FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE if opcode == OPEN else 0
            self._reply(unique, struct.pack("<QII", nodeid, flags, 0))
        elif opcode == READ:
            _fh, offset, size, *_ = READ_IN.unpack_from(body)
            self._read(unique, offset, size)
        elif opcode == READDIR:
            _fh, offset, size, *_ = READ_IN.unpack_from(body)
            entries = [(ROOT_ID, b".", 4), (ROOT_ID, b"..", 4), (FILE_ID, self.filename, 8)]
            out = b""
            for i, (ino, name, typ) in enumerate(entries):
                if i < offset:
                    continue
                ent = struct.pack("<QQII", ino, i + 1, len(name), typ) + name
                ent += b"\0" * (-len(ent) % 8)
                if len(out) + len(ent) > size:
                    break
                out += ent
            self._reply(unique, out)
        elif opcode in (RELEASE, RELEASEDIR, FLUSH, ACCESS):
            self._reply(unique)
        elif opcode == STATFS:
            self._reply(unique, struct.pack("<QQQQQIIII6I", 0, 0, 0, 2, 0, 4096, 255, 4096, 0, *([0] * 6)))
        elif opcode in (FORGET, BATCH_FORGET, INTERRUPT):
            pass  # no reply expected
        elif opcode == DESTROY:
            self._reply(unique)
            return False
        else:  # GETXATTR, LISTXATTR and anything else
            self._reply(unique, error=errno.ENOSYS)
        return True

    def _read(self, unique: int, offset: int, size: int) -> None:
        if offset != self.pos:
            # the stream cannot rewind; restic reads strictly sequentially
            self._reply(unique, error=errno.EIO)
            return
        if self.failure is not None:
            self._reply(unique, error=errno.EIO)
            return
        chunks: list[bytes] = []
        got = 0
        while got < size and not self.eof:
            try:
                chunk = os.read(self.source_fd, size - got)
            except OSError as e:
                self.failure = f"reading the dump stream: {e.strerror}"
                break
            if not chunk:
                self.eof = True
                self.failure = self.finish()
                break
            chunks.append(chunk)
            got += len(chunk)
        if got == 0 and self.failure is not None:
            self._reply(unique, error=errno.EIO)
            return
        data = b"".join(chunks)
        self.pos += got
        self.bytes_served += got
        self._reply(unique, data)
