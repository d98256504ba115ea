"""Every notebook in notebooks/ runs top to bottom against the package and the shared data.

The kernel is this interpreter, through a kernelspec written to a temporary folder (nothing is
installed in the user's Jupyter paths), with ANOMALY_DATA_DIR pointing at the shared data and
PYTHONPATH at the package this test imports.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's migration warning is an error here

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

import anomaly_detection

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["01_quickstart.ipynb", "02_sketches.ipynb", "03_fingerprints_and_forest.ipynb"]


KERNEL = "anomaly-detection-test"


@pytest.fixture
def kernel_name(tmp_path, shared_data, monkeypatch):
    """A kernelspec for this interpreter in a temporary Jupyter path."""
    spec_dir = tmp_path / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    package_parent = str(Path(anomaly_detection.__file__).resolve().parents[1])
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "anomaly_detection tests",
        "language": "python",
        "env": {
            "ANOMALY_DATA_DIR": str(shared_data),
            "PYTHONPATH": os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p),
            "MPLBACKEND": "Agg",
            "JUPYTER_PLATFORM_DIRS": "1",
        },
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    return KERNEL


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, kernel_name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), "outputs committed"
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel_name, timeout=300, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if any cell fails
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert errors == []
    images = [o for cell in code for o in cell.outputs if "image/png" in o.get("data", {})]
    assert images, "every notebook draws at least one figure"


def test_notebooks_match_their_generator(tmp_path):
    """The committed notebooks are what scripts/make_notebooks.py writes (regenerate after editing it)."""
    script = NOTEBOOKS.parent / "scripts" / "make_notebooks.py"
    import runpy

    module = runpy.run_path(str(script))
    for name, cells in module["NOTEBOOKS"].items():
        committed = nbformat.read(NOTEBOOKS / name, as_version=4)
        built = module["build"](cells)
        assert [c.source for c in committed.cells] == [c.source for c in built.cells], name
