# SPDX-License-Identifier: Apache-2.0
"""The Dask cluster the fleet runs on: a LocalCluster of worker processes on this machine
by default, or an existing cluster's scheduler (`--scheduler tcp://host:8786`), whose
workers must have this tinyfix installed."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tinyfix.errors import TinyfixError

if TYPE_CHECKING:
    from distributed import Client


def default_workers() -> int:
    return os.cpu_count() or 2


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None,
                timeout_s: float = 30.0) -> Iterator[Client]:
    """A client of `scheduler`, or of a LocalCluster of `workers` single-threaded worker
    processes (the C core and TFLM run one call at a time a process; numpy's threads are
    pinned to one by the nanny)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise TinyfixError("the fleet runs on Dask: pip install 'dask[distributed]'") from exc
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=timeout_s)
        except OSError as exc:
            raise TinyfixError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    n = workers if workers is not None else default_workers()
    if n < 1:
        raise TinyfixError(f"--workers must be at least 1, got {n}")
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client
