"""Units: parsing, formatting, and the bytes-versus-bits factor."""

import math

import pytest
from hypothesis import given, strategies as st

from testbed.units import (
    UnitError, format_bitrate, format_bytes, format_time, parse_bitrate, parse_bytes,
    parse_byterate, parse_flop_rate, parse_flops, parse_fraction, parse_time,
)


@pytest.mark.parametrize("text, bps", [
    ("10 Mbit/s", 10e6), ("1.5 Gbps", 1.5e9), ("100 kbit/s", 1e5), ("56kbps", 56e3),
    ("1 Mb/s", 1e6), ("1 MB/s", 8e6), ("2 MiB/s", 2 * 2**20 * 8), ("0.5 bit/s", 0.5),
])
def test_bitrates(text, bps):
    assert parse_bitrate(text) == pytest.approx(bps, rel=1e-15)


@pytest.mark.parametrize("text, size", [
    ("8 GiB", 8 * 2**30), ("8 GB", 8e9), ("512 MB", 512e6), ("10 Mbit", 1.25e6),
    ("1 KiB", 1024), ("3 B", 3), ("1e3 kB", 1e6),
])
def test_sizes(text, size):
    assert parse_bytes(text) == pytest.approx(size, rel=1e-15)


@pytest.mark.parametrize("text, seconds", [
    ("5 ms", 5e-3), ("2 s", 2.0), ("250 us", 250e-6), ("1 min", 60.0), ("0.1 h", 360.0),
])
def test_times(text, seconds):
    assert parse_time(text) == pytest.approx(seconds, rel=1e-15)


def test_flops_and_rates():
    assert parse_flop_rate("2 TFLOP/s") == 2e12
    assert parse_flop_rate("500 GFLOPS") == 5e11
    assert parse_flops("3 GFLOP") == 3e9
    assert parse_byterate("68 GB/s") == 68e9
    assert parse_byterate("800 Mbit/s") == 100e6


def test_bytes_over_bits_per_second_is_times_eight():
    """A 1 MB transfer over 8 Mbit/s takes 1 s, not 0.125 s."""
    size_bytes = parse_bytes("1 MB")
    rate_bps = parse_bitrate("8 Mbit/s")
    assert size_bytes * 8 / rate_bps == pytest.approx(1.0)


@pytest.mark.parametrize("bad", ["10", 10, 2.5, "10 furlongs", "abc", "", "Mbit/s", None, True,
                                 "nan Mbit/s", "inf Gbps"])
def test_bad_bitrates_are_errors(bad):
    with pytest.raises(UnitError) as info:
        parse_bitrate(bad)
    assert "\n" not in str(info.value)
    assert "expected" in str(info.value)


def test_bare_number_allowed_only_when_asked():
    assert parse_bitrate(1e6, require_unit=False) == 1e6
    with pytest.raises(UnitError, match="without a unit"):
        parse_time("5")


def test_wrong_dimension_is_an_error():
    with pytest.raises(UnitError, match="unknown unit"):
        parse_time("5 Mbit/s")
    with pytest.raises(UnitError, match="unknown unit"):
        parse_bytes("5 ms")


def test_fractions():
    assert parse_fraction("30 %") == pytest.approx(0.3)
    assert parse_fraction(0.25) == 0.25
    with pytest.raises(UnitError):
        parse_fraction(1.5)


def test_formatting():
    assert format_bitrate(1e7) == "10 Mbit/s"
    assert format_bytes(8 * 2**30) == "8 GiB"
    assert format_time(0.005) == "5 ms"


@given(st.floats(min_value=1e-3, max_value=1e12, allow_nan=False))
def test_format_then_parse_roundtrips(bps):
    assert parse_bitrate(format_bitrate(bps, digits=17)) == pytest.approx(bps, rel=1e-12)
    size = math.floor(bps)
    assert parse_bytes(format_bytes(size, digits=17)) == pytest.approx(size, rel=1e-12, abs=1e-9)
