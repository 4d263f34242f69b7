"""PredictionBrowser: an ipywidgets view of a model's predictions in a notebook.

A slider over samples, a choice of split, sorting by worst mask IoU or worst depth error, and an upload
of the user's own bg + fg_bg pair. Metrics per sample are computed once per split (``evaluate``).
"""

from __future__ import annotations

import io

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from matplotlib.figure import Figure
from PIL import Image
from torch import nn
from torch.utils.data import Subset

from ..evaluation.evaluate import evaluate, predictions
from ..evaluation.predictor import predict
from ..training.loaders import TrainData
from .viz import DEPTH_CMAP, prediction_grid

SORTS = {
    "dataset order": None,
    "worst mask IoU": ("mask_iou", False),
    "worst depth RMSE": ("depth_rmse", True),
}


class PredictionBrowser:
    """``PredictionBrowser(model, data, size, stats)``; display it as the last expression of a cell."""

    def __init__(
        self,
        model: nn.Module,
        data: TrainData,
        size: int,
        stats: dict | None,
        splits=("val", "test"),
        max_samples: int = 300,
    ):
        self.model, self.data, self.size, self.stats = model.eval(), data, size, stats
        self.max_samples = max_samples
        self._datasets: dict[str, object] = {}
        self._tables: dict[str, list[dict]] = {}
        self.split = widgets.Dropdown(options=list(splits), description="split")
        self.sort = widgets.Dropdown(options=list(SORTS), description="sort by")
        self.index = widgets.IntSlider(0, 0, 0, description="sample", continuous_update=False)
        self.upload_bg = widgets.FileUpload(accept="image/*", description="your bg")
        self.upload_fg_bg = widgets.FileUpload(accept="image/*", description="your fg_bg")
        self.out = widgets.Output()
        self.shown: Figure | None = None
        for w in (self.split, self.sort):
            w.observe(lambda _: self._reset(), names="value")
        self.index.observe(lambda _: self._draw(), names="value")
        for w in (self.upload_bg, self.upload_fg_bg):
            w.observe(lambda _: self._draw_upload(), names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.split, self.sort]),
                self.index,
                widgets.HBox([self.upload_bg, self.upload_fg_bg]),
                self.out,
            ]
        )
        self._reset()

    def _ipython_display_(self) -> None:
        display(self.widget)

    def dataset(self, split: str):
        if split not in self._datasets:
            ds = self.data.dataset(split, self.size, stats=self.stats)
            n = min(len(ds), self.max_samples)
            self._datasets[split] = ds if n == len(ds) else Subset(ds, range(n))
        return self._datasets[split]

    def table(self, split: str) -> list[dict]:
        """Per-sample metrics of a split (computed once)."""
        if split not in self._tables:
            _, rows = evaluate(self.model, self.dataset(split), progress=False)
            self._tables[split] = rows
        return self._tables[split]

    def order(self, split: str, sort: str) -> list[int]:
        """Sample indices of ``split`` in the chosen order."""
        table = self.table(split)
        how = SORTS[sort]
        if how is None:
            return list(range(len(table)))
        key, descending = how
        return sorted(range(len(table)), key=lambda i: table[i][key], reverse=descending)

    def figure(self, position: int) -> Figure:
        """The prediction grid of the sample at ``position`` in the current split and order."""
        i = self.order(self.split.value, self.sort.value)[position]
        return prediction_grid(
            predictions(self.model, self.dataset(self.split.value), [i], self.stats)
        )

    def figure_for_pair(self, bg, fg_bg) -> Figure:
        """Prediction for a user's pair (paths, PIL images, arrays or encoded bytes)."""
        bg, fg_bg = (Image.open(io.BytesIO(x)) if isinstance(x, bytes) else x for x in (bg, fg_bg))
        out = predict(self.model, bg, fg_bg, self.size, self.stats)
        fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained")
        axes[0].imshow(
            np.asarray(fg_bg.convert("RGB") if isinstance(fg_bg, Image.Image) else fg_bg)
        )
        axes[0].contour(out["mask"], levels=[0.5], colors="lime", linewidths=0.8)
        axes[1].imshow(out["mask_prob"], cmap="gray", vmin=0, vmax=1)
        im = axes[2].imshow(out["depth"], cmap=DEPTH_CMAP, vmin=0, vmax=1)
        fig.colorbar(im, ax=axes[2], shrink=0.8)
        for ax, name in zip(
            axes, ("your fg_bg + predicted outline", "mask probability", "depth"), strict=True
        ):
            ax.set_title(name, fontsize=9)
            ax.set_axis_off()
        return fig

    def _reset(self) -> None:
        n = len(self.table(self.split.value))
        self.index.max = max(n - 1, 0)
        self.index.value = 0
        self._draw()

    def _draw(self) -> None:
        self._show(self.figure(self.index.value))

    def _draw_upload(self) -> None:
        if self.upload_bg.value and self.upload_fg_bg.value:
            bg, fg_bg = (bytes(w.value[0]["content"]) for w in (self.upload_bg, self.upload_fg_bg))
            self._show(self.figure_for_pair(bg, fg_bg))

    def _show(self, fig: Figure) -> None:
        self.shown = fig  # the figure on screen (to save it, or to check what the view shows)
        self.out.clear_output(wait=True)
        with self.out:
            display(fig)
        plt.close(fig)
