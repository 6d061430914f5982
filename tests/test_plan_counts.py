"""The count form of placements gives exactly the closed-form delay, and round-trips."""

import pytest

from partition_helpers import random_observation
from testbed.partition import PARTITIONERS
from testbed.plan.counts import CountDelay
from testbed.plan.delay import estimate_token_delay


@pytest.mark.parametrize("seed", range(8))
def test_count_delay_equals_token_delay(seed):
    obs = random_observation(seed, n_devices=4, n_layers=3, model="llama-3.2-1b",
                             preset="decode")
    fast = CountDelay(obs)
    for name in ("round_robin", "single_device"):
        placement = PARTITIONERS.get(name)(seed=0).decide(obs)
        layers = fast.from_placement(placement)
        assert fast.token_s(layers) == pytest.approx(
            estimate_token_delay(obs, placement).total_s, rel=1e-12)
        again = fast.to_placement(layers, placement)
        assert again == placement
