"""The seed projects' networks: parameter counts from their write-ups, the shared interface."""

from __future__ import annotations

import functools

import pytest
import torch

from eva_depthmask.nets.baselines import BASELINES, MaskDepthGenerator
from eva_depthmask.nets.encoders import ResNet18Encoder
from eva_depthmask.nets.registry import build_model
from eva_depthmask.nets.summary import model_summary


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@functools.cache
def cached(name: str) -> torch.nn.Module:
    """One instance per baseline for the whole module: building the big ones takes a while."""
    torch.manual_seed(0)
    return build_model(name)


@pytest.mark.parametrize(
    "name, stated",
    [("session15", 3_165_170), ("dilated_pixelshuffle", 5_230_720), ("s15_unet", 2_161_666)],
)
def test_parameter_counts_match_the_write_ups(name, stated):
    assert n_params(cached(name)) == stated


def test_maskdepthgenerator_is_about_16_million():
    assert abs(n_params(cached("maskdepthgenerator")) - 16e6) <= 0.02 * 16e6


@pytest.mark.parametrize("name", sorted(BASELINES))
@pytest.mark.parametrize("size", [(64, 64), (37, 50)])
def test_same_interface_at_any_size(name, size):
    torch.manual_seed(0)
    model = cached(name).eval()
    bg, fg_bg = torch.randn(1, 3, *size), torch.randn(1, 3, *size)
    with torch.no_grad():
        out = model(bg, fg_bg)
    assert set(out) == {"mask", "depth"}
    assert out["mask"].shape == out["depth"].shape == (1, 1, *size)
    assert out["depth"].min() >= 0 and out["depth"].max() <= 1


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_gradients_reach_both_inputs(name):
    torch.manual_seed(0)
    model = cached(name).train()
    bg = torch.randn(2, 3, 32, 32, requires_grad=True)
    fg_bg = torch.randn(2, 3, 32, 32, requires_grad=True)
    out = model(bg, fg_bg)
    (out["mask"].mean() + out["depth"].mean()).backward()
    assert bg.grad.abs().sum() > 0 and fg_bg.grad.abs().sum() > 0


def test_bad_input_is_refused_by_baselines_too():
    with pytest.raises(ValueError, match="same shape"):
        cached("session15")(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 20))


def test_session15_spends_about_2_gmacs_at_64px():
    # The issue quotes ~1.9 G multiply-adds per 64 px pair, mostly in the full-resolution stems.
    macs = model_summary(cached("session15"), 64)["macs_per_pair"]
    assert 1.8e9 <= macs <= 2.2e9


def test_maskdepthgenerator_loads_resnet18_weights(tmp_path):
    torch.manual_seed(0)
    state = ResNet18Encoder(3).state_dict()
    torch.save(state, tmp_path / "r18.pth")
    model = MaskDepthGenerator(pretrained=tmp_path / "r18.pth")
    w = state["conv1.weight"]
    assert torch.equal(model.encoder.conv1.weight.detach(), torch.cat([w / 2, w / 2], dim=1))
