"""Metrics: per-sample sums as functions, dataset-level values from ``MetricAccumulator``.

Conventions (say these when quoting numbers):

- Mask: predicted foreground is ``logits > 0`` (probability > 0.5). ``mask_iou``, ``mask_dice`` and
  ``mask_acc`` are *micro*: intersection, union and correct pixels are summed over every pixel of
  the dataset, then divided. ``mask_iou_sample`` is the mean of per-sample IoU (a sample whose
  true and predicted masks are both empty scores 1).
- Depth (0 = nearest, 1 = farthest): means over every pixel of the dataset. ``depth_rmse`` and
  ``depth_mae`` on the raw values; ``depth_abs_rel`` = mean |p - t| / t, ``depth_log10`` =
  mean |log10 p - log10 t| and ``depth_delta{1,2,3}`` = share of pixels with
  max(p / t, t / p) < 1.25^k, with p and t floored at ``EPS`` (depth 0 would divide by zero).
- ``depth_delta{1,2,3}_seed``: the seed projects' convention, both maps clamped to [0.1, 1]
  before the ratio, so these numbers can be set beside theirs.
- ``depth_scale_log``: mean over samples of |log s|, with s = median over the sample's pixels of
  t / p, the sample's scale error: one picture rarely shows the camera's height and field of view,
  and a monocular network that misjudges them is off by one factor over the whole map.
  ``depth_scale_bias``: the mean of the signed log s, > 0 where the network puts scenes too near on
  average; per sample it is that sample's own log s.
- ``depth_rmse_aligned``, ``depth_abs_rel_aligned``, ``depth_delta1_aligned``: the same errors after
  each prediction is multiplied by its s ("median scaling", Zhou et al. 2017), i.e. the depth's
  shape with the scale error taken out; the usual numbers for relative-depth teachers.

Every value is a ratio of sums, and the sums add over batches and processes, so the result does
not depend on how the data is batched or split across workers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .tensors import check_pair, depth_flags

EPS = 1e-3  # depth floor for ratios and logarithms, in depth units
SEED_CLAMP = (0.1, 1.0)  # the seed projects clamp both maps to this range before delta ratios
THRESHOLDS = (1.25, 1.25**2, 1.25**3)

MASK_SUMS = ("tp", "fp", "fn", "tn", "iou_sum")
DELTA_SUMS = tuple(f"delta{k}" for k in (1, 2, 3)) + tuple(f"delta{k}_seed" for k in (1, 2, 3))
ALIGNED_SUMS = ("sq_err_aligned", "abs_rel_aligned", "delta1_aligned")
DEPTH_SUMS = (
    "sq_err",
    "abs_err",
    "abs_rel",
    "log10",
    *DELTA_SUMS,
    *ALIGNED_SUMS,
    "scale_log",
    "scale_bias",
)
# the samples and pixels with depth: the denominators of the depth metrics (the last, so the sums of
# older states keep their places)
SUM_KEYS = ("samples", "pixels", *MASK_SUMS, *DEPTH_SUMS, "depth_samples", "depth_pixels")


def mask_sums(pred_logits: Tensor, true_mask: Tensor) -> dict[str, Tensor]:
    """Per-sample float64 counts ``(B,)``: tp, fp, fn, tn, and the sample's IoU as ``iou_sum``."""
    check_pair(pred_logits, true_mask, "mask")
    pred = (pred_logits > 0).flatten(1)
    true = (true_mask > 0.5).flatten(1)
    tp = (pred & true).sum(1).double()
    fp = (pred & ~true).sum(1).double()
    fn = (~pred & true).sum(1).double()
    tn = (~pred & ~true).sum(1).double()
    union = tp + fp + fn
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.ones_like(union))
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "iou_sum": iou}


def depth_sums(pred_depth: Tensor, true_depth: Tensor, eps: float = EPS) -> dict[str, Tensor]:
    """Per-sample float64 sums ``(B,)`` over pixels of the error terms in ``DEPTH_SUMS``, except
    ``scale_log`` / ``scale_bias``: the sample's own |log median(t / p)| / log median(t / p), one
    value per sample."""
    check_pair(pred_depth, true_depth, "depth")
    p, t = pred_depth.double().flatten(1), true_depth.double().flatten(1)
    err = p - t
    pf, tf = p.clamp(min=eps), t.clamp(min=eps)
    ratio = torch.maximum(pf / tf, tf / pf)
    ps, ts = p.clamp(*SEED_CLAMP), t.clamp(*SEED_CLAMP)
    ratio_seed = torch.maximum(ps / ts, ts / ps)
    out = {
        "sq_err": (err**2).sum(1),
        "abs_err": err.abs().sum(1),
        "abs_rel": ((pf - tf).abs() / tf).sum(1),
        "log10": (torch.log10(pf) - torch.log10(tf)).abs().sum(1),
    }
    for k, thr in enumerate(THRESHOLDS, start=1):
        out[f"delta{k}"] = (ratio < thr).sum(1).double()
        out[f"delta{k}_seed"] = (ratio_seed < thr).sum(1).double()
    scale = (tf / pf).median(dim=1, keepdim=True).values  # (B, 1): the sample's median t / p
    pa = pf * scale
    out["sq_err_aligned"] = ((pa - tf) ** 2).sum(1)
    out["abs_rel_aligned"] = ((pa - tf).abs() / tf).sum(1)
    out["delta1_aligned"] = (torch.maximum(pa / tf, tf / pa) < THRESHOLDS[0]).sum(1).double()
    out["scale_bias"] = scale.log().squeeze(1)  # per sample, not per pixel
    out["scale_log"] = out["scale_bias"].abs()
    return out


def _depth_values(s: dict, pixels, samples) -> dict:
    """Depth metric values from sums (floats, or ``(B,)`` tensors for per-sample values)."""
    out = {
        "depth_rmse": (s["sq_err"] / pixels) ** 0.5,
        "depth_mae": s["abs_err"] / pixels,
        "depth_abs_rel": s["abs_rel"] / pixels,
        "depth_log10": s["log10"] / pixels,
    }
    out.update({f"depth_{k}": s[k] / pixels for k in DELTA_SUMS})
    out["depth_rmse_aligned"] = (s["sq_err_aligned"] / pixels) ** 0.5
    out["depth_abs_rel_aligned"] = s["abs_rel_aligned"] / pixels
    out["depth_delta1_aligned"] = s["delta1_aligned"] / pixels
    out["depth_scale_log"] = s["scale_log"] / samples
    out["depth_scale_bias"] = s["scale_bias"] / samples
    return out


def sums_to_metrics(s: dict[str, Tensor | float]) -> dict[str, float]:
    """Turn summed counts (any of ``SUM_KEYS``, summed over samples) into the metric values."""
    s = {k: float(v) for k, v in s.items()}
    tp, fp, fn, tn = s["tp"], s["fp"], s["fn"], s["tn"]
    n = s["pixels"]
    out = {
        "mask_iou": tp / (tp + fp + fn) if tp + fp + fn else 1.0,
        "mask_dice": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
        "mask_acc": (tp + tn) / n if n else float("nan"),
        "mask_iou_sample": s["iou_sum"] / s["samples"] if s["samples"] else float("nan"),
    }
    depth_n, depth_samples = s["depth_pixels"], s["depth_samples"]
    nan = float("nan")  # no sample with depth: every depth value is nan, none divides by zero
    out.update(_depth_values(s, depth_n or nan, depth_samples or nan))
    return out


def per_sample_metrics(
    pred: dict, true_mask: Tensor, true_depth: Tensor, has_depth: Tensor | None = None
) -> dict[str, Tensor]:
    """Every metric for each sample on its own: ``{name: (B,) float64}``, to sort out the worst;
    depth metrics are nan for samples whose ``has_depth`` is False."""
    sums = {**mask_sums(pred["mask"], true_mask), **depth_sums(pred["depth"], true_depth)}
    flags = depth_flags(has_depth, true_mask.shape[0])
    return _per_sample(sums, float(true_mask[0].numel()), flags)


def _per_sample(s: dict[str, Tensor], pixels: float, flags: Tensor | None = None) -> dict:
    """Per-sample values from per-sample sums; depth ones nan where ``flags`` (bool ``(B,)``) is False."""
    tp, fp, fn, tn = s["tp"], s["fp"], s["fn"], s["tn"]
    union, one = tp + fp + fn, torch.ones_like(tp)
    out = {
        "mask_iou": torch.where(union > 0, tp / union.clamp(min=1), one),
        "mask_dice": torch.where(union > 0, 2 * tp / (union + tp).clamp(min=1), one),
        "mask_acc": (tp + tn) / pixels,
    }
    depth = _depth_values(s, pixels, 1.0)
    if flags is not None:
        valid = flags.to(tp.device)
        depth = {
            k: torch.where(valid, v, torch.full_like(v, float("nan"))) for k, v in depth.items()
        }
    out.update(depth)
    return out


def batch_metrics(
    pred: dict, true_mask: Tensor, true_depth: Tensor, has_depth: Tensor | None = None
) -> dict[str, float]:
    """All metrics over one batch (micro, as the accumulator would give for this batch alone)."""
    acc = MetricAccumulator()
    acc.update(pred, true_mask, true_depth, has_depth=has_depth)
    return acc.compute()


def iou(pred_logits: Tensor, true_mask: Tensor) -> float:
    """Micro IoU of ``logits > 0`` against the mask, over all pixels of the batch."""
    s = mask_sums(pred_logits, true_mask)
    tp, fp, fn = (s[k].sum().item() for k in ("tp", "fp", "fn"))
    return tp / (tp + fp + fn) if tp + fp + fn else 1.0


def rmse(pred_depth: Tensor, true_depth: Tensor) -> float:
    """Root mean squared depth error over all pixels, in depth units."""
    check_pair(pred_depth, true_depth, "depth")
    return (pred_depth.double() - true_depth.double()).pow(2).mean().sqrt().item()


def delta_accuracy(pred_depth: Tensor, true_depth: Tensor, k: int = 1, eps: float = EPS) -> float:
    """Share of pixels with max(p / t, t / p) < 1.25 ** k, both floored at ``eps``."""
    s = depth_sums(pred_depth, true_depth, eps)
    return (s[f"delta{k}"].sum() / true_depth.numel()).item()


class MetricAccumulator:
    """Sums over batches; ``compute()`` gives the dataset metrics (module docstring).

    ``per_sample=True`` also keeps every sample's metrics (``per_sample()``), for sorting the worst.
    For several processes: ``acc.reduce(torch.distributed.all_reduce)`` sums the states in place.
    """

    def __init__(self, per_sample: bool = False):
        self.keep_samples = per_sample
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(len(SUM_KEYS), dtype=torch.float64)
        self._samples: list[dict[str, Tensor]] = []
        self._ids: list[str] = []

    @torch.no_grad()
    def update(
        self,
        pred: dict,
        true_mask: Tensor,
        true_depth: Tensor,
        ids: list[str] | None = None,
        has_depth: Tensor | None = None,
    ) -> None:
        """Add a batch: ``pred`` = {"mask": logits, "depth": [0, 1]}, targets ``(B, 1, H, W)``;
        ``has_depth`` (bool or 0/1 ``(B,)``, None: all) says which samples count for depth."""
        mask = mask_sums(pred["mask"].detach(), true_mask)
        depth = depth_sums(pred["depth"].detach(), true_depth)
        b, pixels = true_mask.shape[0], true_mask[0].numel()
        flags = depth_flags(has_depth, b)
        n_depth = b if flags is None else int(flags.sum())
        batch = {"samples": float(b), "pixels": float(true_mask.numel())}
        batch.update({k: v.sum().item() for k, v in mask.items()})
        if flags is None:
            batch.update({k: v.sum().item() for k, v in depth.items()})
        else:  # only the samples with depth: the others' sums are of a made-up zero map
            keep = flags.to(true_depth.device)
            batch.update({k: v[keep].sum().item() for k, v in depth.items()})
        batch.update(depth_samples=float(n_depth), depth_pixels=float(n_depth * pixels))
        self.sums += torch.tensor([batch[k] for k in SUM_KEYS], dtype=torch.float64)
        if self.keep_samples:
            self._samples.append(_per_sample({**mask, **depth}, float(pixels), flags))
            self._ids.extend(
                ids if ids is not None else [str(len(self._ids) + i) for i in range(b)]
            )

    def state(self) -> Tensor:
        """The sums as one float64 vector in ``SUM_KEYS`` order (all-reduce it, or merge it)."""
        return self.sums

    def reduce(self, fn: Callable[[Tensor], Tensor | None]) -> None:
        """Apply an in-place or returning reduction (e.g. ``torch.distributed.all_reduce``)."""
        out = fn(self.sums)
        if isinstance(out, Tensor):
            self.sums = out.to(torch.float64)

    def merge(self, other: MetricAccumulator) -> None:
        """Add another accumulator's sums (and its per-sample rows, if both keep them)."""
        self.sums += other.sums
        self._samples += other._samples
        self._ids += other._ids

    def compute(self) -> dict[str, float]:
        return sums_to_metrics(dict(zip(SUM_KEYS, self.sums.tolist(), strict=True)))

    def per_sample(self) -> dict[str, Tensor | list[str]]:
        """``{"id": [...], metric: (N,) tensor}`` for every sample seen (needs per_sample=True)."""
        if not self.keep_samples:
            raise RuntimeError("per_sample(): create the accumulator with per_sample=True")
        if not self._samples:
            return {"id": []}
        keys = self._samples[0].keys()
        return {
            "id": list(self._ids),
            **{k: torch.cat([s[k] for s in self._samples]) for k in keys},
        }
