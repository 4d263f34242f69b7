"""What makes a checkpoint resumable by a ``fit()`` call, and loading the newest one into a run.

A run resumes only into the same architecture, the same training recipe and the same loss: a
checkpoint of another one is refused with the settings that differ, except those in ``RESUME_FREE``, which change where
and how often a run writes and logs but not what it computes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from ..config import TrainConfig, diff, flatten, from_dict
from ..nets.registry import identity
from . import checkpoint as ckpt

if TYPE_CHECKING:  # state.py imports model_config from here
    from .state import Run

# Settings that may change between a run and its resumption without changing what it computes.
RESUME_FREE = {
    "ckpt_dir",
    "ckpt_every",
    "keep_last",
    "log_every",
    "num_workers",
    "device",
    "tensorboard",
}


def model_config(model: nn.Module) -> dict:
    """What identifies an architecture, as a checkpoint stores it: ``{"name": registry name,
    "kwargs": constructor arguments}`` (nets/registry.py ``identity``)."""
    return identity(model)


def check_resumable(
    state: dict, model: nn.Module, cfg: TrainConfig, path, loss_config: dict | str | None = None
) -> None:
    """Refuse a checkpoint from another architecture, training recipe or loss, naming the settings.

    ``loss_config`` is what ``fit`` stores as the checkpoint's ``"loss_config"``: the loss's config as
    a dict, or the loss class's name when it has none. The loss is not checked when ``loss_config``
    is None or the checkpoint predates the field (written before fit() stored it).
    """
    mine, theirs = model_config(model), state["model_config"]
    problems = []
    if mine["name"] != theirs["name"]:
        problems.append(f"model: {theirs['name']} -> {mine['name']}")
    elif theirs["kwargs"] is not None:  # None: a version-1 baseline, its arguments not recorded
        problems += _changed("model", theirs["kwargs"], mine["kwargs"])
    old_train = from_dict(TrainConfig, state["train_config"])
    problems += [
        f"train.{k}: {a!r} -> {b!r}"
        for k, (a, b) in diff(old_train, cfg).items()
        if k.split(".")[0] not in RESUME_FREE
    ]
    if loss_config is not None and "loss_config" in state:
        problems += _changed("loss", state["loss_config"], loss_config)
    if problems:
        raise ckpt.CheckpointError(
            f"{path}: was written by a run with other settings ({'; '.join(problems)}); "
            "use another ckpt_dir, or fit(..., resume=False) to start over"
        )


def _changed(prefix: str, old: dict | str | None, new: dict | str | None) -> list[str]:
    """``"prefix.key: old -> new"`` for each setting that differs between two configs (dicts, or a
    name when a part has no config: then one ``"prefix: old -> new"``)."""
    if old == new:
        return []
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [f"{prefix}: {old!r} -> {new!r}"]
    a, b = flatten(old), flatten(new)
    return [
        f"{prefix}.{k}: {a.get(k)!r} -> {b.get(k)!r}"
        for k in sorted(a.keys() | b.keys())
        if a.get(k) != b.get(k)
    ]


def resume_latest(run: Run) -> tuple[Path, dict] | None:
    """Load the newest readable checkpoint of ``run.cfg.ckpt_dir`` into everything that trains (model,
    optimizer, scheduler, scaler, torch/numpy/python RNGs, ``run.progress``); returns ``(path of that
    checkpoint, the validation metrics stored with it)``, or None when there is none. A checkpoint of
    other settings is refused (``check_resumable``)."""
    found = ckpt.latest(run.cfg.ckpt_dir)
    if not found:
        return None
    path, state = found
    check_resumable(state, run.model, run.cfg, path, run.loss_config)
    run.model.load_state_dict(state["model"])
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    ckpt.set_rng_state(state["rng"])
    run.progress.load(state)
    if run.rank == 0:
        where = run.progress
        print(
            f"resuming from {path.name}: stage {where.stage}, epoch {where.epoch}, step {where.step}"
        )
    return path, state.get("val", {})
