"""Closed-form delays of a placement when nothing contends (the analytic cost model).

Per layer, the hidden state goes from the previous layer's ffn device (the controller
for layer 0) to every device hosting an attention block of the layer; each such device
runs its blocks one after another; their outputs go to the proj device; proj runs; its
output goes to the ffn device; ffn runs. After the last layer the hidden state returns
to the controller, which runs the LM head. A transfer costs the path latency plus bytes
over the bottleneck bandwidth; within one device it is free.

The simulator must reproduce :func:`token_delay` exactly when capacities are constant and
no transfers share a link; partitioners use it as their estimate of inference delay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from testbed.plan.network_view import NetworkView
from testbed.plan.observation import DeviceState, Observation
from testbed.plan.placement import Placement
from testbed.plan.work import StepWork
from testbed.units import BITS_PER_BYTE


@dataclass(frozen=True)
class Delay:
    """A token's latency (s), split along its critical path into compute and transfers."""

    total_s: float
    compute_s: float
    comm_s: float


def token_delay(placement: Placement, work: StepWork, devices: Mapping[str, DeviceState],
                network: NetworkView, controller: str) -> Delay:
    """Latency of one forward pass under ``placement`` with no contention (s)."""
    t, compute, comm = 0.0, 0.0, 0.0  # time and critical-path split at the current source
    src = controller
    attn, proj, ffn = work.attn, work.proj, work.ffn
    for layer in placement.layers:
        best = None
        for device, n in layer.attn_hosts:
            x_in = network.transfer_time_s(src, device, work.input_bytes)
            c = n * devices[device].compute_time_s(attn)
            x_out = network.transfer_time_s(device, layer.proj, n * attn.output_bytes)
            done = t + x_in + c + x_out
            if best is None or done > best[0]:
                best = (done, compute + c, comm + x_in + x_out)
        t, compute, comm = best
        c = devices[layer.proj].compute_time_s(proj)
        x = network.transfer_time_s(layer.proj, layer.ffn, proj.output_bytes)
        t, compute, comm = t + c + x, compute + c, comm + x
        c = devices[layer.ffn].compute_time_s(ffn)
        t, compute = t + c, compute + c
        src = layer.ffn
    x = network.transfer_time_s(src, controller, work.output_bytes)
    c = devices[controller].compute_time_s(work.lm_head)
    return Delay(t + x + c, compute + c, comm + x)


def estimate_token_delay(obs: Observation, placement: Placement) -> Delay:
    """:func:`token_delay` of the next step from what the observation shows."""
    return token_delay(placement, obs.work, obs.device_by_name, obs.network, obs.controller)


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
