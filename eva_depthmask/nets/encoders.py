"""Encoders: a light residual encoder trained from scratch, and ResNet-18 with torchvision's names.

An encoder maps the fused pair ``(B, C_in, H, W)`` to a list of feature maps, shallowest first,
at strides 2, 4, 8, ...; ``encoder.channels`` lists their channel counts. torchvision is never
imported: its published ResNet-18 weights are read as a plain state_dict.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import torch
from torch import Tensor, nn

from .layers import conv_bn_act, make_stage

RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"


class SplitStem(nn.Module):
    """Two stride-2 conv-BN-ReLU side by side: ``c_image`` output channels from the first
    ``c_image_in`` input channels (the photos) alone, the other ``c_out - c_image`` from the rest
    (the differences) alone. ``(B, c_in, H, W) -> (B, c_out, H/2, W/2)``.
    """

    def __init__(self, c_in: int, c_image_in: int, c_out: int, c_image: int):
        super().__init__()
        if not (0 < c_image_in < c_in and 0 < c_image < c_out):
            raise ValueError(
                f"SplitStem: expected 0 < c_image_in < c_in and 0 < c_image < c_out, got "
                f"{c_image_in}, {c_in}, {c_image}, {c_out}"
            )
        self.c_image_in = c_image_in
        self.image = conv_bn_act(c_image_in, c_image, stride=2)
        self.diff = conv_bn_act(c_in - c_image_in, c_out - c_image, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        photos, diffs = x[:, : self.c_image_in], x[:, self.c_image_in :]
        return torch.cat([self.image(photos), self.diff(diffs)], dim=1)


class ResidualEncoder(nn.Module):
    """Stride-2 stem conv, then one stage per further level: a strided BasicBlock + more blocks.

    ``widths[i]`` is the channel count at stride ``2 ** (i + 1)``; ``depths[i]`` the number of
    BasicBlocks there (level 0 may have 0: the stem alone). Strided shortcuts average-pool
    (``avg_down``, see BasicBlock). ``split=(c_image_in, c_image)`` makes the stem a SplitStem.
    Output: ``len(widths)`` maps.
    """

    def __init__(
        self,
        c_in: int,
        widths: tuple[int, ...],
        depths: tuple[int, ...],
        split: tuple[int, int] | None = None,
    ):
        super().__init__()
        if len(widths) != len(depths) or len(widths) < 2:
            raise ValueError(
                f"widths and depths: expected equal lengths >= 2, got {widths} and {depths}"
            )
        if any(d < 1 for d in depths[1:]):
            raise ValueError(f"depths: levels after the first need >= 1 block, got {depths}")
        self.channels = list(widths)
        self.stem = nn.Sequential(
            SplitStem(c_in, split[0], widths[0], split[1])
            if split
            else conv_bn_act(c_in, widths[0], stride=2),
            *(make_stage(widths[0], widths[0], depths[0], 1) if depths[0] else []),
        )
        self.stages = nn.ModuleList(
            make_stage(widths[i - 1], widths[i], depths[i], stride=2, avg_down=True)
            for i in range(1, len(widths))
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = [self.stem(x)]  # 1/2
        for stage in self.stages:  # 1/4, 1/8, ...
            feats.append(stage(feats[-1]))
        return feats


class ResNet18Encoder(nn.Module):
    """torchvision's ResNet-18 without its classifier, for ``c_in`` input channels.

    Returns 5 maps: the stem (64 ch, 1/2), layer1 (64, 1/4), layer2 (128, 1/8), layer3 (256, 1/16),
    layer4 (512, 1/32). Parameter names equal torchvision's, so its state_dict loads by name.
    """

    channels = [64, 64, 128, 256, 512]

    def __init__(self, c_in: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = make_stage(64, 64, 2, 1)
        self.layer2 = make_stage(64, 128, 2, 2)
        self.layer3 = make_stage(128, 256, 2, 2)
        self.layer4 = make_stage(256, 512, 2, 2)

    def forward(self, x: Tensor) -> list[Tensor]:
        x0 = self.relu(self.bn1(self.conv1(x)))  # 1/2
        x1 = self.layer1(self.maxpool(x0))  # 1/4
        x2 = self.layer2(x1)  # 1/8
        x3 = self.layer3(x2)  # 1/16
        return [x0, x1, x2, x3, self.layer4(x3)]  # layer4: 1/32


def read_state_dict(source: str | Path) -> dict[str, Tensor]:
    """A state_dict from ``"imagenet"`` (torchvision's ResNet-18), a URL or a local file."""
    source = RESNET18_URL if str(source) == "imagenet" else str(source)
    if source.startswith(("http://", "https://")):
        try:
            return torch.hub.load_state_dict_from_url(source, map_location="cpu", progress=False)
        except (urllib.error.URLError, OSError) as err:
            raise RuntimeError(
                f"pretrained: could not download {source} ({err}). Offline? Download the file "
                "elsewhere and pass its local path as pretrained=... (e.g. ModelConfig.pretrained)."
            ) from err
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained: no such file {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"pretrained: {path} does not hold a state_dict (got {type(state)})")
    return state


def adapt_first_conv(weight: Tensor, fusion: str) -> Tensor:
    """Turn an RGB conv weight ``(O, 3, k, k)`` into one for the fused pair's channels.

    Both images get half the RGB weights, so a pair of equal images gives the pretrained response;
    the difference channels (``d = fg_bg - bg``, its magnitudes) start at zero and are learned.
    """
    zeros = torch.zeros_like(weight)
    e_zeros = zeros[:, :1]  # concat_logdiff_shift's one shift-tolerant channel
    stacks = {
        "concat": [0.5 * weight, 0.5 * weight],
        "diff": [weight, zeros],
        "concat_diff": [0.5 * weight, 0.5 * weight, zeros],
        "concat_absdiff": [0.5 * weight, 0.5 * weight, zeros, zeros],
        "concat_logdiff": [0.5 * weight, 0.5 * weight, zeros, zeros],
        "concat_logdiff_shift": [0.5 * weight, 0.5 * weight, zeros, zeros, e_zeros],
    }
    if fusion not in stacks:
        raise ValueError(f"fusion: expected one of {sorted(stacks)}, got {fusion!r}")
    return torch.cat(stacks[fusion], dim=1)


def load_resnet18_weights(
    encoder: ResNet18Encoder, source: str | Path | dict, fusion: str = "concat"
) -> None:
    """Load torchvision ResNet-18 weights (``source``: see ``read_state_dict``, or a dict).

    The classifier (``fc.*``) is dropped and ``conv1`` is adapted to the fused channels. A
    state_dict that does not fit raises ValueError naming the missing and unexpected keys.
    """
    state = dict(source) if isinstance(source, dict) else read_state_dict(source)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    c_in = encoder.conv1.in_channels
    w = state.get("conv1.weight")
    if w is not None and w.shape[1] == 3 and c_in != 3:
        state["conv1.weight"] = adapt_first_conv(w, fusion)
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"pretrained ResNet-18 state_dict does not fit: missing keys {missing[:10]}"
            f"{' ...' if len(missing) > 10 else ''}, unexpected keys {unexpected[:10]}"
            f"{' ...' if len(unexpected) > 10 else ''}"
        )
    wrong = [k for k in own if own[k].shape != state[k].shape]
    if wrong:
        k = wrong[0]
        raise ValueError(
            f"pretrained ResNet-18 state_dict: {len(wrong)} tensors of the wrong shape, e.g. {k}: "
            f"expected {tuple(own[k].shape)}, got {tuple(state[k].shape)}"
        )
    encoder.load_state_dict(state)
