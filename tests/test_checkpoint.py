"""Checkpoints in-process: RNG states, atomic saves, refusals, the newest readable file, pruning and
which checkpoints a run may resume from.

The SIGKILL tests in test_train.py run training in subprocesses, which `make mutants` cannot see
into; these call checkpoint.py directly, so each of its rules has a test in the mutation check.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from eva_depthmask.config import TrainConfig, to_dict
from eva_depthmask.training import checkpoint as ckpt
from eva_depthmask.training import resume
from eva_depthmask.training.state import Progress, Run


def draws() -> tuple:
    """One value from every RNG that a checkpoint restores, Gaussian caches included."""
    return (
        random.random(),
        random.gauss(0, 1),
        np.random.random(),  # noqa: NPY002 - the global state is what checkpoints keep
        np.random.standard_normal(),  # noqa: NPY002
        torch.rand(3).tolist(),
    )


def test_rng_state_restores_python_numpy_and_torch_draws():
    random.seed(1)
    np.random.seed(1)  # noqa: NPY002
    torch.manual_seed(1)
    # half-used Gaussian pairs: the cached second value is part of the state
    random.gauss(0, 1)
    np.random.standard_normal()  # noqa: NPY002
    saved = ckpt.rng_state()
    want = [draws() for _ in range(3)]
    random.seed(2)
    np.random.seed(2)  # noqa: NPY002
    torch.manual_seed(2)
    assert [draws() for _ in range(3)] != want  # other seeds draw otherwise ...
    ckpt.set_rng_state(saved)
    assert [draws() for _ in range(3)] == want  # ... and the restored state draws it again


def test_rng_state_survives_a_save_and_a_weights_only_load(tmp_path):
    np.random.seed(5)  # noqa: NPY002
    np.random.standard_normal()  # noqa: NPY002 - leaves a cached Gaussian
    path = ckpt.save(tmp_path / "ckpt_00000001.pt", {"rng": ckpt.rng_state()})
    want = draws()
    np.random.seed(6)  # noqa: NPY002
    ckpt.set_rng_state(ckpt.load(path)["rng"])
    assert draws() == want


def test_save_writes_format_and_version_and_leaves_no_temporary(tmp_path):
    path = ckpt.checkpoint_path(tmp_path, 12)
    assert path == tmp_path / "ckpt_00000012.pt"
    assert ckpt.save(path, {"global_step": 12, "w": torch.arange(4)}) == path
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "eva_depthmask.checkpoint" and raw["version"] == ckpt.VERSION == 2
    state = ckpt.load(path)
    assert state["global_step"] == 12 and torch.equal(state["w"], torch.arange(4))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_failed_save_names_the_file_and_the_checkpoint_still_intact(tmp_path):
    for step in (3, 4, 6):
        ckpt.save(ckpt.checkpoint_path(tmp_path, step), {"global_step": step})
    blocked = ckpt.checkpoint_path(tmp_path, 9)
    blocked.mkdir()  # a folder where the file should go: renaming onto it fails (EISDIR)
    with pytest.raises(ckpt.CheckpointError) as failed:
        ckpt.save(blocked, {"global_step": 9})
    message = str(failed.value)
    assert message.startswith(f"could not save checkpoint {blocked} (Is a directory);")
    assert message.endswith("the previous checkpoint ckpt_00000006.pt is intact")
    assert isinstance(failed.value.__cause__, OSError)
    assert ckpt.load(ckpt.checkpoint_path(tmp_path, 6))["global_step"] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt_00000003.pt",
        "ckpt_00000004.pt",
        "ckpt_00000006.pt",
        "ckpt_00000009.pt",  # the folder; no temporary file is left beside it
    ]
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "ckpt_00000001.pt").mkdir()
    with pytest.raises(ckpt.CheckpointError, match="; no earlier checkpoint exists$"):
        ckpt.save(alone / "ckpt_00000001.pt", {})


def test_load_refuses_what_is_not_a_checkpoint_naming_the_file(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match=r"missing\.pt: no such checkpoint file$"):
        ckpt.load(tmp_path / "missing.pt")
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(ckpt.CheckpointError, match=r"folder\.pt: no such checkpoint file$"):
        ckpt.load(tmp_path / "folder.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a zip at all")
    with pytest.raises(ckpt.CheckpointError, match=r"garbage\.pt: unreadable checkpoint \(Unpickl"):
        ckpt.load(tmp_path / "garbage.pt")
    good = ckpt.save(tmp_path / "good.pt", {"w": torch.zeros(1000)})
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ckpt.CheckpointError, match=r"cut\.pt: unreadable checkpoint"):
        ckpt.load(tmp_path / "cut.pt")
    for name, content in (
        ("weights.pt", {"w": torch.zeros(2)}),  # a plain state dict
        ("tensor.pt", torch.zeros(2)),  # not even a dict
        ("other.pt", {"format": "someone.else", "version": 1}),
    ):
        torch.save(content, tmp_path / name)
        with pytest.raises(
            ckpt.CheckpointError,
            match=rf"{name}: not an eva_depthmask checkpoint \(no '{ckpt.FORMAT}' marker\)$",
        ):
            ckpt.load(tmp_path / name)


class RunsCode:
    """Unpickling this calls os.makedirs: what a malicious "checkpoint" could do instead."""

    def __init__(self, folder: Path):
        self.folder = str(folder)

    def __reduce__(self):
        return os.makedirs, (self.folder,)


def test_a_checkpoint_that_would_run_code_is_refused_unrun(tmp_path):
    evil = tmp_path / "ckpt_00000001.pt"
    torch.save({"format": ckpt.FORMAT, "version": 1, "x": RunsCode(tmp_path / "ran")}, evil)
    with pytest.raises(ckpt.CheckpointError, match=r"ckpt_00000001\.pt: unreadable checkpoint"):
        ckpt.load(evil)
    with pytest.warns(UserWarning, match="unreadable"):
        assert ckpt.latest(tmp_path) is None
    assert not (tmp_path / "ran").exists()


def test_load_and_latest_put_tensors_where_asked(tmp_path):
    path = ckpt.save(ckpt.checkpoint_path(tmp_path, 1), {"w": torch.ones(2)})
    assert ckpt.load(path)["w"].device.type == "cpu"
    assert ckpt.load(path, map_location="meta")["w"].device.type == "meta"
    assert ckpt.latest(tmp_path, map_location="meta")[1]["w"].device.type == "meta"


def test_load_refuses_a_newer_format_and_takes_older_ones(tmp_path):
    newer = tmp_path / "newer.pt"
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION + 1}, newer)
    with pytest.raises(
        ckpt.CheckpointError,
        match=rf"newer\.pt: checkpoint format {ckpt.VERSION + 1} is newer than this package's "
        rf"\({ckpt.VERSION}\); upgrade eva_depthmask$",
    ):
        ckpt.load(newer)
    for name, version in (("same.pt", {"version": ckpt.VERSION}), ("unversioned.pt", {})):
        torch.save({"format": ckpt.FORMAT, **version, "step": 4}, tmp_path / name)
        assert ckpt.load(tmp_path / name)["step"] == 4


def test_list_checkpoints_is_numeric_and_skips_other_names(tmp_path):
    assert ckpt.list_checkpoints(tmp_path / "absent") == []
    assert ckpt.list_checkpoints(tmp_path) == []
    names = ["ckpt_100000000.pt", "ckpt_00000002.pt", "ckpt_99999999.pt", "ckpt_00000010.pt"]
    others = ["best.pt", "ckpt_5.pt.tmp", ".ckpt_7.pt.x1.tmp", "ckpt_a.pt", "xckpt_3.pt"]
    for name in names + others:
        (tmp_path / name).touch()
    got = [p.name for p in ckpt.list_checkpoints(tmp_path)]
    # numbers, not strings: 2 < 10 < 99999999 < 100000000
    assert got == ["ckpt_00000002.pt", "ckpt_00000010.pt", "ckpt_99999999.pt", "ckpt_100000000.pt"]
    assert ckpt.list_checkpoints(str(tmp_path))[0] == tmp_path / "ckpt_00000002.pt"


def test_latest_falls_back_past_unreadable_files_with_a_warning_each(tmp_path):
    assert ckpt.latest(tmp_path) is None
    for step in (1, 2):
        ckpt.save(ckpt.checkpoint_path(tmp_path, step), {"global_step": step})
    ckpt.checkpoint_path(tmp_path, 3).write_bytes(b"cut short")
    torch.save({"w": torch.zeros(1)}, ckpt.checkpoint_path(tmp_path, 4))  # foreign
    with pytest.warns(UserWarning) as caught:
        path, state = ckpt.latest(tmp_path)
    assert path == ckpt.checkpoint_path(tmp_path, 2) and state["global_step"] == 2
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert messages[0].startswith("skipping ")
    assert "ckpt_00000004.pt: not an eva_depthmask" in messages[0]
    assert "ckpt_00000003.pt: unreadable checkpoint" in messages[1]
    assert all(m.endswith("; trying the one before") for m in messages)
    for step in (1, 2):
        ckpt.checkpoint_path(tmp_path, step).write_bytes(b"")
    with pytest.warns(UserWarning):
        assert ckpt.latest(tmp_path) is None  # nothing readable: start over


def test_latest_reads_the_newest_without_warning_and_maps_tensors(tmp_path):
    for step in (5, 40, 300):
        ckpt.save(ckpt.checkpoint_path(tmp_path, step), {"global_step": step, "w": torch.ones(2)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path, state = ckpt.latest(str(tmp_path), map_location="cpu")
    assert path.name == "ckpt_00000300.pt" and state["global_step"] == 300
    assert state["w"].device.type == "cpu"


def test_prune_keeps_the_newest_and_best(tmp_path):
    for step in (1, 2, 3, 4, 5):
        ckpt.save(ckpt.checkpoint_path(tmp_path, step), {"global_step": step})
    ckpt.save(tmp_path / "best.pt", {"global_step": 1})

    def left() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir())

    ckpt.prune(tmp_path, 3)
    assert left() == ["best.pt", "ckpt_00000003.pt", "ckpt_00000004.pt", "ckpt_00000005.pt"]
    ckpt.prune(tmp_path, 5)  # fewer than keep_last: nothing goes
    assert len(left()) == 4
    ckpt.prune(tmp_path, 0)  # at least the newest is always kept
    assert left() == ["best.pt", "ckpt_00000005.pt"]
    ckpt.prune(tmp_path / "absent", 1)


def test_checkpoint_path_pads_to_eight_digits(tmp_path):
    assert ckpt.checkpoint_path(tmp_path, 0).name == "ckpt_00000000.pt"
    assert ckpt.checkpoint_path(str(tmp_path), 123456789) == tmp_path / "ckpt_123456789.pt"
    assert isinstance(ckpt.checkpoint_path(str(tmp_path), 1), Path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA's RNG needs a GPU")
def test_rng_state_restores_cuda_draws_and_takes_a_state_written_without_cuda():
    torch.cuda.manual_seed_all(1)
    saved = ckpt.rng_state()
    want = torch.rand(3, device="cuda").tolist()
    torch.cuda.manual_seed_all(2)
    ckpt.set_rng_state(saved)
    assert torch.rand(3, device="cuda").tolist() == want
    from_cpu = {k: v for k, v in saved.items() if k != "cuda"}  # as a CPU-only machine writes it
    ckpt.set_rng_state(from_cpu)


# ---------------------------------------------------------------------------------------------------
# Which checkpoints a run may resume from (resume.check_resumable), without training: the state
# holds what fit() stores for it.


@dataclass(frozen=True)
class Inner:
    kernel: int = 3


@dataclass(frozen=True)
class Shape:
    width: int = 8
    inner: Inner = Inner()


class Net(nn.Module):
    def __init__(self, cfg: Shape | None = None):
        super().__init__()
        self.cfg = cfg if cfg is not None else Shape()


class Bare(nn.Module):
    """A model without a config."""


def written_by(model: nn.Module, cfg: TrainConfig, loss=None) -> dict:
    state = {"model_config": resume.model_config(model), "train_config": to_dict(cfg)}
    return state if loss is None else {**state, "loss_config": loss}


def refusal(state: dict, model: nn.Module, cfg: TrainConfig, loss=None) -> str:
    with pytest.raises(ckpt.CheckpointError) as refused:
        resume.check_resumable(state, model, cfg, "run/ckpt_00000006.pt", loss)
    message = str(refused.value)
    head = "run/ckpt_00000006.pt: was written by a run with other settings ("
    tail = "); use another ckpt_dir, or fit(..., resume=False) to start over"
    assert message.startswith(head) and message.endswith(tail), message
    return message[len(head) : -len(tail)]


def test_resume_refuses_another_model_naming_each_setting():
    cfg = TrainConfig()
    assert refusal(written_by(Net(), cfg), Bare(), cfg) == "model: Net -> Bare"
    assert refusal(written_by(Bare(), cfg), Net(), cfg) == "model: Bare -> Net"
    wider = Net(Shape(width=16, inner=Inner(kernel=5)))
    assert refusal(written_by(Net(), cfg), wider, cfg) == (
        "model.inner.kernel: 3 -> 5; model.width: 8 -> 16"
    )
    # a setting the checkpoint predates is a change too
    old = written_by(Net(), cfg)
    del old["model_config"]["kwargs"]["width"]
    assert refusal(old, Net(), cfg) == "model.width: None -> 8"


def test_resume_names_model_train_and_loss_changes_together():
    cfg = TrainConfig(lr=0.003)
    state = written_by(Net(), cfg, loss={"depth_weight": 1.0, "mask_weight": 1.0})
    got = refusal(
        state, Net(Shape(width=4)), replace(cfg, lr=0.01), {"depth_weight": 2.0, "mask_weight": 1.0}
    )
    assert got == "model.width: 8 -> 4; train.lr: 0.003 -> 0.01; loss.depth_weight: 1.0 -> 2.0"
    assert refusal(state, Net(), cfg, "Ascent") == (
        "loss: {'depth_weight': 1.0, 'mask_weight': 1.0} -> 'Ascent'"
    )


def test_resume_accepts_what_does_not_change_the_computation():
    cfg = TrainConfig(ckpt_dir="a", ckpt_every=100, num_workers=0, tensorboard=True)
    state = written_by(Net(), cfg, loss={"depth_weight": 1.0})
    moved = replace(cfg, ckpt_dir="b", ckpt_every=7, keep_last=9, log_every=3, num_workers=2)
    moved = replace(moved, device="cpu", tensorboard=False)
    resume.check_resumable(state, Net(), moved, "x.pt", {"depth_weight": 1.0})
    # no loss given, or a checkpoint written before fit() stored its loss: the loss is not checked
    resume.check_resumable(state, Net(), cfg, "x.pt", None)
    resume.check_resumable(written_by(Net(), cfg), Net(), cfg, "x.pt", {"depth_weight": 9.0})
    assert refusal(state, Net(), replace(cfg, seed=1)) == "train.seed: 0 -> 1"


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.cfg, self.lin = Shape(), nn.Linear(2, 2)


def trainer(seed: int) -> tuple:
    """A model, SGD with momentum, a step schedule and an enabled grad scaler, from ``seed``."""
    torch.manual_seed(seed)
    net = Tiny()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    return net, opt, sched, torch.amp.GradScaler("cpu", init_scale=2.0 ** (seed + 4))


def trained_state(cfg: TrainConfig, where: dict) -> tuple[dict, Tiny, torch.Tensor]:
    """What fit() would store after one step: (state, its model, the next draw of torch's RNG)."""
    net, opt, sched, scaler = trainer(1)
    net.lin(torch.ones(1, 2)).sum().backward()
    opt.step()  # momentum buffers exist now
    sched.step()  # lr 0.1 -> 0.05
    state = {
        **{"model": net.state_dict(), "optimizer": opt.state_dict()},
        **{"scheduler": sched.state_dict(), "scaler": scaler.state_dict()},
        **where,
        "rng": ckpt.rng_state(),
        "model_config": resume.model_config(net),
        "train_config": to_dict(cfg),
    }
    return state, net, torch.rand(3)


def run_of(cfg: TrainConfig, net, opt, sched, scaler, rank: int = 0) -> Run:
    """A fresh run of ``fit()`` over these parts, at its start (no data: resume reads none)."""
    return Run(
        cfg=cfg,
        data=None,
        stats={},
        model=net,
        net=net,
        loss_fn=None,
        loss_config=None,
        opt=opt,
        sched=sched,
        scaler=scaler,
        device=torch.device("cpu"),
        fmt=torch.contiguous_format,
        workers=0,
        threads=None,
        rank=rank,
        world=1,
        callbacks=(),
        progress=Progress(),
    )


def test_resume_latest_loads_all_that_trains_and_says_where_from(tmp_path, capsys):
    cfg = TrainConfig(ckpt_dir=str(tmp_path))
    where = {"stage": 1, "epoch": 2, "step": 3, "global_step": 11, "best": 0.5, "seconds": 9.0}
    state, net, next_draw = trained_state(cfg, where)
    ckpt.save(ckpt.checkpoint_path(tmp_path, 11), {**state, "val": {"mask_iou": 0.75}})
    net2, opt2, sched2, scaler2 = trainer(2)
    assert not torch.equal(net2.lin.weight, net.lin.weight)
    run = run_of(cfg, net2, opt2, sched2, scaler2)
    path, val = resume.resume_latest(run)
    assert path == ckpt.checkpoint_path(tmp_path, 11) and val == {"mask_iou": 0.75}
    assert capsys.readouterr().out == "resuming from ckpt_00000011.pt: stage 1, epoch 2, step 3\n"
    assert run.progress.as_dict() == where
    assert torch.equal(net2.lin.weight, net.lin.weight)
    momentum = [s["momentum_buffer"] for s in opt2.state_dict()["state"].values()]
    assert len(momentum) == 2 and all(m.abs().sum() > 0 for m in momentum)
    assert sched2.get_last_lr() == [0.05] and opt2.param_groups[0]["lr"] == 0.05
    assert scaler2.get_scale() == 2.0**5  # trainer(1)'s, not trainer(2)'s 2 ** 6
    assert torch.equal(torch.rand(3), next_draw)  # torch's RNG as it was when saved


def test_resume_latest_elsewhere_than_rank_0_is_quiet_and_keeps_what_old_files_lack(
    tmp_path, capsys
):
    cfg = TrainConfig(ckpt_dir=str(tmp_path))
    assert resume.resume_latest(run_of(cfg, *trainer(2))) is None  # nothing to resume
    where = {"stage": 0, "epoch": 1, "step": 0, "global_step": 4, "best": 0.25}
    state, _, _ = trained_state(cfg, where)  # written before "seconds" and "val" existed
    ckpt.save(ckpt.checkpoint_path(tmp_path, 4), state)
    run = run_of(cfg, *trainer(2), rank=1)
    path, val = resume.resume_latest(run)
    assert path.name == "ckpt_00000004.pt" and val == {}
    assert capsys.readouterr().out == ""
    assert run.progress.as_dict() == {**where, "seconds": 0.0}
