"""A small training run for the process-level tests of test_train.py (run as a script, not collected).

    [JOB_WORKERS=N] [JOB_BACKEND=torch] python tests/train_job.py CKPT_DIR [--kill-at-step N] [--kill-at-val E] [--kill-in-save N]
                              [--fsize-limit-after-step N] [--width W]

The kill options end this very process with SIGKILL at a chosen point, as a runtime taken away would:
after optimizer step N, right after epoch E's validation (before its checkpoint), or in the middle of
writing the N-th checkpoint file (its bytes written, not yet renamed). ``--fsize-limit-after-step`` caps
the size of files this process may write, from step N on, so the next checkpoint save fails like a full
disk. At the end the final weights go to CKPT_DIR/final.pt, and a line ``fit: resumed_from=NAME
steps=N`` says which checkpoint the run resumed from (``None``: a fresh start) and how many optimizer
steps it took.

The model has dropout (``DropoutNet``), so training draws from torch's global RNG at every step and a
resumed run ends with the reference's weights only if that RNG's state was restored too.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys

import torch
from torch import nn

from eva_depthmask.config import AugConfig, DataConfig, ModelConfig, TrainConfig
from eva_depthmask.nets.depthmasknet import DepthMaskNet
from eva_depthmask.training.fit import fit
from eva_depthmask.training.loaders import TrainData

# JOB_BACKEND=torch: the augmentation of whole batches in fit() (augment/batch.py)
AUG = AugConfig(backend=os.environ.get("JOB_BACKEND", "albumentations"))
DATA = TrainData(DataConfig(size=32, n_bg=6, n_fg=4, placements=2), AUG)


def train_config(ckpt_dir: str) -> TrainConfig:
    # 64 train samples: 8 steps per epoch at batch 8; 2 epochs at 32 px, then 1 at 40 px = 24 steps
    return TrainConfig(
        stages=((32, 2, 8), (40, 1, 8)),
        ckpt_dir=ckpt_dir,
        ckpt_every=3,
        log_every=1,
        num_workers=int(os.environ.get("JOB_WORKERS", "0")),
        threads=1,  # whatever the worker count: bit-for-bit comparisons need the same threads
        tensorboard=False,
    )


class DropoutNet(DepthMaskNet):
    """DepthMaskNet with dropout (probability ``p``) on the features its heads read."""

    def __init__(self, cfg: ModelConfig, p: float = 0.2):
        super().__init__(cfg)
        self.head = nn.Sequential(nn.Dropout(p), self.head)


def model(width: int) -> DropoutNet:
    """The same initial weights on every call (seeded); ``width``: channels of the first level."""
    torch.manual_seed(0)
    return DropoutNet(
        ModelConfig(widths=(width, 16, 16, 16), decoder_widths=(8, 8, 8), refine_width=4)
    )


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("ckpt_dir")
    p.add_argument("--kill-at-step", type=int)
    p.add_argument("--kill-at-val", type=int)
    p.add_argument("--kill-in-save", type=int)
    p.add_argument("--fsize-limit-after-step", type=int)
    p.add_argument("--width", type=int, default=8)
    args = p.parse_args()

    def on_row(row: dict) -> None:
        if row["kind"] == "train" and row["global_step"] == args.kill_at_step:
            die()
        if row["kind"] == "val" and row["epoch"] == args.kill_at_val and row["stage"] == 0:
            die()
        if row["kind"] == "train" and row["global_step"] == args.fsize_limit_after_step:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of dying
            resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))

    if args.kill_in_save:
        saves, real_fsync = [0], os.fsync

        def fsync(fd):  # checkpoint files are fsynced after all their bytes are written
            saves[0] += 1
            if saves[0] == args.kill_in_save:
                die()
            real_fsync(fd)

        os.fsync = fsync
    net = model(args.width)
    done = fit(net, DATA, train_config(args.ckpt_dir), callbacks=[on_row])
    if os.environ.get("RANK", "0") == "0":
        name = os.path.basename(done["resumed_from"]) if done["resumed_from"] else None
        print(f"fit: resumed_from={name} steps={done['steps']}")
        torch.save(net.state_dict(), os.path.join(args.ckpt_dir, "final.pt"))


if __name__ == "__main__":
    main()
