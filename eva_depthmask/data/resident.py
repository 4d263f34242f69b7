"""A lazy dataset split held on the training device, composited there a batch at a time.

A lazy dataset (``DataConfig.lazy``) stores each background, each RGBA cut-out and each sample's
placement; ``QuartetDataset._read_row`` composites one sample at a time on the CPU with Pillow.
``ResidentParts`` reads those parts once and keeps them on a device (GPU or CPU):

- ``bg`` uint8 ``(N_bg, 3, S, S)``: every background of the split, ``S`` = the dataset's size in px;
- ``fg``: every cut-out, uint8 ``(C, h, w)`` at its own size: RGBA, and for procedural rooms (C = 5)
  the distance to its silhouette over its maximum, times 255 (the bulge's profile);
- ``room_depth`` float32 ``(N_bg, 1, S, S)`` in [0, 1] (0 = near): each room's exact depth;
- each row's placement: integer boxes and flips as numpy on the host (the paste loop reads them
  without a device sync), background index and ``fg_z`` as tensors on the device.

``composite(rows)`` returns a batch with the keys of ``QuartetDataset.raw``, channels first:
``bg``/``fg_bg`` uint8 ``(B, 3, S, S)``, ``mask`` uint8 ``(B, 1, S, S)`` in {0, 1}, ``depth`` float32
``(B, 1, S, S)`` in [0, 1] on the 16-bit grid (zeros for a dataset without depth).

The rule is composite.py's: the box of ``Placement.box`` (cut off at the image's edges), mirrored,
the RGBA cut-out resized with premultiplied alpha, alpha below ``ALPHA_FLOOR`` cleared, ``mask`` =
alpha > 0 exactly, and ``fg_bg`` = rint(bg (1 - a) + rgb a) under the mask, bg's exact bytes elsewhere.
Rooms follow scenes.compose: the fg's depth is ``fg_z`` at its silhouette and up to ``fg_bulge_m``
nearer inside; where the room is nearer it hides the fg. The cut-out is resized as Pillow resizes
it for the CPU path (its LANCZOS coefficients, premultiplied, rounded after each pass:
``lanczos_resize``), so photos give the CPU reader's masks and, but for a rounding here and there,
its fg_bg. What differs: the bulge's profile is the distance transform at the cut-out's own size,
resized with it, rather than one at the pasted size, so a room's depth under the mask differs by a
fraction of ``fg_bulge_m / max_depth_m``, and where furniture hides part of the fg its outline can
differ by a pixel.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy import ndimage

from ..composite import Placement
from ..images import ALPHA_FLOOR
from ..storage import DEPTH_SCALE, decode_depth, decode_image
from .dataset import QuartetDataset


def premultiplied(rgba: np.ndarray) -> np.ndarray:
    """uint8 ``(h, w, 3)``: the RGB of ``rgba`` times its alpha / 255, rounded as Pillow rounds it."""
    t = rgba[..., :3].astype(np.int32) * rgba[..., 3:4] + 128
    return (((t >> 8) + t) >> 8).astype(np.uint8)


def lanczos_weights(n_in: int, n_out: int) -> np.ndarray:
    """float32 ``(n_out, n_in)``: Pillow's LANCZOS coefficients for resizing ``n_in`` px to
    ``n_out``, each row normalised (a 3-lobe sinc window, widened by the ratio when shrinking)."""
    scale = n_in / n_out
    widen = max(scale, 1.0)
    support = 3.0 * widen
    out = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo, hi = max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), n_in)
        x = (np.arange(lo, hi) - centre + 0.5) / widen
        k = np.sinc(x) * np.sinc(x / 3) * (np.abs(x) < 3)
        out[i, lo:hi] = k / k.sum()
    return out.astype(np.float32)


def lanczos_resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``x`` ``(C, H, W)`` in uint8 levels resized to ``(C, h, w)`` as Pillow's LANCZOS resizes:
    across, then down, each pass rounded and clipped to uint8 levels. On premultiplied RGBA
    (``premultiplied``) it gives Pillow's pixels to within a level."""
    if x.shape[2] != w:
        x = (x @ _weights(x.shape[2], w, x.device).T).round_().clamp_(0, 255)
    if x.shape[1] != h:
        x = torch.einsum("oh,chw->cow", _weights(x.shape[1], h, x.device), x)
        x = x.round_().clamp_(0, 255)
    return x


@functools.lru_cache(maxsize=4096)
def _weights(n_in: int, n_out: int, device: torch.device) -> torch.Tensor:
    # kept on the device: a copy per sample and batch would queue behind the device's work
    return torch.from_numpy(lanczos_weights(n_in, n_out)).to(device)


def _profile(alpha: np.ndarray) -> tuple[np.ndarray, float]:
    """``(t, reach)``: scenes._fg_depth's ``t`` at the cut-out's own size, times 255, as uint8
    ``(h, w)`` (the distance of each visible pixel to the silhouette over its maximum; 0 outside),
    and that maximum ``reach`` in px (1 for a pixel on the silhouette)."""
    inside = alpha >= ALPHA_FLOOR
    if not inside.any():
        return np.zeros(alpha.shape, np.uint8), 1.0
    dist = ndimage.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
    return np.rint(dist / dist.max() * 255).astype(np.uint8), float(dist.max())


def _profile_map(reach: float, scale: float) -> tuple[float, float, float]:
    """``(gain, offset, low)`` taking a cut-out's ``t`` (of ``_profile``, in [0, 1]) to the ``t`` of
    its copy resized by ``scale``: a distance d px (a pixel on the silhouette is 1) becomes
    (d - 0.5) scale + 0.5 there, normalised by its maximum; ``low`` is a silhouette pixel's value."""
    top = max((reach - 0.5) * scale + 0.5, 1.0)
    return reach * scale / top, 0.5 * (1 - scale) / top, 1 / top


def is_lazy(ds: QuartetDataset) -> bool:
    """Whether ``ds`` is a stored dataset in the lazy layout (no fg_bg files: composited on read)."""
    rows = getattr(ds, "rows", None)
    stored = bool(rows) and getattr(ds, "store", None) is not None
    return stored and not rows[0].get("fg_bg") and bool(rows[0].get("fg"))


def room_rows(ds: QuartetDataset) -> np.ndarray:
    """bool ``(N,)``: which rows of ``ds`` are procedural rooms, whose depth is composited (the
    room's, with the fg's pasted in) rather than read, as in ``QuartetDataset._read_row``."""
    synthetic = ds.config is not None and ds.info.get("source") == "synthetic"
    rooms = [synthetic and r["source"] == "synthetic" and r["fg_z"] != "" for r in ds.rows]
    return np.array(rooms, bool).reshape(-1)


def needs_depth(ds: QuartetDataset) -> bool:
    """Whether each sample's depth must be read from disk to composite ``ds`` (photos labelled by a
    teacher): it has depth, and not every row is a room."""
    return bool(ds.has_depth and not room_rows(ds).all())


def _check_lazy(ds: QuartetDataset) -> str:
    """The manifest's name, after checking that every row of ``ds`` can be composited."""
    store = getattr(ds, "store", None)
    if store is None or ds.rows is None:
        raise ValueError(
            "ResidentParts: expected a stored lazy dataset, got one rendered on the fly"
        )
    where = store.name("manifest.csv")
    if not ds.rows:
        raise ValueError(f"{where}: split {ds.split!r} has no rows; nothing to composite")
    for row in ds.rows:
        if row["fg_bg"]:
            raise ValueError(
                f"{where}: row {row['id']!r} stores its fg_bg: not a lazy layout (nothing to "
                "composite; read it with QuartetDataset, or make it with DataConfig(lazy=True))"
            )
        if "" in (row["fg"], row["x"], row["y"], row["scale"], row["flip"]):
            raise ValueError(f"{where}: row {row['id']!r} lacks a cut-out or a placement")
    return where


class ResidentParts:
    """The parts of a lazy dataset split held on a device: every background (uint8 (N_bg,3,S,S)),
    every cut-out (RGBA, at its own size), and for procedural rooms each room's depth (float32
    (N_bg,1,S,S)); plus each row's placement as tensors. A batch of rows is composited on the device.
    """

    needs_depth: bool  # composite() takes each sample's depth (teacher-labelled photos)

    @classmethod
    def from_dataset(cls, ds: QuartetDataset, device: torch.device | str) -> ResidentParts:
        """Read every part of ``ds`` (a lazy dataset's split, folder or zip) once, onto ``device``.

        A ``ValueError`` naming the manifest when ``ds`` is not in the lazy layout or a row has no
        placement. Rows are rooms (depth composited) where they have ``fg_z`` and came from procedural
        rooms, as in ``QuartetDataset._read_row``.
        """
        self = cls.__new__(cls)
        self.name = _check_lazy(ds)
        self.device = torch.device(device)
        self.room = room_rows(ds)
        self.has_depth = bool(ds.has_depth)
        self.needs_depth = needs_depth(ds)
        scene = ds.config.scene if self.room.any() else None
        self.bulge = max(scene.fg_bulge_m, 0.0) / scene.max_depth_m if scene else 0.0
        self._load_images(ds)
        self._load_rows(ds)
        return self

    def _load_images(self, ds: QuartetDataset) -> None:
        """Decode each file once: a background per bg file, a cut-out per fg file, a room's depth per
        depth file of a room row."""
        store, dev, rows = ds.store, self.device, ds.rows
        self._bg_files = sorted({r["bg"] for r in rows})
        self._fg_files = sorted({r["fg"] for r in rows})
        self._depth_files = sorted({r["depth"] for r, k in zip(rows, self.room, strict=True) if k})
        bgs = [decode_image(store.read(f), store.name(f)) for f in self._bg_files]
        self.size = s = bgs[0].shape[0]
        for f, bg in zip(self._bg_files, bgs, strict=True):
            if bg.shape != (s, s, 3):
                raise ValueError(
                    f"{store.name(f)}: expected {s}x{s} px like the others, got {bg.shape}"
                )
        self.bg = torch.from_numpy(np.stack(bgs).transpose(0, 3, 1, 2).copy()).to(dev)
        self.fg, self._fg_shapes, self._reach = [], [], []
        for f in self._fg_files:
            fg = decode_image(store.read(f), store.name(f), "RGBA")
            if self.room.any():  # a profile for every cut-out: one channel count in the paste loop
                t, reach = _profile(fg[..., 3])
                fg = np.concatenate([fg, t[..., None]], axis=-1)
                self._reach.append(reach)
            fg[..., :3] = premultiplied(fg)  # once: Pillow resizes RGBA premultiplied ("RGBa")
            self.fg.append(torch.from_numpy(fg.transpose(2, 0, 1).copy()).to(dev))
            self._fg_shapes.append(fg.shape)
        depths = [decode_depth(store.read(f), store.name(f)) for f in self._depth_files]
        depths = np.stack(depths)[:, None] if depths else np.zeros((0, 1, s, s), np.float32)
        self.room_depth = torch.from_numpy(depths).to(dev)

    def _load_rows(self, ds: QuartetDataset) -> None:
        """Per row: fg index, box (top, left, h, w) and flip on the host; bg and depth index, fg_z and
        whether it is a room on the device."""
        rows, s, dev = ds.rows, self.size, self.device
        bg_index = {f: i for i, f in enumerate(self._bg_files)}
        fg_index = {f: j for j, f in enumerate(self._fg_files)}
        depth_index = {f: k for k, f in enumerate(self._depth_files)}
        self.fg_of = np.array([fg_index[r["fg"]] for r in rows], np.int64)
        boxes, flips, t_maps = [], [], []
        for r, j in zip(rows, self.fg_of, strict=True):
            p = Placement(int(r["x"]), int(r["y"]), float(r["scale"]), r["flip"] == "1")
            boxes.append(p.box(self._fg_shapes[j], (s, s)))
            flips.append(p.flip)
            if self._reach:
                t_maps.append(_profile_map(self._reach[j], boxes[-1][2] / self._fg_shapes[j][0]))
        self.box = np.array(boxes, np.int64).reshape(-1, 4)
        self.flip = np.array(flips, bool)
        rooms = list(zip(rows, self.room, strict=True))
        self._bg_of = torch.tensor([bg_index[r["bg"]] for r in rows], device=dev)
        self._depth_of = torch.tensor(
            [depth_index[r["depth"]] if k else 0 for r, k in rooms], device=dev
        )
        self._fg_z = torch.tensor([float(r["fg_z"]) if k else 0.0 for r, k in rooms], device=dev)
        self._room = torch.from_numpy(self.room).to(dev)
        self._t_map = torch.tensor(np.array(t_maps, np.float32).reshape(-1, 3), device=dev)

    # -- compositing a batch -----------------------------------------------------------------------

    def composite(self, rows: torch.Tensor, depth: torch.Tensor | None = None) -> dict:
        """Samples ``rows`` (int64 ``(B,)`` indices into ``ds.rows``; best on the CPU, as a sampler
        gives them: the paste loop needs them on the host) composited on the device.

        ``depth`` float32 ``(B, 1, S, S)``: each sample's depth read from disk, exactly when
        ``needs_depth``. Returns ``bg``, ``fg_bg`` uint8 ``(B, 3, S, S)``, ``mask`` uint8
        ``(B, 1, S, S)`` in {0, 1} and ``depth`` float32 ``(B, 1, S, S)`` in [0, 1], on the device.
        """
        if (depth is not None) != self.needs_depth:
            need = "needs each sample's depth" if self.needs_depth else "takes no depth"
            raise ValueError(f"{self.name}: this dataset {need} (ResidentParts.needs_depth)")
        idx = rows.cpu().numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows)
        # a copy from pageable memory: no wait for the device's queue (non_blocking)
        at = torch.as_tensor(idx, dtype=torch.int64).to(self.device, non_blocking=True)
        bg = self.bg[self._bg_of[at]]
        rgb, alpha, t = self._unpremultiplied(self._layers(idx))
        if depth is None:
            depth = torch.zeros_like(alpha)
        if self.room.any():
            alpha, depth = self._rooms(at, alpha, t, depth)
        mask = alpha > 0
        blended = (bg * (1 - alpha) + rgb * alpha).round_().clamp_(0, 255).to(torch.uint8)
        fg_bg = torch.where(mask, blended, bg)  # bg's exact bytes wherever the mask is 0
        return {"bg": bg, "fg_bg": fg_bg, "mask": mask.to(torch.uint8), "depth": depth.float()}

    def _rooms(self, at, alpha, t, depth) -> tuple[torch.Tensor, torch.Tensor]:
        """scenes.compose's depth for the room rows among ``at`` (device indices ``(B,)``): the fg's
        depth layer, ``fg_z`` less the bulge of profile ``t``; ``alpha`` cleared where the room is
        nearer, and ``depth`` the layer under what is left of it, the room's depth elsewhere."""
        room_depth = self.room_depth[self._depth_of[at]]
        gain, offset, low = self._t_map[at].view(-1, 3, 1, 1, 1).unbind(1)
        t = torch.maximum(t * gain + offset, low).clamp(max=1)  # t at the pasted size
        bulge = torch.sqrt((1 - (1 - t) ** 2).clamp(0, 1)) * self.bulge
        layer = (self._fg_z[at].view(-1, 1, 1, 1) - bulge).clamp(0, 1)
        room = self._room[at].view(-1, 1, 1, 1)
        alpha = torch.where(room & (layer >= room_depth), 0.0, alpha)
        shown = torch.where(alpha > 0, layer, room_depth)
        shown = torch.round(shown * DEPTH_SCALE) / DEPTH_SCALE  # the 16-bit grid the CPU reads
        return alpha, torch.where(room, shown, depth)

    def _layers(self, idx: np.ndarray) -> torch.Tensor:
        """float32 ``(B, C, S, S)``: each sample's cut-out, premultiplied (RGB times alpha / 255, alpha
        in 0..255, profile in 0..255), resized to its box, mirrored and put in place; 0 elsewhere."""
        s = self.size
        out = torch.zeros(len(idx), self.fg[0].shape[0], s, s, device=self.device)
        for b, i in enumerate(idx):
            top, left, h, w = (int(v) for v in self.box[i])
            y0, y1, x0, x1 = max(top, 0), min(top + h, s), max(left, 0), min(left + w, s)
            if y0 >= y1 or x0 >= x1:
                continue  # wholly outside: nothing to paste
            x = self.fg[self.fg_of[i]].float()  # premultiplied already (_load_images)
            if tuple(x.shape[1:]) != (h, w):
                x = lanczos_resize(x, h, w)
            if self.flip[i]:
                x = x.flip(-1)
            out[b, :, y0:y1, x0:x1] = x[:, y0 - top : y1 - top, x0 - left : x1 - left]
        return out

    @staticmethod
    def _unpremultiplied(layer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(rgb, alpha, t)`` of ``_layers``: rgb ``(B, 3, S, S)`` in [0, 255]; alpha ``(B, 1, S, S)``
        in [0, 1] on the uint8 grid with values below ``ALPHA_FLOOR`` cleared (matting noise, as
        composite.fg_layer); t ``(B, 1, S, S)`` in [0, 1] (zeros when there is no profile)."""
        a8 = layer[:, 3:4]  # uint8 levels, as Pillow's: the floor applies to them
        # Pillow's way back from premultiplied: 255 c / a, truncated (what a = 0 keeps is unused)
        rgb = torch.floor(layer[:, :3] * 255 / a8.clamp(min=1)).clamp_(0, 255)
        alpha = torch.where(a8 < ALPHA_FLOOR, 0.0, a8 / 255)
        t = layer[:, 4:5].clamp(0, 255) / 255 if layer.shape[1] > 4 else torch.zeros_like(alpha)
        return rgb, alpha, t
