"""Every analysis notebook runs from top to bottom on the quick settings."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the test extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the test extra")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        assert not any(c.get("outputs") for c in cells if c.cell_type == "code"), path.name


SHARED_TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_on_quick_results(path, tmp_path, monkeypatch):
    if "real-traces" in path.name and not SHARED_TRACES.is_dir():
        pytest.skip("notebook 03 replays ../shared/traces, which is not beside the checkout")
    monkeypatch.setenv("TESTBED_RESULTS", str(tmp_path))
    monkeypatch.setenv("TESTBED_QUICK", "1")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, f"{path.name} drew no figure"
    assert list(tmp_path.glob("*/*.png")), "no figure file written"
