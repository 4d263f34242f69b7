"""The optimizer and schedule that fit() builds from a TrainConfig."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from eva_depthmask.config import TrainConfig
from eva_depthmask.training.optim import make_optimizer, make_scheduler


def lr_curve(cfg: TrainConfig, total_steps: int) -> list[float]:
    """The learning rate before each of ``total_steps`` optimizer steps."""
    opt = make_optimizer(nn.Linear(2, 1), cfg)
    sched = make_scheduler(opt, cfg, total_steps)
    lrs = []
    for _ in range(total_steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("total_steps", range(1, 13))
@pytest.mark.parametrize("pct_start", [0.1, 0.25, 0.3, 0.5])
def test_one_cycle_runs_any_number_of_steps(total_steps, pct_start):
    # a tiny dataset gives a handful of steps; a one-step warm-up (4 x 0.25) must not divide by zero
    cfg = TrainConfig(schedule="onecycle", lr=0.01, pct_start=pct_start)
    lrs = lr_curve(cfg, total_steps)
    assert len(lrs) == total_steps
    assert max(lrs) <= 0.01 + 1e-12
    if total_steps >= 2:
        assert lrs[-1] < max(lrs)  # it anneals
    if pct_start * total_steps >= 2:
        assert lrs[0] < max(lrs) / 2  # and, given two steps or more for it, it warms up first


def test_one_cycle_keeps_the_configured_warm_up_when_it_is_well_defined():
    lrs = lr_curve(TrainConfig(schedule="onecycle", lr=0.01, pct_start=0.25), 40)
    assert lrs.index(max(lrs)) == 9  # the peak ends a warm-up of 10 steps (0.25 x 40), at step 9


def test_step_schedule_decays_by_gamma_every_step_epochs():
    cfg = TrainConfig(schedule="step", lr=0.1, step_epochs=2, step_gamma=0.5, optimizer="sgd")
    opt = make_optimizer(nn.Linear(2, 1), cfg)
    sched = make_scheduler(opt, cfg, total_steps=100)
    seen = []
    for _ in range(5):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_unknown_optimizer_and_schedule_are_named():
    with pytest.raises(
        ValueError, match="TrainConfig.optimizer: expected 'adamw' or 'sgd', got 'adam'"
    ):
        make_optimizer(nn.Linear(2, 1), TrainConfig(optimizer="adam"))
    opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="TrainConfig.schedule: expected"):
        make_scheduler(opt, TrainConfig(schedule="cosine"), 10)
