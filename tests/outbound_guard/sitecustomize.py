"""A guard against outbound connections, loaded by every Python process whose path starts with this folder.

When ``RISK_OUTBOUND_LOG`` names a file, every attempt to resolve a host name that is not the machine's own
or to connect a socket to an address outside loopback is refused (``ConnectionRefusedError`` or
``socket.gaierror``, as when a firewall drops it) and appended to that file as one line: the process id,
what was tried and the address. ``tests/test_outbound.py`` runs the demo's steps and the service with it.
It sees what goes through Python's ``socket`` module (``requests``, ``urllib3``, ``httpx``, asyncio's
default loop); a C extension with its own sockets would pass unseen.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

_LOG = os.environ.get("RISK_OUTBOUND_LOG")
_LOCAL_NAMES = {"", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", socket.gethostname()}


def _local(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("idna", "replace")
    host = str(host).strip("[]").lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _record(what: str, target: Any) -> None:
    assert _LOG is not None
    with open(_LOG, "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {what} {target!r}\n")


if _LOG:
    _getaddrinfo = socket.getaddrinfo
    _connect = socket.socket.connect
    _connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _local(host):
            _record("resolve", host)
            raise socket.gaierror(socket.EAI_NONAME, f"outbound guard: {host!r} is not this machine")
        return _getaddrinfo(host, *args, **kwargs)

    def _outside(sock: socket.socket, address: Any) -> bool:
        return sock.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0])

    def connect(self: socket.socket, address: Any) -> None:
        if _outside(self, address):
            _record("connect", address)
            raise ConnectionRefusedError(f"outbound guard: {address!r} is not this machine")
        _connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if _outside(self, address):
            _record("connect", address)
            return 111  # ECONNREFUSED
        return _connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign, assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign, assignment]
