"""Splits by background, and by foreground too (``DataConfig.split_fg``): test samples that show
backgrounds and foregrounds training never saw."""

from __future__ import annotations

from dataclasses import replace

import pytest

from eva_depthmask.config import DataConfig
from eva_depthmask.data.sources import (
    SPLITS,
    SampleKey,
    sample_keys,
    split_backgrounds,
    split_foregrounds,
)

CFG = DataConfig(n_bg=20, n_fg=10, placements=2)


def _old_keys(cfg: DataConfig, split: str) -> list[SampleKey]:
    """The grid as it was defined before split_fg: a split's backgrounds with every foreground."""
    bgs = range(cfg.n_bg) if split == "all" else split_backgrounds(cfg.n_bg, cfg)[split]
    return [
        SampleKey(b, f, flip, k)
        for b in bgs
        for f in range(cfg.n_fg)
        for flip in (False, True)
        for k in range(cfg.placements)
    ]


@pytest.mark.parametrize("split", [*SPLITS, "all"])
def test_without_split_fg_every_split_keeps_its_keys(split):
    assert sample_keys(CFG.n_bg, CFG.n_fg, CFG, split) == _old_keys(CFG, split)


def test_foreground_split_is_disjoint_and_follows_the_fractions():
    cfg = replace(CFG, split_fg=True)
    fgs = split_foregrounds(10, cfg)
    assert sorted(sum(fgs.values(), [])) == list(range(10))
    assert len(fgs["val"]) == len(fgs["test"]) == 1
    assert split_foregrounds(10, CFG) == {s: list(range(10)) for s in SPLITS}
    # its own shuffle: the foreground split is not the background split's first ten
    assert split_foregrounds(40, replace(cfg, n_bg=40)) != split_backgrounds(40, cfg)


@pytest.mark.parametrize("fg_per_bg", [None, 1])
def test_split_fg_pairs_each_split_with_its_own_foregrounds(fg_per_bg):
    cfg = replace(CFG, split_fg=True, fg_per_bg=fg_per_bg)
    bgs, fgs = split_backgrounds(20, cfg), split_foregrounds(10, cfg)
    keys = {s: sample_keys(20, 10, cfg, s) for s in SPLITS}
    for s in SPLITS:
        assert keys[s], s
        assert {k.bg for k in keys[s]} == set(bgs[s])
        assert {k.fg for k in keys[s]} <= set(fgs[s])
    seen = {k.fg for k in keys["train"]}
    assert not seen & {k.fg for k in keys["test"]} and not seen & {k.fg for k in keys["val"]}
    assert sorted(sum(keys.values(), [])) == sample_keys(20, 10, cfg, "all")
    if fg_per_bg is None:  # every train background with every train foreground
        assert len(keys["train"]) == len(bgs["train"]) * len(fgs["train"]) * 2 * 2
