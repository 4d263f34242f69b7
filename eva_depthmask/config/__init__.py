"""Settings as dataclasses with defaults in code: the base layer, importing nothing of the package.

Notebooks override fields with ``dataclasses.replace``; ``to_dict(cfg)`` goes into every dataset's
stats.json and every checkpoint, so a run can be rebuilt from what it wrote. One module per family:
data (DataConfig, SceneConfig), augment (AugConfig, robustness levels), model (ModelConfig), train
(LossConfig, TrainConfig); base holds the dict helpers.
"""

from .augment import ROBUSTNESS_PRESETS, AugConfig, robustness_preset
from .base import diff, flatten, from_dict, to_dict
from .data import DataConfig, SceneConfig
from .model import ModelConfig
from .train import LossConfig, TrainConfig

__all__ = [
    "ROBUSTNESS_PRESETS",
    "AugConfig",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "SceneConfig",
    "TrainConfig",
    "diff",
    "flatten",
    "from_dict",
    "robustness_preset",
    "to_dict",
]
