"""The library side of ``testbed run``: experiment kinds take typed options, print
nothing and return what the command line prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.experiments.kinds import KindResult, RunOptions, load_experiment, run_file

QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.yaml"


def test_run_file_prints_nothing_and_returns_the_report(tmp_path, capsys):
    heard: list[str] = []
    result = run_file(QUICKSTART, RunOptions(out=tmp_path / "run", quick=True, figures=False,
                                             announce=heard.append))
    assert isinstance(result, KindResult) and result.status == 0 and not result.warnings
    assert capsys.readouterr() == ("", "")
    assert result.out == tmp_path / "run" and (result.out / "DONE").is_file()
    assert f"results in {result.out}/" in result.report and "TPOT" in result.report
    assert len(heard) == 1 and heard[0].startswith("scenario quickstart:")


def test_a_shipped_experiment_is_found_by_name():
    data, source = load_experiment("quickstart")
    assert Path(source).name == "quickstart.yaml" and "model" in data


def test_single_run_options_are_refused_for_other_kinds(tmp_path):
    with pytest.raises(ConfigError, match="--gantt: applies to a single scenario"):
        run_file(Path(__file__).resolve().parents[1] / "experiments" / "e8_regret.yaml",
                 RunOptions(out=tmp_path / "r", quick=True, gantt=tmp_path / "g.png"))
