"""What a partitioner sees at a decision: the instantaneous state, nothing from the future.

Partitioners get an :class:`Observation` and return a :class:`~testbed.plan.Placement`.
It holds the devices as they are now (up or down, available fraction of compute and
memory bandwidth, memory left for blocks), the network's capacities now, the current
placement, and the work of the next step, so an algorithm can be written without
touching the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from testbed.cluster.device import DeviceSpec
from testbed.model.blocks import ATTN, Block, blocks_of
from testbed.model.cost import BlockCost, CostModel
from testbed.model.spec import ModelSpec
from testbed.plan.messages import NO_MESSAGE_COSTS, MessageCosts
from testbed.plan.network_view import NetworkView
from testbed.plan.placement import Placement
from testbed.plan.work import StepWork

if TYPE_CHECKING:
    from testbed.dataflows import Dataflow


@dataclass(frozen=True)
class DeviceState:
    """A device now: ``avail_*`` are the fractions of compute and memory bandwidth free
    of background load; ``reserved_bytes`` is memory not available to blocks (the
    controller's embedding and LM head, background use)."""

    spec: DeviceSpec
    up: bool = True
    avail_compute: float = 1.0
    avail_mem: float = 1.0
    reserved_bytes: float = 0.0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def usable(self) -> bool:
        """Up, with some compute and memory bandwidth free of background load now."""
        return self.up and self.avail_compute > 0 and self.avail_mem > 0

    @property
    def block_memory_bytes(self) -> float:
        """Memory this device can give to blocks (bytes)."""
        return self.spec.memory_bytes - self.reserved_bytes

    @property
    def effective_flops(self) -> float:
        """FLOP/s a block gets now (peak x efficiency x available fraction)."""
        return self.spec.peak_flops * self.spec.eff_flops * self.avail_compute

    def compute_time_s(self, cost: BlockCost) -> float:
        """Roofline time of one block on this device now (s)."""
        return self.spec.compute_time_s(cost.flops, cost.bytes_read, self.avail_compute,
                                        self.avail_mem)


@dataclass(frozen=True)
class RequestLoad:
    """A running request as a partitioner sees it (tokens)."""

    request: int
    prompt_tokens: int
    output_tokens: int
    cached: int          # positions in its K/V cache now
    generated: int       # output tokens so far


@dataclass(frozen=True)
class ServingLoad:
    """The load when many requests are served: the running batch and the queue."""

    running: tuple[RequestLoad, ...] = ()
    waiting: int = 0             # requests arrived and not admitted yet
    waiting_tokens: int = 0      # positions they will read when admitted (prompts)
    batch_starts: tuple[int, ...] = ()   # positions cached by each request of the batch
                                         # decided on (its decode items' ``start``)


@dataclass(frozen=True)
class Observation:
    """The state a partitioner decides from (times in s, sizes in bytes)."""

    time_s: float
    token_index: int                 # the next token to generate (1 = the first)
    work: StepWork                   # the next forward pass
    model: ModelSpec
    cost: CostModel
    devices: tuple[DeviceState, ...]
    network: NetworkView
    controller: str
    controller_hosts_blocks: bool
    placement: Placement | None      # None at the first decision
    decision_interval: int = 1
    weights_preloaded: bool = False  # weights sit in every device's local storage
    dataflow: Dataflow | str | dict | None = None   # the Dataflow the placement will run
                                                    # under (None: default)
    messages: MessageCosts = NO_MESSAGE_COSTS   # per-message overheads
    load: ServingLoad | None = None  # served requests (None: one sequence)

    @property
    def blocks(self) -> tuple[Block, ...]:
        return blocks_of(self.model)

    @property
    def seq_len(self) -> int:
        return self.work.seq_len

    @cached_property
    def device_by_name(self) -> dict[str, DeviceState]:
        return {d.name: d for d in self.devices}

    def device(self, name: str) -> DeviceState:
        return self.device_by_name[name]

    @cached_property
    def candidates(self) -> tuple[str, ...]:
        """Devices that may host blocks now: up, not entirely taken by background load
        (:attr:`DeviceState.usable`), and not the controller unless allowed."""
        return tuple(d.name for d in self.devices if d.usable and
                     (self.controller_hosts_blocks or d.name != self.controller))

    def block_cost(self, block: Block | str) -> BlockCost:
        """Cost of one block in the next step (pass a Block or a kind)."""
        kind = block if isinstance(block, str) else block.kind
        return self.work.cost(kind)

    def memory_bytes(self, block: Block | str, tokens_ahead: int | None = None) -> float:
        """Memory the block will hold ``tokens_ahead`` tokens from now (default: the end of
        the decision interval), K/V growth included (bytes); with served requests, the
        growth of every request in the batch."""
        kind = block if isinstance(block, str) else block.kind
        ahead = self.decision_interval if tokens_ahead is None else tokens_ahead
        cost = self.work.cost(kind)
        if ahead <= 1 or kind != ATTN:
            return cost.memory_bytes
        if self.load is not None and self.load.batch_starts:
            # every request of the batch further on
            later = self._batch_later(ahead, self.load.batch_starts)
        else:
            later = self.cost.step_cost(self.model, kind, self.work.seq_len + ahead - 1,
                                        self.work.generated + ahead - 1)
        return max(cost.memory_bytes, later.memory_bytes)

    def _batch_later(self, ahead: int, starts: tuple[int, ...]) -> BlockCost:
        cache = self.__dict__.setdefault("_later", {})
        if ahead not in cache:
            from testbed.plan.batch import PassItem, batch_work
            cache[ahead] = batch_work(self.cost, self.model, [
                PassItem(start + ahead - 1) for start in starts]).attn
        return cache[ahead]

    @cached_property
    def flow(self) -> Dataflow:
        """The dataflow the placement runs under (``head_level`` unless the scenario
        chose another)."""
        from testbed.dataflows import make_dataflow
        return make_dataflow(self.dataflow)

    def memory_by_device(self, placement: Placement) -> dict[str, float]:
        """Bytes each device would hold for ``placement``'s blocks in the next step, as
        its dataflow places them (under ``root_sync`` the root holds every K/V cache)."""
        return self.flow.template(placement, self.controller).bind(self.work).memory_bytes

    def migration_bytes(self, block: Block | str) -> float:
        """Bytes sent to move the block now: its K/V cache rows in use and activations,
        plus its weights unless they are pre-loaded everywhere."""
        kind = block if isinstance(block, str) else block.kind
        cost = self.work.cost(self.flow.moving_part(kind))
        return cost.memory_bytes - cost.kv_reserved_bytes - \
            (cost.weight_bytes if self.weights_preloaded else 0.0)
