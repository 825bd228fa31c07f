"""Native thread pools are pinned before numpy/blis load: one worker process per core, one thread each,
beats processes fighting over cores (and a pool created before fork can deadlock the child)."""

from __future__ import annotations

import os

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def pin_native_threads(threads: int) -> None:
    for variable in _THREAD_VARIABLES:
        os.environ.setdefault(variable, str(threads))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def lower_cpu_priority(nice: int) -> None:
    """Nice this process (its pool inherits it). Where the kernel groups processes by session
    (``sched_autogroup``, Debian's default), nice only orders processes within one session, and a
    worker started in a session of its own competes as an equal with every other session: so the
    session's group is niced too (``/proc/self/autogroup``). Under systemd, give the service a lower
    ``CPUWeight=`` instead."""
    os.nice(nice)
    try:
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write(str(nice))
    except OSError:  # no autogroup (or not allowed): plain nice it is
        pass
