"""What a dataset holds: DataConfig, and SceneConfig for the procedural rooms and sprites."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SceneConfig:
    """Procedural indoor rooms and foreground sprites (synth/scenes.py). Lengths in metres, angles in degrees.

    Depth on disk and in memory is the camera z-distance divided by ``max_depth_m``: 0 is the camera
    plane, 1 is ``max_depth_m`` or farther (clipped).
    """

    max_depth_m: float = 12.0
    room_width_m: tuple[float, float] = (3.5, 7.0)
    room_length_m: tuple[float, float] = (4.0, 10.0)
    room_height_m: tuple[float, float] = (2.4, 3.2)
    camera_height_m: tuple[float, float] = (1.1, 1.7)
    camera_pitch_deg: tuple[float, float] = (5.0, 20.0)  # looking down, positive
    camera_yaw_deg: tuple[float, float] = (-15.0, 15.0)  # turned right, positive; no roll
    fov_deg: tuple[float, float] = (50.0, 75.0)  # horizontal field of view
    furniture: tuple[int, int] = (1, 4)  # pieces per room, inclusive
    # real height of a foreground standing on the floor
    fg_height_m: tuple[float, float] = (0.5, 1.9)
    # smallest projected fg height / image height a floor placement accepts (tiny ones are noise)
    fg_min_scale: float = 0.1
    fg_bulge_m: float = 0.15  # how much nearer a foreground's centre is than its silhouette


@dataclass(frozen=True)
class DataConfig:
    """What a dataset holds and how it is split. ``size`` is the side of the square images in pixels.

        The course dataset is 100 backgrounds x 100 foregrounds x 2 flips x 20 placements = 400k quartets;
        the defaults here are that recipe at 64 px. Splits are by background, so no background is shared;
    with ``split_fg`` by foreground too, and a split's samples pair its own backgrounds and foregrounds.
    """

    size: int = 64
    n_bg: int = 100
    n_fg: int = 100
    placements: int = 20  # per (bg, fg, flip)
    # None: every foreground on every background (the course's grid); k: k foregrounds per background,
    # drawn by seed -- many backgrounds for the same sample count, which is what depth learns from
    fg_per_bg: int | None = None
    flips: bool = True
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    # True: foregrounds are split too, with the same fractions, so val and test show backgrounds AND
    # foregrounds that training never saw (a test of generalisation to new people, not just new rooms)
    split_fg: bool = False
    image_format: str = "jpg"  # bg and fg_bg on disk: "jpg" (quality 95) or "png" (lossless)
    lazy: bool = (
        False  # store manifest, bg, fg, depth only; fg_bg and mask are re-composited on read
    )
    fg_scale: tuple[float, float] = (0.3, 0.75)  # fg height / image height, for photo backgrounds
    scene: SceneConfig = field(default_factory=SceneConfig)

    @property
    def n_samples(self) -> int:
        """Samples in the grid without ``split_fg`` (with it, fewer: sources.sample_keys counts)."""
        return self.n_bg * self.fg_count(self.n_fg) * (2 if self.flips else 1) * self.placements

    def __post_init__(self) -> None:
        if self.fg_per_bg is not None and self.fg_per_bg < 1:
            raise ValueError(
                f"DataConfig.fg_per_bg: expected None or a positive count, got {self.fg_per_bg}"
            )

    def fg_count(self, n_fg: int) -> int:
        """Foregrounds pasted on each background when ``n_fg`` are available."""
        return n_fg if self.fg_per_bg is None else min(self.fg_per_bg, n_fg)
