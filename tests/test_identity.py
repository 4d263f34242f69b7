"""One identity per model: a checkpoint stores the registry name and the constructor's arguments.

Every registered model is rebuilt from its identity with the same architecture and identity; a
model built directly has the identity build_model gives it; resume refuses a changed argument by
name; version-2 checkpoints round-trip, and a version-1 one (tests/fixtures/README.md) still loads,
rebuilds, predicts and resumes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from eva_depthmask.config import DataConfig, ModelConfig, TrainConfig, from_dict, to_dict
from eva_depthmask.evaluation.predictor import Predictor
from eva_depthmask.nets.baselines import BASELINES, DilatedPixelShuffleNet, Session15Net
from eva_depthmask.nets.depthmasknet import VARIANTS, DepthMaskNet
from eva_depthmask.nets.registry import MODELS, build_model, from_identity, identity
from eva_depthmask.training import checkpoint as ckpt
from eva_depthmask.training.fit import fit
from eva_depthmask.training.loaders import TrainData
from eva_depthmask.training.resume import check_resumable

FIXTURE = Path(__file__).parent / "fixtures" / "ckpt_v1_depthmasknet.pt"
FIXTURE_CFG = ModelConfig(widths=(4, 8, 8, 8), decoder_widths=(4, 4, 4), refine_width=4)
# the fixture's data: 8 train samples
DATA = TrainData(DataConfig(size=32, n_bg=4, n_fg=2, placements=1))
SMALL = {"widths": (4, 8, 8, 8), "decoder_widths": (4, 4, 4), "refine_width": 4}

# Small constructor arguments for every registered name, other than the defaults where possible,
# so that a rebuild that dropped them would differ. A new name must be added here.
TINY = {
    "depthmasknet": SMALL,
    "depthmasknet_tiny": {"refine_width": 4},
    "depthmasknet_base": SMALL,
    "depthmasknet_resnet18": {"decoder_widths": (4, 4, 4, 4), "refine_width": 4},
    "session15": {"dropout": 0.1},
    "dilated_pixelshuffle": {"widths": (4, 8, 16)},
    "s15_unet": {"dropout": 0.2},
    "maskdepthgenerator": {"widths": (8, 8, 8, 8)},
}


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_every_registered_name_has_small_arguments_here():
    assert set(TINY) == set(MODELS)


@pytest.mark.parametrize("name", sorted(TINY))
def test_a_model_rebuilt_from_its_identity_is_the_same(name):
    model = build_model(name, **TINY[name])
    ident = identity(model)
    assert json.loads(json.dumps(ident)) == ident  # plain data
    assert ident["name"] in MODELS
    again = from_identity(ident)
    assert type(again) is type(model)
    assert shapes(again) == shapes(model)
    assert identity(again) == ident


def test_identity_is_the_registry_name_and_the_arguments():
    assert identity(build_model("session15")) == {"name": "session15", "kwargs": {"dropout": 0.0}}
    assert identity(build_model("dilated_pixelshuffle", widths=(4, 8, 16))) == {
        "name": "dilated_pixelshuffle",
        "kwargs": {"widths": [4, 8, 16]},
    }
    tiny = identity(build_model("depthmasknet_tiny"))  # a variant is a DepthMaskNet config
    assert tiny == {
        "name": "depthmasknet",
        "kwargs": to_dict(from_dict(ModelConfig, VARIANTS["tiny"])),
    }


def test_a_model_built_directly_has_the_identity_build_model_gives():
    cfg = ModelConfig(**SMALL)
    built = identity(build_model("depthmasknet", **SMALL))
    assert identity(DepthMaskNet(cfg)) == built == identity(build_model("depthmasknet", cfg=cfg))
    tiny = from_dict(ModelConfig, VARIANTS["tiny"])
    assert identity(DepthMaskNet(tiny)) == identity(build_model("depthmasknet_tiny"))
    assert identity(DepthMaskNet()) == identity(build_model("depthmasknet"))
    for name, cls in BASELINES.items():
        assert identity(cls(**TINY[name])) == identity(build_model(name, **TINY[name])), name
    assert identity(Session15Net()) == identity(build_model("session15"))
    positional = DilatedPixelShuffleNet((4, 8, 16))
    assert identity(positional) == identity(build_model("dilated_pixelshuffle", widths=[4, 8, 16]))


def test_a_subclass_is_named_by_its_class_and_not_rebuilt():
    class Wider(DilatedPixelShuffleNet):
        def __init__(self):
            super().__init__((4, 8, 32))

    class Own(DepthMaskNet):
        pass

    assert identity(Wider()) == {"name": "Wider", "kwargs": None}
    assert identity(Own(ModelConfig(**SMALL))) == {
        "name": "Own",
        "kwargs": to_dict(ModelConfig(**SMALL)),
    }
    with pytest.raises(ValueError, match="unknown model 'Wider'"):
        from_identity(identity(Wider()))


def _state(model, cfg: TrainConfig) -> dict:
    """The parts of a checkpoint check_resumable reads."""
    return {"model_config": identity(model), "train_config": to_dict(cfg)}


def test_resume_refuses_a_changed_baseline_argument_by_name():
    cfg = TrainConfig()
    state = _state(Session15Net(dropout=0.1), cfg)
    check_resumable(state, Session15Net(dropout=0.1), cfg, "ckpt_3.pt")  # the same: accepted
    with pytest.raises(
        ckpt.CheckpointError, match=r"ckpt_3\.pt: .*\(model\.dropout: 0\.1 -> 0\.2\)"
    ):
        check_resumable(state, Session15Net(dropout=0.2), cfg, "ckpt_3.pt")
    with pytest.raises(ckpt.CheckpointError, match=r"\(model: session15 -> s15_unet\)"):
        check_resumable(state, build_model("s15_unet"), cfg, "ckpt_3.pt")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A 2-step fit() of a small dilated_pixelshuffle (non-default widths): its checkpoint folder."""
    folder = tmp_path_factory.mktemp("run")
    cfg = _train_config(folder)
    torch.manual_seed(0)
    fit(build_model("dilated_pixelshuffle", widths=(4, 8, 16)), DATA, cfg)
    return folder


def _train_config(folder: Path) -> TrainConfig:
    return TrainConfig(
        stages=((32, 1, 4),), ckpt_dir=str(folder), num_workers=0, threads=1, tensorboard=False
    )


def test_a_version_2_checkpoint_round_trips(run):
    state = ckpt.load(run / "best.pt")
    assert state["version"] == ckpt.VERSION == 2
    assert state["model_config"] == {
        "name": "dilated_pixelshuffle",
        "kwargs": {"widths": [4, 8, 16]},
    }
    model = Predictor.from_checkpoint(run / "best.pt", device="cpu").model
    assert identity(model) == state["model_config"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["model"][k]), k
    # resumed with other widths: refused before any weights are loaded, naming the argument
    with pytest.raises(ckpt.CheckpointError, match=r"model\.widths: \[4, 8, 16\] -> \[4, 8, 32\]"):
        fit(build_model("dilated_pixelshuffle", widths=(4, 8, 32)), DATA, _train_config(run))


def test_the_version_1_fixture_loads_rebuilds_and_predicts():
    stored = torch.load(FIXTURE, weights_only=True)
    assert stored["version"] == 1 and stored["model_config"]["name"] == "DepthMaskNet"
    state = ckpt.load(FIXTURE)
    assert state["version"] == 2
    assert state["model_config"] == {"name": "depthmasknet", "kwargs": to_dict(FIXTURE_CFG)}
    predictor = Predictor.from_checkpoint(FIXTURE, device="cpu")
    model = predictor.model
    assert type(model) is DepthMaskNet and model.cfg == FIXTURE_CFG
    for k, v in model.state_dict().items():
        assert torch.equal(v, stored["model"][k]), k
    pair = np.random.default_rng(0).integers(0, 256, (2, 40, 48, 3), dtype=np.uint8)
    out = predictor(*pair)
    assert out["mask"].shape == out["depth"].shape == (40, 48)
    assert np.isfinite(out["depth"]).all()


def test_a_version_1_baseline_is_rebuilt_with_its_defaults_and_resumed_by_name():
    cfg = TrainConfig()
    v1 = {"model_config": {"name": "Session15Net", "config": None}, "train_config": to_dict(cfg)}
    state = ckpt.upgrade_v1({**v1, "version": 1})
    assert state["model_config"] == {"name": "session15", "kwargs": None}
    assert identity(from_identity(state["model_config"])) == identity(Session15Net())
    check_resumable(state, Session15Net(dropout=0.3), cfg, "old.pt")  # its arguments: unknown


def test_fit_resumes_from_the_version_1_fixture(tmp_path):
    stored = torch.load(FIXTURE, weights_only=True)
    shutil.copy(FIXTURE, tmp_path / "ckpt_00000002.pt")
    cfg = from_dict(TrainConfig, {**stored["train_config"], "ckpt_dir": str(tmp_path)})
    torch.manual_seed(1)  # other initial weights: the checkpoint's must replace them
    model = DepthMaskNet(FIXTURE_CFG)
    out = fit(model, DATA, cfg)
    assert Path(out["resumed_from"]).name == "ckpt_00000002.pt"
    assert out["steps"] == 0  # its one epoch was done
    for k, v in model.state_dict().items():
        assert torch.equal(v.cpu(), stored["model"][k]), k
    refused = from_dict(TrainConfig, {**to_dict(cfg), "lr": 0.01})
    with pytest.raises(ckpt.CheckpointError, match=r"train\.lr: 0\.003 -> 0\.01"):
        fit(DepthMaskNet(FIXTURE_CFG), DATA, refused)


def test_version_1_configs_from_before_three_fields_rebuild_the_network_they_trained():
    """A version-1 DepthMaskNet written before object_depth, split_stem and match_exposure existed
    was trained without them: the upgrade turns them off, where today's defaults turn them on; a
    config that holds them keeps its own; a class the registry does not know keeps its name."""
    old = dict(to_dict(FIXTURE_CFG))
    for field in ("object_depth", "split_stem", "match_exposure"):
        old.pop(field)
    state = ckpt.upgrade_v1({"version": 1, "model_config": {"name": "DepthMaskNet", "config": old}})
    kwargs = state["model_config"]["kwargs"]
    assert (kwargs["object_depth"], kwargs["split_stem"], kwargs["match_exposure"]) == (
        False,
        0.0,
        False,
    )
    assert state["model_config"]["name"] == "depthmasknet" and state["version"] == ckpt.VERSION
    kept = ckpt.upgrade_v1(
        {"version": 1, "model_config": {"name": "DepthMaskNet", "config": SMALL}}
    )
    off = {"object_depth": False, "split_stem": 0.0, "match_exposure": False}
    assert kept["model_config"]["kwargs"] == {**off, **SMALL}
    full = to_dict(FIXTURE_CFG)
    again = ckpt.upgrade_v1(
        {"version": 1, "model_config": {"name": "DepthMaskNet", "config": full}}
    )
    assert again["model_config"]["kwargs"] == full  # its own values, not the v1 ones
    mine = ckpt.upgrade_v1({"version": 1, "model_config": {"name": "MyNet", "config": {"a": 1}}})
    assert mine["model_config"] == {"name": "MyNet", "kwargs": {"a": 1}}


def test_a_checkpoint_without_a_version_is_read_as_version_1(tmp_path):
    path = tmp_path / "old.pt"
    old = {"format": ckpt.FORMAT, "model_config": {"name": "Session15Net", "config": None}}
    torch.save(old, path)
    assert ckpt.load(path)["model_config"] == {"name": "session15", "kwargs": None}
