"""The machine a run uses: device resolution, CPU capability, and the precision that pays there.

bf16 autocast is a large win on a CPU that computes in bf16 natively (AVX512-BF16 or AMX) and a
large loss on one that does not: on an AVX2-only CPU PyTorch emulates bf16, and a training step of
the MNIST networks ran about 10× slower than in fp32 (measured on an AMD EPYC with AVX2 only). So
``precision="auto"`` means bf16 autocast on CUDA and on CPUs with native bf16, fp32 elsewhere, and
every record stores what actually ran (:func:`describe_precision`).

The capability is read from PyTorch (``torch.backends.cpu.get_cpu_capability()``, which honours
``ATEN_CPU_CAPABILITY``) and from the CPU flags (``/proc/cpuinfo``): native bf16 needs an AVX512
kernel level and the ``avx512_bf16`` or ``amx_bf16`` flag. Setting ``ATEN_CPU_CAPABILITY=avx2``
(together with ``ONEDNN_MAX_CPU_ISA=AVX2`` for oneDNN's kernels) makes a native-bf16 machine behave
as an AVX2-only one, which is how the benchmarks measure the other kind on one machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import platform
from dataclasses import dataclass

import torch

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "auto")
#: The environment that makes this CPU run as an AVX2-only one: ATen's kernels and oneDNN's limited to AVX2
#: (no AVX512, no AVX512-BF16, no AMX), so bf16 autocast is emulated as on such CPUs. Both are read when the
#: process starts, so the benchmarks set them for the processes that measure.
AVX2_EMULATION: dict[str, str] = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


class DeviceUnavailable(RuntimeError):
    """A run asked for a device this machine does not have."""


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from ``/proc/cpuinfo`` (empty where that file does not exist)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class CPUCapability:
    """What PyTorch's CPU kernels can use on this machine."""

    kernels: str  # torch.backends.cpu.get_cpu_capability(): "AVX2", "AVX512", "DEFAULT", ...
    bf16_flags: tuple[str, ...]  # which of avx512_bf16 / amx_bf16 the CPU reports

    @property
    def native_bf16(self) -> bool:
        """bf16 matrix arithmetic in hardware, at a kernel level that uses it."""
        return self.kernels.upper().startswith("AVX512") and bool(self.bf16_flags)

    def describe(self) -> str:
        flags = "+".join(self.bf16_flags) if self.bf16_flags else "no bf16 instructions"
        return f"{self.kernels} ({flags}; bf16 {'native' if self.native_bf16 else 'emulated'})"


def described_native_bf16(description: str) -> bool:
    """Whether a :meth:`CPUCapability.describe` text (as records store it) says bf16 is native."""
    return description.rstrip().endswith("bf16 native)")


@functools.lru_cache(maxsize=1)
def cpu_capability() -> CPUCapability:
    """This process's CPU capability (cached: the environment that sets it is read at import)."""
    flags = cpu_flags()
    return CPUCapability(torch.backends.cpu.get_cpu_capability(),
                         tuple(f for f in _BF16_FLAGS if f in flags))


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if this machine has it, CUDA when ``None`` and available, else the CPU.

    Raises :class:`DeviceUnavailable` with one line naming the device and what is available, instead
    of PyTorch's error from deep inside the first CUDA call.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; valid choices: {', '.join(available_devices())}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index is not None and dev.index >= count):
            raise DeviceUnavailable(
                f"device {str(device)!r} is not available on this machine; available: "
                f"{', '.join(available_devices())}")
    elif dev.type != "cpu":
        raise DeviceUnavailable(
            f"device {str(device)!r} is not supported; available: {', '.join(available_devices())}")
    return dev


def available_devices() -> list[str]:
    """``cpu`` and every CUDA device this process sees."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu", *(f"cuda:{i}" for i in range(n))]


def device_name(device: str | torch.device) -> str:
    """A readable name: the GPU model, or the CPU model with its cores, threads and capability."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(dev)}"
    return (f"cpu: {cpu_model()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads, "
            f"{cpu_capability().kernels})")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid choices: {', '.join(PRECISIONS)}")
    return precision


def uses_bf16(device: torch.device, precision: str) -> bool:
    """Whether ``precision`` means bf16 autocast on ``device`` (``auto``: where bf16 is native)."""
    check_precision(precision)
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    return device.type == "cuda" or (device.type == "cpu" and cpu_capability().native_bf16)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for ``precision`` on ``device`` (a no-op for fp32)."""
    if not uses_bf16(device, precision):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def describe_precision(device: torch.device, precision: str) -> str:
    """What ran, for the record: ``"bf16 autocast"`` or ``"fp32"`` (with the requested setting)."""
    ran = "bf16 autocast" if uses_bf16(device, precision) else "fp32"
    return ran if precision != "auto" else f"{ran} (auto)"


#: glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def reuse_freed_memory() -> bool:
    """Make this process keep freed memory for reuse instead of handing it back to the OS.

    Why: glibc serves every allocation above its mmap threshold (at most 32 MiB) with fresh pages
    and unmaps them on ``free``, so each training step page-faults its large activations in again.
    On the 2-core reference CPU a 256×64×52×52 bf16 activation (translated MNIST, 88 MB) costs
    24 ms to ``clone`` that way and 8 ms from the heap; a whole training step gets 1.3-1.8× faster
    (``benchmarks/throughput.py``). The results are bitwise the same: only where memory comes
    from changes. The cost: the process keeps its peak heap until it exits.

    Process-wide, idempotent; :func:`stnlib.train.train` calls it for CPU runs. Returns ``False`` (and
    changes nothing) where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    # mallopt returns 1 on success; no mmap'd chunks, and never trim the heap top.
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
