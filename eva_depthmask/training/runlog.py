"""The training log: one CSV row per logged step and per epoch, mirrored to TensorBoard.

On resume the rows a killed run wrote after its last checkpoint are dropped (they will be written again),
so the log of a resumed run reads as if the run had never stopped.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..storage import atomic_write

BASE_COLUMNS = (
    "kind",
    "stage",
    "size",
    "epoch",
    "step",
    "global_step",
    "lr",
    "img_per_s",
    "seconds",
)


class RunLog:
    """``log(row)`` appends to ``<dir>/log.csv`` (and TensorBoard); disabled on non-zero ranks."""

    def __init__(
        self,
        folder: str | Path,
        columns: list[str],
        resume_step: int,
        enabled=True,
        tensorboard=True,
    ):
        self.path = Path(folder) / "log.csv"
        self.columns = list(BASE_COLUMNS) + [c for c in columns if c not in BASE_COLUMNS]
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        self._truncate(resume_step)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # import cost only when used

            self.writer = SummaryWriter(str(Path(folder) / "tb"), purge_step=resume_step or None)

    def _truncate(self, resume_step: int) -> None:
        """Keep the rows up to ``resume_step``; start a new file with a header otherwise."""
        rows = []
        if self.path.exists() and resume_step > 0:
            rows = [r for r in read_log(self.path) if int(r["global_step"]) <= resume_step]
        buf = io.StringIO()
        w = csv.DictWriter(buf, self.columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        atomic_write(self.path, buf.getvalue().encode())

    def log(self, row: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore", lineterminator="\n").writerow(
                {k: _fmt(v) for k, v in row.items()}
            )
        if self.writer is not None:
            for k, v in row.items():
                if k not in BASE_COLUMNS[:6] and isinstance(v, (int, float)):
                    self.writer.add_scalar(f"{row['kind']}/{k}", v, row["global_step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_log(path: str | Path) -> list[dict]:
    """Rows of a log.csv as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else v
