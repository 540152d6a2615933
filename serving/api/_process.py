"""Service workers that never outlive the process that started them.

``bentoml serve`` runs an arbiter process that starts the workers. If the arbiter is killed with
``kill -9`` (or ``riskctl serve``, which execs into it), nothing would stop its workers: they would
go on answering on the port with the tokens they hold, and a restart would fail with "Address already
in use". :func:`die_with_parent` asks Linux to send the worker ``SIGTERM`` when its parent dies
(``prctl(PR_SET_PDEATHSIG)``), and exits at once if the parent is already gone.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

__all__ = ["die_with_parent"]

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have this process receive ``sig`` when its parent dies (Linux); True if that is in place.

    ``SIGTERM`` lets the worker shut down cleanly (uvicorn stops accepting, the shutdown checkpoint is
    signed). Elsewhere than Linux it does nothing and returns False: run the service under a supervisor
    that kills the whole process group (systemd ``KillMode=control-group``, a container).
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        return False
    if os.getppid() != parent:  # the parent died before the request took effect
        log.warning("the process that started this worker is gone: stopping")
        os.kill(os.getpid(), sig)
    return True
