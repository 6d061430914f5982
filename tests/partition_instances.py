"""Small random observations for partitioner tests, built the way the engine's ``observe()``
builds them (DeviceState, NetworkView(topology, capacities), Observation).

A ``ctl`` controller plus ``n_workers`` workers ``w0``, ``w1``, ... drawn from the device
catalog; link capacities drawn per direction (bit/s). Memory is set relative to the whole
model's need ``M`` (bytes, at the end of the decision interval): ``big`` workers get 1.5 M
(each can hold the whole model alone), the others 0.1-0.9 M, the controller 4 M so that it
tempts partitioners that must not use it.
"""

from __future__ import annotations

import numpy as np

from testbed.cluster import TOPOLOGY_GENERATORS, list_device_types, make_device
from testbed.model import get_cost_model, get_model
from testbed.plan.network_view import NetworkView
from testbed.plan.observation import DeviceState, Observation
from testbed.plan.placement import Placement
from testbed.plan.work import DECODE, step_work

PROMPT = 32
GENERATED = 4


def model_of(name: str, n_layers: int | None = None):
    model = get_model(name)
    return model.with_overrides(n_layers=n_layers) if n_layers else model


def model_need_bytes(obs: Observation) -> float:
    """Memory of every block of the model at the end of the decision interval (bytes)."""
    return sum(obs.memory_bytes(block) for block in obs.blocks)


def used_bytes(obs: Observation, placement: Placement) -> dict[str, float]:
    """Memory each device holds under ``placement`` (bytes), summed block by block."""
    used: dict[str, float] = {}
    for block, device in placement.items():
        used[device] = used.get(device, 0.0) + obs.memory_bytes(block)
    return used


def build(devices, capacities, model, cost, *, up=None, avail=None,
          controller_hosts_blocks=False, placement=None, decision_interval=1,
          reserved=None, latency_s=0.001) -> Observation:
    """An Observation of a full mesh of ``devices`` (DeviceSpecs, the first one controls);
    ``capacities``: one capacity (bit/s) for every link direction, or a dict of them."""
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 1e9, latency_s)
    if not isinstance(capacities, dict):
        capacities = {key: capacities for key in topology.links}
    up, avail, reserved = up or {}, avail or {}, reserved or {}
    work = step_work(cost, model, DECODE, PROMPT + GENERATED, GENERATED)
    states = tuple(DeviceState(d, up.get(d.name, True), avail.get(d.name, 1.0), 1.0,
                               reserved.get(d.name, 0.0)) for d in devices)
    return Observation(0.0, GENERATED + 1, work, model, cost, states,
                       NetworkView(topology, capacities), devices[0].name,
                       controller_hosts_blocks, placement, decision_interval)


def random_observation(seed: int, model_name: str = "paper-small", n_layers: int | None = None,
                       cost: str = "decode", *, n_workers: int | None = None, big: int = 1,
                       n_down: int = 0, controller_hosts_blocks: bool = False,
                       memory_scale: float | None = None, decision_interval: int = 1,
                       placement: Placement | None = None) -> Observation:
    """A random instance where ``big`` workers can each hold the whole model; ``n_down``
    other workers are down. ``memory_scale`` (if given) sets every worker's memory to that
    fraction of the model's need instead (e.g. 0.1 for an infeasible instance)."""
    rng = np.random.default_rng(seed)
    model, cost_model = model_of(model_name, n_layers), get_cost_model(cost)
    n_workers = n_workers or int(rng.integers(3, 6))
    kinds = list_device_types()
    names = ["ctl"] + [f"w{i}" for i in range(n_workers)]
    devices = [make_device(n, kinds[int(rng.integers(len(kinds)))]) for n in names]
    probe = build(devices, 1e9, model, cost_model, decision_interval=decision_interval)
    need = model_need_bytes(probe)
    order = [int(i) for i in rng.permutation(n_workers)]
    bigs, others = set(order[:big]), order[big:]
    down = {f"w{i}" for i in others[:n_down]}
    lm_head = probe.work.lm_head.weight_bytes             # reserved on the controller
    memory = {"ctl": 4 * need + lm_head}
    for i in range(n_workers):
        share = 1.5 if i in bigs else float(rng.uniform(0.1, 0.9))
        memory[f"w{i}"] = (memory_scale if memory_scale is not None else share) * need
    devices = [d.with_overrides(memory_bytes=memory[d.name]) for d in devices]
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 1e9, 0.001)
    capacities = {key: float(rng.uniform(20e6, 2e9)) for key in topology.links}
    avail = {d.name: float(rng.uniform(0.3, 1.0)) for d in devices}
    return build(devices, capacities, model, cost_model, up={n: False for n in down},
                 avail=avail, controller_hosts_blocks=controller_hosts_blocks,
                 placement=placement, decision_interval=decision_interval,
                 reserved={"ctl": lm_head})
