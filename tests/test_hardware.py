"""Machine facts: device resolution, CPU capability, the precision that runs, the allocator setting."""

import platform

import pytest
import torch

from stnlib import hardware


def test_reuse_freed_memory_changes_no_numbers():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 28, 28)
    conv = torch.nn.Conv2d(1, 8, 5)
    before = conv(x)
    applied = hardware.reuse_freed_memory()
    assert applied == (platform.libc_ver()[0] == "glibc")
    assert hardware.reuse_freed_memory() == applied  # idempotent
    assert torch.equal(conv(x), before)


def test_unknown_precision_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="'fp16'.*fp32, bf16, auto"):
        hardware.autocast(torch.device("cpu"), "fp16")


@pytest.mark.parametrize("kernels,flags,native", [
    ("AVX512", ("avx512_bf16",), True),
    ("AVX512", ("amx_bf16",), True),
    ("AVX512", (), False),          # AVX512 without bf16 instructions: emulated
    ("AVX2", ("avx512_bf16",), False),  # kernels capped at AVX2 (ATEN_CPU_CAPABILITY=avx2): emulated
    ("DEFAULT", (), False),
])
def test_native_bf16_needs_the_instructions_and_the_kernels(kernels, flags, native):
    assert hardware.CPUCapability(kernels, flags).native_bf16 is native


def test_auto_precision_follows_the_cpu(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "cpu_capability", lambda: hardware.CPUCapability("AVX2", ()))
    assert not hardware.uses_bf16(cpu, "auto")
    assert hardware.describe_precision(cpu, "auto") == "fp32 (auto)"
    assert hardware.uses_bf16(cpu, "bf16")  # asked for explicitly: emulated, but it runs
    monkeypatch.setattr(hardware, "cpu_capability", lambda: hardware.CPUCapability("AVX512", ("amx_bf16",)))
    assert hardware.uses_bf16(cpu, "auto")
    assert hardware.describe_precision(cpu, "auto") == "bf16 autocast (auto)"
    assert not hardware.uses_bf16(cpu, "fp32")
    assert isinstance(hardware.autocast(cpu, "auto"), torch.autocast)


def test_a_missing_gpu_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(hardware.DeviceUnavailable, match=r"'cuda' is not available on this machine; available: cpu"):
        hardware.resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        hardware.resolve_device("gpu")
    assert hardware.resolve_device(None) == torch.device("cpu")


def test_device_name_says_what_ran():
    name = hardware.device_name("cpu")
    assert name.startswith("cpu: ") and hardware.cpu_capability().kernels in name
