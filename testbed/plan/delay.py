"""Closed-form delays of a placement when nothing contends (the analytic cost model).

The inference delay of a placement is the critical path of its task graph
(:func:`testbed.plan.critical_path.critical_path`): the dataflow the placement runs under
builds the graph, the step's work gives its numbers, devices and links as they are now give
each task's time. A transfer costs its messages' overheads, the path latency plus bytes
over the bottleneck bandwidth; within one device it is free.

The simulator reproduces :func:`token_delay` when capacities are constant and no transfers
share a link; partitioners use it as their estimate of inference delay.
"""

from __future__ import annotations

from collections.abc import Mapping

from testbed.plan.critical_path import Delay, critical_path
from testbed.plan.messages import NO_MESSAGE_COSTS, MessageCosts
from testbed.plan.network_view import NetworkView
from testbed.plan.observation import DeviceState, Observation
from testbed.plan.placement import Placement
from testbed.plan.work import StepWork
from testbed.units import BITS_PER_BYTE

__all__ = ["Delay", "token_delay", "estimate_token_delay", "migration_delay_s",
           "decision_cost_s"]


def token_delay(placement: Placement, work: StepWork, devices: Mapping[str, DeviceState],
                network: NetworkView, controller: str, dataflow=None,
                messages: MessageCosts = NO_MESSAGE_COSTS) -> Delay:
    """Latency of one forward pass under ``placement`` with no contention (s), under
    ``dataflow`` (a :class:`~testbed.dataflows.Dataflow`, a name, or None: head_level)."""
    from testbed.dataflows import make_dataflow
    graph = make_dataflow(dataflow).template(placement, controller).bind(work)
    return critical_path(graph, devices, network, messages)


def estimate_token_delay(obs: Observation, placement: Placement) -> Delay:
    """:func:`token_delay` of the next step from what the observation shows."""
    return token_delay(placement, obs.work, obs.device_by_name, obs.network, obs.controller,
                       obs.flow, obs.messages)


def migration_delay_s(obs: Observation, placement: Placement) -> float:
    """Time to move from ``obs.placement`` to ``placement`` if no other traffic contends.

    Blocks moving between the same pair of devices travel as one transfer; transfers
    between different pairs run in parallel (their sharing of links is ignored here).
    """
    per_pair: dict[tuple[str, str], float] = {}
    for block, old, new in placement.moved(obs.placement):
        per_pair[(old, new)] = per_pair.get((old, new), 0.0) + obs.migration_bytes(block)
    worst = 0.0
    for (old, new), size in per_pair.items():
        bw = obs.network.bandwidth_bps(old, new)
        time = obs.network.latency_s(old, new) + (size * BITS_PER_BYTE / bw if bw > 0
                                                  else float("inf"))
        worst = max(worst, time)
    return worst


def decision_cost_s(obs: Observation, placement: Placement, *,
                    include_migration: bool = True) -> float:
    """What one decision is judged by: the inference delay over the decision interval plus
    the migration delay of getting there from the current placement (s)."""
    cost = obs.decision_interval * estimate_token_delay(obs, placement).total_s
    if include_migration and obs.placement is not None:
        cost += migration_delay_s(obs, placement)
    return cost
