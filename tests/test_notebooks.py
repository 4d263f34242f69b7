"""Every notebook runs top to bottom in a real Jupyter kernel, in order, with small parameters.

The tagged ``parameters`` cell keeps its defaults and gets the overrides below appended, so what runs is
the notebook a user sees, only smaller. All notebooks share one working folder, so 05 finds what 04 wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))

SMALL = {
    "01_dataset_creation": {
        "SIZE": 32,
        "N_BG": 6,
        "N_FG": 4,
        "PLACEMENTS": 1,
        "WORKERS": 2,
        "SHOW": 2,
        "COURSE_ZIP": "data/synthetic64",  # validate the dataset just built (no download)
        "VALIDATE_SAMPLES": 20,
    },
    "02_augmentation": {"SIZE": 32},
    "03_architecture": {"SIZES": [32, 64]},
    "04_training": {
        "DATA_NAME": "synthetic-missing",
        "SYNTHETIC": {"size": 32, "n_bg": 6, "n_fg": 4, "placements": 1},
        "STAGES": [(32, 2, 8)],
        "CKPT_EVERY": 2,
        "INTERRUPT_AT": 3,
        "NUM_WORKERS": 0,
    },
    "05_evaluation": {
        "DATA_NAME": "synthetic-missing",
        "SYNTHETIC": {"size": 32, "n_bg": 6, "n_fg": 4, "placements": 1},
        "SHOW": 2,
        "ROBUSTNESS_SAMPLES": 8,
    },
}


def test_notebooks_are_committed_without_outputs():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, path.name


def test_each_notebook_has_one_parameters_cell_first():
    for path in NOTEBOOKS:
        code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and code[0] is tagged[0], (
            f"{path.name}: the first code cell must be the tagged parameters cell"
        )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("notebooks")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, workdir: Path):
    nb = nbformat.read(path, as_version=4)
    overrides = SMALL.get(path.stem, {})
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source += "\n# test overrides\n" + "".join(
                f"{k} = {v!r}\n" for k, v in overrides.items()
            )
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
