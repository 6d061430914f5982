"""The energy one token costs under a placement, as a partitioner can estimate it (J).

From the step's task graph: every compute task's roofline time on its device at the
device's dynamic power (active minus idle), every transfer's bits at the energy per bit of
each hop's link technology (sent and received), and every device's idle power over the
token's delay. Devices without power figures count as drawing none; links without a
technology cost nothing. :mod:`testbed.experiments.energy` measures the same terms on the
records of a run.
"""

from __future__ import annotations

from testbed.cluster.power import route_energy_j_per_bit
from testbed.plan.graph import COMPUTE, TRANSFER
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement
from testbed.units import BITS_PER_BYTE


def token_energy_j(obs: Observation, placement: Placement, delay_s: float) -> float:
    """Energy of the next step under ``placement`` taking ``delay_s`` seconds (J)."""
    graph = obs.flow.template(placement, obs.controller).bind(obs.work)
    t = graph.template
    total = 0.0
    for i, op in enumerate(t.op):
        if op == COMPUTE:
            state = obs.device(t.device[i])
            spec = state.spec
            dynamic = (spec.active_power_w or 0.0) - (spec.idle_power_w or 0.0)
            if dynamic > 0 and (graph.flops[i] or graph.bytes_read[i]):
                total += dynamic * spec.compute_time_s(graph.flops[i], graph.bytes_read[i],
                                                       state.avail_compute, state.avail_mem)
        elif op == TRANSFER and graph.size_bytes[i] > 0:
            total += graph.size_bytes[i] * BITS_PER_BYTE * route_energy_j_per_bit(
                obs.network.topology, t.device[i], t.dst[i])
    idle = sum(d.spec.idle_power_w or 0.0 for d in obs.devices)
    return total + idle * delay_s

