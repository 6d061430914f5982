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
from typing import TYPE_CHECKING

from testbed.plan.critical_path import Delay, critical_path
from testbed.plan.messages import NO_MESSAGE_COSTS, MessageCosts
from testbed.plan.network_view import NetworkView
from testbed.plan.observation import DeviceState, Observation
from testbed.plan.placement import Placement
from testbed.plan.work import StepWork
from testbed.units import BITS_PER_BYTE

if TYPE_CHECKING:
    from testbed.dataflows import Dataflow
    from testbed.plan.counts import CountDelay

__all__ = ["Delay", "token_delay", "estimate_token_delay", "estimate_token_delay_s",
           "migration_delay_s", "decision_cost_s"]


def token_delay(placement: Placement, work: StepWork, devices: Mapping[str, DeviceState],
                network: NetworkView, controller: str,
                dataflow: Dataflow | str | dict | None = None,
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


def estimate_token_delay_s(obs: Observation, placement: Placement) -> float:
    """``estimate_token_delay(obs, placement).total_s``, by the count form
    (:class:`~testbed.plan.counts.CountDelay`, the same closed form in numbers, tested
    equal) where it applies: ``head_level`` with whole proj and ffn blocks and no message
    costs. Partitioners that compare many placements use this."""
    fast = _count_delay(obs)
    if fast is None:
        return estimate_token_delay(obs, placement).total_s
    return fast.token_s(fast.from_placement(placement))


def _count_delay(obs: Observation) -> CountDelay | None:
    """The observation's :class:`CountDelay` (made once per observation), or None where
    the count form does not describe the dataflow."""
    cached = obs.__dict__.get("_count_delay", False)
    if cached is not False:
        return cached
    from testbed.plan.counts import CountDelay
    model, flow = obs.model, obs.flow
    applies = (flow.name == "head_level" and not flow.options and model.proj_shards == 1
               and model.ffn_shards == 1 and not obs.messages.any)
    fast = CountDelay(obs) if applies else None
    obs.__dict__["_count_delay"] = fast
    return fast


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
                    include_migration: bool = True, fast: bool = False) -> float:
    """What one decision is judged by: the inference delay over the decision interval plus
    the migration delay of getting there from the current placement (s). ``fast`` takes
    the delay by :func:`estimate_token_delay_s` (equal to 1e-12; for searches)."""
    delay = estimate_token_delay_s(obs, placement) if fast else \
        estimate_token_delay(obs, placement).total_s
    cost = obs.decision_interval * delay
    if include_migration and obs.placement is not None:
        cost += migration_delay_s(obs, placement)
    return cost
