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
