"""The Mininet backend: the simulator's per-token plan executed on real TCP.

The same :class:`~testbed.cluster.topology.Topology` is built as Mininet hosts (one per
device), Linux bridges (one per switch) and ``tc``-shaped links; a worker process per host
waits for its inputs, spends each block's simulated compute time and sends the real number
of bytes to the hosts that need them. :func:`testbed.emulation.validate.validate_mininet`
runs both backends and compares them.

This package's ``__init__`` stays import-light: the worker processes import
:mod:`testbed.emulation.worker` at start-up and must not pay for pandas or Mininet.
"""
