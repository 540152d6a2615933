"""Local server processes for the demo, the tests and the benchmarks: start ``bentoml serve`` (or any HTTP
server command) on localhost, wait until it is ready, stop its whole process group afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

#: The service as ``bentoml serve`` takes it.
SERVICE = "serving.api:RiskService"


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_service(
    target: str = SERVICE,
    *,
    port: int | None = None,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 180,
) -> Iterator[str]:
    """Run ``bentoml serve TARGET`` on localhost until the block ends; yields its base URL."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "bentoml", "serve", target, "--host", "127.0.0.1", "--port", str(port)]
    with running_server(cmd, port=port, ready_path="/readyz", log_path=log_path, env=env, timeout_s=timeout_s) as url:
        yield url


@contextlib.contextmanager
def running_server(
    cmd: list[str],
    *,
    port: int,
    ready_path: str,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 180,
    tls_ca: Path | None = None,
) -> Iterator[str]:
    """Run a local HTTP server command until the block ends; yields ``http://127.0.0.1:PORT`` (``https://``
    with ``tls_ca``, the certificate the server's is checked against).

    Waits until ``ready_path`` answers 200; if the server exits first or never gets ready, raises
    with the end of its log. The whole process group is stopped afterwards.
    """
    import ssl

    import httpx

    verify = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca else True

    log_path = log_path or Path(tempfile.mkstemp(prefix="server-", suffix=".log")[1])
    with log_path.open("wb") as log_fh:
        proc = subprocess.Popen(
            cmd, stdout=log_fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True
        )
    url = f"{'https' if tls_ca else 'http'}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[2:4]} exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                if httpx.get(f"{url}{ready_path}", timeout=2, verify=verify).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{cmd[2:4]} not ready after {timeout_s:.0f} s:\n{_tail(log_path)}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
