"""Resume, in-process: fit() stopped after a step (the Colab stop button, ``train.stop_at_step``) and
called again must continue from the right checkpoint and end with the weights of a run that was never
stopped, bit for bit, under every recipe; a checkpoint of another recipe is refused, naming the field.

Each run is tiny (32 train samples at 32 px, batch 8: 4 steps an epoch, 3 epochs = 12 steps, a
checkpoint every 3 steps and at each epoch's end) and trains a model with dropout, so every step draws
from torch's global RNG. A run is stopped after step 7, mid-epoch 1: the newest checkpoint is then
ckpt_6 (ckpt_3 and ckpt_4 are older), and the process's RNG has moved one step past ckpt_6's. The
process-level claims (SIGKILL, torchrun) are in test_train.py. Runs are shared between tests
(``Runs``), so each test takes under 3 s and none is marked slow.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from train_job import model

from eva_depthmask.config import DataConfig, LossConfig, TrainConfig
from eva_depthmask.losses import DepthMaskLoss
from eva_depthmask.training import checkpoint as ckpt
from eva_depthmask.training.fit import fit, stop_at_step
from eva_depthmask.training.loaders import TrainData
from eva_depthmask.training.runlog import read_log

DATA = TrainData(DataConfig(size=32, n_bg=6, n_fg=2, placements=2))  # 32 train, 8 val samples
STEPS = 12  # 3 epochs x 4 steps
STOP = 7  # newest checkpoint then: ckpt_6


class Ascent(nn.Module):
    """DepthMaskLoss with its sign flipped: every step makes the predictions worse, so validation gets
    worse epoch after epoch and the best epoch is the first, never the last."""

    def __init__(self):
        super().__init__()
        self.loss = DepthMaskLoss()

    def forward(self, pred: dict, true: dict) -> dict:
        return {k: -v for k, v in self.loss(pred, true).items()}


# name: (TrainConfig changes, loss). "min" and "max" track a metric that gets worse with Ascent.
RECIPES = {
    "adamw": ({}, None),
    "step": ({"schedule": "step", "step_epochs": 2, "step_gamma": 0.3}, None),
    "sgd": ({"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}, None),
    "min": ({"best_metric": "depth_rmse", "best_mode": "min"}, Ascent),
    "max": ({"best_metric": "depth_delta2", "best_mode": "max"}, Ascent),
}


def train(ckpt_dir: Path, recipe: str = "adamw", stop: int | None = None, loss=None, **changes):
    """fit() of fresh, seeded weights under ``recipe`` (plus ``changes``), stopped after step ``stop``
    (then None) or run to the end: fit's dict plus ``"weights"``, the final state_dict."""
    settings, loss_cls = RECIPES[recipe]
    base = dict(
        stages=((32, 3, 8),),
        ckpt_dir=str(ckpt_dir),
        ckpt_every=3,
        keep_last=100,  # every checkpoint stays, to compare with best.pt
        log_every=1,
        num_workers=0,
        threads=1,  # bit-for-bit comparisons need the same threads
        tensorboard=False,
    )
    cfg = TrainConfig(**{**base, **settings, **changes})
    net = model(8)
    if loss is None and loss_cls is not None:
        loss = loss_cls()
    if stop is not None:
        with pytest.raises(KeyboardInterrupt, match=f"stopped at step {stop}"):
            fit(net, DATA, cfg, callbacks=[stop_at_step(stop)], loss_fn=loss)
        return None
    return {**fit(net, DATA, cfg, loss_fn=loss), "weights": net.state_dict()}


class Runs:
    """Runs shared by the tests, made once on first use: an uninterrupted ``reference``, a run
    ``stopped`` after step STOP (left as it is: copy it before resuming) and that run ``resumed``."""

    def __init__(self, factory: pytest.TempPathFactory):
        self.factory, self.done = factory, {}

    def _once(self, key: tuple, make):
        if key not in self.done:
            self.done[key] = make(self.factory.mktemp("_".join(key)))
        return self.done[key]

    def reference(self, recipe: str) -> tuple[Path, dict]:
        return self._once(("reference", recipe), lambda d: (d, train(d, recipe)))

    def stopped(self, recipe: str) -> Path:
        def make(d: Path):
            train(d, recipe, STOP)
            return d

        return self._once(("stopped", recipe), make)

    def resumed(self, recipe: str) -> tuple[Path, dict]:
        def make(d: Path):
            d.rmdir()
            shutil.copytree(self.stopped(recipe), d)
            return d, train(d, recipe)

        return self._once(("resumed", recipe), make)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory)


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "run"))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def log_rows(folder: Path) -> list[tuple]:
    """The log's columns that do not depend on timing."""
    cols = ("kind", "epoch", "step", "global_step", "lr", "loss_total", "mask_iou", "depth_rmse")
    return [tuple(r[c] for c in cols) for r in read_log(folder / "log.csv")]


def name(step: int) -> str:
    return ckpt.checkpoint_path(".", step).name


def test_fresh_run_reports_no_checkpoint_and_every_step(runs):
    folder, done = runs.reference("adamw")
    assert done["resumed_from"] is None
    assert done["steps"] == STEPS
    assert done["last_path"] == str(folder / name(STEPS))


def test_resumed_run_reports_its_checkpoint_and_trains_only_the_rest(runs):
    folder, done = runs.resumed("adamw")
    assert done["resumed_from"] == str(folder / name(6))
    assert done["steps"] == STEPS - 6


def test_resume_restores_the_rng_that_dropout_draws_from(runs):
    assert any(isinstance(m, nn.Dropout) for m in model(8).modules())  # else the RNG is never read
    (folder, done), (ref_folder, ref) = runs.resumed("adamw"), runs.reference("adamw")
    assert_same_weights(done["weights"], ref["weights"])
    assert log_rows(folder) == log_rows(ref_folder)


def test_unreadable_newest_checkpoint_falls_back_to_the_older_one(runs, tmp_path):
    folder = copy_of(runs.stopped("adamw"), tmp_path)
    newest = folder / name(6)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # cut short
    assert (folder / name(4)).is_file()
    with pytest.warns(UserWarning, match=rf"skipping {re.escape(str(newest))}: unreadable"):
        done = train(folder)
    assert done["resumed_from"] == str(folder / name(4))
    assert done["steps"] == STEPS - 4
    ref_folder, ref = runs.reference("adamw")
    assert_same_weights(done["weights"], ref["weights"])
    assert log_rows(folder) == log_rows(ref_folder)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"stages": ((32, 4, 8),)}, "train.stages: [[32, 3, 8]] -> [[32, 4, 8]]"),
        ({"lr": 1e-3}, "train.lr: 0.003 -> 0.001"),
        ({"loss": DepthMaskLoss(LossConfig(depth_weight=2.0))}, "loss.depth_weight: 1.0 -> 2.0"),
        ({"loss": Ascent()}, "loss: {"),  # another loss class: its config against its name
    ],
    ids=["stages", "lr", "loss_weight", "loss_class"],
)
def test_changed_recipe_is_refused_naming_the_field(runs, tmp_path, change, message):
    folder = copy_of(runs.stopped("adamw"), tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(ckpt.CheckpointError, match=re.escape(message)) as refused:
        train(folder, **change)
    assert str(folder / name(6)) in str(refused.value)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written


def test_settings_that_do_not_change_the_computation_are_accepted(runs, tmp_path):
    folder = copy_of(runs.stopped("adamw"), tmp_path)
    done = train(folder, num_workers=1, ckpt_every=5, keep_last=2, log_every=2)
    assert done["resumed_from"] == str(folder / name(6))
    assert_same_weights(done["weights"], runs.reference("adamw")[1]["weights"])
    assert [p.name for p in ckpt.list_checkpoints(folder)] == [name(10), name(12)]  # keep_last=2


def test_step_schedule_decays_within_the_run(runs):
    """Precondition of the resume test below: the rate decays after epoch 1, past the stop."""
    lrs = {r["epoch"]: float(r["lr"]) for r in read_log(runs.reference("step")[0] / "log.csv")}
    assert lrs["2"] == pytest.approx(lrs["0"] * 0.3)


def test_sgd_checkpoint_holds_momentum(runs):
    """Precondition of the resume test below: the optimizer state it must restore is not empty."""
    state = ckpt.load(runs.stopped("sgd") / name(6))["optimizer"]["state"]
    assert state and all("momentum_buffer" in s for s in state.values())


@pytest.mark.parametrize("recipe", ["step", "sgd", "min"])
def test_recipe_resumes_bit_exact(runs, recipe):
    (folder, done), (ref_folder, ref) = runs.resumed(recipe), runs.reference(recipe)
    assert done["resumed_from"] == str(folder / name(6))
    assert_same_weights(done["weights"], ref["weights"])
    assert log_rows(folder) == log_rows(ref_folder)
    best, ref_best = ckpt.load(folder / "best.pt"), ckpt.load(ref_folder / "best.pt")
    assert best["global_step"] == ref_best["global_step"]
    assert_same_weights(best["model"], ref_best["model"])
    assert done["best"] == ref["best"]


@pytest.mark.parametrize("recipe", ["min", "max"])
def test_best_checkpoint_holds_the_best_epochs_weights(runs, recipe):
    folder, done = runs.reference(recipe)
    metric, mode = RECIPES[recipe][0]["best_metric"], RECIPES[recipe][0]["best_mode"]
    vals = [r for r in read_log(folder / "log.csv") if r["kind"] == "val"]
    values = [float(r[metric]) for r in vals]
    pick = values.index(min(values) if mode == "min" else max(values))
    assert pick < len(vals) - 1, f"{metric} {values}: the best epoch must not be the last"
    assert len(set(values)) == len(values)  # no ties: "best" is unambiguous
    best = ckpt.load(done["best_path"])
    epoch_end = int(vals[pick]["global_step"])
    assert best["global_step"] == epoch_end
    assert best["val"][metric] == pytest.approx(values[pick], rel=1e-5)
    assert done["best"] == best["val"][metric]
    assert_same_weights(best["model"], ckpt.load(folder / name(epoch_end))["model"])
