"""Power cuts, simulated at the system-call level.

`record(argv, root)` runs a workload under strace and keeps every call that changes a
file under `root` (open/creat with O_CREAT or O_TRUNC, write, pwrite, ftruncate, rename,
unlink, mkdir) and every fsync/fdatasync, in the order they completed. `CutModel` then
rebuilds what the SD card would hold if the power went at any point, under the rule
the issue names: **every write not yet synced is dropped**.

- A data write to a file is on the card only when an fsync/fdatasync of that file
  started after the write had returned and itself returned before the cut.
- A name (creation, rename, removal, mkdir) is on the card only when the folder was
  fsynced after it (POSIX gives no more). `extra_names` keeps that many of the later
  ones too, in order, as a journalling filesystem may: a rename that lands before its
  file's data is the classic torn-config bug, and this is how it shows.
- The -shm file is not kept: it is SQLite's shared-memory index, rebuilt on open.

Works for any code in the process (SQLite's C, Python's io, subprocesses), which an
SQLite VFS could not: the config, the CA and the provisioning marker are state files too.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

TRACED = ("openat,open,creat,close,write,pwrite64,writev,pwritev,pwritev2,ftruncate,"
          "fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,lseek")
O_CREAT, O_TRUNC, O_APPEND = "O_CREAT", "O_TRUNC", "O_APPEND"

_LINE = re.compile(r"^(\d+)\s+(.*)$")
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
_CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(?:<([^>]*)>)?(.*)$", re.S)
_FD = re.compile(r"^(-?\d+|AT_FDCWD)(?:<([^>]*)>)?(?:\(deleted\))?$")


def _hexstr(token: str) -> bytes:
    token = token.strip()
    if token.endswith("..."):
        raise ValueError("strace truncated a string: raise -s")
    assert token[0] == '"' and token[-1] == '"', token
    return bytes.fromhex(token[1:-1].replace("\\x", ""))


def _path(decoration: str | None) -> str | None:
    return _hexstr(f'"{decoration}"').decode("utf-8", "surrogateescape") if decoration else None


def _split_args(text: str) -> list[str]:
    out, depth, cur, in_str = [], 0, [], False
    i = 0
    while i < len(text):
        ch = text[i]
        if in_str:
            cur.append(ch)
            if ch == "\\":
                cur.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
            cur.append(ch)
        elif ch in "[{(<":
            depth += 1
            cur.append(ch)
        elif ch in "]})>":
            depth -= 1
            cur.append(ch)
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    if cur:
        out.append("".join(cur).strip())
    return out


@dataclass
class Call:
    name: str
    args: list[str]
    ret: int
    ret_path: str | None
    entry: int  # line index where the call started
    exit: int   # line index where it returned


def parse(lines: Iterable[str]) -> list[Call]:
    """strace -f -y -xx output -> completed calls in the order they returned."""
    calls, pending = [], {}
    for index, raw in enumerate(lines):
        m = _LINE.match(raw.rstrip("\n"))
        if not m:
            continue
        pid, text = m.groups()
        entry = index
        r = _RESUMED.match(text)
        if r:
            head, entry = pending.pop(pid)
            text = head + r.group(2)
        elif text.endswith("<unfinished ...>"):
            pending[pid] = (text[: -len("<unfinished ...>")].rstrip(), index)
            continue
        c = _CALL.match(text)
        if not c or c.group(3) == "?":
            continue
        name, args, ret, ret_path, _rest = c.groups()
        calls.append(Call(name, _split_args(args), int(ret), _path(ret_path), entry, index))
    return calls


@dataclass
class Op:
    kind: str          # write | trunc | sync | create | rename | unlink | mkdir | dsync | mark
    entry: int
    exit: int
    inode: int = -1
    path: str = ""
    dest: str = ""
    offset: int = 0
    data: bytes = b""


def _fd(token: str) -> tuple[str, str | None]:
    m = _FD.match(token.strip())
    if not m:
        raise ValueError(f"not an fd: {token[:80]}")
    return m.group(1), _path(m.group(2))


class _Tracer:
    """Turns calls into file operations, following names to inodes as the process saw them."""

    def __init__(self, root: Path, marker: Path | None) -> None:
        self.root = str(root)
        self.marker = str(marker) if marker else None
        self.names: dict[str, int] = {}
        self.dirs = {self.root}
        self.sizes: dict[int, int] = {}
        self.fds: dict[str, tuple[int | str, int, bool]] = {}  # fd -> (inode | "dir:path" | "mark", pos, append)
        self.next_inode = 0
        self.ops: list[Op] = []
        self.cwd = "/"

    def inside(self, path: str | None) -> bool:
        return bool(path) and (path == self.root or path.startswith(self.root + "/"))

    def resolve(self, dirfd: str | None, path: str) -> str:
        if path.startswith("/"):
            return os.path.normpath(path)
        base = self.cwd
        if dirfd:
            _, base_path = _fd(dirfd)
            base = base_path or base
        return os.path.normpath(os.path.join(base, path))

    def op(self, call: Call, kind: str, **kw) -> None:
        self.ops.append(Op(kind, call.entry, call.exit, **kw))

    def feed(self, call: Call) -> None:
        n, a = call.name, call.args
        if call.ret < 0:
            return
        if n in ("openat", "open", "creat"):
            dirfd = a[0] if n == "openat" else None
            if dirfd:
                _, cwd = _fd(dirfd)
                self.cwd = cwd or self.cwd
            path = self.resolve(dirfd, _hexstr(a[1 if n == "openat" else 0]).decode("utf-8", "surrogateescape"))
            flags = a[2 if n == "openat" else 1] if n != "creat" else "O_CREAT|O_TRUNC|O_WRONLY"
            fd = str(call.ret)
            if self.marker and path == self.marker:
                self.fds[fd] = ("mark", 0, True)
                return
            if not self.inside(path):
                self.fds.pop(fd, None)
                return
            if path in self.dirs:
                self.fds[fd] = (f"dir:{path}", 0, False)
                return
            if path not in self.names:
                if O_CREAT not in flags:
                    return
                self.names[path] = self.next_inode
                self.sizes[self.next_inode] = 0
                self.next_inode += 1
                self.op(call, "create", path=path, inode=self.names[path])
            inode = self.names[path]
            if O_TRUNC in flags:
                self.sizes[inode] = 0
                self.op(call, "trunc", inode=inode, offset=0)
            self.fds[fd] = (inode, 0, O_APPEND in flags)
        elif n == "close":
            self.fds.pop(_fd(a[0])[0], None)
        elif n in ("write", "pwrite64", "writev", "pwritev", "pwritev2"):
            fd = _fd(a[0])[0]
            if fd not in self.fds:
                return
            target, pos, append = self.fds[fd]
            if n in ("writev", "pwritev", "pwritev2"):
                data = b"".join(_hexstr(s) for s in re.findall(r'iov_base=("[^"]*")', a[1]))
            else:
                data = _hexstr(a[1])
            data = data[: call.ret]
            if target == "mark":
                self.op(call, "mark", data=data)
                return
            if isinstance(target, str):
                return
            if n.startswith("pwrite"):
                offset = int(a[3] if n == "pwrite64" else a[3])
            else:
                offset = self.sizes[target] if append else pos
                self.fds[fd] = (target, offset + len(data), append)
            self.sizes[target] = max(self.sizes[target], offset + len(data))
            self.op(call, "write", inode=target, offset=offset, data=data)
        elif n == "lseek":
            fd = _fd(a[0])[0]
            if fd in self.fds:
                target, _, append = self.fds[fd]
                self.fds[fd] = (target, call.ret, append)
        elif n == "ftruncate":
            fd = _fd(a[0])[0]
            if fd in self.fds and isinstance(self.fds[fd][0], int):
                inode = self.fds[fd][0]
                self.sizes[inode] = int(a[1])
                self.op(call, "trunc", inode=inode, offset=int(a[1]))
        elif n in ("fsync", "fdatasync"):
            fd = _fd(a[0])[0]
            if fd not in self.fds:
                return
            target = self.fds[fd][0]
            if isinstance(target, int):
                self.op(call, "sync", inode=target)
            elif target.startswith("dir:"):
                self.op(call, "dsync", path=target[4:])
        elif n in ("rename", "renameat", "renameat2"):
            if n == "rename":
                src, dst = (self.resolve(None, _hexstr(x).decode()) for x in a[:2])
            else:
                src, dst = self.resolve(a[0], _hexstr(a[1]).decode()), self.resolve(a[2], _hexstr(a[3]).decode())
            if self.inside(src) and self.inside(dst) and src in self.names:
                self.names[dst] = self.names.pop(src)
                self.op(call, "rename", path=src, dest=dst)
        elif n in ("unlink", "unlinkat"):
            path = (self.resolve(None, _hexstr(a[0]).decode()) if n == "unlink"
                    else self.resolve(a[0], _hexstr(a[1]).decode()))
            if self.inside(path) and path in self.names:
                del self.names[path]
                self.op(call, "unlink", path=path)
        elif n in ("mkdir", "mkdirat"):
            path = (self.resolve(None, _hexstr(a[0]).decode()) if n == "mkdir"
                    else self.resolve(a[0], _hexstr(a[1]).decode()))
            if self.inside(path):
                self.dirs.add(path)
                self.op(call, "mkdir", path=path)


def record(argv: list[str], root: Path, *, marker: Path | None = None, log: Path,
           env: dict[str, str] | None = None, timeout: float = 600) -> list[Op]:
    """Run `argv` under strace; return the file operations under `root` (and writes to
    `marker`, the workload's own "light shown" log) in completion order."""
    cmd = ["strace", "-f", "-qq", "-y", "-xx", "-s", str(4 << 20), "--seccomp-bpf",
           "-e", f"trace={TRACED}", "-e", "signal=none", "-o", str(log), *argv]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"workload failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    tracer = _Tracer(root, marker)
    with open(log, encoding="ascii", errors="replace") as fh:
        for call in parse(fh):
            tracer.feed(call)
    return tracer.ops


@dataclass
class CutModel:
    """The card's content after a cut, for cut points in increasing order."""

    ops: list[Op]
    root: Path
    _content: dict[int, bytearray] = field(default_factory=dict)
    _applied: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_ops: dict[int, list[Op]] = {}
        for op in self.ops:
            if op.kind in ("write", "trunc"):
                self.data_ops.setdefault(op.inode, []).append(op)
        self.syncs = [op for op in self.ops if op.kind == "sync"]
        self.dsyncs = [op for op in self.ops if op.kind == "dsync"]
        self.names = [op for op in self.ops if op.kind in ("create", "rename", "unlink", "mkdir")]
        self._last_cut = -1

    def write_points(self) -> list[int]:
        """Line indices of every write and name change: the places a cut can fall."""
        return [op.exit for op in self.ops if op.kind in ("write", "trunc", "create", "rename", "unlink")]

    def marks_before(self, cut: int) -> list[bytes]:
        return [op.data for op in self.ops if op.kind == "mark" and op.exit < cut]

    def _durable_bound(self, syncs: list[Op], key: str, cut: int) -> dict:
        bound: dict = {}
        for s in syncs:
            if s.exit < cut:
                k = getattr(s, key)
                bound[k] = max(bound.get(k, -1), s.entry)
        return bound

    def image(self, cut: int, out: Path, *, extra_names: int = 0) -> dict[str, int]:
        """Write the card as it is after a cut at line `cut` into `out` (emptied first).
        Returns {relative path: inode}. Cuts must come in increasing order."""
        assert cut >= self._last_cut, "cuts must increase"
        self._last_cut = cut
        bounds = self._durable_bound(self.syncs, "inode", cut)
        for inode, bound in bounds.items():
            buf = self._content.setdefault(inode, bytearray())
            ops = self.data_ops.get(inode, [])
            i = self._applied.get(inode, 0)
            while i < len(ops) and ops[i].exit < bound:
                op = ops[i]
                if op.kind == "trunc":
                    del buf[op.offset:]
                else:
                    if len(buf) < op.offset:
                        buf.extend(b"\0" * (op.offset - len(buf)))
                    buf[op.offset: op.offset + len(op.data)] = op.data
                i += 1
            self._applied[inode] = i
        dir_bounds = self._durable_bound(self.dsyncs, "path", cut)
        names: dict[str, int] = {}
        dirs = {str(self.root)}
        extra = extra_names
        for op in self.names:
            if op.exit >= cut:
                break
            folder = os.path.dirname(op.path)
            if op.exit >= dir_bounds.get(folder, -1):
                if extra <= 0:
                    continue
                extra -= 1
            if op.kind == "create":
                names[op.path] = op.inode
            elif op.kind == "mkdir":
                dirs.add(op.path)
            elif op.kind == "rename" and op.path in names:
                names[op.dest] = names.pop(op.path)
            elif op.kind == "unlink":
                names.pop(op.path, None)
        if out.exists():
            for p in sorted(out.rglob("*"), reverse=True):
                p.rmdir() if p.is_dir() else p.unlink()
        out.mkdir(parents=True, exist_ok=True)
        kept = {}
        for d in sorted(dirs):
            rel = os.path.relpath(d, self.root)
            (out / rel).mkdir(parents=True, exist_ok=True)
        for path, inode in names.items():
            if path.endswith("-shm") or os.path.dirname(path) not in dirs:
                continue
            rel = os.path.relpath(path, self.root)
            (out / rel).write_bytes(bytes(self._content.get(inode, b"")))
            kept[rel] = inode
        return kept
