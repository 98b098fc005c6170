"""Training throughput of stnlib against a paper-style baseline, measured in one run.

Baseline (the authors' approach): a ``DataLoader`` whose workers rotate every image
separately with PIL (``torchvision.transforms.RandomRotation``), fp32, plain SGD.
stnlib: its own training step (``train.training_batch`` and ``train.train_step``) on the data held
as one tensor, whole batches rotated with ``affine_grid``/``grid_sample``, channels_last, under
the quick profile's settings, once in fp32 and once with bf16 autocast where the CPU computes bf16
natively (AVX512-BF16 or AMX). The ratio compares what the quick profile's ``precision="auto"``
picks on this CPU with the baseline. ``--emulate-avx2`` measures every row again as an AVX2-only CPU
would run it (ATen and oneDNN limited to AVX2), where ``auto`` means fp32.

Each measurement runs in its own process so that its peak memory (max RSS, or CUDA peak
allocation) is its own. Prints the CPU capability, then one table per capability: img/s of the
baseline, of stnlib in fp32 and bf16, the ratio, peak memory.

    python benchmarks/throughput.py                 # about 4 minutes on 2 idle cores
    python benchmarks/throughput.py --emulate-avx2  # and as an AVX2-only CPU: about 8 minutes
    python benchmarks/throughput.py --quick         # fewer iterations (noisier)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _peak_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _measure_stnlib(dataset: str, model_name: str, iters: int, warmup: int, batch: int,
                    device: str, precision: str, q: mp.Queue) -> None:
    """stnlib's own training step (``train.training_batch`` + ``train.train_step``) under the quick
    profile's settings for ``dataset``, with ``precision`` in place of the profile's."""
    import dataclasses

    import torch

    from stnlib.hardware import reuse_freed_memory
    from stnlib.profiles import settings_for
    from stnlib.train import TrainState, make_network, to_channels_last, train_step, training_batch
    from stnlib.train.config import make_tasks

    experiment = "svhn" if dataset == "svhn" else dataset
    s = dataclasses.replace(settings_for("quick", experiment), batch_size=batch, precision=precision,
                            **({"svhn_source": "synthetic", "svhn_n_train": 2048, "svhn_n_test": 64}
                               if dataset == "svhn" else {}))
    dev = torch.device(device)
    if dev.type == "cpu":
        reuse_freed_memory()  # as stnlib.train does
    torch.manual_seed(0)
    net = make_network(model_name, dataset, s).to(dev)
    if s.channels_last:
        to_channels_last(net)
    task, _ = make_tasks(dataset, s, dev, str(ROOT / "data"))
    state = TrainState.start(net, s)
    t0 = None
    for i in range(warmup + iters):
        if i == warmup:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        x, y = training_batch(task, s, 0, i, dev)
        train_step(state, x, y, device=dev, precision=s.precision)  # reads the loss: one sync per step
    dt = time.perf_counter() - t0
    q.put((iters * batch / dt, _peak_mb(device)))


def _measure_baseline(dataset: str, model_name: str, iters: int, warmup: int, batch: int,
                      device: str, q: mp.Queue) -> None:
    """The paper-style pipeline on the same network (the quick profile's width and dropout on SVHN)."""
    import numpy as np
    import torch
    import torchvision.transforms as T
    from PIL import Image
    from torch.utils.data import DataLoader

    from stnlib.profiles import settings_for
    from stnlib.train import loss_and_errors, make_network

    torch.manual_seed(0)
    dev = torch.device(device)
    if dataset == "svhn":
        from stnlib.data.svhn import make_synthetic_svhn

        images, labels = make_synthetic_svhn(2048, seed=0)
        imgs = [Image.fromarray(np.ascontiguousarray(im.transpose(1, 2, 0))) for im in images]
        tf = T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.25,) * 3)])
        net = make_network(model_name, dataset, settings_for("quick", "svhn")).to(dev)
    else:
        from stnlib.data import mnist_arrays

        images, labels = mnist_arrays(train=True, root=str(ROOT / "data"))
        imgs = [Image.fromarray(im.numpy()) for im in images]
        tf = T.Compose([T.RandomRotation(90, interpolation=T.InterpolationMode.BILINEAR),
                        T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
        net = make_network(model_name, dataset, settings_for("quick", dataset)).to(dev)
    from stnlib.nn.layers import SingleChannelConv2d

    for m in net.modules():  # the authors' network: plain nn.Conv2d gradients throughout
        if isinstance(m, SingleChannelConv2d):
            m.fast_input_grad = False
    labels = torch.as_tensor(np.asarray(labels))

    loader = DataLoader(PerSample(imgs, labels, tf), batch_size=batch, shuffle=True, num_workers=2,
                        drop_last=True, persistent_workers=True)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    it = iter(loader)
    t0 = None
    for i in range(warmup + iters):
        if i == warmup:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            x, y = next(it)
        x, y = x.to(dev), y.to(dev)
        logits = net(x)
        loss, _ = loss_and_errors(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    q.put((iters * batch / dt, _peak_mb(device)))


class PerSample:
    """The paper-style dataset: one PIL image transformed at a time in the loader workers.

    Module level so that DataLoader workers (spawned processes) can pickle it."""

    def __init__(self, imgs, labels, tf) -> None:
        self.imgs, self.labels, self.tf = imgs, labels, tf

    def __len__(self) -> int:
        return len(self.imgs)

    def __getitem__(self, i: int):
        return self.tf(self.imgs[i]), self.labels[i]


def _run(fn, *args) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out




def _capability(env: dict[str, str]) -> tuple[str, bool]:
    """The CPU capability a process started with ``env`` sees, and whether it computes bf16 natively."""
    code = ("from stnlib.hardware import cpu_capability as c; print(c().describe()); print(c().native_bf16)")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout.splitlines()
    return out[0], out[1] == "True"


def _table(args, rows, env: dict[str, str]) -> None:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the spawned measuring processes read it at start-up
    try:
        cpu = not args.device.startswith("cuda")
        described, native = _capability(env) if cpu else ("cuda", True)
        print(f"\n{'CPU' if cpu else 'device'}: {described}" + (" [emulated: " + ", ".join(
            f"{k}={v}" for k, v in env.items()) + "]" if env else ""))
        auto = "bf16" if native else "fp32"
        print(f"quick profile's precision 'auto' here: {auto}" + ("" if native else " (bf16 would be emulated)"))
        print(f"{'dataset':10s} {'model':8s} {'batch':>5s} {'baseline':>9s} {'fp32':>7s} {'bf16':>7s} "
              f"{'ratio':>6s} {'peak MB base':>13s} {'peak MB ours':>13s}   (img/s; ratio: 'auto' / baseline)")
        for dataset, model, iters, batch in rows:
            base, base_mem = _run(_measure_baseline, dataset, model, iters, 3, batch, args.device)
            fp32, fp32_mem = _run(_measure_stnlib, dataset, model, iters, 3, batch, args.device, "fp32")
            bf16, bf16_mem = (_run(_measure_stnlib, dataset, model, iters, 3, batch, args.device, "bf16")
                              if native or args.all_precisions else (float("nan"), float("nan")))
            ours, mem = (bf16, bf16_mem) if auto == "bf16" else (fp32, fp32_mem)
            print(f"{dataset:10s} {model:8s} {batch:5d} {base:9.0f} {fp32:7.0f} "
                  + (f"{bf16:7.0f}" if bf16 == bf16 else f"{'—':>7s}")
                  + f" {ours / base:6.2f} {base_mem:13.0f} {mem:13.0f}", flush=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv: list[str] | None = None) -> int:
    from stnlib.hardware import AVX2_EMULATION

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if _cuda() else "cpu")
    ap.add_argument("--quick", action="store_true", help="fewer iterations (noisier)")
    ap.add_argument("--datasets", nargs="+", choices=("mnist-rot", "svhn"), default=("mnist-rot", "svhn"),
                    help="measure only these rows")
    ap.add_argument("--emulate-avx2", action="store_true",
                    help="also measure every row as on an AVX2-only CPU (" + ", ".join(
                        f"{k}={v}" for k, v in AVX2_EMULATION.items()) + ")")
    ap.add_argument("--all-precisions", action="store_true",
                    help="measure bf16 autocast also where it is emulated (slow)")
    args = ap.parse_args(argv)
    mnist_iters, svhn_iters = (10, 2) if args.quick else (40, 5)
    rows = [("mnist-rot", m, mnist_iters, 256) for m in ("cnn", "stn-c0", "stn-c1", "stn-sl1")]
    rows.append(("svhn", "stn-c0", svhn_iters, 128))
    rows = [r for r in rows if r[0] in args.datasets]
    import torch

    start = time.perf_counter()
    print(f"device: {args.device}; torch {torch.__version__}; {os.cpu_count()} CPU cores; {torch.get_num_threads()} "
          "threads; baseline: per-sample PIL rotation in 2 DataLoader workers, fp32; stnlib: its training step")
    _table(args, rows, {})
    if args.emulate_avx2 and not args.device.startswith("cuda"):
        _table(args, rows, AVX2_EMULATION)
    print(f"\nmeasured in {time.perf_counter() - start:.0f} s")
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    raise SystemExit(main())
