"""Decoded train samples kept in memory that every DataLoader worker shares, so each is read once a run.

Reading and decoding a sample is about half of its loading cost at 64 px and 60 % at 224 px
(benchmarks/README.md, B4). An epoch reads every train sample once, so from the second epoch on they
can come from memory. A cache inside the trainer serves only in-process loading, and a cache inside a
worker dies with it at the end of its epoch; so the slots here are one anonymous *shared* mapping,
made in the process that builds the dataset before any worker is forked. Whichever process decodes
a sample first, the trainer or a worker of any epoch, stores it there for every later reader.

Each sample index is read by one process per epoch and epochs do not overlap, so a slot is never
written and read at once; its "filled" byte is set after its arrays are. A pickled copy (workers
started with "spawn") cannot share the mapping and carries no cache: its samples are read from disk.
"""

from __future__ import annotations

import mmap
from math import prod

import numpy as np

from ..storage import DEPTH_SCALE  # a 16-bit PNG's grid: depth kept as uint16 when it lies on it

ARRAYS = ("bg", "fg_bg", "mask", "depth")


def _depth_to_u16(depth: np.ndarray) -> np.ndarray | None:
    """``depth`` as uint16 steps of 1/65535, or None when that would not give back the same floats."""
    steps = np.rint(depth.astype(np.float64) * DEPTH_SCALE)
    if steps.min(initial=0) < 0 or steps.max(initial=0) > DEPTH_SCALE:
        return None
    steps = steps.astype(np.uint16)
    return steps if np.array_equal(_depth_from_u16(steps), depth) else None


def _depth_from_u16(steps: np.ndarray) -> np.ndarray:
    # the same float32 arithmetic as storage.decode_depth, so a PNG depth round-trips bit for bit
    return (steps.astype(np.float32) / DEPTH_SCALE).clip(0, 1)


class SampleCache:
    """Slots for the decoded samples ``0 .. slots - 1`` of a dataset of ``n``, in shared memory.

    The layout (shapes and dtypes) is that of ``first``, a decoded sample of the dataset; depth is
    kept as uint16 when ``first``'s lies on the 16-bit grid (every stored dataset's does), else as
    float32. ``slots`` is as many as fit in ``limit_bytes``; a sample of another shape, or whose depth
    does not fit the layout, is simply not cached. Memory is only committed as slots are filled.
    """

    def __init__(self, n: int, first: dict, limit_bytes: int):
        u16 = _depth_to_u16(first["depth"]) is not None
        self.layout = {
            k: (first[k].shape, np.dtype(np.uint16 if k == "depth" and u16 else first[k].dtype))
            for k in ARRAYS
        }
        self.sample_bytes = sum(
            prod(shape) * dtype.itemsize for shape, dtype in self.layout.values()
        )
        self.slots = max(0, min(n, int(limit_bytes) // (self.sample_bytes + 1)))
        self.arrays: dict[str, np.ndarray] = {}
        self.filled = np.zeros(0, np.uint8)
        self._buffer = None
        if self.slots:
            self._map()

    def _map(self) -> None:
        # mmap(-1, ...) is MAP_SHARED | MAP_ANONYMOUS: forked children see the parent's pages
        self._buffer = mmap.mmap(-1, self.slots * (self.sample_bytes + 1))
        offset = 0
        for k, (shape, dtype) in self.layout.items():
            count = self.slots * prod(shape)
            view = np.frombuffer(self._buffer, dtype, count=count, offset=offset)
            self.arrays[k] = view.reshape(self.slots, *shape)
            offset += count * dtype.itemsize
        self.filled = np.frombuffer(self._buffer, np.uint8, count=self.slots, offset=offset)

    def __len__(self) -> int:
        """Samples held now."""
        return int(self.filled.sum())

    @property
    def depth_u16(self) -> bool:
        """Whether depth is kept as uint16 steps (else as float32)."""
        return self.layout["depth"][1] == np.uint16

    @property
    def nbytes(self) -> int:
        """Bytes of the samples held now."""
        return len(self) * self.sample_bytes

    def get(self, index: int) -> dict | None:
        """Copies of the arrays of sample ``index``, or None when it is not held. A copy costs a few
        microseconds; a view would let a transform that writes into its input corrupt the slot."""
        if index >= self.slots or not self.filled[index]:
            return None
        out = {k: a[index].copy() for k, a in self.arrays.items() if k != "depth"}
        depth = self.arrays["depth"][index]
        out["depth"] = _depth_from_u16(depth) if self.depth_u16 else depth.copy()
        return out

    def put(self, index: int, raw: dict) -> bool:
        """Store the arrays of decoded sample ``index``; False when it has no slot, or its shapes or
        dtypes differ from the layout's (stored, it would come back changed)."""
        if index >= self.slots or self.filled[index]:
            return False
        arrays = {k: raw[k] for k in ARRAYS}
        if self.depth_u16:
            arrays["depth"] = _depth_to_u16(raw["depth"])
            if arrays["depth"] is None:
                return False
        if any((arrays[k].shape, arrays[k].dtype) != kind for k, kind in self.layout.items()):
            return False
        for k, a in arrays.items():
            self.arrays[k][index] = a
        self.filled[index] = 1
        return True

    def __getstate__(self) -> dict:
        # a mapping cannot travel to another process by pickling: the copy starts empty, with no slots
        state = {k: v for k, v in self.__dict__.items() if k not in ("arrays", "filled", "_buffer")}
        return {**state, "slots": 0}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.arrays, self.filled, self._buffer = {}, np.zeros(0, np.uint8), None
