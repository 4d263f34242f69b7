"""What the reference projects of this task reported (../shared/seeds/), to set beside our numbers.

Their data differ from ours (their own photo composites with DenseDepth labels; ours are procedural
rooms with exact depth, or your photos), so the comparison shows orders of magnitude, not a ranking.
Depth deltas of these projects use their convention: both maps clamped to [0.1, 1] first
(our ``depth_delta*_seed`` metrics).
"""

from __future__ import annotations

SEED_RESULTS: list[dict] = [
    {
        "project": "Session 15 (ResNet blocks, transposed convs)",
        "size": 64,
        "depth_rmse": 0.0909,
        "depth_delta1_seed": 0.7569,
        "depth_delta2_seed": 0.9244,
        "depth_delta3_seed": 0.9743,
    },
    {
        "project": "Session 15 (ResNet blocks, transposed convs)",
        "size": 128,
        "depth_rmse": 0.0926,
        "depth_delta1_seed": 0.7558,
        "depth_delta2_seed": 0.9205,
        "depth_delta3_seed": 0.9722,
    },
    {
        "project": "Session 15 (ResNet blocks, transposed convs)",
        "size": 224,
        "depth_rmse": 0.1015,
        "depth_delta1_seed": 0.7280,
        "depth_delta2_seed": 0.9028,
        "depth_delta3_seed": 0.9623,
    },
    {
        "project": "DepthEstimation-MaskPrediction (dilated, pixel shuffle)",
        "size": 192,
        "mask_dice": 0.98,
    },
    {
        "project": "MaskDepthGenerator (ResNet-18 encoder)",
        "size": 224,
        "depth_rmse": 0.18,
        "mask_iou": 0.2,
    },
    {"project": "S15 plain U-Net", "size": 224, "note": "masks came out blank"},
]
COLUMNS = (
    "mask_iou",
    "mask_dice",
    "depth_rmse",
    "depth_delta1_seed",
    "depth_delta2_seed",
    "depth_delta3_seed",
)


def comparison_table(ours: dict, size: int, name: str = "this model") -> str:
    """A markdown table: our metrics in the first row, then each reference project's reported ones."""
    head = (
        "| project | size | " + " | ".join(COLUMNS) + " |\n|" + "---|" * (len(COLUMNS) + 2) + "\n"
    )
    rows = [{"project": f"**{name}**", "size": size, **ours}, *SEED_RESULTS]
    lines = []
    for r in rows:
        cells = [f"{r[c]:.4f}" if isinstance(r.get(c), float) else "" for c in COLUMNS]
        note = f" ({r['note']})" if "note" in r else ""
        lines.append(f"| {r['project']}{note} | {r['size']} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines)
