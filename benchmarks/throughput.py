"""Training throughput of stnlib against a paper-style baseline, measured in one run.

Baseline (the authors' approach): a ``DataLoader`` whose workers rotate every image
separately with PIL (``torchvision.transforms.RandomRotation``), fp32, plain SGD.
stnlib: the data held as one tensor on the device, whole batches rotated with
``affine_grid``/``grid_sample``, channels_last, bf16 autocast on the CPU (AMP on CUDA), and on
the CPU glibc told to keep freed memory (:func:`stnlib.train.reuse_freed_memory`). The column
"stnlib, plain malloc" is stnlib without that last step, to show what it alone is worth.

Each measurement runs in its own process so that its peak memory (max RSS, or CUDA peak
allocation) is its own. Prints one table: img/s, ratio to the baseline, peak memory.

    python benchmarks/throughput.py                 # all rows, about 3.5 minutes on 2 cores
    python benchmarks/throughput.py --quick         # fewer iterations
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
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
                    device: str, width: float, reuse_memory: bool, q: mp.Queue) -> None:
    import torch

    from stnlib.data import get_task
    from stnlib.nn import build as build_model
    from stnlib.hardware import autocast, reuse_freed_memory
    from stnlib.train import loss_and_errors, to_channels_last

    if reuse_memory and not device.startswith("cuda"):
        reuse_freed_memory()
    torch.manual_seed(0)
    dev = torch.device(device)
    kw = {"width": width} if dataset == "svhn" else {}
    opts = {"source": "synthetic", "n_train": 2048, "n_test": 64} if dataset == "svhn" else {}
    net = build_model(model_name, dataset, **kw).to(dev)
    to_channels_last(net)
    task = get_task(dataset, "train", root=str(ROOT / "data"), device=dev,
                    channels_last=True, **opts)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator(device=dev).manual_seed(0)
    n = task.num_examples
    precision = "bf16"
    t0 = None
    for i in range(warmup + iters):
        if i == warmup:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        idx = torch.randint(0, n, (batch,), generator=torch.Generator().manual_seed(i)).to(dev)
        x, y, _ = task.raw_batch(idx, g)
        with autocast(dev, precision):
            logits = net(x)
        loss, _ = loss_and_errors(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    q.put((iters * batch / dt, _peak_mb(device)))


def _measure_baseline(dataset: str, model_name: str, iters: int, warmup: int, batch: int,
                      device: str, width: float, q: mp.Queue) -> None:
    import numpy as np
    import torch
    import torchvision.transforms as T
    from PIL import Image
    from torch.utils.data import DataLoader

    from stnlib.nn import build as build_model
    from stnlib.train import loss_and_errors

    torch.manual_seed(0)
    dev = torch.device(device)
    if dataset == "svhn":
        from stnlib.data.svhn import make_synthetic_svhn

        images, labels = make_synthetic_svhn(2048, seed=0)
        imgs = [Image.fromarray(np.ascontiguousarray(im.transpose(1, 2, 0))) for im in images]
        tf = T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.25,) * 3)])
        net = build_model(model_name, dataset, width=width).to(dev)
    else:
        from stnlib.data import mnist_arrays

        images, labels = mnist_arrays(train=True, root=str(ROOT / "data"))
        imgs = [Image.fromarray(im.numpy()) for im in images]
        tf = T.Compose([T.RandomRotation(90, interpolation=T.InterpolationMode.BILINEAR),
                        T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
        net = build_model(model_name, dataset).to(dev)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if _cuda() else "cpu")
    ap.add_argument("--quick", action="store_true", help="fewer iterations (noisier)")
    ap.add_argument("--datasets", nargs="+", choices=("mnist-rot", "svhn"), default=("mnist-rot", "svhn"),
                    help="measure only these rows")
    args = ap.parse_args(argv)
    mnist_iters, svhn_iters = (15, 3) if args.quick else (80, 6)
    rows = [("mnist-rot", m, mnist_iters, 256, 1.0) for m in ("cnn", "stn-c0", "stn-c1", "stn-sl1")]
    rows.append(("svhn", "stn-c0", svhn_iters, 128, 1.0))
    rows = [r for r in rows if r[0] in args.datasets]
    import torch

    print(f"device: {args.device}; torch {torch.__version__}; {os.cpu_count()} CPU cores")
    cpu = not args.device.startswith("cuda")
    print(f"{'dataset':10s} {'model':8s} {'batch':>5s} {'baseline img/s':>15s} "
          + (f"{'stnlib, plain malloc':>21s} " if cpu else "")
          + f"{'stnlib img/s':>13s} {'ratio':>6s} {'peak MB base':>13s} {'peak MB ours':>13s}")
    for dataset, model, iters, batch, width in rows:
        base, base_mem = _run(_measure_baseline, dataset, model, iters, 3, batch,
                              args.device, width)
        plain = ""
        if cpu:
            plain_ips, _ = _run(_measure_stnlib, dataset, model, iters, 3, batch,
                                args.device, width, False)
            plain = f"{plain_ips:21.0f} "
        ours, ours_mem = _run(_measure_stnlib, dataset, model, iters, 3, batch,
                              args.device, width, True)
        print(f"{dataset:10s} {model:8s} {batch:5d} {base:15.0f} {plain}{ours:13.0f} "
              f"{ours / base:6.2f} {base_mem:13.0f} {ours_mem:13.0f}", flush=True)
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    raise SystemExit(main())
