"""Mixed precision only where it is native: bf16 autocast on a CPU only with bf16 instructions."""

from pathlib import Path

import pytest
import torch

from eva_depthmask.training.precision import (
    amp_dtype,
    autocast,
    cpu_has_native_bf16,
    precision_name,
)


def cpuinfo_flags() -> set[str] | None:
    """The x86 feature flags the kernel lists (None off Linux or off x86)."""
    info = Path("/proc/cpuinfo")
    if not info.exists():
        return None
    for line in info.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


def test_native_bf16_agrees_with_the_kernels_cpu_flags():
    flags = cpuinfo_flags()
    if flags is None:
        pytest.skip("no x86 /proc/cpuinfo flags on this machine")
    assert cpu_has_native_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})


def test_cpu_autocast_computes_in_bf16_only_where_native():
    layer, x = torch.nn.Linear(8, 4), torch.randn(2, 8)
    with autocast("cpu"):
        y = layer(x)
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert y.dtype == expected == (amp_dtype("cpu") or torch.float32)
    assert precision_name("cpu") == str(expected).removeprefix("torch.")
    with autocast("cpu", enabled=False):
        assert layer(x).dtype == torch.float32
    assert precision_name("cpu", enabled=False) == "float32"


def test_cuda_uses_float16_and_other_devices_float32():
    assert amp_dtype("cuda") == torch.float16 and amp_dtype(torch.device("cuda:1")) == torch.float16
    assert precision_name("cuda") == "float16"
    assert amp_dtype("meta") is None and precision_name("meta") == "float32"
    with autocast("meta"):  # switched off, not an error
        assert torch.ones(2, device="meta").dtype == torch.float32
