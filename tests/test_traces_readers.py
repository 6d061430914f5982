"""Trace readers: the ten shared real traces, held versus plain means, malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.traces import TRACE_FORMATS, detect_format, load_trace, trace_duration_s
from testbed.traces.formats import TraceOptionError
from testbed.traces.stats import trace_stats
from testbed.units import rate_unit_factor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason=f"the shared real traces are not at {SHARED} (they are other people's data and "
           "are not redistributed with the repository)")

# The shared README's "Means for checking a reader" (Mbit/s): format, plain, held (None: none
# given). "held" weights each row by the time to the next row over first to last timestamp.
README = {
    "mahimahi_cellular/ATT-LTE-driving-2016.down": ("mahimahi", 4.560, 4.560),
    "mahimahi_cellular/Verizon-LTE-short.down": ("mahimahi", 5.028, 5.028),
    "pensieve_fcc_broadband/008_test_fcc_trace_27175_http---www.amazon.com_480_0":
        ("pensieve", 1.102, 1.094),
    "pensieve_fcc_broadband/033_test_fcc_trace_216810_http---www.facebook.com_480_0":
        ("pensieve", 1.744, 1.740),
    "norway_hsdpa_3g/ferry.nesoddtangen-oslo-report.2010-09-21_1001CEST.log":
        ("pensieve", 1.330, 1.321),
    "norway_hsdpa_3g/metro.kalbakken-jernbanetorget-report.2010-09-14_1038CEST.log":
        ("pensieve", 0.983, 0.963),
    "lumos5g_mmwave/5g_trace_100_walking": ("lumos5g", 498.550, 499.040),
    "lumos5g_mmwave/5g_trace_103_driving": ("lumos5g", 296.877, 297.715),
    "ucc_5g_beyond_throughput/B_2020.01.16_09.56.56.csv": ("ucc5g", 39.971, 39.971),
    "oboe/trace_1.txt": ("oboe", 4.234, 4.117),
}
# Row counts and other figures from the README's per-file table.
ROWS = {"pensieve_fcc_broadband/008_test_fcc_trace_27175_http---www.amazon.com_480_0": 320,
        "norway_hsdpa_3g/ferry.nesoddtangen-oslo-report.2010-09-21_1001CEST.log": 1041,
        "norway_hsdpa_3g/metro.kalbakken-jernbanetorget-report.2010-09-14_1038CEST.log": 665,
        "lumos5g_mmwave/5g_trace_100_walking": 800, "lumos5g_mmwave/5g_trace_103_driving": 236,
        "ucc_5g_beyond_throughput/B_2020.01.16_09.56.56.csv": 1741, "oboe/trace_1.txt": 49}


def write(tmp_path: Path, name: str, text: str, newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


# ----- the shared real traces ------------------------------------------------------------------

def test_every_shared_trace_is_listed():
    if not SHARED.is_dir():
        pytest.skip(f"the shared real traces are not at {SHARED}")
    files = {str(p.relative_to(SHARED)) for p in SHARED.glob("*/*") if p.is_file()}
    assert files == set(README)


@needs_shared
@pytest.mark.parametrize("name", sorted(README))
def test_shared_trace_detected_and_means_match_the_readme(name):
    fmt, plain, held = README[name]
    path = SHARED / name
    assert detect_format(path) == fmt
    series = load_trace(path)
    assert series.unit == "bit/s" and str(path) in series.provenance and fmt in series.provenance
    assert series.times_s[0] == 0.0
    stats = trace_stats(series)
    assert stats["plain_mean_bps"] / 1e6 == pytest.approx(plain, rel=0.03)
    if held is not None:
        assert stats["mean_bps"] / 1e6 == pytest.approx(held, rel=0.03)
    if name in ROWS:
        assert stats["samples"] == ROWS[name]


@needs_shared
@pytest.mark.parametrize("name", sorted(n for n, (f, _, _) in README.items()
                                        if f in ("pensieve", "lumos5g")))
def test_readme_held_definition_reproduced_exactly(name):
    """The README's held mean is over first to last timestamp: Series.mean(last time)."""
    _, _, held = README[name]
    series = load_trace(SHARED / name)
    assert series.mean(series.times_s[-1]) / 1e6 == pytest.approx(held, abs=6e-4)


@needs_shared
def test_mahimahi_mean_is_packets_times_1500_bytes_over_the_last_timestamp():
    for name, max_mbps in (("mahimahi_cellular/ATT-LTE-driving-2016.down", 27.6),
                           ("mahimahi_cellular/Verizon-LTE-short.down", 16.8)):
        path = SHARED / name
        stamps = [int(line) for line in path.read_text().split()]
        series = load_trace(path)
        stats = trace_stats(series)
        assert stats["duration_s"] == stamps[-1] / 1000
        assert stats["mean_bps"] == pytest.approx(len(stamps) * 1500 * 8 / (stamps[-1] / 1000),
                                                  rel=1e-12)
        assert stats["max_bps"] / 1e6 == pytest.approx(max_mbps, abs=0.05)  # README: 1-s max


@needs_shared
def test_lumos_zeros_are_kept_as_outages_and_oboe_ends_at_the_last_chunk():
    assert trace_stats(load_trace(SHARED / "lumos5g_mmwave/5g_trace_100_walking"))[
        "outage_s"] == 17
    assert trace_stats(load_trace(SHARED / "lumos5g_mmwave/5g_trace_103_driving"))[
        "outage_s"] == 10
    oboe = load_trace(SHARED / "oboe/trace_1.txt")
    assert trace_duration_s(oboe) == pytest.approx(176.473 - 0.007)


@needs_shared
def test_oboe_gap_rules_and_ucc_options():
    path = SHARED / "oboe/trace_1.txt"
    means = {rule: trace_stats(load_trace(path, gaps=rule))["mean_bps"]
             for rule in ("hold", "next", "interpolate", "zero")}
    assert means["zero"] < min(means["hold"], means["next"], means["interpolate"])
    assert means["hold"] != means["next"]
    ucc = SHARED / "ucc_5g_beyond_throughput/B_2020.01.16_09.56.56.csv"
    spread, mean = load_trace(ucc, aggregate="spread"), load_trace(ucc, aggregate="mean")
    assert len(spread.times_s) == 1741 and len(mean.times_s) == 1536  # distinct seconds
    up = trace_stats(load_trace(ucc, direction="ul"))
    assert 0 < up["mean_bps"] < trace_stats(spread)["mean_bps"]
    # each row a one-second window: the replayed mean is the dataset's per-row mean (the
    # README's 40.0 Mbit/s), where holding rows over skipped seconds gives them more weight
    window = load_trace(ucc)
    stats = trace_stats(window)
    assert stats["duration_s"] == 1741 and stats["samples"] == 1741
    assert stats["mean_bps"] == pytest.approx(stats["plain_mean_bps"], rel=1e-12)
    assert stats["mean_bps"] / 1e6 == pytest.approx(39.971, abs=0.001)
    assert trace_stats(spread)["mean_bps"] / 1e6 > 42.0


# ----- held versus plain, by hand ---------------------------------------------------------------

def test_held_and_plain_means_of_unevenly_spaced_samples(tmp_path):
    path = write(tmp_path, "uneven.txt", "0.0\t1.0\n0.5\t3.0\n2.0\t0.0\n2.5\t4.0\n")
    series = load_trace(path, format="pensieve")
    stats = trace_stats(series)
    # each value holds until the next sample, the last for the last interval (0.5 s):
    # (1 x 0.5 + 3 x 1.5 + 0 x 0.5 + 4 x 0.5) / 3.0 s = 7/3 Mbit/s
    assert stats["duration_s"] == 3.0
    assert stats["mean_bps"] == pytest.approx(7 / 3 * 1e6, rel=1e-12)
    assert stats["plain_mean_bps"] == pytest.approx(2e6, rel=1e-12)  # (1 + 3 + 0 + 4) / 4
    assert stats["outage_s"] == 0.5
    # time shares: 0 for 1/6, 1 for 1/6, 3 for 1/2, 4 for 1/6 of the time
    assert (stats["p5_bps"], stats["p50_bps"], stats["p95_bps"]) == (0.0, 3e6, 4e6)
    # the README's "held" (up to the last timestamp): (0.5 + 4.5 + 0) / 2.5 = 2 Mbit/s
    assert series.mean(2.5) == pytest.approx(2e6)


def test_crlf_comments_blank_lines_and_a_header_are_accepted(tmp_path):
    text = "# measured on a bus\n\ntime\tthroughput\n0.0\t1.5\n# a comment\n1.0\t2.5\n\n"
    path = write(tmp_path, "crlf.log", text, newline="\r\n")
    assert detect_format(path) == "pensieve"
    series = load_trace(path)
    assert series.values == (1.5e6, 2.5e6) and trace_stats(series)["mean_bps"] == 2e6


# ----- each format by hand -----------------------------------------------------------------------

def test_mahimahi_windows_end_at_the_last_timestamp(tmp_path):
    path = write(tmp_path, "tiny.down", "0\n0\n500\n1000\n1500\n2000\n2500\n")
    series = load_trace(path)
    assert series.times_s == (0.0, 1.0, 2.0) and trace_duration_s(series) == 2.5
    assert series.values == (3 * 12000.0, 2 * 12000.0, 2 * 12000 / 0.5)
    assert trace_stats(series)["mean_bps"] == pytest.approx(7 * 12000 / 2.5)
    fine = load_trace(path, window="500 ms")
    assert fine.times_s == (0.0, 0.5, 1.0, 1.5, 2.0) and trace_duration_s(fine) == 2.5
    assert trace_stats(fine)["mean_bps"] == pytest.approx(7 * 12000 / 2.5)


def test_lumos_and_pensieve_detection_and_forcing(tmp_path):
    lumos = write(tmp_path, "5g", "1.0\t100.0\n2.0\t0.0\n3.0\t250.0\n")
    lumos_4g = write(tmp_path, "4g", "0 10.5\n1 12.0\n2 0\n")
    fcc = write(tmp_path, "fcc", "0.0\t1.2\n1.0\t0.8\n2.0\t1.0\n")
    assert [detect_format(p) for p in (lumos, lumos_4g, fcc)] == ["lumos5g", "lumos5g",
                                                                   "pensieve"]
    assert load_trace(lumos, format="pensieve").values == load_trace(lumos).values
    assert load_trace(lumos).times_s == (0.0, 1.0, 2.0)  # relative to the first sample


def test_oboe_chunks_and_gaps(tmp_path):
    path = write(tmp_path, "trace_9.txt",
                 "100 1000\n1100 1000\n1300 3000\n2300 3000\n2500 2000\n3500 2000\n")
    assert detect_format(path) == "oboe"
    held = load_trace(path)
    assert held.times_s == (0.0, 1.2, 2.4) and trace_duration_s(held) == 3.4
    assert held.values == (1e6, 3e6, 2e6)
    zero = load_trace(path, gaps="zero")
    assert zero.times_s == (0.0, 1.0, 1.2, 2.2, 2.4) and zero.values == (1e6, 0, 3e6, 0, 2e6)
    ramp = load_trace(path, gaps="interpolate")
    assert ramp.values == (1e6, 2e6, 3e6, 2.5e6, 2e6)
    following = load_trace(path, gaps="next")
    assert following.times_s == (0.0, 1.0, 2.2) and following.values == (1e6, 3e6, 2e6)


def test_ucc_rows_sharing_a_second(tmp_path):
    header = "Timestamp,NetworkMode,DL_bitrate,UL_bitrate,State\n"
    rows = ("2020.01.16_09.56.56,5G,100,10,D\n2020.01.16_09.56.57,5G,300,10,D\n"
            "2020.01.16_09.56.57,5G,100,10,D\n2020.01.16_09.56.59,LTE,0,10,I\n")
    path = write(tmp_path, "B_x.csv", header + rows)
    assert detect_format(path) == "ucc5g"
    window = load_trace(path)     # one second per row, end to end
    assert window.times_s == (0.0, 1.0, 2.0, 3.0) and window.values == (1e5, 3e5, 1e5, 0.0)
    assert trace_duration_s(window) == 4.0
    spread = load_trace(path, aggregate="spread")
    assert spread.times_s == (0.0, 1.0, 1.5, 3.0) and spread.values == (1e5, 3e5, 1e5, 0.0)
    assert trace_duration_s(spread) == 4.0
    mean = load_trace(path, aggregate="mean")
    assert mean.times_s == (0.0, 1.0, 3.0) and mean.values == (1e5, 2e5, 0.0)
    assert load_trace(path, aggregate="max").values == (1e5, 3e5, 0.0)
    assert load_trace(path, direction="ul").values == (1e4, 1e4, 1e4, 1e4)


def test_simgrid_profiles_loop_after_the_last_event(tmp_path):
    # SimGrid's own example: 40 MB/s at 4 s, 60 MB/s at 8 s, LOOPAFTER 12 -> period 20 s
    path = write(tmp_path, "link.bw", "4.0 40000000\n8.0 60000000\nLOOPAFTER 12.0\n")
    assert detect_format(path) == "simgrid"
    series = load_trace(path)
    assert series.times_s == (0.0, 4.0) and series.loop_period_s == 20.0
    assert series.values == (320e6, 480e6)  # B/s -> bit/s
    assert series.value_at(20.0) == 320e6 and series.value_at(24.0) == 480e6
    bits = write(tmp_path, "bits.bw", "# simgrid profile in bit/s\n0 1e6\n5 2e6\n5 3e6\n")
    same_date = load_trace(bits, unit="bit/s")
    assert same_date.values == (1e6, 3e6) and same_date.loop_period_s is None  # later wins
    periodic = write(tmp_path, "p.bw", "PERIODICITY 10\n0 100\n4 200\n")
    assert load_trace(periodic).loop_period_s == 10.0


def test_csv_units_from_the_header(tmp_path):
    path = write(tmp_path, "t.csv", "# x\ntime_ms,bandwidth_mbps\n0,10\n500,0\n1500,20\n2000,\n")
    series = load_trace(path)
    assert series.times_s == (0.0, 0.5, 1.5) and series.values == (10e6, 0.0, 20e6)
    assert trace_duration_s(series) == 2.0
    other = write(tmp_path, "u.csv",
                  "t [s],rssi_dBm,rate (kbit/s),bw_MBps\n0,-60,100,1\n1,-61,200,2\n")
    assert load_trace(other).values == (1e5, 2e5)
    assert load_trace(other, column="bw_MBps").values == (8e6, 16e6)


def test_rate_units_in_column_names():
    assert rate_unit_factor("mbps", lowercase_bits=True) == 1e6
    assert rate_unit_factor("MBps", lowercase_bits=True) == 8e6
    assert rate_unit_factor("kbit/s") == 1e3
    with pytest.raises(ConfigError):
        rate_unit_factor("mbps")  # strict spelling: lowercase m is milli, not a rate prefix


def test_registry_has_every_format():
    assert TRACE_FORMATS.names() == ["csv", "lumos5g", "mahimahi", "oboe", "pensieve",
                                     "simgrid", "ucc5g"]


# ----- malformed files ---------------------------------------------------------------------------

UCC_HEAD = "Timestamp,DL_bitrate,UL_bitrate,State\n"
OBOE_OK = ("0 1000\n900 1000\n1000 2000\n1900 2000\n2000 3000\n2900 3000\n"
           "3000 2500\n3900 2500\n")
MALFORMED = [  # id, file name, content, format (None: detected), line, words in the message
    ("non-numeric value", "a.log", "0.0\t1.0\n1.0\tabc\n2.0\t1.0\n", "pensieve", 2, "'abc'"),
    ("negative rate", "b.log", "0.0\t1.0\n1.0\t-2.0\n2.0\t1.0\n", None, 2, "negative"),
    ("decreasing time", "c.log", "0.0\t1.0\n2.0\t1.0\n1.0\t1.0\n", None, 3, "increasing"),
    ("missing column", "d.log", "0.0\t1.0\n1.0\n2.0\t1.0\n", None, 2, "expected 2"),
    ("empty file", "e.log", "", None, 1, "no data"),
    ("only comments", "f.log", "# nothing here\n\n", None, 1, "no data"),
    ("header without unit", "g.csv", "time,bandwidth\n0,1\n1,2\n", None, 1, "unit"),
    ("rate column without unit", "h.csv", "time_s,bandwidth\n0,1\n", None, 1, "rate unit"),
    ("csv without header", "i.csv", "0,1\n1,2\n", None, 1, "header"),
    ("csv empty rate mid-file", "j.csv", "time_s,bw_bps\n0,1\n1,\n2,3\n", None, 3, "empty"),
    ("bad LOOPAFTER", "k.bw", "0 100\n1 200\nLOOPAFTER abc\n", None, 3, "LOOPAFTER"),
    ("negative LOOPAFTER", "l.bw", "0 100\n1 200\nLOOPAFTER -1\n", None, 3, ">= 0"),
    ("loop of zero length", "m.bw", "0 100\n1 200\nLOOPAFTER 0\n", None, 2, "LOOPAFTER > 0"),
    ("stochastic simgrid", "n.bw", "STOCHASTIC\n0 NORM 10 1\n", None, 1, "stochastic"),
    ("simgrid decreasing date", "o.bw", "# SimGrid\n0 1\n5 2\n3 4\n", None, 4, "dates"),
    ("mahimahi non-integer line", "p.down", "0\n1\n2.5\n3\n", None, 3, "integer"),
    ("mahimahi decreasing", "q.down", "0\n5\n3\n9\n", None, 3, "non-decreasing"),
    ("mahimahi ends at 0 ms", "r.down", "0\n0\n", None, 2, "> 0 ms"),
    ("UCC missing DL_bitrate", "s.csv", "Timestamp,UL_bitrate,State\n2020.01.16_09.56.56,27,D\n",
     None, 1, "DL_bitrate"),
    ("UCC bad timestamp", "t.csv", UCC_HEAD + "2020-01-16 09:56:56,1,1,D\n", None, 2,
     "YYYY.MM.DD_HH.MM.SS"),
    ("UCC short row", "u.csv", UCC_HEAD + "2020.01.16_09.56.56,1,D\n", None, 2, "cells"),
    ("UCC negative rate", "v.csv", UCC_HEAD + "2020.01.16_09.56.56,-5,1,D\n", None, 2,
     "negative"),
    ("oboe odd pairs", "w.txt", OBOE_OK + "4000 4000\n", None, 9, "pairs"),
    ("oboe end rate differs", "x.txt", OBOE_OK + "4000 4000\n4900 4100\n", None, 10, "repeat"),
    ("oboe overlapping chunks", "y.txt", OBOE_OK + "3500 4000\n4900 4000\n", None, 9, "before"),
]


@pytest.mark.parametrize("name, filename, text, fmt, line, words", MALFORMED,
                         ids=[case[0] for case in MALFORMED])
def test_malformed_trace_is_a_one_line_error_naming_file_and_line(tmp_path, name, filename,
                                                                  text, fmt, line, words):
    path = write(tmp_path, filename, text)
    with pytest.raises(ConfigError) as caught:
        load_trace(path, format=fmt)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: line {line}: "), message
    assert "expected" in message and words in message, message


def test_malformed_cases_are_at_least_twelve():
    assert len(MALFORMED) >= 12


def test_unknown_or_unclear_format_lists_the_formats(tmp_path):
    path = write(tmp_path, "a.log", "0.0\t1.0\n1.0\t2.0\n")
    with pytest.raises(ConfigError) as caught:
        load_trace(path, format="nope")
    assert str(caught.value).startswith(f"{path}: format: got unknown trace format 'nope'")
    assert "mahimahi" in str(caught.value)
    prose = write(tmp_path, "notes.txt", "Some notes about a trace, with commas.\nmore\n")
    with pytest.raises(ConfigError) as caught:
        detect_format(prose)
    assert str(caught.value).startswith(f"{prose}: cannot tell the trace format")
    assert "oboe" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="file not found"):
        load_trace(tmp_path / "missing.log")


def test_bad_reader_options(tmp_path):
    path = write(tmp_path, "m.down", "0\n10\n1000\n")
    with pytest.raises(TraceOptionError, match="window"):
        load_trace(path, window="0 s")
    with pytest.raises(TraceOptionError, match="bare number"):
        load_trace(path, window=1)
    with pytest.raises(TraceOptionError, match="unknown option 'gaps'"):
        load_trace(path, gaps="hold")
