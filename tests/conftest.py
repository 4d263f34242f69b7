import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eva_depthmask.config import DataConfig
from eva_depthmask.data.datagen import make_dataset

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from threads; on a busy machine their wake-ups cost seconds."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark(name)``: the script benchmarks/<name>.py as a module (a script, not a package)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def photo_folders():
    """``photo_folders(root, n, fg_hw=(16, 8), seed=1)``: ``n`` noise backgrounds (40 x 40 PNG) in
    ``root/bg`` and ``n`` opaque rectangular cut-outs of ``fg_hw`` px, a colour each, in
    ``root/fg``; returns the two folders, for ``ImageFolders``."""

    def write(root: Path, n: int, fg_hw: tuple[int, int] = (16, 8), seed: int = 1):
        rng = np.random.default_rng(seed)
        bg_dir, fg_dir = root / "bg", root / "fg"
        bg_dir.mkdir(parents=True)
        fg_dir.mkdir()
        h, w = fg_hw
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), np.uint8)).save(bg_dir / f"{i}.png")
            fg = np.zeros((h, w, 4), np.uint8)
            fg[2 : h - 2, 1 : w - 1] = (*rng.integers(0, 256, 3), 255)
            Image.fromarray(fg).save(fg_dir / f"{i}.png")
        return bg_dir, fg_dir

    return write


@pytest.fixture(scope="session")
def rooms(tmp_path_factory) -> tuple[Path, DataConfig]:
    """``(path, cfg)``: a tiny synthetic dataset, 30 rooms at 32 px, one foreground each (x 2 flips),
    for the scripts that draw its rooms again (scale_factors.py, camera_told.py)."""
    cfg = DataConfig(
        size=32, n_bg=30, n_fg=3, fg_per_bg=1, placements=1, image_format="png", seed=3
    )
    path = make_dataset(tmp_path_factory.mktemp("rooms") / "data", cfg, workers=0, progress=False)
    return path, cfg
