"""What makes a checkpoint resumable by a ``fit()`` call, and loading the newest one into a run.

A run resumes only into the same architecture and the same training recipe: a checkpoint of another
one is refused with the settings that differ, except those in ``RESUME_FREE``, which change where
and how often a run writes and logs but not what it computes.
"""

from __future__ import annotations

from torch import nn

from . import checkpoint as ckpt
from .config import TrainConfig, diff, flatten, from_dict, to_dict

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
    """What identifies an architecture: its class and its config (if it has one)."""
    cfg = getattr(model, "cfg", None)
    return {"name": type(model).__name__, "config": to_dict(cfg) if cfg is not None else None}


def check_resumable(state: dict, model: nn.Module, cfg: TrainConfig, path) -> None:
    """Refuse a checkpoint from another architecture or another training recipe, naming the settings."""
    mine, theirs = model_config(model), state["model_config"]
    problems = []
    if mine["name"] != theirs["name"]:
        problems.append(f"model: {theirs['name']} -> {mine['name']}")
    elif mine["config"] != theirs["config"]:
        old, new = flatten(theirs["config"] or {}), flatten(mine["config"] or {})
        problems += [
            f"model.{k}: {old.get(k)!r} -> {new.get(k)!r}"
            for k in sorted(old.keys() | new.keys())
            if old.get(k) != new.get(k)
        ]
    old_train = from_dict(TrainConfig, state["train_config"])
    problems += [
        f"train.{k}: {a!r} -> {b!r}"
        for k, (a, b) in diff(old_train, cfg).items()
        if k.split(".")[0] not in RESUME_FREE
    ]
    if problems:
        raise ckpt.CheckpointError(
            f"{path}: was written by a run with other settings ({'; '.join(problems)}); "
            "use another ckpt_dir, or fit(..., resume=False) to start over"
        )


def resume_latest(
    cfg: TrainConfig, model, opt, sched, scaler, where: dict, rank: int = 0
) -> dict | None:
    """Load the newest readable checkpoint of ``cfg.ckpt_dir`` into everything that trains; updates
    ``where`` and returns the validation metrics stored with it, or None when there is none."""
    found = ckpt.latest(cfg.ckpt_dir)
    if not found:
        return None
    path, state = found
    check_resumable(state, model, cfg, path)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    ckpt.set_rng_state(state["rng"])
    where.update({k: state.get(k, where[k]) for k in where})
    if rank == 0:
        print(
            f"resuming from {path.name}: stage {where['stage']}, epoch {where['epoch']}, step {where['step']}"
        )
    return state.get("val", {})
