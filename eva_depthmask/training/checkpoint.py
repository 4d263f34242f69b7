"""Chunked checkpoints that survive a runtime taken away at any moment.

A checkpoint is one file ``ckpt_<global step>.pt`` holding everything a run needs to continue as if it
had never stopped: weights, optimizer, scheduler, grad scaler, where it was (stage, epoch, step within
the epoch), the epoch's sample order, every RNG state, the configs, the best metric, and a format
version. Files are written atomically (temporary name, fsync, rename), the newest ``keep_last`` are kept
plus ``best.pt``, and a file that cannot be read is skipped with a warning in favour of the one before.

Everything stored is a tensor or plain Python data, so checkpoints load with ``weights_only=True``: a
checkpoint from elsewhere cannot run code when opened.

Format versions. Version 2 stores the model's identity as ``"model_config": {"name": registry name,
"kwargs": constructor arguments}`` (nets/registry.py ``identity``), so any registered model, the
baselines too, is rebuilt by ``build_model(name, **kwargs)`` and its arguments are checked on resume.
Version 1 stored ``{"name": class name, "config": DepthMaskNet's config or None}``. ``load`` upgrades
a version-1 checkpoint in memory (``upgrade_v1``), and it is then used like a version-2 one: it
rebuilds, predicts, and ``fit()`` resumes from it (everything else a run stores is unchanged). A
DepthMaskNet's config is complete in version 1, fields added since (object_depth, split_stem,
match_exposure) set as they were before they existed. A baseline's arguments were not recorded:
it is rebuilt with its defaults and resumed by its name alone, as version 1 did.
"""

from __future__ import annotations

import io
import random
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from ..storage import atomic_write

FORMAT = "eva_depthmask.checkpoint"
VERSION = 2
# version 1's model_config named the class; version 2 the registry name (nets/registry.py)
_V1_NAMES = {
    "DepthMaskNet": "depthmasknet",
    "Session15Net": "session15",
    "DilatedPixelShuffleNet": "dilated_pixelshuffle",
    "S15UNet": "s15_unet",
    "MaskDepthGenerator": "maskdepthgenerator",
}
# ModelConfig fields added during version 1, as a DepthMaskNet was built before they existed
_V1_MISSING_FIELDS = {"object_depth": False, "split_stem": 0.0, "match_exposure": False}
_NAME = re.compile(r"^ckpt_(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or used; the message names the file and why."""


def rng_state() -> dict:
    """Python, numpy (global), torch and CUDA RNG states as tensors and plain data."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002 - the global state is what users seed
    state = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        {
            "bit_generator": "MT19937",
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: str | Path, state: dict) -> Path:
    """Write ``state`` (plus format and version) atomically; a failed write leaves older files intact."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buf)
    try:
        atomic_write(path, buf.getvalue())
    except OSError as e:
        older = [p.name for p in list_checkpoints(path.parent) if p != path]
        kept = (
            f"the previous checkpoint {older[-1]} is intact"
            if older
            else "no earlier checkpoint exists"
        )
        raise CheckpointError(
            f"could not save checkpoint {path} ({e.strerror or e}); {kept}"
        ) from e
    return path


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by ``save``; anything else is a ``CheckpointError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, garbage bytes, foreign pickles: all "unreadable"
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an eva_depthmask checkpoint (no '{FORMAT}' marker)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {state['version']} is newer than this package's ({VERSION}); upgrade eva_depthmask"
        )
    return upgrade_v1(state) if state.get("version", 0) < 2 else state


def upgrade_v1(state: dict) -> dict:
    """A version-1 state in version 2's layout (see the module docstring): the model named by its
    registry name, its arguments as ``kwargs`` (None for a baseline: not recorded)."""
    old = state.get("model_config")
    if isinstance(old, dict) and "name" in old:
        name = _V1_NAMES.get(old["name"], old["name"])  # an unregistered class keeps its name
        kwargs = old.get("config")
        if name == "depthmasknet" and kwargs is not None:
            kwargs = {**_V1_MISSING_FIELDS, **kwargs}
        state = {**state, "model_config": {"name": name, "kwargs": kwargs}}
    return {**state, "version": VERSION}  # saved again, it is a version-2 checkpoint


def list_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    """Numbered checkpoints of a folder, oldest first."""
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest(
    ckpt_dir: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads; unreadable newer ones are skipped with a warning."""
    for path in reversed(list_checkpoints(ckpt_dir)):
        try:
            return path, load(path, map_location)
        except CheckpointError as e:
            warnings.warn(f"skipping {e}; trying the one before", stacklevel=2)
    return None


def checkpoint_path(ckpt_dir: str | Path, global_step: int) -> Path:
    return Path(ckpt_dir) / f"ckpt_{global_step:08d}.pt"


def prune(ckpt_dir: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` numbered checkpoints (``best.pt`` is never touched)."""
    for path in list_checkpoints(ckpt_dir)[: -max(keep_last, 1)]:
        path.unlink(missing_ok=True)
