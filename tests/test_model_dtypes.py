"""Named dtypes: bytes per element, block scales included; unknown names are one-line errors."""

import pytest

from testbed.errors import ConfigError
from testbed.model.dtypes import DTYPES, get_dtype


@pytest.mark.parametrize("name, elements, size", [
    ("f32", 4096, 16384), ("f16", 4096, 8192), ("bf16", 10, 20), ("int8", 7, 7),
    ("int4", 4096, 2048),
    ("q8_0", 4096, 4096 // 32 * 34),   # distributed-llama's Q80 buffer of a 4096-wide vector
    ("q4_0", 4096 * 4096, 4096 * 4096 // 32 * 18),
    ("q4_k", 256, 144), ("q6_k", 512, 420),
])
def test_size_of_whole_blocks(name, elements, size):
    assert get_dtype(name).size_bytes(elements) == size


def test_block_formats_cost_more_than_their_nominal_bits():
    assert DTYPES["q4_0"].bytes_per_element == 0.5625 > 0.5
    assert DTYPES["q8_0"].bytes_per_element == 1.0625 > 1.0


def test_names_are_case_insensitive_and_unknown_ones_list_close_matches():
    assert get_dtype(" Q8_0 ") is DTYPES["q8_0"]
    with pytest.raises(ConfigError) as caught:
        get_dtype("q4", field="weight_dtype")
    message = str(caught.value)
    assert message.startswith("weight_dtype: got 'q4'; close matches: ")
    assert "q4_0" in message and "\n" not in message
