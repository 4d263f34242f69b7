"""Every notebook runs top to bottom in a real Jupyter kernel, and what it reports is checked.

The tagged ``parameters`` cell keeps its defaults and gets the overrides below appended, so what runs is
the notebook a user sees, only smaller. All notebooks share one working folder, so 05 finds what 04 wrote.
A notebook's values are read back by one extra cell run in the same kernel after the last one (it
prints them as JSON), or from the files it wrote; the Colab branches (your own cut-outs, photos with a
depth teacher, a course zip, your own photo pair) run on local files made here.
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from PIL import Image

from eva_depthmask.config import DataConfig
from eva_depthmask.data.datagen import make_dataset
from eva_depthmask.data.dataset import QuartetDataset
from eva_depthmask.data.sources import ImageFolders, SampleKey
from eva_depthmask.evaluation.evaluate import evaluate
from eva_depthmask.evaluation.predictor import Predictor
from eva_depthmask.training import checkpoint
from eva_depthmask.training.loaders import TrainData

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
PROBE = "notebook-test-probe: "  # the extra cell's output line starts with this

SMALL = {
    "01_dataset_creation": {
        "SIZE": 32,
        "N_BG": 6,
        "N_FG": 4,
        "PLACEMENTS": 1,
        "WORKERS": 2,
        "SHOW": 2,
        "FORMAT": "png",  # lossless: the pixels on disk are the ones composited and labelled
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
        "FALLBACK_STAGES": [(32, 2, 8)],  # trained only when 04 did not run first (-k 05)
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


# ---------------------------------------------------------------------------------------------------
# Running a notebook and reading it back


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("notebooks")


def run_notebook(
    stem: str, workdir: Path, overrides: dict, probe: str | None = None, after_cell=None
) -> tuple[nbformat.NotebookNode, dict | None]:
    """Run notebook ``stem`` with ``overrides`` in a real kernel; any cell that raises fails the test.

    ``probe``: a Python expression evaluated in the kernel after the last cell; its value comes back
    through JSON (non-JSON values as ``str``). ``after_cell(index, cell)`` is called in this process
    after each cell has run (to look at the files it wrote). Returns the executed notebook and the value.
    """
    nb = nbformat.read(Path(__file__).parent.parent / "notebooks" / f"{stem}.ipynb", as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    params[0].source += "\n# test overrides\n" + "".join(
        f"{k} = {v!r}\n" for k, v in overrides.items()
    )
    if probe is not None:
        code = f"import json\nprint({PROBE!r} + json.dumps({probe}, default=str))"
        nb.cells.append(nbformat.v4.new_code_cell(code))
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    if after_cell is not None:
        client.on_cell_executed = lambda cell, cell_index, **_: after_cell(cell_index, cell)
    client.execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    if probe is None:
        return nb, None
    line = next(ln for ln in stdout(nb.cells[-1]).splitlines() if ln.startswith(PROBE))
    return nb, json.loads(line[len(PROBE) :])


def stdout(cell) -> str:
    """Everything a cell printed."""
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def cell_calling(nb, text: str):
    """The one code cell whose source contains ``text``."""
    found = [c for c in nb.cells if c.cell_type == "code" and text in c.source]
    assert len(found) == 1, f"expected one cell calling {text!r}, found {len(found)}"
    return found[0]


def save(img: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


# ---------------------------------------------------------------------------------------------------
# 01: the procedural build plus every Colab branch in one run


CUTOUT_COLOURS = [(255, 0, 255), (0, 255, 255)]  # by file name order; no room is painted these


def write_cutouts(folder: Path, colours=CUTOUT_COLOURS) -> Path:
    """One RGBA cut-out per colour: an opaque ellipse of that colour on a transparent 24x48 canvas."""
    yy, xx = np.mgrid[:48, :24]
    inside = ((yy - 23.5) / 23) ** 2 + ((xx - 11.5) / 11) ** 2 <= 1
    for j, colour in enumerate(colours):
        rgba = np.zeros((48, 24, 4), np.uint8)
        rgba[inside] = (*colour, 255)
        save(rgba, folder / f"{j}_cutout.png")
    return folder


def write_photos(folder: Path, n_bg: int = 4) -> tuple[Path, Path]:
    """``n_bg`` textured background JPEGs (not square) and two cut-out PNGs: the photo folders."""
    rng = np.random.default_rng(1)
    for i in range(n_bg):
        ramp = np.linspace(30, 220, 40)[None, :, None] * np.ones((30, 1, 3))
        noise = rng.integers(-25, 25, (30, 40, 3))
        save(np.clip(ramp + noise, 0, 255).astype(np.uint8), folder / "bg" / f"photo{i}.jpg")
    return folder / "bg", write_cutouts(folder / "fg", [(200, 40, 40), (40, 40, 200)])


def save_tiny_teacher(folder: Path) -> Path:
    """The real Depth Anything classes, tiny and random, saved with save_pretrained (no download)."""
    from test_teachers import tiny_depth_anything

    model, processor = tiny_depth_anything()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


COURSE_BG, COURSE_PER_BG, COURSE_SIZE = 4, 2, 32


def write_course_zip(path: Path) -> Path:
    """A course dataset zipped with a top folder: bg/, fg_bg/, fg_bg_mask/, fg_bg_depth/ holding
    4 backgrounds x 2 composites at 32 px, named like the course's ("bg001_fg002_01.jpg")."""
    rng = np.random.default_rng(2)
    s = COURSE_SIZE
    with zipfile.ZipFile(path, "w") as zf:

        def put(img: np.ndarray, name: str) -> None:
            tmp = path.parent / "course_file" / Path(name).name
            zf.write(save(img, tmp), f"my dataset/{name}")

        for b in range(1, COURSE_BG + 1):
            bg = rng.integers(40, 200, (s, s, 3), dtype=np.uint8)
            put(bg, f"bg/bg{b:03d}.jpg")
            for f in range(1, COURSE_PER_BG + 1):
                stem, mask = f"bg{b:03d}_fg{f:03d}_01", np.zeros((s, s), np.uint8)
                mask[8 : 8 + 12, 4 * f : 4 * f + 10] = 255
                put(np.where(mask[..., None] > 0, np.uint8(250), bg), f"fg_bg/{stem}.jpg")
                put(mask, f"fg_bg_mask/{stem}_mask.png")
                put(
                    np.repeat(np.linspace(255, 60, s)[:, None], s, 1).astype(np.uint8),
                    f"fg_bg_depth/{stem}_depth.png",
                )
    return path


@pytest.mark.slow
def test_01_builds_and_runs_every_colab_branch(workdir: Path, tmp_path: Path):
    fg_dir = write_cutouts(tmp_path / "cutouts")
    bg_photos, fg_photos = write_photos(tmp_path / "photos")
    teacher_dir = save_tiny_teacher(tmp_path / "teacher")
    course_zip = write_course_zip(tmp_path / "course.zip")
    overrides = {
        **SMALL["01_dataset_creation"],
        "FG_DIR": str(fg_dir),
        "BG_PHOTOS": str(bg_photos),
        "FG_PHOTOS": str(fg_photos),
        "TEACHER_OPTIONS": {"model_name": str(teacher_dir), "device": "cpu", "batch_size": 8},
        "COURSE_ZIP": str(course_zip),
    }
    probe = (
        '{"path": str(path), "own": str(own_path), "photos": str(photo_path), '
        '"course": vars(report)}'
    )
    nb, seen = run_notebook("01_dataset_creation", workdir, overrides, probe)

    check_procedural(Path(seen["path"]))
    check_own_cutouts(Path(seen["own"]))
    check_photos(Path(seen["photos"]), teacher_dir)
    course = seen["course"]
    n = COURSE_BG * COURSE_PER_BG
    assert (course["kind"], course["samples"], course["checked"]) == ("course", n, n)
    assert not any(course["errors"].values()), course["errors"]
    printed = stdout(cell_calling(nb, "validate_dataset(course_path"))
    assert f"(course): {n} samples" in printed and f"{n} decoded: OK" in printed, printed


def check_procedural(path: Path) -> None:
    """The default build: every quartet of the small recipe, none of the cut-out colours."""
    ds = QuartetDataset(path, "all")
    assert len(ds) == ds.config.n_samples == 6 * 4 * 2
    for i in range(0, len(ds), 7):
        fg_bg = ds.raw(i)["fg_bg"]
        assert not any(near(fg_bg, c).any() for c in CUTOUT_COLOURS)


def check_own_cutouts(path: Path) -> None:
    """Each sample of the FG_DIR build shows its own cut-out's colour under its mask, never the
    other's; both cut-outs are used."""
    ds = QuartetDataset(path, "all")
    assert ds.config.n_fg == len(CUTOUT_COLOURS)
    shown = set()
    for i in range(len(ds)):
        raw, fg = ds.raw(i), SampleKey.from_id(ds.ids[i]).fg
        under_mask = raw["fg_bg"][raw["mask"] == 1]
        hits = [near(under_mask, c).sum() for c in CUTOUT_COLOURS]
        assert hits[1 - fg] == 0, ds.ids[i]
        if raw["mask"].sum() >= 4:  # a sprite not hidden behind furniture shows its colour
            assert hits[fg] > 0, ds.ids[i]
            shown.add(fg)
    assert shown == {0, 1}


def near(pixels: np.ndarray, colour, tolerance: int = 24) -> np.ndarray:
    """Which uint8 ``(..., 3)`` pixels are within ``tolerance`` levels of ``colour`` in every channel
    (resizing and the edges' partial transparency mix a little background in)."""
    return (np.abs(pixels.astype(int) - colour) <= tolerance).all(-1)


def check_photos(path: Path, teacher_dir: Path) -> None:
    """The photo build: 4 photos x 2 cut-outs x 2 flips, depth = the saved teacher's on each fg_bg."""
    from eva_depthmask.data.teachers import DepthAnythingTeacher

    ds = QuartetDataset(path, "all")
    assert len(ds) == 4 * 2 * 2 and ds.info["source"] == "photos"
    assert ds.info["teacher"]["model"] == str(teacher_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the no-GPU estimate
        teacher = DepthAnythingTeacher(str(teacher_dir), device="cpu", progress=False)
    raws = [ds.raw(i) for i in range(len(ds))]
    expected = teacher(np.stack([r["fg_bg"] for r in raws]))
    stored = np.stack([r["depth"] for r in raws])
    np.testing.assert_allclose(stored, expected, atol=1e-4)  # 16-bit PNG: steps of 1.5e-5
    assert all(np.ptp(d) > 0.5 for d in stored)  # per-image clipping spreads it over [0, 1]


# ---------------------------------------------------------------------------------------------------
# 02, 03


@pytest.mark.slow
def test_02_alignment_count_is_zero(workdir: Path):
    probe = '{"seeds": CHECK_SEEDS, "before": before, "after": after, "repeatable": same}'
    nb, seen = run_notebook("02_augmentation", workdir, SMALL["02_augmentation"], probe)
    assert seen == {"seeds": 50, "before": 0, "after": 0, "repeatable": True}
    printed = stdout(cell_calling(nb, "disagreement(check.augment"))
    assert re.search(r"raw: 0\s+after random geometry: 0\b", printed), printed
    printed = stdout(cell_calling(nb, "for backend in BACKENDS"))  # the same check, per backend
    for backend in ("albumentations", "torch"):
        assert re.search(rf"{backend}: 0 pixels where the mask disagrees", printed), printed


@pytest.mark.slow
def test_03_runs(workdir: Path):
    nb, seen = run_notebook(
        "03_architecture",
        workdir,
        SMALL["03_architecture"],
        '[(r["model"], r["size"]) for r in rows]',
    )
    assert {size for _, size in seen} == {32, 64} and ["depthmasknet", 32] in seen


# ---------------------------------------------------------------------------------------------------
# 04, 05 (05 evaluates the checkpoint 04 wrote)


@pytest.mark.slow
def test_04_resumes_from_the_checkpoint_the_interrupted_run_wrote_last(workdir: Path):
    p = SMALL["04_training"]
    run_dir = workdir / "runs" / "nb04"
    on_disk = {}

    def after_cell(index, cell):  # when the interrupted call is over: what it left on disk
        if "stop_at_step(INTERRUPT_AT)" in cell.source:
            newest = checkpoint.list_checkpoints(run_dir)[-1]
            on_disk.update(name=newest.name, step=checkpoint.load(newest)["global_step"])

    nb, result = run_notebook("04_training", workdir, p, "result", after_cell)
    # 4 steps an epoch; rows are logged every 10 steps and at epoch ends, so asked to stop at 3 it
    # stops at 4, before the epoch's checkpoint: the newest on disk is the one of step 2
    steps_per_epoch = len(TrainData(replace(DataConfig(), **p["SYNTHETIC"])).raw("train", 32)) // 8
    assert steps_per_epoch == 4
    assert "stopped at step 4 " in stdout(cell_calling(nb, "stop_at_step(INTERRUPT_AT)"))
    assert on_disk == {"name": "ckpt_00000002.pt", "step": 2}

    printed = stdout(cell_calling(nb, "result = fit("))
    assert re.findall(r"resuming from (ckpt_\d+\.pt)", printed) == [on_disk["name"]], printed
    assert Path(result["resumed_from"]) == run_dir / on_disk["name"]
    final = checkpoint.load(checkpoint.list_checkpoints(run_dir)[-1])["global_step"]
    assert final == 2 * steps_per_epoch
    assert result["steps"] == final - on_disk["step"] == 6
    assert f"and took {result['steps']} steps" in printed


@pytest.mark.slow
def test_04_mixes_in_a_dataset_without_depth(tmp_path: Path, photo_folders):
    """MIX_NAME: the synthetic rooms and a photo dataset made without a teacher, half and half."""
    folders = photo_folders(tmp_path, 4, seed=5)
    cfg = DataConfig(size=32, placements=1, image_format="png")
    photos = ImageFolders(*folders, cfg)
    workdir = tmp_path / "nb"
    make_dataset(workdir / "data" / "mine", photos.cfg, photos, teacher=None, progress=False)
    p = {**SMALL["04_training"], "STAGES": [(32, 1, 8)], "INTERRUPT_AT": None}
    p.update(MIX_NAME="mine", MIX_RATIO=(0.5, 0.5), RUN_NAME="nb04mix")
    nb, result = run_notebook("04_training", workdir, p, "result")

    rooms = TrainData(replace(DataConfig(), **p["SYNTHETIC"]))
    mix = TrainData.mix([rooms, TrainData(workdir / "data" / "mine")], ratio=(0.5, 0.5))
    mine = TrainData(workdir / "data" / "mine").raw("train", 32)
    assert not mine.has_depth and len(mine) == 2 * 4 * 2  # 2 train backgrounds x 4 cut-outs x flips
    final = checkpoint.load(checkpoint.list_checkpoints(workdir / "runs" / "nb04mix")[-1])
    epoch = len(rooms.raw("train", 32)) + len(mine)  # a mix's epoch: its parts' train sizes
    assert final["global_step"] == len(mix.raw("train", 32)) // 8 == epoch // 8
    assert "synthetic-missing + mine, ratio (0.5, 0.5)" in stdout(cell_calling(nb, "TrainData("))
    assert result["val"]["mask_iou"] >= 0 and result["val"]["depth_rmse"] >= 0  # rooms have depth


@pytest.mark.slow
def test_05_reports_the_metrics_of_evaluate_and_predicts_my_photo(workdir: Path, tmp_path: Path):
    p = SMALL["05_evaluation"]
    bg = np.random.default_rng(3).integers(0, 256, (30, 48, 3), dtype=np.uint8)  # H x W, not square
    fg_bg = bg.copy()
    fg_bg[8:24, 10:22] = (250, 30, 30)
    overrides = {
        **p,
        "MY_BG": str(save(bg, tmp_path / "my_bg.jpg")),
        "MY_FG_BG": str(save(fg_bg, tmp_path / "my_fg_bg.png")),
    }
    probe = '{"metrics": metrics, "mask": out["mask"].shape, "depth": out["depth"].shape}'
    nb, seen = run_notebook("05_evaluation", workdir, overrides, probe)

    # the same evaluation, through the Python API: 04's best checkpoint on the synthetic test split
    predictor = Predictor.from_checkpoint(workdir / "runs" / "nb04" / "best.pt")
    data = TrainData(replace(DataConfig(), **p["SYNTHETIC"]))
    test = data.dataset("test", predictor.size, stats=predictor.stats)
    metrics, _ = evaluate(predictor.model, test, progress=False)
    assert seen["metrics"] == pytest.approx(metrics, rel=1e-5, abs=1e-6)
    shown = shown_table(cell_calling(nb, "evaluate(predictor.model, test)"))
    assert shown == pytest.approx(metrics, abs=5.1e-5)  # the table shows 4 decimals

    assert seen["mask"] == seen["depth"] == [30, 48]
    printed = stdout(cell_calling(nb, "predictor(MY_BG, MY_FG_BG)"))
    assert re.search(r"mask covers [\d.]+% of the image", printed), printed


def shown_table(cell) -> dict[str, float]:
    """The ``| metric | value |`` Markdown table a cell displayed, as a dict."""
    text = "".join(
        o["data"]["text/markdown"] for o in cell.outputs if "text/markdown" in o.get("data", {})
    )
    rows = re.findall(r"^\| (\w+) \| ([-\d.e+]+) \|$", text, re.MULTILINE)
    assert rows, text
    return {k: float(v) for k, v in rows}
