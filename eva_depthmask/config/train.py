"""How a model learns: LossConfig (the loss terms) and TrainConfig (fit()'s loop and checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss parts (losses.py); ``mask`` and ``depth`` are weighted sums of theirs.

    Depth SSIM uses a Gaussian window of ``ssim_window`` pixels (odd; shrunk for smaller images).
    """

    mask_bce: float = 1.0
    mask_dice: float = 1.0
    # BCE over the pixels within mask_edge_px of the true outline (losses.mask_edge_bce). At 1 the
    # demo's strong-perturbation IoU 0.861 -> 0.894, for delta1 0.962 -> 0.951 (T28); off by default,
    # 2 in the demo's recipe with depth_weight 1.5 (demo.ROBUST_LOSS, T45)
    mask_edge: float = 0.0
    mask_edge_px: int = 2
    depth_l1: float = 1.0
    depth_ssim: float = 1.0
    depth_grad: float = 1.0
    depth_log: float = 0.0  # L1 of log depth: the default before depth_silog (L6)
    # scale-invariant log error: delta1 0.866 -> 0.885, RMSE 0.0550 -> 0.0520, five seeds (L6)
    depth_silog: float = 1.0
    silog_lambda: float = 0.85  # 1: each image's scale ignored, 0: RMS log error
    mask_weight: float = 1.0
    depth_weight: float = 1.0
    ssim_window: int = 7
    ssim_sigma: float = 1.5

    def __post_init__(self) -> None:
        px = self.mask_edge_px
        if not isinstance(px, int) or isinstance(px, bool) or px < 1:
            raise ValueError(f"LossConfig.mask_edge_px: expected an int >= 1 (pixels), got {px!r}")
        if not 0.0 <= self.silog_lambda <= 1.0:
            raise ValueError(
                f"LossConfig.silog_lambda: expected a value in [0, 1], got {self.silog_lambda}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """How fit() trains (training/fit.py) and checkpoints (training/checkpoint.py).

    ``stages`` is the progressive-resizing plan, ``(size, epochs, batch_size)`` each, as the course
    projects trained 64 -> 128 -> 224; the learning-rate schedule spans all stages. A checkpoint is
    written every ``ckpt_every`` optimizer steps and at the end of every epoch and stage.
    """

    stages: tuple[tuple[int, int, int], ...] = ((64, 6, 32),)
    optimizer: str = "adamw"  # "adamw" or "sgd"
    lr: float = 3e-3  # peak learning rate (OneCycle) or initial (StepLR)
    weight_decay: float = 1e-4
    momentum: float = 0.9  # SGD only
    schedule: str = "onecycle"  # "onecycle" or "step"
    pct_start: float = 0.25  # OneCycle: fraction of all steps spent warming up
    step_epochs: int = 3  # StepLR: epochs between decays
    step_gamma: float = 0.3  # StepLR: decay factor
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    # fp16 + GradScaler on CUDA; bf16 on a CPU with native bf16, float32 on others (training/precision.py)
    amp: bool = True
    channels_last: bool = True
    seed: int = 0  # sample order and augmentation of every epoch
    ckpt_dir: str = "runs/default"
    ckpt_every: int = 100  # optimizer steps between checkpoints
    keep_last: int = 2  # newest checkpoints kept (best.pt is kept apart)
    best_metric: str = "mask_iou"
    best_mode: str = "max"  # "max" or "min"
    log_every: int = 10  # optimizer steps between rows of the CSV log
    num_workers: int | None = None  # DataLoader workers; None: chosen for the machine
    # torch threads while training on a CPU; None: the cores the loader workers leave (at most
    # torch's current setting); 0: leave torch's setting
    threads: int | None = None
    # decoded train samples kept in memory (MiB), shared by the loader workers of every epoch
    cache_mb: float = 2048
    device: str = "auto"  # "auto" (CUDA if available), "cuda" or "cpu"
    tensorboard: bool = True
    max_val_samples: int | None = None  # validate on the first N val samples only (None: all)
