"""Device specs, the roofline time model, the device catalog and the link-technology table."""

import csv
import math
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from testbed.cluster import (
    DeviceSpec, catalog_frame, get_device_type, get_link_technology, list_device_types,
    make_device,
)
from testbed.errors import ConfigError

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"reference tables not found at {REFERENCE}")


def _reference_rows(name):
    with open(REFERENCE / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _number(text):
    return float(text) if text.strip() else None


# ----- catalog ---------------------------------------------------------------------------------

@needs_reference
def test_every_reference_device_is_in_the_catalog_with_the_same_figures():
    rows = _reference_rows("devices.csv")
    assert [row["device"] for row in rows] == list_device_types()
    for row in rows:
        figures = get_device_type(row["device"])
        for column in ("memory_gb", "mem_bandwidth_gbps", "peak_fp16_tflops",
                       "peak_fp32_tflops", "int8_tops", "typical_power_w"):
            assert figures[column] == _number(row[column]), (row["device"], column)
        assert figures["source"]


@needs_reference
def test_every_reference_link_technology_is_carried_with_the_same_figures():
    for row in _reference_rows("links.csv"):
        figures = get_link_technology(row["link"])
        assert figures["standard"] == row["standard"]
        for column in ("phy_peak_mbps", "typical_throughput_mbps_low",
                       "typical_throughput_mbps_high", "typical_latency_ms_low",
                       "typical_latency_ms_high"):
            assert figures[column] == float(row[column]), (row["link"], column)


def test_make_device_converts_catalog_units_to_si():
    device = make_device("jetson", "jetson-orin-nano-8gb")
    assert device.name == "jetson" and device.model == "jetson-orin-nano-8gb"
    assert device.mem_bw_bytes_per_s == pytest.approx(68e9, rel=1e-15)
    assert device.peak_flops == pytest.approx(10.2e12, rel=1e-15)
    assert device.memory_bytes == pytest.approx(8e9, rel=1e-15)


def test_make_device_falls_back_to_fp32_when_there_is_no_fp16_peak():
    assert get_device_type("raspberry-pi-4-8gb")["peak_fp16_tflops"] is None
    assert make_device("pi", "raspberry-pi-4-8gb").peak_flops == pytest.approx(0.048e12)


def test_make_device_applies_overrides_in_si_units():
    device = make_device("j", "jetson-orin-nano-8gb", memory_bytes=4 * 2**30, eff_mem=0.6)
    assert device.memory_bytes == 4 * 2**30 and device.eff_mem == 0.6
    assert device.peak_flops == pytest.approx(10.2e12)
    with pytest.raises(ConfigError, match="memory_gb.*expected one of"):
        make_device("j", "jetson-orin-nano-8gb", memory_gb=4)


def test_every_catalog_type_makes_a_valid_device():
    for model in list_device_types():
        device = make_device("x", model)
        assert device.peak_flops > 0 and device.mem_bw_bytes_per_s > 0


def test_unknown_device_type_lists_close_matches_and_the_cli():
    with pytest.raises(ConfigError) as info:
        get_device_type("jetson-orin-nano")
    message = str(info.value)
    assert "jetson-orin-nano-8gb" in message and "testbed devices" in message
    assert "\n" not in message


def test_catalog_frame_has_one_row_per_type_and_units_in_column_names():
    frame = catalog_frame()
    assert list(frame["device"]) == list_device_types()
    assert "memory bandwidth (GB/s)" in frame.columns
    assert "peak FP16 (TFLOP/s)" in frame.columns and "memory (GB)" in frame.columns


def test_link_technology_defaults_are_mean_throughput_and_half_mean_rtt():
    wifi5 = get_link_technology("wifi5")
    assert wifi5["capacity_bps"] == pytest.approx(400e6)  # (200 + 600) / 2 Mbit/s
    assert wifi5["latency_s"] == pytest.approx(3e-3)      # (2 + 10) / 2 ms RTT, halved
    ethernet = get_link_technology("ethernet-1g")
    assert ethernet["capacity_bps"] == pytest.approx(920.5e6)
    assert ethernet["latency_s"] == pytest.approx(0.15e-3)
    with pytest.raises(ConfigError, match="wifi5"):
        get_link_technology("wifi-5")


# ----- DeviceSpec ------------------------------------------------------------------------------

def _device(**fields):
    figures = dict(name="d", model="custom", peak_flops=1e12, mem_bw_bytes_per_s=100e9,
                   memory_bytes=8e9)
    figures.update(fields)
    return DeviceSpec(**figures)


@pytest.mark.parametrize("field, value", [
    ("peak_flops", 0.0), ("peak_flops", -1e9), ("peak_flops", math.inf),
    ("mem_bw_bytes_per_s", math.nan), ("memory_bytes", 0), ("memory_bytes", True),
    ("eff_flops", 0.0), ("eff_flops", 1.5), ("eff_mem", -0.1), ("nic_tx_bps", 0.0),
    ("nic_rx_bps", -5.0), ("name", ""), ("model", None),
])
def test_device_spec_refuses_bad_figures_naming_the_field(field, value):
    with pytest.raises(ConfigError) as info:
        _device(**{field: value})
    assert info.value.field == field
    assert "\n" not in str(info.value)


def test_compute_bound_work_is_limited_by_attained_flops():
    device = _device(eff_flops=0.5, eff_mem=0.7)
    # 1e12 FLOP at 0.5e12 FLOP/s = 2 s; 7e9 bytes at 70e9 B/s = 0.1 s
    assert device.compute_time_s(1e12, 7e9) == pytest.approx(2.0)


def test_memory_bound_work_is_limited_by_attained_bandwidth():
    device = _device(eff_flops=0.5, eff_mem=0.7)
    # 1e9 FLOP takes 2 ms; 7e9 bytes at 70e9 B/s takes 100 ms
    assert device.compute_time_s(1e9, 7e9) == pytest.approx(0.1)


def test_availability_scales_the_binding_resource_and_can_switch_regime():
    device = _device(eff_flops=1.0, eff_mem=1.0)
    base = device.compute_time_s(1e11, 1e9)          # 0.1 s compute vs 0.01 s memory
    assert device.compute_time_s(1e11, 1e9, avail_compute=0.5) == pytest.approx(2 * base)
    assert device.compute_time_s(1e11, 1e9, avail_mem=0.5) == pytest.approx(base)
    # memory availability so low that reading becomes the bottleneck: 0.01 s / 0.05 = 0.2 s
    assert device.compute_time_s(1e11, 1e9, avail_mem=0.05) == pytest.approx(0.2)


def test_zero_availability_is_infinite_and_zero_work_is_free():
    device = _device()
    assert device.compute_time_s(1e9, 1e6, avail_compute=0.0) == math.inf
    assert device.compute_time_s(1e9, 1e6, avail_mem=0.0) == math.inf
    assert device.compute_time_s(0, 0, avail_compute=0.0, avail_mem=0.0) == 0.0
    assert device.compute_time_s(0, 1e6, avail_compute=0.0) == pytest.approx(1e6 / 70e9)


def test_negative_work_or_availability_out_of_range_is_a_bug():
    device = _device()
    with pytest.raises(ValueError):
        device.compute_time_s(-1, 0)
    with pytest.raises(ValueError):
        device.compute_time_s(1, 1, avail_compute=1.5)


@given(flops=st.floats(0, 1e15), bytes_read=st.floats(0, 1e12),
       avail_c=st.floats(0.01, 1), avail_m=st.floats(0.01, 1))
def test_roofline_time_is_the_slower_of_the_two_and_grows_as_availability_falls(
        flops, bytes_read, avail_c, avail_m):
    device = _device(eff_flops=0.4, eff_mem=0.8)
    t = device.compute_time_s(flops, bytes_read, avail_c, avail_m)
    compute_s = flops / (1e12 * 0.4 * avail_c)
    memory_s = bytes_read / (100e9 * 0.8 * avail_m)
    assert t == pytest.approx(max(compute_s, memory_s), rel=1e-12)
    assert t >= device.compute_time_s(flops, bytes_read) * (1 - 1e-12)


def test_with_overrides_returns_a_modified_copy():
    device = _device()
    slower = device.with_overrides(peak_flops=1e9, nic_tx_bps=1e8)
    assert slower.peak_flops == 1e9 and slower.nic_tx_bps == 1e8
    assert device.peak_flops == 1e12
    with pytest.raises(ConfigError):
        device.with_overrides(eff_mem=2.0)
