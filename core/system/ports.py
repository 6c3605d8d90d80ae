"""Who listens on a TCP port: the listeners of this network namespace, and the process that holds one.

Listeners come from one netlink sock_diag dump that the kernel filters to LISTEN sockets (tens of
microseconds), else from /proc/net/tcp{,6}; both give each socket's inode. The holder of an inode is
found among the `socket:[inode]` links of /proc/<pid>/fd, which only the owner of a process (or root)
may read: a port held by another user's program is reported as such, without a PID. Where there is no
/proc (macOS), psutil's `net_connections` answers instead.

`listening(port)` is cheap and runs before each start of a process that declares its `port`; `holder`
walks every process's descriptors and runs only when the port turned out to be taken.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, _NLMSG_ERROR, _NLMSG_DONE = 4, 20, 0x301, 2, 3
_TCPF_LISTEN: Final = 1 << 10
_HAS_NETLINK: Final = hasattr(socket, "AF_NETLINK")


def netlink_listeners() -> dict[int, int]:
    """Maps the socket inode of every TCP listener in this network namespace to its port."""
    found: dict[int, int] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as sock:
        sock.settimeout(2.0)  # the kernel always ends a dump; this only bounds a broken one
        for family in (socket.AF_INET, socket.AF_INET6):
            # inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed inet_diag_sockid
            req = struct.pack("=BBBBI48x", family, socket.IPPROTO_TCP, 0, 0, _TCPF_LISTEN)
            sock.send(struct.pack("=IHHII", 16 + len(req), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, 1, 0) + req)
            while (data := sock.recv(65536)) and _parse_diag(data, found):
                pass
    return found


def _parse_diag(data: bytes, found: dict[int, int]) -> bool:
    """Adds one datagram's sockets to `found`. False at the end of the dump."""
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if kind == _NLMSG_DONE:
            return False
        if kind == _NLMSG_ERROR:
            raise OSError(-struct.unpack_from("=i", data, off + 16)[0], "sock_diag refused the dump")
        # after the 16-byte nlmsghdr, inet_diag_msg has the port (big-endian) at 4 and the inode at 68
        found[struct.unpack_from("=I", data, off + 84)[0]] = struct.unpack_from(">H", data, off + 20)[0]
        off += (length + 3) & ~3
    return True


def proc_net_listeners() -> dict[int, int]:
    found: dict[int, int] = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(FileNotFoundError):  # no IPv6 on this machine
            for line in Path(path).read_bytes().splitlines()[1:]:
                f = line.split()
                if len(f) > 9 and f[3] == b"0A":  # TCP_LISTEN
                    found[int(f[9])] = int(f[1].rsplit(b":", 1)[1], 16)
    return found


def listening(port: int) -> frozenset[int] | None:
    """The inodes of the sockets listening on `port` (empty: it is free); None where this cannot be
    known cheaply (no /proc: then `holder` answers)."""
    if _HAS_NETLINK:
        try:
            found = netlink_listeners()
        except OSError:
            found = None
        if found is not None:
            return frozenset(inode for inode, p in found.items() if p == port)
    if os.path.exists("/proc/net/tcp"):
        return frozenset(inode for inode, p in proc_net_listeners().items() if p == port)
    return None


@dataclass(frozen=True, slots=True)
class Holder:
    """A process listening on the port, as far as this user can see it."""

    pid: int | None
    """None: the socket belongs to a process this user may not look into (another user's)."""
    name: str | None = None

    def describe(self, port: int) -> str:
        """`port 8000 is held by pid 4242 (nginx)`: the reason a start failed."""
        if self.pid is None:
            return f"port {port} is held by another program (one this user cannot see: another user's?)"
        return f"port {port} is held by pid {self.pid}" + (f" ({self.name})" if self.name else "")


def holder(port: int, inodes: frozenset[int] | None = None) -> Holder | None:
    """Who listens on `port` (given the listening `inodes`, when known); None when nobody does."""
    if inodes is None:
        inodes = listening(port)
    if inodes is None:  # no /proc
        return _psutil_holder(port)
    if not inodes:
        return None
    for pid in _pids():
        with suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:  # closed since listdir
                    continue
                if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                    return Holder(pid, _name(pid))
    return Holder(None)


def _pids() -> list[int]:
    """Every PID, newest first (the likeliest holders: a program started lately, a leftover of a run)."""
    return sorted((int(n) for n in os.listdir("/proc") if n.isdigit()), reverse=True)


def _name(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().decode("utf-8", "replace").strip() or None
    except OSError:
        return None


def _psutil_holder(port: int) -> Holder | None:  # pragma: no cover - no /proc (macOS)
    import psutil

    try:
        connections = psutil.net_connections("tcp")
    except (psutil.Error, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return Holder(None)
            try:
                return Holder(conn.pid, psutil.Process(conn.pid).name())
            except psutil.Error:
                return Holder(conn.pid)
    return None


async def taken(port: int) -> str | None:
    """Why `port` cannot be a process's (`port 8000 is held by pid 4242 (nginx)`), or None when free.

    Asking the kernel whether anything listens costs a few dozen microseconds, on the start path; the
    owner is looked for (a walk over every process's descriptors, in a thread) only when something does.
    """
    inodes = listening(port)
    if inodes is not None and not inodes:
        return None
    found = await asyncio.to_thread(holder, port, inodes)
    return found.describe(port) if found is not None else None
