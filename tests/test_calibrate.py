"""Calibrated devices: the calibration equation, the shipped profiles (each recomputed from
its inputs), profiles on DeviceSpec / make_device / Topology, and `testbed calibrate`."""

import csv
import io
import subprocess
import sys

import pytest

from testbed.cli import main
from testbed.cluster import TOPOLOGY_GENERATORS, DeviceSpec, list_device_types, make_device
from testbed.cluster import catalog
from testbed.cluster.calibrate import (
    DEFAULT_EFF_FLOPS, DEFAULT_EFF_MEM, calibrate, calibrate_row, decode_step_totals,
    fit_efficiencies, profile_frame,
)
from testbed.cluster.catalog import PROFILE_COLUMNS, profile_rows
from testbed.cluster.device_config import device_from_config
from testbed.errors import ConfigError
from testbed.model import get_cost_model, get_model
from testbed.model.dtypes import DTYPES
from testbed.model.spec import ModelSpec
from testbed.plan.work import step_work

DERIVED = ("achieved_tflops", "achieved_mem_bandwidth_gbps", "eff_flops", "eff_mem")
PI4_S_PER_TOKEN = 1.3125  # distributed-llama v0.1.0 README: 1 x Raspberry Pi 4B, Llama 2 7B


def _toy_model(**fields):
    """2 layers, d=4, 2 heads of width 2 (plain MHA: 2 attention blocks per layer), a 2-matrix
    FFN of width 8, vocab 10; f32 weights, f16 cache; proj and ffn cut in 2 shards."""
    spec = dict(name="toy", n_layers=2, d_model=4, n_heads=2, n_kv_heads=2, head_dim=2,
                ffn_dim=8, ffn_kind="gelu-mlp", vocab_size=10, max_position=16,
                weight_dtype="f32", kv_dtype="f16", proj_shards=2, ffn_shards=2)
    spec.update(fields)
    return ModelSpec(**spec)


def _device(peak_flops, mem_bw, **fields):
    return DeviceSpec("d", "custom", peak_flops=peak_flops, mem_bw_bytes_per_s=mem_bw,
                      memory_bytes=1e9, **fields)


def _rows_by_key():
    return {(row["device"], row["dtype"]): row for row in profile_rows()}


# ----- the equation on a hand-computed toy ------------------------------------------------------

def test_step_totals_of_a_toy_model_match_the_hand_count():
    # per attention block (q = 1 query head, L = 3): FLOP 2*4*2*(1+2) + 4*3*2*1 = 72;
    # bytes: weights 4*2*3 elements * 4 B = 96 plus cache 2*3*2 elements * 2 B = 24 -> 120.
    # proj (whole): 2*4*4 = 32 FLOP, 16 weights * 4 B = 64 B. ffn: 2*2*4*8 = 128 FLOP, 256 B.
    # LM head: 2*4*10 = 80 FLOP, 40 weights * 4 B = 160 B.
    flops, bytes_read = decode_step_totals(_toy_model(), seq_len=3)
    assert flops == 2 * (2 * 72 + 32 + 128) + 80 == 688
    assert bytes_read == 2 * (2 * 120 + 64 + 256) + 160 == 1280
    # shards are counted with their multiplicity: cutting proj/ffn changes nothing
    assert decode_step_totals(_toy_model(proj_shards=1, ffn_shards=1), 3) == (688, 1280)


def test_memory_bound_fit_of_the_toy_by_hand():
    # P = W = 1000: ridge (1000*0.5)/(1000*0.7) = 0.714 FLOP/B > 688/1280 = 0.5375 -> memory
    bound, eff_flops, eff_mem = fit_efficiencies(688, 1280, 2.0, 1000.0, 1000.0)
    assert bound == "memory"
    assert eff_mem == pytest.approx(1280 / 2000, rel=1e-15)        # 0.64
    assert eff_flops == DEFAULT_EFF_FLOPS                          # 688/2000 = 0.344 < 0.5
    device = _device(1000.0, 1000.0, eff_flops=eff_flops, eff_mem=eff_mem)
    assert device.compute_time_s(688, 1280) == pytest.approx(2.0, rel=1e-15)


def test_compute_bound_fit_of_the_toy_by_hand():
    # P = 1000, W = 10000: ridge 500/7000 = 0.0714 < 0.5375 -> compute
    bound, eff_flops, eff_mem = fit_efficiencies(688, 1280, 1.0, 1000.0, 10000.0)
    assert bound == "compute"
    assert eff_flops == pytest.approx(0.688, rel=1e-15)
    assert eff_mem == DEFAULT_EFF_MEM                              # 1280/10000 = 0.128 < 0.7
    device = _device(1000.0, 10000.0, eff_flops=eff_flops, eff_mem=eff_mem)
    assert device.compute_time_s(688, 1280) == pytest.approx(1.0, rel=1e-15)


def test_the_floor_efficiency_is_raised_when_the_other_side_needs_more():
    # memory bound forced while compute needs 688/(1000*1) = 0.688 of peak: eff_flops keeps it
    bound, eff_flops, eff_mem = fit_efficiencies(688, 1280, 1.0, 1000.0, 2000.0, "memory")
    assert (bound, eff_flops, eff_mem) == ("memory", pytest.approx(0.688), pytest.approx(0.64))
    bound, eff_flops, eff_mem = fit_efficiencies(688, 1280, 1.0, 1000.0, 1600.0, "compute")
    assert (bound, eff_flops, eff_mem) == ("compute", pytest.approx(0.688), pytest.approx(0.8))


@pytest.mark.parametrize("peak_flops, mem_bw, expected", [
    (1000.0, 1000.0, "memory"), (1000.0, 10000.0, "compute")])
def test_auto_follows_the_default_ridge_point(peak_flops, mem_bw, expected):
    assert fit_efficiencies(688, 1280, 5.0, peak_flops, mem_bw, "auto")[0] == expected


@pytest.mark.parametrize("args, field", [
    ((0, 1280, 1.0, 1e3, 1e3), "flops"), ((688, 1280, 0.0, 1e3, 1e3), "seconds"),
    ((688, 1280, 1.0, 1e3, -1.0), "mem_bw_bytes_per_s")])
def test_fit_rejects_non_positive_inputs(args, field):
    with pytest.raises(ConfigError, match=field):
        fit_efficiencies(*args)
    with pytest.raises(ConfigError, match="one of auto, memory, compute"):
        fit_efficiencies(688, 1280, 1.0, 1e3, 1e3, "roof")


# ----- reproducing the measurement ------------------------------------------------------------

@pytest.mark.parametrize("bound", ["memory", "compute"])
def test_fitted_device_reproduces_the_measured_time_exactly(bound):
    seconds = 0.9  # slow enough for both bounds to stay at or below the peaks
    fit = calibrate("raspberry-pi-5-8gb", "q4_0", "llama-2-7b", seconds, seq_len=16,
                    kv_dtype="f32", bound=bound)
    assert fit.bound == bound
    device = fit.device_spec()
    assert (device.eff_flops, device.eff_mem) == (fit.eff_flops, fit.eff_mem)
    assert device.compute_time_s(fit.flops, fit.bytes_read) == pytest.approx(seconds, rel=1e-12)
    limit = fit.eff_mem if bound == "memory" else fit.eff_flops
    other = fit.eff_flops if bound == "memory" else fit.eff_mem
    floor = DEFAULT_EFF_FLOPS if bound == "memory" else DEFAULT_EFF_MEM
    assert limit < 1 and other >= floor


def test_step_totals_are_every_block_of_every_layer_plus_the_lm_head():
    model = get_model("llama-3.2-1b").with_overrides(weight_dtype="q4_0")  # GQA: 8 K/V groups
    work = step_work(get_cost_model("decode"), model, "decode", 40, 39)
    flops, bytes_read = decode_step_totals(model, 40)
    assert flops == pytest.approx(
        16 * (8 * work.attn.flops + work.proj.flops + work.ffn.flops) + work.lm_head.flops)
    assert bytes_read == pytest.approx(16 * (8 * work.attn.bytes_read + work.proj.bytes_read
                                             + work.ffn.bytes_read) + work.lm_head.bytes_read)
    # about 2 FLOP per weight and 0.5625 B per weight at q4_0 (1.24 B parameters, less the
    # embedding table, which a step does not read)
    assert 2.0e9 < flops < 2.6e9 and 0.55e9 < bytes_read < 0.75e9


# ----- the shipped profiles -------------------------------------------------------------------

def test_the_profile_table_has_its_columns_and_the_required_rows():
    rows = profile_rows()
    keys = _rows_by_key()
    assert len(keys) == len(rows) >= 2
    assert {("raspberry-pi-4-8gb", "q4_0"), ("raspberry-pi-5-8gb", "q4_0")} <= set(keys)
    assert list(rows[0]) == list(PROFILE_COLUMNS)
    devices = set(list_device_types())
    for row in rows:
        assert row["device"] in devices and row["dtype"] in DTYPES
        assert get_model(row["model"]).name == row["model"]
        assert row["bound"] in ("memory", "compute")
        assert row["source"].strip() and row["notes"].strip()
        assert "http" in row["source"] or "@" in row["source"]  # a URL or repo@commit:path


def test_every_shipped_row_recomputes_from_its_inputs():
    rows = profile_rows()
    assert rows
    for row in rows:
        fit = calibrate_row(row)
        expected = fit.csv_row()
        where = (row["device"], row["dtype"])
        assert fit.bound == row["bound"], where
        for column in DERIVED:
            assert float(row[column]) == pytest.approx(float(expected[column]), rel=1e-6), \
                (where, column)
        device = fit.device_spec()
        assert device.compute_time_s(fit.flops, fit.bytes_read) == pytest.approx(
            fit.seconds_per_token, rel=1e-6), where


def test_a_single_device_step_on_each_calibrated_device_takes_the_measured_time():
    # the engine runs a step on one device as every block one after another: the sum of
    # per-block rooflines must also give the measurement
    rows = profile_rows()
    assert rows
    for row in rows:
        device = make_device("one", row["device"]).for_dtype(row["dtype"])
        model = get_model(row["model"]).with_overrides(weight_dtype=row["dtype"],
                                                       kv_dtype=row["kv_dtype"])
        seq_len = int(row["seq_len"])
        work = step_work(get_cost_model("decode"), model, "decode", seq_len, seq_len - 1)
        blocks = [(model.n_kv_heads, work.attn), (model.proj_shards, work.proj),
                  (model.ffn_shards, work.ffn)]
        total = model.n_layers * sum(n * device.compute_time_s(c.flops, c.bytes_read)
                                     for n, c in blocks)
        total += device.compute_time_s(work.lm_head.flops, work.lm_head.bytes_read)
        assert total == pytest.approx(float(row["ms_per_token"]) / 1e3, rel=1e-6), row["device"]


def test_raspberry_pi_4_at_q4_0_reaches_far_less_memory_bandwidth_than_the_default():
    row = _rows_by_key()[("raspberry-pi-4-8gb", "q4_0")]
    assert (row["model"], int(row["seq_len"]), row["kv_dtype"]) == ("llama-2-7b", 16, "f32")
    assert float(row["ms_per_token"]) == 1312.5
    pi = make_device("pi", "raspberry-pi-4-8gb").for_dtype("q4_0")
    assert pi.eff_mem < 0.35 < DEFAULT_EFF_MEM
    model = get_model("llama-2-7b").with_overrides(weight_dtype="q4_0", kv_dtype="f32")
    flops, bytes_read = decode_step_totals(model, 16)
    calibrated = pi.compute_time_s(flops, bytes_read)
    default = make_device("pi", "raspberry-pi-4-8gb").compute_time_s(flops, bytes_read)
    assert calibrated == pytest.approx(PI4_S_PER_TOKEN, rel=1e-9)
    assert calibrated / default > 2.0  # the uncalibrated default is over twice too fast


def test_profile_frame_lists_every_row():
    frame = profile_frame()
    assert len(frame) == len(profile_rows()) >= 2
    assert "achieved (GB/s)" in frame.columns and "eff_mem" in frame.columns


# ----- errors ---------------------------------------------------------------------------------

def test_a_measurement_faster_than_the_peak_is_a_one_line_error():
    with pytest.raises(ConfigError) as info:  # 100 tokens/s would need 373 GB/s of 12.8
        calibrate("raspberry-pi-4-8gb", "q4_0", "llama-2-7b", 0.01, seq_len=16)
    message = str(info.value)
    assert "\n" not in message and "eff_mem" in message and "> 1" in message
    assert "12.8 GB/s" in message and "raspberry-pi-4-8gb" in message
    with pytest.raises(ConfigError, match=r"eff_flops .* > 1") as info:
        fit_efficiencies(688, 1280, 0.1, 1000.0, 1e6, "compute")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("args, match", [
    (("raspberry-pi-9", "q4_0", "llama-2-7b", 1.0), "unknown device type"),
    (("raspberry-pi-4-8gb", "q4", "llama-2-7b", 1.0), "dtype"),
    (("raspberry-pi-4-8gb", "q4_0", "llama-9", 1.0), "unknown model"),
    (("raspberry-pi-4-8gb", "q4_0", "llama-2-7b", 0.0), "seconds_per_token"),
    (("raspberry-pi-4-8gb", "q4_0", "llama-2-7b", -2.0), "seconds_per_token")])
def test_calibrate_rejects_bad_input_on_one_line(args, match):
    with pytest.raises(ConfigError, match=match) as info:
        calibrate(*args)
    assert "\n" not in str(info.value)


def test_a_bad_profile_table_names_the_file_and_line(tmp_path, monkeypatch):
    path = tmp_path / "device_profiles.csv"
    good = ["raspberry-pi-4-8gb", "q4_0", "llama-2-7b", "16", "f32", "1312.5", "memory",
            "0.01", "2.8", "0.5", "0.22", "src", "notes"]
    first = good[:1] + ["q8_0"] + good[2:]
    cases = [(["raspberry-pi-44"] + good[1:], "line 3.device"),
             (good[:1] + ["q4"] + good[2:], "line 3"),
             (good[:10] + ["1.2"] + good[11:], "line 3.eff_mem"),
             (first, "line 3: got a second row for raspberry-pi-4-8gb at q8_0")]
    try:
        for bad, match in cases:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerows([PROFILE_COLUMNS, first, bad])
            path.write_text(buffer.getvalue(), encoding="utf-8")
            monkeypatch.setattr(catalog, "PROFILES_CSV", path)
            catalog._profile_table.cache_clear()
            catalog._profiles.cache_clear()
            with pytest.raises(ConfigError, match=match) as info:
                make_device("pi", "raspberry-pi-4-8gb")
            assert str(path) in str(info.value) and "\n" not in str(info.value)
    finally:
        monkeypatch.undo()
        catalog._profile_table.cache_clear()
        catalog._profiles.cache_clear()
    assert make_device("pi", "raspberry-pi-4-8gb").profiles  # the shipped table again


# ----- profiles on devices and topologies -----------------------------------------------------

def test_make_device_attaches_its_type_profiles_and_applies_one_per_dtype():
    row = _rows_by_key()[("raspberry-pi-4-8gb", "q4_0")]
    pi = make_device("pi", "raspberry-pi-4-8gb")
    assert (pi.eff_flops, pi.eff_mem) == (DEFAULT_EFF_FLOPS, DEFAULT_EFF_MEM)
    assert ("q4_0", float(row["eff_flops"]), float(row["eff_mem"])) in pi.profiles
    at_q4 = pi.for_dtype("q4_0")
    assert (at_q4.eff_flops, at_q4.eff_mem) == (float(row["eff_flops"]), float(row["eff_mem"]))
    assert at_q4.peak_flops == pi.peak_flops and at_q4.name == "pi"
    assert at_q4.profiles == () and at_q4.for_dtype("f16") is at_q4  # settled once applied
    assert pi.for_dtype("f16") is pi          # no f16 profile: today's defaults
    assert pi.for_dtype("Q4_0") == at_q4      # dtype names as everywhere else
    with pytest.raises(ConfigError, match="dtype"):
        pi.for_dtype("q4")


def test_device_types_without_profiles_keep_the_defaults():
    profiled = {row["device"] for row in profile_rows()}
    plain = [name for name in list_device_types() if name not in profiled]
    assert plain
    for name in plain:
        device = make_device("x", name)
        assert device.profiles == ()
        assert device.for_dtype("q4_0") is device and device.for_dtype("f16") is device


def test_an_explicit_efficiency_clears_the_profiles():
    assert make_device("pi", "raspberry-pi-4-8gb").profiles
    overridden = make_device("pi", "raspberry-pi-4-8gb", eff_mem=0.6)
    assert overridden.profiles == () and overridden.for_dtype("q4_0").eff_mem == 0.6
    pi = make_device("pi", "raspberry-pi-4-8gb")
    assert pi.with_overrides(eff_flops=0.3).profiles == ()
    assert pi.with_overrides(memory_bytes=4e9).profiles == pi.profiles  # other fields keep them
    from_file = device_from_config({"name": "pi", "device": "raspberry-pi-4-8gb",
                                    "eff_mem": 0.6}, source="topo.yaml", field="nodes[0]")
    assert from_file.profiles == () and from_file.for_dtype("q4_0").eff_mem == 0.6
    plain = device_from_config({"name": "pi", "device": "raspberry-pi-4-8gb"},
                               source="topo.yaml", field="nodes[0]")
    assert plain.for_dtype("q4_0").eff_mem < 0.35


@pytest.mark.parametrize("profiles, match", [
    ((("q9", 0.5, 0.5),), "dtype"), ((("q4_0", 0.5, 1.5),), "eff_mem"),
    ((("q4_0", 0.0, 0.5),), "eff_flops"), ((("q4_0", 0.5),), "triples"),
    ((("q4_0", 0.5, 0.5), ("Q4_0", 0.4, 0.4)), "second profile"), ("q4_0", "triples")])
def test_device_spec_checks_its_profiles(profiles, match):
    with pytest.raises(ConfigError, match=match):
        _device(1e12, 1e11, profiles=profiles)


def test_device_spec_profiles_are_normalised_to_tuples():
    device = _device(1e12, 1e11, profiles=[["Q4_0", 0.4, 0.3]])
    assert device.profiles == (("q4_0", 0.4, 0.3),)
    assert hash(device) == hash(_device(1e12, 1e11, profiles=(("q4_0", 0.4, 0.3),)))


def test_topology_for_dtype_applies_each_devices_profile_and_leaves_the_original_alone():
    pi = make_device("pi", "raspberry-pi-4-8gb")
    nuc = make_device("nuc", "intel-nuc13-pro-i7-1360p")
    topology = TOPOLOGY_GENERATORS.get("full_mesh")([nuc, pi], 1e9, 1e-3)
    at_q4 = topology.for_dtype("q4_0")
    assert at_q4 is not topology
    assert at_q4.devices["pi"] == pi.for_dtype("q4_0") and at_q4.devices["pi"] != pi
    assert at_q4.devices["nuc"] is nuc
    assert at_q4.graph.nodes["pi"]["device"] == at_q4.devices["pi"]
    assert topology.devices["pi"] is pi and topology.graph.nodes["pi"]["device"] is pi
    assert at_q4.controller == topology.controller == "nuc"
    assert at_q4.links == topology.links and at_q4.path("pi", "nuc") == topology.path("pi", "nuc")
    assert at_q4.device_names == topology.device_names
    assert topology.for_dtype("f16") is topology  # no f16 profile for either device
    assert at_q4.for_dtype("q4_0").devices == at_q4.devices


# ----- the command line -----------------------------------------------------------------------

def test_calibrate_command_prints_the_profile_and_the_row_to_paste(capsys):
    status = main(["calibrate", "raspberry-pi-4-8gb", "--dtype", "q4_0", "--ms-per-token",
                   "1312.5", "--model", "llama-2-7b", "--seq-len", "16", "--kv-dtype", "f32",
                   "--bound", "memory"])
    out = capsys.readouterr().out
    assert status == 0
    for text in ("GFLOP", "GB/s", "TFLOP/s", "bound         memory", "eff_flops", "eff_mem",
                 "1312.5 ms per token", "K/V cache f32", "16 positions"):
        assert text in out, text
    lines = out.strip().splitlines()
    assert lines[-2] == ",".join(PROFILE_COLUMNS)
    row = next(csv.DictReader(io.StringIO("\n".join(lines[-2:]))))
    shipped = _rows_by_key()[("raspberry-pi-4-8gb", "q4_0")]
    for column in ("device", "dtype", "model", "seq_len", "kv_dtype", "bound"):
        assert row[column] == shipped[column], column
    for column in ("ms_per_token",) + DERIVED:
        assert float(row[column]) == pytest.approx(float(shipped[column]), rel=1e-6), column


def test_calibrate_command_takes_a_rate_and_picks_the_bound(capsys):
    status = main(["calibrate", "apple-m2-mac-mini", "--dtype", "q4_0", "--tokens-per-s",
                   "21.91", "--model", "llama-2-7b", "--seq-len", "64"])
    out = capsys.readouterr().out
    assert status == 0 and "bound         memory (requested auto)" in out
    assert "21.91 tokens/s" in out
    row = next(csv.DictReader(io.StringIO("\n".join(out.strip().splitlines()[-2:]))))
    shipped = _rows_by_key()[("apple-m2-mac-mini", "q4_0")]
    assert float(row["eff_mem"]) == pytest.approx(float(shipped["eff_mem"]), rel=1e-6)


@pytest.mark.parametrize("argv, match", [
    (["nope", "--dtype", "q4_0", "--tokens-per-s", "1"], "unknown device type"),
    (["raspberry-pi-4-8gb", "--dtype", "q4", "--tokens-per-s", "1"], "dtype"),
    (["raspberry-pi-4-8gb", "--dtype", "q4_0", "--tokens-per-s", "1", "--model", "x"],
     "unknown model"),
    (["raspberry-pi-4-8gb", "--dtype", "q4_0", "--tokens-per-s", "0"], "--tokens-per-s"),
    (["raspberry-pi-4-8gb", "--dtype", "q4_0", "--ms-per-token", "-5"], "--ms-per-token"),
    (["raspberry-pi-4-8gb", "--dtype", "q4_0", "--tokens-per-s", "fast"], "--tokens-per-s"),
    (["raspberry-pi-4-8gb", "--dtype", "q4_0", "--tokens-per-s", "100"], "> 1"),
    (["raspberry-pi-4-8gb", "--dtype", "q4_0", "--tokens-per-s", "1", "--seq-len", "0"],
     "--seq-len")])
def test_calibrate_command_bad_input_exits_2_with_one_line(argv, match, capsys):
    if "--model" not in argv:
        argv = argv + ["--model", "llama-2-7b"]
    status = main(["calibrate", *argv])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    err = captured.err.strip()
    assert err.startswith("testbed: error:") and match in err
    assert "\n" not in err and "Traceback" not in err


def test_devices_profiles_in_a_fresh_process():
    proc = subprocess.run([sys.executable, "-m", "testbed.cli", "devices", "--profiles"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "eff_mem" in lines[0]
    assert len(lines) == 1 + len(profile_rows())
    assert any(line.split()[:2] == ["raspberry-pi-4-8gb", "q4_0"] for line in lines[1:])
