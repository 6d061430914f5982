"""Placements as counts, and their closed-form delay computed fast with numpy.

Attention blocks of one layer are identical, so for searching placements a layer is
described by ``counts[d]`` (attention blocks on device ``d``), the proj device and the ffn
device. :class:`CountDelay` evaluates :func:`testbed.plan.delay.token_delay` on that form
from precomputed device and pair matrices (same formula, same numbers), cheap enough for
local search over thousands of candidate moves; :func:`to_placement` turns counts back
into a :class:`Placement`, keeping blocks where they are whenever the counts allow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from testbed.plan.observation import Observation
from testbed.plan.placement import Placement
from testbed.units import BITS_PER_BYTE

#: Up to this many devices, a layer's time is summed in a plain loop (faster than numpy).
_LOOP_DEVICES = 32


@dataclass
class CountLayers:
    """Per layer: attention counts per device (``counts[l, d]``), proj and ffn device index."""

    counts: np.ndarray   # int, shape (layers, devices)
    proj: np.ndarray     # int, shape (layers,)
    ffn: np.ndarray      # int, shape (layers,)

    def copy(self) -> "CountLayers":
        return CountLayers(self.counts.copy(), self.proj.copy(), self.ffn.copy())


class CountDelay:
    """The closed-form token delay of count placements on the devices of ``obs`` (s)."""

    def __init__(self, obs: Observation):
        self.obs = obs
        self.names = [d.name for d in obs.devices]
        self.index = {name: i for i, name in enumerate(self.names)}
        n = len(self.names)
        work, net = obs.work, obs.network
        states = obs.devices
        self.ca = np.array([s.compute_time_s(work.attn) for s in states])
        self.cp = np.array([s.compute_time_s(work.proj) for s in states])
        self.cf = np.array([s.compute_time_s(work.ffn) for s in states])
        lat = np.zeros((n, n))
        sec_per_bit = np.zeros((n, n))
        for i, a in enumerate(self.names):
            for j, b in enumerate(self.names):
                if i != j:
                    lat[i, j] = net.latency_s(a, b)
                    bw = net.bandwidth_bps(a, b)
                    sec_per_bit[i, j] = 1.0 / bw if bw > 0 else np.inf
        self.lat, self.sec_per_bit = lat, sec_per_bit
        off = ~np.eye(n, dtype=bool)
        self.x_in = np.where(off, lat + work.input_bytes * BITS_PER_BYTE * sec_per_bit, 0.0)
        self.x_out = np.where(off, work.attn.output_bytes * BITS_PER_BYTE * sec_per_bit, 0.0)
        self._dead_links = bool(np.isinf(self.x_out).any())
        self.x_proj = np.where(off, lat + work.proj.output_bytes * BITS_PER_BYTE * sec_per_bit,
                               0.0)
        ctl = self.index[obs.controller]
        self.controller = ctl
        self.x_ret = np.array([0.0 if i == ctl else lat[i, ctl] + work.output_bytes
                               * BITS_PER_BYTE * sec_per_bit[i, ctl] for i in range(n)])
        self.lm_head_s = states[ctl].compute_time_s(work.lm_head)
        # the hot loop of local search: per-proj columns and plain floats, computed once
        self._columns: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._cp, self._cf = self.cp.tolist(), self.cf.tolist()
        self._x_proj = self.x_proj.tolist()
        self._ca, self._x_in = self.ca.tolist(), self.x_in.tolist()
        self._lat_t, self._x_out_t = self.lat.T.tolist(), self.x_out.T.tolist()

    def _column(self, proj: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(is the proj device, latency to proj, output seconds to proj) per device."""
        column = self._columns.get(proj)
        if column is None:
            column = (np.arange(len(self.names)) == proj,
                      np.ascontiguousarray(self.lat[:, proj]),
                      np.ascontiguousarray(self.x_out[:, proj]))
            self._columns[proj] = column
        return column

    def branches(self, counts: np.ndarray, proj: int, src: int) -> np.ndarray:
        """Per device: end of its attention branch (input, compute, output to proj) in s;
        0 for devices without attention blocks of the layer."""
        is_proj, lat, x_out = self._column(proj)
        if self._dead_links:           # 0 blocks x inf s would be NaN (masked below anyway)
            sends = np.multiply(counts, x_out, out=np.zeros(len(counts)), where=counts > 0)
        else:
            sends = counts * x_out
        out = np.where(is_proj, 0.0, lat + sends)
        return np.where(counts > 0, self.x_in[src] + counts * self.ca + out, 0.0)

    def layer_s(self, counts: np.ndarray, proj: int, ffn: int, src: int) -> float:
        """Time of one layer from the moment its input is ready at ``src`` (s)."""
        longest = self._longest_branch(counts, proj, src) if len(counts) <= _LOOP_DEVICES \
            else math.nan
        if longest != longest:   # many devices (numpy is faster), or a NaN to propagate
            longest = float(np.maximum.reduce(self.branches(counts, proj, src)))
        return longest + self._cp[proj] + self._x_proj[proj][ffn] + self._cf[ffn]

    def _longest_branch(self, counts: np.ndarray, proj: int, src: int) -> float:
        """``branches(...).max()`` by a loop over the hosting devices: the same operations
        in the same order, so the same number, without numpy's per-call cost."""
        x_in, ca = self._x_in[src], self._ca
        lat, x_out = self._lat_t[proj], self._x_out_t[proj]
        longest = 0.0   # branches are >= 0 s, and idle devices count 0 s
        for d, c in enumerate(counts.tolist()):
            if c > 0:
                branch = x_in[d] + c * ca[d] + (0.0 if d == proj else lat[d] + c * x_out[d])
                if branch != branch:
                    return branch
                if branch > longest:
                    longest = branch
        return longest

    def token_s(self, layers: CountLayers) -> float:
        """:func:`~testbed.plan.delay.token_delay` ``.total_s`` of the count placement."""
        total, src = 0.0, self.controller
        for layer in range(len(layers.proj)):
            total += self.layer_s(layers.counts[layer], layers.proj[layer], layers.ffn[layer],
                                  src)
            src = layers.ffn[layer]
        return total + self.x_ret[src] + self.lm_head_s

    def from_placement(self, placement: Placement) -> CountLayers:
        n_layers = placement.model.n_layers
        counts = np.zeros((n_layers, len(self.names)), dtype=np.int64)
        proj = np.zeros(n_layers, dtype=np.int64)
        ffn = np.zeros(n_layers, dtype=np.int64)
        for plan in placement.layers:
            for device, n in plan.attn_hosts:
                counts[plan.layer, self.index[device]] = n
            proj[plan.layer] = self.index[plan.proj]
            ffn[plan.layer] = self.index[plan.ffn]
        return CountLayers(counts, proj, ffn)

    def to_placement(self, layers: CountLayers, current: Placement | None = None) -> Placement:
        """A placement with these counts; blocks stay on their current device if they can."""
        model = self.obs.model
        blocks = self.obs.blocks
        per_layer = model.attn_blocks_per_layer + 2
        devices: list[str] = []
        for layer in range(model.n_layers):
            chunk = blocks[layer * per_layer:(layer + 1) * per_layer]
            want = {self.names[d]: int(c) for d, c in enumerate(layers.counts[layer]) if c}
            chosen: list[str | None] = [None] * (per_layer - 2)
            if current is not None:
                for k, block in enumerate(chunk[:-2]):
                    here = current.device_of(block)
                    if want.get(here, 0) > 0:
                        chosen[k] = here
                        want[here] -= 1
            free = [d for d, c in want.items() for _ in range(c)]
            devices.extend(d if d is not None else free.pop(0) for d in chosen)
            devices.append(self.names[layers.proj[layer]])
            devices.append(self.names[layers.ffn[layer]])
        return Placement(model, devices)
