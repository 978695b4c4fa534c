"""The tutorials (docs/tutorials/*.py, jupytext "percent" files) run as notebooks, as written.

Each is converted with jupytext and executed cell by cell by nbclient in a fresh kernel whose
working directory is an empty temporary folder, so a tutorial cannot lean on files of the
repository or of another tutorial. A cell that raises fails the test with the cell's error.
Each tutorial is meant to take well under a minute on a CPU; the limits below leave room for a
loaded machine without letting one hang CI.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext", reason="the test extra installs jupytext")
nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient")

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.py"))
EXPECTED = {"first_explanation", "any_model", "own_training", "studies_report", "dataset_analyses", "explorer_api"}
CELL_TIMEOUT_S = 120
TUTORIAL_TIMEOUT_S = 180


def test_every_tutorial_is_here_and_in_the_site():
    assert {p.stem for p in TUTORIALS} == EXPECTED
    nav = (ROOT / "mkdocs.yml").read_text()
    for name in EXPECTED:
        assert f"tutorials/{name}.md" in nav, f"{name} is not in mkdocs.yml's nav"


def notebook_of(path: Path):
    notebook = jupytext.read(path)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code, f"{path.name}: no code cell (is it a jupytext percent file?)"
    return notebook


@pytest.mark.timeout(TUTORIAL_TIMEOUT_S + 30)
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    notebook = notebook_of(path)
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.monotonic()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.relative_to(ROOT)}: a cell failed\n{str(err)[-3000:]}")
    seconds = time.monotonic() - start
    assert seconds < TUTORIAL_TIMEOUT_S, f"{path.name} took {seconds:.0f} s"
    print(f"{path.name}: {seconds:.1f} s")


def test_a_failing_cell_fails_the_run(tmp_path: Path):
    """The runner reports an error in a cell (the check the tutorials' test relies on)."""
    script = tmp_path / "broken.py"
    script.write_text("# %%\nx = 1\n\n# %%\nraise ValueError('a broken tutorial')\n")
    client = nbclient.NotebookClient(notebook_of(script), timeout=60, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="a broken tutorial"):
        client.execute()
