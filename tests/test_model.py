"""DepthMaskNet: shapes at odd sizes, gradients, input checks, registry, ResNet-18, summary,
object-depth pooling. The fused input is tested in test_fusion.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from eva_depthmask.config import ModelConfig, from_dict, to_dict
from eva_depthmask.nets.depthmasknet import VARIANTS, DepthMaskNet
from eva_depthmask.nets.encoders import (
    RESNET18_URL,
    ResNet18Encoder,
    SplitStem,
    load_resnet18_weights,
)
from eva_depthmask.nets.fusion import FUSION_CHANNELS
from eva_depthmask.nets.layers import PairNet, pool_object_depth
from eva_depthmask.nets.registry import MODELS, build_model
from eva_depthmask.nets.summary import format_table, model_summary, summary_table


def pair(b: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, h, w, generator=g), torch.randn(b, 3, h, w, generator=g)


@pytest.mark.parametrize("size", [(64, 64), (65, 65), (97, 131), (224, 224), (16, 24)])
def test_output_shapes_and_ranges(size):
    torch.manual_seed(0)
    model = DepthMaskNet().eval()
    bg, fg_bg = pair(2, *size)
    with torch.no_grad():
        out = model(bg, fg_bg)
    assert set(out) == {"mask", "depth"}
    assert out["mask"].shape == out["depth"].shape == (2, 1, *size)
    assert torch.isfinite(out["mask"]).all()
    assert out["depth"].min() >= 0 and out["depth"].max() <= 1


@pytest.mark.parametrize("fusion", sorted(FUSION_CHANNELS))
def test_gradients_reach_both_inputs_and_every_parameter(fusion):
    torch.manual_seed(0)
    model = DepthMaskNet(replace(ModelConfig(), fusion=fusion)).train()
    bg, fg_bg = pair(2, 33, 40)
    bg.requires_grad_(True)
    fg_bg.requires_grad_(True)
    out = model(bg, fg_bg)
    (out["mask"].square().mean() + out["depth"].mean()).backward()
    assert bg.grad.abs().sum() > 0 and fg_bg.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


def test_the_split_stem_keeps_photos_and_differences_apart():
    torch.manual_seed(0)
    stem = DepthMaskNet().eval().encoder.stem[0]  # default: 10 of 16 channels for the photos
    assert isinstance(stem, SplitStem) and stem.c_image_in == 6
    x = torch.randn(2, FUSION_CHANNELS["concat_logdiff_shift"], 16, 16)
    y = x.clone()
    y[:, 6:] += 1.0  # other differences, the same photos
    with torch.no_grad():
        a, b = stem(x), stem(y)
    assert a.shape == (2, 16, 8, 8)
    assert torch.equal(a[:, :10], b[:, :10])  # the photo channels never see the differences
    assert not torch.allclose(a[:, 10:], b[:, 10:])
    # no split: one conv over everything; "concat" has no differences to split off
    for cfg in (replace(ModelConfig(), split_stem=0.0), replace(ModelConfig(), fusion="concat")):
        assert not isinstance(DepthMaskNet(cfg).encoder.stem[0], SplitStem)
    # a narrow stem still gives each side at least one channel
    narrow = DepthMaskNet(replace(ModelConfig(), widths=(2, 8, 8, 8), split_stem=0.9))
    stem = narrow.encoder.stem[0]
    assert stem.image[0].out_channels == stem.diff[0].out_channels == 1
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"split_stem: expected a fraction in \[0, 1\)"):
            DepthMaskNet(replace(ModelConfig(), split_stem=bad))


def test_predictions_depend_on_the_background():
    # The model must use bg: the same fg_bg with another bg gives another mask. Another scene, not
    # the same one brighter: match_exposure takes a change of exposure out (test_fusion.py).
    torch.manual_seed(0)
    model = DepthMaskNet().eval()
    bg, fg_bg = pair(1, 32, 32)
    other = pair(1, 32, 32, seed=1)[0]
    with torch.no_grad():
        a = model(bg, fg_bg)["mask"]
        b = model(other, fg_bg)["mask"]
    assert not torch.allclose(a, b)


def test_bad_inputs_raise_clear_errors():
    model = DepthMaskNet().eval()
    bg, fg_bg = pair(1, 32, 32)
    with pytest.raises(ValueError, match="same shape"):
        model(bg, fg_bg[..., :31])
    with pytest.raises(ValueError, match=r"bg: expected shape \(B, 3, H, W\)"):
        model(bg[:, :2], fg_bg[:, :2])
    with pytest.raises(ValueError, match=r"fg_bg: expected shape \(B, 3, H, W\)"):
        model(bg, torch.cat([fg_bg, fg_bg[:, :1]], dim=1))
    with pytest.raises(TypeError, match="fg_bg: expected a float tensor"):
        model(bg, (fg_bg * 255).to(torch.uint8))
    with pytest.raises(TypeError, match="bg: expected a torch.Tensor"):
        model(bg.numpy(), fg_bg)


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="decoder_widths"):
        DepthMaskNet(replace(ModelConfig(), decoder_widths=(8, 8)))
    with pytest.raises(ValueError, match="fusion"):
        DepthMaskNet(replace(ModelConfig(), fusion="sum"))
    with pytest.raises(ValueError, match="encoder"):
        DepthMaskNet(replace(ModelConfig(), encoder="vgg"))
    with pytest.raises(ValueError, match="pretrained"):
        DepthMaskNet(replace(ModelConfig(), pretrained="imagenet"))
    with pytest.raises(ValueError, match="head_kernel"):
        DepthMaskNet(replace(ModelConfig(), head_kernel=2))
    for radius in (-1, 1.5, True):
        with pytest.raises(ValueError, match="shift_radius"):
            DepthMaskNet(replace(ModelConfig(), shift_radius=radius))


def test_config_round_trips_through_dict():
    cfg = replace(ModelConfig(), widths=(8, 16, 32), depths=(1, 1, 1), decoder_widths=())
    assert from_dict(ModelConfig, to_dict(cfg)) == cfg
    model = DepthMaskNet(cfg)
    assert model.stride == 8
    bg, fg_bg = pair(1, 20, 20)
    assert model(bg, fg_bg)["mask"].shape == (1, 1, 20, 20)


def test_registry_builds_every_model_with_the_same_interface():
    assert {"depthmasknet", "session15", "dilated_pixelshuffle", "s15_unet"} <= set(MODELS)
    assert {"maskdepthgenerator"} | {f"depthmasknet_{v}" for v in VARIANTS if v != "small"} <= set(
        MODELS
    )
    bg, fg_bg = pair(1, 40, 40)
    for name in ("depthmasknet", "depthmasknet_tiny", "depthmasknet_resnet18"):
        with torch.no_grad():
            out = build_model(name).eval()(bg, fg_bg)
        assert out["mask"].shape == out["depth"].shape == (1, 1, 40, 40), name
    assert build_model("depthmasknet", refine_width=0).refine is None
    assert build_model("depthmasknet", head_kernel=3).head.kernel_size == (3, 3)
    with pytest.raises(ValueError, match="session15"):
        build_model("no_such_model")


def test_default_is_cheap_next_to_session15():
    # Issue target: at most a tenth of the Session-15 network's multiply-adds per 64 px pair.
    # Both are fully convolutional with no padding at multiples of 16, so 32 px scales exactly.
    ours = model_summary(DepthMaskNet(), 32)["macs_per_pair"]
    theirs = model_summary(build_model("session15"), 32)["macs_per_pair"]
    assert ours <= theirs / 10


def test_resnet18_encoder_has_torchvision_names_and_size():
    enc = ResNet18Encoder(3)
    keys = enc.state_dict().keys()
    # torchvision's resnet18 state_dict holds 122 tensors, 2 of them the classifier (fc).
    assert len(keys) == 120
    for name in ("conv1.weight", "bn1.running_var", "layer1.1.bn2.num_batches_tracked"):
        assert name in keys
    assert "layer2.0.downsample.0.weight" in keys and "layer1.0.downsample.0.weight" not in keys
    # resnet18 has 11,689,512 parameters, of which fc (512 x 1000 + 1000) is 513,000.
    assert sum(p.numel() for p in enc.parameters()) == 11_689_512 - 513_000


def torchvision_like_state(tmp_path, seed=0):
    torch.manual_seed(seed)
    state = ResNet18Encoder(3).state_dict()
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    return state, path


@pytest.mark.parametrize("fusion", sorted(FUSION_CHANNELS))
def test_pretrained_resnet18_loads_from_a_local_file(tmp_path, fusion):
    state, path = torchvision_like_state(tmp_path)
    cfg = replace(ModelConfig(), **VARIANTS["resnet18"], fusion=fusion, pretrained=str(path))
    model = DepthMaskNet(cfg)
    w = state["conv1.weight"]
    got = model.encoder.conv1.weight.detach()
    expected = {
        "concat": torch.cat([0.5 * w, 0.5 * w], 1),
        "concat_diff": torch.cat([0.5 * w, 0.5 * w, torch.zeros_like(w)], 1),
        "diff": torch.cat([w, torch.zeros_like(w)], 1),
        "concat_absdiff": torch.cat(
            [0.5 * w, 0.5 * w, torch.zeros_like(w), torch.zeros_like(w)], 1
        ),
        "concat_logdiff": torch.cat(
            [0.5 * w, 0.5 * w, torch.zeros_like(w), torch.zeros_like(w)], 1
        ),
        "concat_logdiff_shift": torch.cat(
            [0.5 * w, 0.5 * w, torch.zeros_like(w), torch.zeros_like(w), w[:, :1] * 0], 1
        ),
    }[fusion]
    assert torch.equal(got, expected)
    assert torch.equal(
        model.encoder.layer3[1].conv2.weight.detach(), state["layer3.1.conv2.weight"]
    )
    assert torch.equal(model.encoder.bn1.running_mean, state["bn1.running_mean"])


def test_a_state_dict_that_does_not_fit_names_the_keys(tmp_path):
    state, _ = torchvision_like_state(tmp_path)
    del state["layer4.1.bn2.weight"]
    state["layer5.0.conv1.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys \['layer4.1.bn2.weight'\].*layer5.0.conv1"):
        load_resnet18_weights(ResNet18Encoder(6), state)
    state, _ = torchvision_like_state(tmp_path)
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(ValueError, match="layer1.0.conv1.weight"):
        load_resnet18_weights(ResNet18Encoder(6), state)


def test_pretrained_unreachable_or_missing_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no cached download
    with pytest.raises(RuntimeError, match="local path"):
        load_resnet18_weights(ResNet18Encoder(6), "http://127.0.0.1:9/resnet18-none.pth")
    with pytest.raises(FileNotFoundError, match="no_such.pth"):
        load_resnet18_weights(ResNet18Encoder(6), tmp_path / "no_such.pth")
    assert RESNET18_URL.startswith("https://download.pytorch.org/models/resnet18-")


class OneConv(PairNet):
    """A 3x3 conv on [bg, fg_bg]: 6 * 9 multiply-adds per output pixel and output channel."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(6, 2, 3, padding=1, bias=False)

    def predict(self, bg, fg_bg):
        out = self.conv(torch.cat([bg, fg_bg], dim=1))
        return out[:, :1], out[:, 1:]


def test_summary_counts_both_inputs():
    s = model_summary(OneConv(), 32, batch_size=2)
    assert s["params"] == 6 * 9 * 2
    assert s["macs_per_pair"] == 32 * 32 * 6 * 9 * 2
    assert s["macs"] == 2 * s["macs_per_pair"]
    assert s["input_mb"] == pytest.approx(2 * 2 * 3 * 32 * 32 * 4 / 1e6, rel=0.01)  # both inputs
    table = format_table(summary_table(["depthmasknet_tiny", "s15_unet"], sizes=(16, 32)))
    assert "GMACs @16" in table and "GMACs @32" in table and "| s15_unet | 2.162 |" in table


def test_channels_last_training_with_a_narrow_stem():
    # A strided 1x1 shortcut on < 16 channels crashed channels-last backward (oneDNN issue 6035);
    # the encoder's average-pool shortcuts must keep this working. 224 px puts 112 px at stride 2.
    torch.manual_seed(0)
    cfg = replace(ModelConfig(), widths=(8, 16, 32), depths=(0, 1, 1), decoder_widths=(8, 16))
    model = DepthMaskNet(cfg).train().to(memory_format=torch.channels_last)
    bg, fg_bg = (t.contiguous(memory_format=torch.channels_last) for t in pair(1, 224, 224))
    out = model(bg, fg_bg)
    (out["mask"].mean() + out["depth"].mean()).backward()
    assert model.encoder.stages[0][0].downsample[1].weight.grad.abs().sum() > 0


def test_object_depth_is_one_value_over_the_object_and_untouched_elsewhere():
    depth = torch.randn(2, 1, 8, 8)
    mask = torch.full((2, 1, 8, 8), -30.0)
    mask[:, :, 2:6, 3:5] = 30.0  # a confident 4 x 2 object
    score = torch.zeros(2, 1, 8, 8)
    out = pool_object_depth(depth, score, mask)
    inside = mask > 0
    for i in range(2):
        # uniform scores: the object's own pixels, averaged; the room keeps its per-pixel depth
        assert torch.allclose(out[i][inside[i]], depth[i][inside[i]].mean().expand(8), atol=1e-5)
        assert torch.allclose(out[i][~inside[i]], depth[i][~inside[i]], atol=1e-5)
    score[:, :, 5, 3] = 50.0  # a score peak on one object pixel picks that pixel's depth
    assert torch.allclose(pool_object_depth(depth, score, mask)[:, :, 2, 4], depth[:, :, 5, 3])
    score[:, :, 0, 0] = 50.0  # ...but a peak outside the object cannot pull the room in
    pooled = pool_object_depth(depth, score, mask)[:, :, 2, 4]
    assert torch.allclose(pooled, depth[:, :, 5, 3], atol=1e-4)


def test_object_depth_does_not_train_the_mask_and_old_heads_still_build():
    depth, score = torch.randn(1, 1, 4, 4), torch.randn(1, 1, 4, 4, requires_grad=True)
    mask = torch.randn(1, 1, 4, 4, requires_grad=True)
    pool_object_depth(depth, score, mask).sum().backward()
    assert mask.grad is None and score.grad is not None
    assert build_model("depthmasknet").head.out_channels == 3
    off = build_model("depthmasknet", object_depth=False)
    assert off.head.out_channels == 2
    bg, fg_bg = pair(1, 32, 32)
    assert off(bg, fg_bg)["depth"].shape == (1, 1, 32, 32)
