"""``testbed traces show | plot | convert`` and the shipped synthetic traces."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.cli import main
from testbed.traces import load_trace, trace_stats

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"
SHIPPED = REPO / "traces"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason=f"the shared real traces are not at {SHARED} (they are not redistributed)")
KEYS = {"file", "format", "duration_s", "mean_bps", "p5_bps", "p50_bps", "p95_bps", "outage_s"}
LUMOS = SHARED / "lumos5g_mmwave/5g_trace_103_driving"
MAHIMAHI = SHARED / "mahimahi_cellular/ATT-LTE-driving-2016.down"
OBOE = SHARED / "oboe/trace_1.txt"


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@needs_shared
def test_show_json_on_two_shared_traces(capsys):
    assert main(["traces", "show", "--json", str(LUMOS), str(MAHIMAHI)]) == 0
    lumos, mahimahi = json_lines(capsys.readouterr().out)
    assert KEYS <= set(lumos) and KEYS <= set(mahimahi)
    assert (lumos["file"], lumos["format"]) == (str(LUMOS), "lumos5g")
    assert lumos["mean_bps"] / 1e6 == pytest.approx(296.877, rel=1e-4)  # README plain (1 s rows)
    assert lumos["outage_s"] == 10 and lumos["duration_s"] == 236
    assert mahimahi["format"] == "mahimahi"
    assert mahimahi["mean_bps"] / 1e6 == pytest.approx(4.560, rel=1e-3)
    assert mahimahi["p5_bps"] <= mahimahi["p50_bps"] <= mahimahi["p95_bps"]


def test_show_on_a_generated_file(tmp_path, capsys):
    path = tmp_path / "gen.csv"
    path.write_text("time_s,bandwidth_Mbps\n0,100\n1,0\n1.5,50\n2,\n")
    assert main(["traces", "show", "--json", str(path)]) == 0
    (record,) = json_lines(capsys.readouterr().out)
    assert KEYS <= set(record) and record["format"] == "csv"
    assert record["duration_s"] == 2.0 and record["outage_s"] == 0.5
    assert record["mean_bps"] == pytest.approx((100 + 0 + 25) / 2 * 1e6)
    assert main(["traces", "show", str(path)]) == 0
    table = capsys.readouterr().out
    assert str(path) in table and "csv" in table and "62.5 Mbit/s" in table
    assert "outage" in table and "p5 / p50 / p95" in table


def test_plot_writes_png_and_pdf(tmp_path, capsys):
    files = [str(p) for p in sorted(SHIPPED.glob("*.csv"))[:3]]
    if SHARED.is_dir():
        files.append(str(OBOE))
    png, pdf = tmp_path / "traces.png", tmp_path / "traces.pdf"
    assert main(["traces", "plot", *files, "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert main(["traces", "plot", files[0], "-o", str(pdf)]) == 0
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert main(["traces", "plot", files[0], "-o", str(tmp_path / "x.svg")]) == 2
    assert "expected .png or .pdf" in capsys.readouterr().err


def _same_stats(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-12, abs=1e-9), key


@pytest.mark.parametrize("name", ["wifi_fading.csv", "lte_gilbert_elliott.csv"])
def test_convert_to_csv_round_trips_a_shipped_trace(tmp_path, name):
    out = tmp_path / "back.csv"
    assert main(["traces", "convert", str(SHIPPED / name), "--to", "csv", "-o", str(out)]) == 0
    _same_stats(trace_stats(load_trace(out)), trace_stats(load_trace(SHIPPED / name)))


@needs_shared
@pytest.mark.parametrize("name", ["oboe/trace_1.txt", "mahimahi_cellular/Verizon-LTE-short.down",
                                  "ucc_5g_beyond_throughput/B_2020.01.16_09.56.56.csv"])
def test_convert_to_csv_round_trips_real_traces(tmp_path, name):
    out = tmp_path / "back.csv"
    assert main(["traces", "convert", str(SHARED / name), "--to", "csv", "-o", str(out)]) == 0
    back, original = load_trace(out), load_trace(SHARED / name)
    assert back.times_s == original.times_s and back.values == original.values
    _same_stats(trace_stats(back), trace_stats(original))


@needs_shared
def test_convert_to_simgrid_round_trips_evenly_spaced_and_looping_traces(tmp_path, capsys):
    fcc = SHARED / "pensieve_fcc_broadband/008_test_fcc_trace_27175_http---www.amazon.com_480_0"
    out = tmp_path / "fcc.profile"
    assert main(["traces", "convert", str(fcc), "--to", "simgrid", "-o", str(out)]) == 0
    assert main(["traces", "show", "--json", str(out)]) == 0
    (record,) = json_lines(capsys.readouterr().out.splitlines()[-1])
    assert record["format"] == "simgrid"  # the comment line names SimGrid
    _same_stats({k: record[k] for k in KEYS - {"file", "format"}},
                {k: v for k, v in trace_stats(load_trace(fcc)).items()
                 if k in KEYS - {"file", "format"}})


def test_convert_simgrid_keeps_the_loop(tmp_path, capsys):
    source = tmp_path / "link.bw"
    source.write_text("% a SimGrid profile\n4.0 40000000\n8.0 60000000\nLOOPAFTER 12.0\n")
    assert main(["traces", "convert", str(source), "--to", "simgrid"]) == 0
    written = tmp_path / "again.bw"
    written.write_text(capsys.readouterr().out)
    assert load_trace(written) == load_trace(source).__class__(
        (0.0, 4.0), (320e6, 480e6), 20.0, "bit/s", f"{written} (simgrid)")


def test_bad_file_is_one_line_on_stderr_with_status_2(tmp_path):
    bad = tmp_path / "bad.log"
    bad.write_text("0.0\t1.0\n1.0\t-1.0\n2.0\t1.0\n")
    proc = subprocess.run([sys.executable, "-m", "testbed.cli", "traces", "show", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"testbed: error: {bad}: line 2: got negative rate")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_cli_option_and_format_errors(tmp_path, capsys):
    path = tmp_path / "m.down"
    path.write_text("0\n10\n1000\n")
    assert main(["traces", "show", str(path), "--option", "window=500 ms", "--json"]) == 0
    assert json_lines(capsys.readouterr().out)[0]["samples"] == 2
    assert main(["traces", "show", str(path), "--option", "window"]) == 2
    assert main(["traces", "show", str(path), "--option", "gaps=hold"]) == 2
    assert main(["traces", "show", str(path), "--format", "nope"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("testbed: error: ") for line in err)
    assert "KEY=VALUE" in err[0] and "unknown option 'gaps'" in err[1] and "nope" in err[2]


# ----- the shipped synthetic traces --------------------------------------------------------------

def test_shipped_traces_are_small_and_reproducible(tmp_path, monkeypatch):
    files = sorted(SHIPPED.glob("*.csv"))
    assert {p.name for p in files} >= {"wifi_fading.csv", "lte_gilbert_elliott.csv",
                                      "ethernet_constant.csv"}
    for path in files:
        assert path.stat().st_size < 100_000, path
        series = load_trace(path)
        assert series.unit == "bit/s" and trace_stats(series)["duration_s"] > 0
    spec = importlib.util.spec_from_file_location("make_traces", SHIPPED / "make_traces.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "OUT_DIR", tmp_path)
    module.main()
    for path in files:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
