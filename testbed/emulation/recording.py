"""Run the simulator and keep what the emulation replays: every placement it decided.

:class:`RecordingPartitioner` wraps a partitioner and remembers each placement it returns
with the token it was asked at; :class:`ReplayPartitioner` returns those placements again
(the same plan under a changed network model); :func:`simulate` runs one simulation with
its computations recorded (``record_jobs``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from testbed.cluster.topology import Topology
from testbed.partition.base import Partitioner
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement
from testbed.sim.engine import SimConfig, Simulation
from testbed.sim.records import Records


class RecordingPartitioner(Partitioner):
    """Delegates to ``inner`` and records ``(token, placement)`` of every decision."""

    def __init__(self, inner: Partitioner):
        super().__init__(None)
        self.inner = inner
        self.name = inner.name
        self.decisions: list[tuple[int, Placement]] = []

    @property
    def last_note(self) -> str:  # type: ignore[override]
        return self.inner.last_note

    def decide(self, obs: Observation) -> Placement:
        placement = self.inner.decide(obs)
        self.decisions.append((obs.token_index, placement))
        return placement


class ReplayPartitioner(Partitioner):
    """Returns the recorded placement of each token (the current one where none was)."""

    name = "replay"

    def __init__(self, decisions: list[tuple[int, Placement]]):
        super().__init__(None)
        self.by_token = dict(decisions)

    def decide(self, obs: Observation) -> Placement:
        placement = self.by_token.get(obs.token_index, obs.placement)
        if placement is None:
            raise ValueError(f"no recorded placement for token {obs.token_index}")
        return placement


@dataclass
class SimulatedRun:
    label: str
    records: Records
    decisions: list[tuple[int, Placement]]
    topology: Topology


def simulate(config: SimConfig, partitioner: Partitioner, label: str, *,
             topology: Topology | None = None,
             network_patch: Callable[[Simulation], None] | None = None) -> SimulatedRun:
    """Simulate ``config`` (on ``topology`` if given) with computations recorded.

    ``network_patch(simulation)`` may adjust the simulation's network before it runs (to
    evaluate a model correction without changing the simulator).
    """
    config = dataclasses.replace(config, record_jobs=True)
    if topology is not None:
        config = dataclasses.replace(config, topology=topology)
    recorder = RecordingPartitioner(partitioner)
    simulation = Simulation(config, recorder)
    if network_patch is not None:
        network_patch(simulation)
    records = simulation.run()
    return SimulatedRun(label, records, recorder.decisions, config.topology)
