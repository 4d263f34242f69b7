"""A trained model on new photos: ``Predictor`` (rebuilt from a checkpoint) and ``predict`` for a
user's own (bg, fg_bg) pair of any size."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..augment.quartet import get_transforms
from ..images import ImageError, open_image, to_rgb
from ..nets.registry import MODELS, from_identity
from ..nets.tta import FlipAverage
from ..tensors import resolve_device
from ..training import checkpoint as ckpt
from .evaluate import _for_inference
from .refine import RefineConfig, refine_mask


def build_from_config(model_config: dict) -> nn.Module:
    """Rebuild an architecture from a checkpoint's ``model_config`` (registry name + constructor
    arguments, nets/registry.py ``identity``), to load its weights into. Pretrained weights are
    not fetched again (``pretrained`` None): the checkpoint's own replace them."""
    name, kwargs = model_config["name"], model_config.get("kwargs")
    if kwargs and kwargs.get("pretrained") is not None:
        kwargs = {**kwargs, "pretrained": None}
    if name not in MODELS:
        raise ckpt.CheckpointError(f"checkpoint names an unknown model {name!r}")
    try:
        return from_identity({"name": name, "kwargs": kwargs})
    except (TypeError, ValueError) as e:  # arguments this version's constructor does not take
        raise ckpt.CheckpointError(f"its arguments do not build a {name}: {e}") from e


@dataclass
class Predictor:
    """A trained model with what it needs at inference: normalisation stats, its training size, and
    how its coarse mask is refined at the photo's resolution (``refine``; None: upsampled only)."""

    model: nn.Module
    stats: dict | None
    size: int
    refine: RefineConfig | None = RefineConfig()

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | None = None,
        flip: bool = False,
        refine: RefineConfig | None = RefineConfig(),
    ) -> Predictor:
        """Load a checkpoint written by ``fit()``; ``flip``: average each prediction with the
        mirrored pair's (``tta.FlipAverage``, twice the inference time); ``refine``: see
        evaluation/refine.py (None: the coarse mask upsampled bilinearly)."""
        state = ckpt.load(path)
        for key in ("model", "model_config", "train_config"):
            if key not in state:
                raise ckpt.CheckpointError(
                    f"{path}: checkpoint has no {key!r}; it was not written by fit()"
                )
        try:
            model = build_from_config(state["model_config"])
        except ckpt.CheckpointError as e:
            raise ckpt.CheckpointError(f"{path}: {e}") from e
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:  # another shape than the named architecture's (hand-assembled)
            problems = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
            first = problems[0] if problems else str(e)
            first = first if len(first) <= 160 else first[:157] + "..."
            raise ckpt.CheckpointError(
                f"{path}: its weights do not fit the {type(model).__name__} it names "
                f"({len(problems)} kind(s) of mismatch; {first})"
            ) from e
        device = resolve_device(device)
        size = state["train_config"]["stages"][
            min(state["stage"], len(state["train_config"]["stages"]) - 1)
        ][0]
        model = FlipAverage(model) if flip else model
        return cls(_for_inference(model, device), state.get("stats"), int(size), refine)

    def __call__(self, bg, fg_bg) -> dict:
        return predict(self.model, bg, fg_bg, self.size, self.stats, refine=self.refine)


def _as_rgb(image, name: str) -> np.ndarray:
    if isinstance(image, (str, Path)):
        image = open_image(image)
    try:
        return to_rgb(image, name)
    except (ImageError, ValueError, TypeError) as e:
        raise ImageError(f"{name}: expected a file path, a PIL image or a uint8 array ({e})") from e


@torch.no_grad()
def predict(
    model: nn.Module,
    bg,
    fg_bg,
    size: int = 64,
    stats: dict | None = None,
    threshold: float = 0.5,
    refine: RefineConfig | None = None,
) -> dict:
    """Mask and depth for one pair of any size and mode (file paths, PIL images or uint8 arrays).

    Both images are resized to ``size`` x ``size`` for the model, and the outputs back to fg_bg's
    size: depth bilinearly, the mask refined with the photos themselves (``refine``, refine.py) or,
    with None, bilinearly too. Returns ``{"mask_prob": float (H, W), "mask": bool (H, W), "depth": float (H, W) in [0, 1]}``.
    """
    bg, fg_bg = _as_rgb(bg, "bg"), _as_rgb(fg_bg, "fg_bg")
    h, w = fg_bg.shape[:2]
    if bg.shape[:2] != (h, w):
        warnings.warn(
            f"bg is {bg.shape[1]}x{bg.shape[0]} but fg_bg is {w}x{h}; resizing bg to match",
            stacklevel=2,
        )
        bg = np.asarray(Image.fromarray(bg).resize((w, h), Image.Resampling.BILINEAR))
    t = get_transforms("test", size, stats=stats)
    blank = np.zeros((h, w), np.uint8)
    sample = t(
        {"bg": bg, "fg_bg": fg_bg, "mask": blank, "depth": blank.astype(np.float32), "id": "user"}
    )
    device = next(model.parameters(), torch.zeros(())).device
    model.eval()
    out = model(sample["bg"][None].to(device), sample["fg_bg"][None].to(device))
    prob = torch.sigmoid(out["mask"].float())
    back = {
        k: torch.nn.functional.interpolate(v, (h, w), mode="bilinear", align_corners=False)[0, 0]
        .cpu()
        .numpy()
        for k, v in (("mask_prob", prob), ("depth", out["depth"].float()))
    }
    if refine is not None:
        back["mask_prob"] = refine_mask(prob[0, 0].cpu().numpy(), bg, fg_bg, refine)
    return {
        "mask_prob": back["mask_prob"],
        "mask": back["mask_prob"] > threshold,
        "depth": back["depth"].clip(0, 1),
    }
