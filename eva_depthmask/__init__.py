"""eva_depthmask: foreground mask and depth from a (bg, fg_bg) pair.

What a notebook uses is re-exported here (``from eva_depthmask import make_dataset, fit, ...``),
lazily: a name's subpackage is imported on first use, so ``import eva_depthmask.synth`` costs no torch
and nothing runs at import. The subpackages, from the top layer down (each imports only from below
it; pyproject.toml's import-linter contract checks that):

    apps        figures, the notebook browser, the demo, Colab helpers, the command line
    evaluation  metrics over a dataset, difference baseline, robustness sweep, Predictor and its
                refinement at the photo's resolution, scores at that resolution
    training    fit(), loaders, mixed datasets, sample cache, checkpoints, resume, run log, optimiser, precision
    losses, metrics
    nets        layers, fusion, encoders, DepthMaskNet, baselines, the registry, TTA, summaries
    data, augment   datasets (sources, writing, reading, course layouts, teachers) / the quartet transform
    synth       procedural rooms and sprites with exact depth (pure numpy)
    composite   placing and pasting a cut-out
    config, storage, images, tensors   settings, on-disk helpers, reading images, torch basics
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module (below this package) that defines it
_EXPORTS = {
    "AugConfig": "config",
    "DataConfig": "config",
    "LossConfig": "config",
    "ModelConfig": "config",
    "SceneConfig": "config",
    "TrainConfig": "config",
    "robustness_preset": "config",
    "open_image": "images",
    "to_rgb": "images",
    "ImageFolders": "data.sources",
    "SyntheticSource": "data.sources",
    "make_dataset": "data.datagen",
    "disk_usage": "data.datagen",
    "QuartetDataset": "data.dataset",
    "download": "data.download",
    "make_teacher": "data.teachers",
    "validate_dataset": "data.validation",
    "get_transforms": "augment.quartet",
    "denormalize": "augment.normalize",
    "to_numpy_sample": "augment.normalize",
    "PERTURBATIONS": "augment.realism",
    "single_perturbation": "augment.realism",
    "DepthMaskNet": "nets.depthmasknet",
    "MODELS": "nets.registry",
    "build_model": "nets.registry",
    "format_table": "nets.summary",
    "summary_table": "nets.summary",
    "DepthMaskLoss": "losses",
    "MetricAccumulator": "metrics",
    "TrainData": "training.loaders",
    "fit": "training.fit",
    "stop_at_step": "training.fit",
    "pick_device": "training.devices",
    "read_log": "training.runlog",
    "evaluate": "evaluation.evaluate",
    "predictions": "evaluation.evaluate",
    "robustness_sweep": "evaluation.robustness",
    "Predictor": "evaluation.predictor",
    "predict": "evaluation.predictor",
    "RefineConfig": "evaluation.refine",
    "score_photos": "evaluation.photos",
    "comparison_table": "evaluation.reference",
    "PredictionBrowser": "apps.browser",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Import a re-exported name's module on first use (PEP 562) and keep the name here."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
