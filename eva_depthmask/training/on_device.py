"""The data path on fit()'s device: a loader batch made whole there (``device_quartet``).

With the torch backend (``AugConfig(backend="torch")``) the loader hands over uint8 samples at the
training size and each sample's augmentation parameters, and the batch is augmented here
(augment/batch.py). With the albumentations backend it arrives augmented and is only moved.

A lazy dataset (``DataConfig(lazy=True)``) stores backgrounds, cut-outs and placements. With the
torch backend (``AugConfig(backend="torch")``) fit() keeps every background and cut-out on its
device (data/resident.py: 100 + 100 at 224 px is about 35 MB), so the loader reads next to nothing:
per sample its row, its augmentation's parameters drawn from its seed, and, for photos labelled by a
depth teacher, the depth file (the one part that cannot be derived). The device composites the batch
at the dataset's size, resizes it to the stage's and augments it (augment/batch.py).
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ..augment.batch import augment_batch, resize_batch
from ..augment.params import draw_params, pack
from ..augment.quartet import sample_seed
from ..config import AugConfig
from ..data.dataset import QuartetDataset
from ..data.resident import ResidentParts, needs_depth
from ..storage import decode_depth

__all__ = ["PlacementSamples", "ResidentParts", "device_quartet", "resident_batch"]

QUARTET = ("bg", "fg_bg", "mask", "depth")


class PlacementSamples(Dataset):
    """The loader's half of a lazy dataset composited on the device: sample ``index`` is its
    ``row`` (int64), ``aug`` (``pack``ed ``draw_params`` at ``size`` px, seeded per (run seed, epoch
    tag, index) as ``SeededSamples``), ``has_depth``, ``id``, and when ``needs_depth`` its ``depth``
    float32 ``(1, S, S)`` read from disk. Indices are ``EpochSampler``'s tagged ones."""

    def __init__(self, base: QuartetDataset, size: int, cfg: AugConfig, seed: int):
        self.base, self.size, self.cfg, self.seed = base, size, cfg, seed
        self.needs_depth = needs_depth(base)  # the rule ResidentParts composites by

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, tagged: int) -> dict:
        tag, index = divmod(int(tagged), len(self.base))
        row = self.base.rows[index]
        params = draw_params(self.cfg, self.size, sample_seed(self.seed, tag, index))
        out = {
            "row": torch.tensor(index, dtype=torch.int64),
            "aug": pack(params),
            "has_depth": torch.tensor(bool(self.base.has_depth)),
            "id": row["id"],
        }
        if self.needs_depth:
            store = self.base.store
            depth = decode_depth(store.read(row["depth"]), store.name(row["depth"]))
            out["depth"] = torch.from_numpy(depth)[None]
        return out


def resident_batch(parts: ResidentParts, batch: dict, size: int) -> dict:
    """A ``PlacementSamples`` batch made whole on ``parts``' device: composited, resized to ``size``
    px and augmented; the quartet's keys (uint8 images and mask, float32 depth)."""
    depth = batch.get("depth")
    if depth is not None:
        depth = depth.to(parts.device, non_blocking=True)
    quartet = resize_batch(parts.composite(batch["row"], depth), size)
    return augment_batch({**quartet, "aug": batch["aug"]})


def device_quartet(
    batch: dict, size: int, device: torch.device, parts: ResidentParts | None = None
) -> dict:
    """The quartet of a loader batch on ``device``, whole: a lazy dataset's rows composited on
    ``parts`` and augmented, a torch-backend batch augmented, any other batch as loaded. uint8
    ``bg``, ``fg_bg`` ``(B, 3, size, size)`` and ``mask`` ``(B, 1, ...)``, float32 ``depth``."""
    if "row" in batch:
        return resident_batch(parts, batch, size)
    quartet = {k: batch[k].to(device, non_blocking=True) for k in QUARTET}
    if "aug" in batch:  # the loader left the augmentation to the device
        quartet = augment_batch({**quartet, "aug": batch["aug"]})
    return quartet
