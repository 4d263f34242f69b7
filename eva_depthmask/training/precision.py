"""Mixed precision only where the device computes in it natively.

On CUDA, autocast runs in float16 (fit() adds a GradScaler). On a CPU, it runs in bfloat16 only
when the CPU has bf16 instructions: AVX512-BF16 or AMX on x86. On other CPUs (AVX2-only x86,
most laptops, many cloud VMs) oneDNN has to emulate bf16, and autocast runs several times *slower*
than float32. On a 2-core AVX2 EPYC, DepthMaskNet trained at 21 pairs/s in bf16 + channels_last
against 229 in float32 + channels_last (benchmarks/README.md, O3). Those CPUs use float32.
"""

from __future__ import annotations

import functools

import torch

# torch's own CPU feature checks (private, but there is no public equivalent); a torch build
# without one simply does not count that feature
_BF16_CHECKS = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX), as torch reports it."""
    return any(getattr(torch.cpu, name, lambda: False)() for name in _BF16_CHECKS)


def amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``device``: float16 on CUDA, bfloat16 on a CPU with native bf16,
    ``None`` (run float32) everywhere else."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.float16
    if kind == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def autocast(device: torch.device | str, enabled: bool = True) -> torch.autocast:
    """``torch.autocast`` in ``amp_dtype(device)``, switched off where that is ``None``."""
    dtype = amp_dtype(device)
    kind = torch.device(device).type
    if dtype is None:
        return torch.autocast(kind if kind in ("cpu", "cuda") else "cpu", enabled=False)
    return torch.autocast(kind, dtype=dtype, enabled=enabled)


def precision_name(device: torch.device | str, enabled: bool = True) -> str:
    """What ``autocast(device, enabled)`` computes in, for logs: "float16", "bfloat16" or "float32"."""
    dtype = amp_dtype(device) if enabled else None
    return str(dtype or torch.float32).removeprefix("torch.")
