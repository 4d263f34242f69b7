"""Teachers: the disparity -> depth mapping with known answers, and both real pipelines offline.

Depth Anything runs the real transformers classes built from a tiny random configuration; MiDaS runs
through the real torch.hub loader pointed at a local hubconf.py written here (no network).
"""

import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

from eva_depthmask.data.teacher_base import TeacherError, disparity_to_depth
from eva_depthmask.data.teachers import DepthAnythingTeacher, MiDaSTeacher, make_teacher

transformers = pytest.importorskip("transformers")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def tiny_depth_anything():
    """The real DepthAnythingForDepthEstimation + DPT processor, tiny and random (no download)."""
    backbone = transformers.Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        mlp_ratio=2,
        image_size=28,
        patch_size=14,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    cfg = transformers.DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        initializer_range=0.5,  # the default 0.02 gives a nearly flat random output
    )
    torch.manual_seed(0)
    model = transformers.AutoModelForDepthEstimation.from_config(cfg)
    processor_cls = (
        getattr(transformers, "DPTImageProcessorPil", None) or transformers.DPTImageProcessor
    )
    processor = processor_cls(
        size={"height": 42, "width": 42}, keep_aspect_ratio=True, ensure_multiple_of=14
    )
    return model, processor


@pytest.fixture(scope="module")
def depth_anything():
    model, processor = tiny_depth_anything()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the no-GPU warning, tested separately
        return DepthAnythingTeacher(model=model, processor=processor, batch_size=2, device="cpu")


def images(n=5, h=30, w=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_disparity_to_depth_known_values():
    halves = torch.zeros(1, 4, 100)
    halves[..., :50] = 2.0  # larger disparity on the left: nearer
    depth = disparity_to_depth(halves)
    assert torch.all(depth[..., :50] == 0) and torch.all(depth[..., 50:] == 1)

    ramp = torch.linspace(0, 1, 101).expand(1, 3, 101)  # percentiles 1 and 99 are 0.01 and 0.99
    mid = 50  # disparity 0.5 -> n = 0.5 -> s = 0.1 + 0.9 * 0.5 = 0.55 -> (1/0.55 - 1) / 9
    assert disparity_to_depth(ramp, far_near_ratio=10)[0, 0, mid] == pytest.approx(1 / 11, abs=1e-5)
    assert disparity_to_depth(ramp, far_near_ratio=1)[0, 0, mid] == pytest.approx(0.5, abs=1e-5)
    assert disparity_to_depth(ramp)[0, 0, 0] == 1 and disparity_to_depth(ramp)[0, 0, -1] == 0

    flat = disparity_to_depth(torch.full((2, 5, 5), 3.0), size=(8, 12))
    assert flat.shape == (2, 8, 12) and torch.all(flat == 0.5)
    with pytest.raises(ValueError, match="far_near_ratio"):
        disparity_to_depth(ramp, far_near_ratio=0.5)


def test_depth_anything_shapes_range_and_orientation(depth_anything):
    x = images()
    depth = depth_anything(x)
    assert depth.shape == (5, 30, 40) and depth.dtype == np.float32
    assert depth.min() == 0 and depth.max() == 1  # every image spans the range after clipping
    disparity = depth_anything.disparity(x)
    assert disparity.shape == (5, 30, 40)
    for d, z in zip(disparity, depth, strict=True):  # more disparity is never farther
        order = np.argsort(d.ravel(), kind="stable")
        assert np.all(np.diff(z.ravel()[order]) <= 1e-5)
        assert d.ravel()[order][-1] > d.ravel()[order][0]  # and the random model is not flat


def test_depth_anything_batching_equals_one_by_one(depth_anything):
    x = images(seed=1)
    batched = depth_anything(x)  # batches of 2, 2, 1
    single = np.concatenate([depth_anything(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(batched, single, atol=1e-4)
    assert not np.allclose(batched[0], batched[1])  # different images, different depth


def test_depth_anything_offline_is_a_clear_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(TeacherError, match="needs a network connection") as info:
        DepthAnythingTeacher("eva-depthmask-tests/no-such-model", device="cpu")
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(TeacherError, match="from the folder.*save_pretrained"):
        DepthAnythingTeacher("./no/such/folder", device="cpu")


def test_missing_transformers_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'eva_depthmask\[teacher\]'"):
        DepthAnythingTeacher(device="cpu")


def test_no_gpu_warns_with_an_estimate():
    model, processor = tiny_depth_anything()
    with pytest.warns(UserWarning, match=r"no GPU.*400,000 quartets would take about \d+ h"):
        DepthAnythingTeacher(model=model, processor=processor, device="cpu")


HUBCONF = """
    dependencies = ["torch"]
    import torch

    class Brightness(torch.nn.Module):
        # disparity = mean brightness: bright pixels are 'near'
        def forward(self, x):
            return x.mean(1)

    def MiDaS_small(pretrained=True):
        return Brightness()

    class Transforms:
        @staticmethod
        def small_transform(img):  # like MiDaS's: uint8 (H, W, 3) -> (1, 3, h, w), here half size
            return torch.from_numpy(img[::2, ::2] / 255.0).permute(2, 0, 1)[None].float()

    def transforms():
        return Transforms()
"""


def test_midas_through_a_local_torch_hub(tmp_path):
    (tmp_path / "hubconf.py").write_text(textwrap.dedent(HUBCONF))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        teacher = MiDaSTeacher(repo_or_dir=tmp_path, source="local", device="cpu", batch_size=2)
    x = np.zeros((3, 20, 30, 3), np.uint8)
    x[:, :, :15] = 200  # bright left half: larger disparity, so nearer
    x[1, :, :15] = 100
    depth = teacher(x)
    assert depth.shape == (3, 20, 30) and depth.dtype == np.float32
    # the disparity is predicted at half size, so the edge at x = 15 is blurred when resized back
    np.testing.assert_allclose(depth[:, :, :12], 0, atol=1e-6)  # bright: near
    np.testing.assert_allclose(depth[:, :, 18:], 1, atol=1e-6)  # dark: far
    assert teacher.describe()["model"].endswith(":MiDaS_small")


def test_midas_missing_hub_repo_is_a_clear_error(tmp_path):
    with pytest.raises(TeacherError, match="hubconf.py.*needs a network"):
        MiDaSTeacher(repo_or_dir=tmp_path / "none", source="local", device="cpu")


def test_bad_inputs():
    with pytest.raises(ValueError, match="teacher: expected one of"):
        make_teacher("densedepth")
    model, processor = tiny_depth_anything()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        teacher = DepthAnythingTeacher(model=model, processor=processor, device="cpu")
    with pytest.raises(ValueError, match=r"images: expected a uint8"):
        teacher(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"images: expected shape \(B, H, W, 3\)"):
        teacher(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="model and processor"):
        DepthAnythingTeacher(model=model, device="cpu")
