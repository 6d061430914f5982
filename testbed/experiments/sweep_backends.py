"""Where a sweep's runs are computed: in this process, a local process pool, or a Dask
cluster.

:func:`run_outputs` yields ``(run, output)`` as runs finish (in any order); ``output`` is
the :class:`~testbed.experiments.sweep.RunOutput` of :func:`~testbed.experiments.sweep.compute`,
or ``None`` when the worker running it was lost (a killed process, a dead Dask worker):
such a run is not stored and a later re-run of the sweep does it. The caller stores the
outputs, so workers need no access to the results folder.

- ``workers=1`` and no scheduler: one after the other, in this process;
- ``workers=N``: a pool of N fresh processes (``spawn``: nothing is inherited from this
  one, as on a Dask worker);
- ``scheduler=ADDRESS``: a Dask distributed scheduler (``tcp://host:8786``); needs the
  ``distributed`` extra (``pip install 'testbed[distributed]'``) and the project installed
  on every worker, with the scenario's files (topologies, traces) at the same paths.
"""

from __future__ import annotations

import multiprocessing
import secrets
from collections.abc import Generator
from concurrent.futures import ProcessPoolExecutor, as_completed

from testbed.errors import ConfigError
from testbed.experiments.sweep import RunOutput, SweepRun, compute

Outputs = Generator[tuple[SweepRun, RunOutput | None], None, None]   # close() stops it


def describe(n_runs: int, *, workers: int = 1, scheduler: str | None = None) -> str:
    """Where the runs go, for the sweep's first line."""
    if scheduler:
        return f"on the Dask cluster at {scheduler}"
    if workers > 1 and n_runs > 1:
        return f"in {min(workers, n_runs)} local processes"
    return "in this process"


def run_outputs(runs: list[SweepRun], source: str, *, figures: bool = False,
                workers: int = 1, scheduler: str | None = None) -> Outputs:
    """Compute ``runs`` and yield each with its output as it finishes."""
    if not runs:
        nothing: tuple[tuple[SweepRun, RunOutput | None], ...] = ()
        return (output for output in nothing)
    if scheduler:
        return _dask(runs, source, figures, scheduler)
    if workers > 1 and len(runs) > 1:
        return _pool(runs, source, figures, min(workers, len(runs)))
    return ((run, compute(run, source, figures=figures)) for run in runs)


def _pool(runs: list[SweepRun], source: str, figures: bool, workers: int) -> Outputs:
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    finished = False
    try:
        futures = {pool.submit(compute, run, source, figures=figures): run for run in runs}
        for future in as_completed(futures):
            try:
                output = future.result()
            except Exception:  # the worker process died (compute itself never raises)
                output = None
            yield futures[future], output
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:   # interrupted: drop the queued runs and stop the ones in progress now
            # the executor has no public way to stop a running call: end its own workers
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()


def _dask(runs: list[SweepRun], source: str, figures: bool, address: str) -> Outputs:
    """Connect now (a bad address fails before anything starts), then submit every run."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("the Dask backend needs the 'distributed' package; install it with "
                          "pip install 'testbed[distributed]'", field="--scheduler",
                          value=address) from None
    try:   # waits up to the distributed.comm.timeouts.connect setting (30 s by default)
        client = Client(address, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {error}",
                          field="--scheduler", value=address) from None
    return _dask_outputs(client, runs, source, figures)


def _dask_outputs(client, runs: list[SweepRun], source: str, figures: bool) -> Outputs:
    from distributed import as_completed as dask_completed

    with client:
        batch = secrets.token_hex(4)
        by_key = {}
        for run in runs:
            future = client.submit(compute, run, source, figures=figures, pure=False,
                                   key=f"testbed-run-{run.run_id}-{batch}")
            by_key[future.key] = (run, future)
        futures = [future for _, future in by_key.values()]
        try:
            for future in dask_completed(futures, loop=client.loop):
                run, _ = by_key[future.key]
                try:
                    output = future.result()
                except Exception:  # a lost worker (KilledWorker) or a cancelled task
                    output = None
                future.release()
                yield run, output
        finally:
            client.cancel([f for f in futures if not f.done()])
