"""Pretrained monocular depth models that label real photos: Depth Anything V2 and MiDaS, and
``make_teacher`` by name. What they share (batching, the disparity -> depth mapping) is teacher_base.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .teacher_base import TeacherError, TorchTeacher

DEPTH_ANYTHING = "depth-anything/Depth-Anything-V2-Small-hf"


class DepthAnythingTeacher(TorchTeacher):
    """Depth Anything V2 Small (Apache-2.0, ~25 M parameters) through transformers.

    ``DepthAnythingTeacher()`` downloads ``model_name`` from the Hugging Face Hub on first use (about
    100 MB, then cached). Pass ``model`` and ``processor`` to use ones built already (tests build them
    from a tiny random configuration). Needs ``pip install 'eva_depthmask[teacher]'``.
    """

    name = "depth_anything"

    def __init__(
        self,
        model_name: str = DEPTH_ANYTHING,
        *,
        model: torch.nn.Module | None = None,
        processor=None,
        device: str | None = None,
        batch_size: int = 32,
        far_near_ratio: float = 10.0,
        fp16: bool = True,
        progress: bool = True,
    ):
        super().__init__(device, batch_size, far_near_ratio, fp16, progress)
        if (model is None) != (processor is None):
            raise ValueError("model and processor: pass both (built already) or neither (download)")
        self.model_name = model_name if model is None else _name_of(model)
        if model is None:
            model, processor = load_depth_anything(model_name)
        self.model = model.to(self.device, self.dtype).eval()
        self.processor = processor
        self._cpu_warning()

    def _predict(self, images: np.ndarray) -> torch.Tensor:
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"]
        return self.model(pixel_values=pixels.to(self.device, self.dtype)).predicted_depth

    def describe(self) -> dict:
        return {**super().describe(), "model": self.model_name}


def _name_of(model: torch.nn.Module) -> str:
    name = getattr(getattr(model, "config", None), "name_or_path", "")
    return name or f"{type(model).__name__} (passed in)"


def load_depth_anything(model_name: str = DEPTH_ANYTHING):
    """``(model, processor)`` from the Hub or a local folder; clear errors offline or uninstalled."""
    try:
        import transformers
    except ImportError as e:
        raise ImportError(
            "DepthAnythingTeacher needs the transformers package: "
            "pip install 'eva_depthmask[teacher]'  (or: pip install transformers)"
        ) from e
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(model_name)
        model = transformers.AutoModelForDepthEstimation.from_pretrained(model_name)
    except OSError as e:
        first = str(e).splitlines()[0] if str(e) else ""
        if model_name.startswith(("/", ".", "~")) or Path(model_name).exists():
            raise TeacherError(
                f"could not load the depth model from the folder {model_name!r} ({first}); expected "
                "a folder saved with save_pretrained (config.json, preprocessor_config.json, weights)"
            ) from e
        raise TeacherError(
            f"could not load the depth model {model_name!r} ({type(e).__name__}: {first}). The "
            "first use downloads it from the Hugging Face Hub (about 100 MB), which needs a network "
            "connection; later runs use the cache (~/.cache/huggingface). Offline, pass a local "
            "folder holding the model."
        ) from e
    return model, processor


class MiDaSTeacher(TorchTeacher):
    """MiDaS small (MIT) through ``torch.hub``: ``intel-isl/MiDaS``, ``MiDaS_small``, its transforms.

    The first use downloads the hub code and weights (needs a network; MiDaS's hub code also needs
    ``timm``). ``repo_or_dir`` + ``source="local"`` load from a local clone instead.
    """

    name = "midas"
    TRANSFORMS = {"MiDaS_small": "small_transform", "MiDaS": "default_transform"}

    def __init__(
        self,
        model_type: str = "MiDaS_small",
        *,
        repo_or_dir: str | Path = "intel-isl/MiDaS",
        source: str = "github",
        device: str | None = None,
        batch_size: int = 32,
        far_near_ratio: float = 10.0,
        fp16: bool = True,
        progress: bool = True,
    ):
        super().__init__(device, batch_size, far_near_ratio, fp16, progress)
        self.model_type, self.repo = model_type, str(repo_or_dir)
        model = _hub_load(self.repo, model_type, source)
        transforms = _hub_load(self.repo, "transforms", source)
        self.transform = getattr(transforms, self.TRANSFORMS.get(model_type, "dpt_transform"))
        self.model = model.to(self.device, self.dtype).eval()
        self._cpu_warning()

    def _predict(self, images: np.ndarray) -> torch.Tensor:
        batch = torch.cat([self.transform(img) for img in images])  # each (1, 3, h, w)
        disp = self.model(batch.to(self.device, self.dtype))
        return disp if disp.ndim == 3 else disp[:, 0]

    def describe(self) -> dict:
        return {**super().describe(), "model": f"{self.repo}:{self.model_type}"}


def _hub_load(repo: str, entry: str, source: str):
    try:
        return torch.hub.load(repo, entry, source=source, trust_repo=True)
    except ImportError as e:
        raise TeacherError(
            f"MiDaS's hub code could not import {e.name or 'a module'!r}: pip install timm"
        ) from e
    except (OSError, RuntimeError, ValueError) as e:  # URLError/HTTPError are OSErrors
        raise TeacherError(
            f"could not load {entry!r} from torch.hub {repo!r} ({type(e).__name__}: {e}). The "
            "first use downloads the code and weights from GitHub, which needs a network "
            "connection; later runs use the cache (~/.cache/torch/hub). Offline, pass "
            "repo_or_dir=<local clone> and source='local'."
        ) from e


def make_teacher(name: str, **kwargs) -> TorchTeacher:
    """A teacher by name: ``"depth_anything"`` or ``"midas"``; ``kwargs`` go to its constructor."""
    teachers = {"depth_anything": DepthAnythingTeacher, "midas": MiDaSTeacher}
    if name not in teachers:
        raise ValueError(f"teacher: expected one of {sorted(teachers)}, got {name!r}")
    return teachers[name](**kwargs)
