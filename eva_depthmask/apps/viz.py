"""Figures. Every function returns a matplotlib Figure and never trains or writes anything.

Depth is always drawn with one colormap (``DEPTH_CMAP``, near = dark) on the fixed range [0, 1], so
pictures of different samples and of truth and prediction can be compared by eye.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

DEPTH_CMAP = "magma"


def _image(x) -> np.ndarray:
    """uint8 (H, W, 3) array or float tensor (3, H, W) in [0, 1] -> displayable (H, W, 3) array."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
        x = np.moveaxis(x, 0, -1) if x.ndim == 3 and x.shape[0] in (1, 3) else x
    x = np.asarray(x)
    return x.squeeze(-1) if x.ndim == 3 and x.shape[-1] == 1 else x


def quartet_strip(samples: Sequence[dict], title: str | None = None) -> Figure:
    """One row per sample: bg | fg_bg | mask | depth (with a colourbar in metres-normalised units)."""
    n = len(samples)
    fig, axes = plt.subplots(n, 4, figsize=(9, 2.3 * n + 0.4), squeeze=False, layout="constrained")
    for row, s in zip(axes, samples, strict=True):
        row[0].imshow(_image(s["bg"]))
        row[1].imshow(_image(s["fg_bg"]))
        row[2].imshow(_image(s["mask"]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        im = row[3].imshow(_image(s["depth"]), cmap=DEPTH_CMAP, vmin=0, vmax=1)
        row[0].set_ylabel(str(s.get("id", "")), fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, name in zip(axes[0], ("bg", "fg_bg", "mask", "depth (0 near, 1 far)"), strict=True):
        ax.set_title(name, fontsize=9)
    fig.colorbar(im, ax=axes[:, 3], shrink=0.8, label="depth")
    if title:
        fig.suptitle(title)
    return fig


def dataset_overview(samples: Sequence[dict], title: str | None = None) -> Figure:
    """Histograms over raw samples: depth values, mask coverage, and the fg's depth against its size."""
    depth = np.concatenate([np.asarray(s["depth"]).ravel() for s in samples])
    cover = np.array([np.asarray(s["mask"]).mean() for s in samples])
    fg_depth = np.array(
        [np.median(s["depth"][s["mask"] > 0]) if s["mask"].any() else np.nan for s in samples]
    )
    fig, axes = plt.subplots(1, 3, figsize=(11, 3), layout="constrained")
    axes[0].hist(depth, bins=50, range=(0, 1), color="tab:purple")
    axes[0].set(title="depth of all pixels", xlabel="depth (0 near, 1 far)", ylabel="pixels")
    axes[1].hist(cover * 100, bins=30, color="tab:green")
    axes[1].set(title="foreground coverage", xlabel="% of image in mask", ylabel="samples")
    axes[2].scatter(fg_depth, cover * 100, s=6, alpha=0.6)
    axes[2].set(
        title="perspective: nearer is larger", xlabel="foreground depth", ylabel="% of image"
    )
    if title:
        fig.suptitle(title)
    return fig


DIFF_CMAP = "viridis"
PANEL_TITLES = {"diff": "|fg_bg - bg|", "depth": "depth (0 near, 1 far)"}


def _panel(ax, sample: dict, key: str, contour: bool, diff_vmax: float):
    """Draw ``sample[key]`` ("bg", "fg_bg", "mask", "depth") or "diff" (|fg_bg - bg|, channel mean,
    in 0-255 levels) on ``ax``, optionally with the mask's outline; returns the AxesImage."""
    if key == "diff":
        fg_bg, bg = _image(sample["fg_bg"]), _image(sample["bg"])
        levels = 1.0 if bg.dtype == np.uint8 else 255.0  # uint8 arrays or float images in [0, 1]
        delta = np.abs(fg_bg.astype(np.float32) - bg.astype(np.float32)).mean(-1) * levels
        im = ax.imshow(delta, cmap=DIFF_CMAP, vmin=0, vmax=diff_vmax)
    elif key == "depth":
        im = ax.imshow(_image(sample["depth"]), cmap=DEPTH_CMAP, vmin=0, vmax=1)
    elif key == "mask":
        im = ax.imshow(_image(sample["mask"]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        im = ax.imshow(_image(sample[key]))
    mask = _image(sample["mask"])
    if contour and key != "mask" and mask.min() != mask.max():
        ax.contour(mask, levels=[0.5], colors="lime", linewidths=0.7)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def compare_samples(
    columns: dict[str, Sequence[dict]],
    key: str = "fg_bg",
    contour: bool = True,
    diff_vmax: float = 48.0,
    title: str | None = None,
) -> Figure:
    """The same samples in several versions (e.g. before and after a transform): one column per
    ``label -> samples`` entry, one row per sample, each panel showing ``key`` (see ``_panel``)."""
    labels = list(columns)
    n = len(columns[labels[0]])
    size = (2.1 * len(labels) + 0.6, 2.1 * n + 0.5)
    fig, axes = plt.subplots(n, len(labels), figsize=size, squeeze=False, layout="constrained")
    for c, label in enumerate(labels):
        for r, sample in enumerate(columns[label]):
            im = _panel(axes[r, c], sample, key, contour, diff_vmax)
        axes[0, c].set_title(label, fontsize=9)
    for r, sample in enumerate(columns[labels[0]]):
        axes[r, 0].set_ylabel(str(sample.get("id", "")), fontsize=7)
    if key in ("diff", "depth"):
        fig.colorbar(im, ax=axes, shrink=0.6, label=PANEL_TITLES[key])
    fig.suptitle(title or PANEL_TITLES.get(key, key))
    return fig


def sample_rows(
    rows: dict[str, dict],
    keys: Sequence[str] = ("bg", "fg_bg", "diff"),
    contour: bool = False,
    diff_vmax: float = 48.0,
    title: str | None = None,
) -> Figure:
    """One row per ``label -> sample`` entry, one column per key (see ``_panel``)."""
    size = (2.2 * len(keys) + 1.2, 2.1 * len(rows) + 0.5)
    fig, axes = plt.subplots(
        len(rows), len(keys), figsize=size, squeeze=False, layout="constrained"
    )
    for r, (label, sample) in enumerate(rows.items()):
        for c, key in enumerate(keys):
            im = _panel(axes[r, c], sample, key, contour, diff_vmax)
            if key in ("diff", "depth") and r == len(rows) - 1:
                fig.colorbar(im, ax=axes[:, c], shrink=0.6, label=PANEL_TITLES[key])
        axes[r, 0].set_ylabel(label, fontsize=8)
    for c, key in enumerate(keys):
        axes[0, c].set_title(PANEL_TITLES.get(key, key), fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def training_curves(
    rows: Sequence[dict], metrics: Sequence[str] = ("mask_iou", "depth_delta1")
) -> Figure:
    """Loss per optimizer step and validation metrics per epoch, from log rows (``runlog.read_log``)."""
    train = [r for r in rows if r["kind"] == "train"]
    val = [r for r in rows if r["kind"] == "val"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained")
    steps = [int(r["global_step"]) for r in train]
    for key in ("loss_total", "loss_mask", "loss_depth"):
        if train and key in train[0]:
            axes[0].plot(steps, [float(r[key]) for r in train], label=key.removeprefix("loss_"))
    axes[0].set(xlabel="optimizer step", ylabel="loss", title="training loss", yscale="log")
    for key in metrics:
        if val and val[0].get(key) not in (None, ""):
            axes[1].plot(
                [int(r["global_step"]) for r in val], [float(r[key]) for r in val], "o-", label=key
            )
    axes[1].set(xlabel="optimizer step", ylabel="value", title="validation (each epoch)")
    for ax in axes:
        if ax.lines:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    stage_starts = [
        int(r["global_step"])
        for a, r in zip(train, train[1:], strict=False)
        if r["size"] != a["size"]
    ]
    for s in stage_starts:
        for ax in axes:
            ax.axvline(s, color="grey", ls="--", lw=0.8)
    return fig


class LiveCurves:
    """A fit() callback that redraws ``training_curves`` in a notebook every ``every`` logged rows."""

    def __init__(self, every: int = 5, metrics: Sequence[str] = ("mask_iou", "depth_delta1")):
        self.rows: list[dict] = []
        self.every, self.metrics, self._handle = every, metrics, None

    def __call__(self, row: dict) -> None:
        self.rows.append(row)
        if row["kind"] == "val" or len(self.rows) % self.every == 0:
            self.draw()

    def draw(self) -> None:
        from IPython.display import display  # notebooks only

        fig = training_curves(self.rows, self.metrics)
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)


def prediction_grid(rows: Sequence[dict], title: str | None = None) -> Figure:
    """One row per sample: bg | fg_bg | true mask | pred mask | true depth | pred depth | |depth error|.

    ``rows`` come from ``evaluate.predictions``: uint8 images, ``true_mask``/``pred_mask`` (probability)
    and ``true_depth``/``pred_depth`` ``(H, W)``. Both depths share one colormap and the range [0, 1].
    """
    names = ("bg", "fg_bg", "true mask", "pred mask", "true depth", "pred depth", "|depth error|")
    n = len(rows)
    fig, axes = plt.subplots(n, 7, figsize=(14, 2.1 * n + 0.5), squeeze=False, layout="constrained")
    for ax_row, r in zip(axes, rows, strict=True):
        err = np.abs(r["pred_depth"] - r["true_depth"])
        ax_row[0].imshow(r["bg"])
        ax_row[1].imshow(r["fg_bg"])
        ax_row[1].contour(r["pred_mask"], levels=[0.5], colors="lime", linewidths=0.7)
        for ax, m in ((ax_row[2], r["true_mask"]), (ax_row[3], r["pred_mask"])):
            ax.imshow(m, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        for ax, d in ((ax_row[4], r["true_depth"]), (ax_row[5], r["pred_depth"])):
            depth_im = ax.imshow(d, cmap=DEPTH_CMAP, vmin=0, vmax=1)
        err_im = ax_row[6].imshow(err, cmap="inferno", vmin=0, vmax=0.2)
        label = r.get("id", "")
        if "mask_iou" in r:
            label = f"{label}\nIoU {r['mask_iou']:.3f}\nRMSE {r['depth_rmse']:.3f}"
        ax_row[0].set_ylabel(label, fontsize=7)
        for ax in ax_row:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, name in zip(axes[0], names, strict=True):
        ax.set_title(name, fontsize=9)
    fig.colorbar(depth_im, ax=axes[-1, 4:6], location="bottom", shrink=0.8, label="depth")
    fig.colorbar(err_im, ax=axes[-1, 6], location="bottom", shrink=0.8, label="|depth error|")
    if title:
        fig.suptitle(title)
    return fig


def mask_contour(
    fg_bg: np.ndarray, true_mask=None, pred_mask=None, title: str | None = None
) -> Figure:
    """fg_bg with the true mask's outline (green) and the predicted one's (red), either optional."""
    fig, ax = plt.subplots(figsize=(4, 4), layout="constrained")
    ax.imshow(_image(fg_bg))
    for m, colour, name in ((true_mask, "lime", "true"), (pred_mask, "red", "predicted")):
        if m is not None and np.ptp(np.asarray(m, np.float32)) > 0:
            ax.contour(np.asarray(m, np.float32), levels=[0.5], colors=colour, linewidths=1.0)
            ax.plot([], [], color=colour, label=name)
    if ax.lines:
        ax.legend(fontsize=8, loc="lower right")
    ax.set_axis_off()
    ax.set_title(title or "mask outline")
    return fig


def robustness_plot(rows: Sequence[dict], metric: str = "mask_iou") -> Figure:
    """``metric`` per background-perturbation level, one bar per model (rows of robustness_sweep)."""
    levels = list(dict.fromkeys(r["level"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
    for i, m in enumerate(models):
        vals = [
            next((r[metric] for r in rows if r["model"] == m and r["level"] == lv), np.nan)
            for lv in levels
        ]
        bars = ax.bar(np.arange(len(levels)) + i * width, vals, width, label=m)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(np.arange(len(levels)) + width * (len(models) - 1) / 2, levels)
    ax.set(
        ylim=(0, 1.08),
        ylabel=metric,
        xlabel="background perturbation",
        title=f"{metric} under a changed background",
    )
    ax.legend(fontsize=8)
    return fig
