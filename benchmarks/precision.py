"""Does bf16 autocast cost accuracy? The same short training in fp32 and in bf16, side by side.

Trains STN-C0 (default) on rotated MNIST with the quick profile's optimiser for a few epochs,
once in fp32 and once with bf16 autocast + channels_last, from the same seed and the same
batches, and prints test error (mean over the profile's test passes), orientation |r| and the
wall time of each. Both runs use the library's training loop with a modified copy of the
quick settings; the records go to a temporary folder, never to book/records.

    python benchmarks/precision.py                    # STN-C0, 3 epochs, about 5 minutes on 2 cores
    python benchmarks/precision.py --model stn-sl1 --epochs 2
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from stnlib import profiles, train

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="stn-c0")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)

    quick = profiles.PROFILES["quick"]
    base = quick.settings["mnist-rot"]
    per_epoch = 60_000 // base.batch_size
    its = args.epochs * per_epoch
    rows = []
    for precision, channels_last in (("fp32", False), ("bf16", True)):
        settings = dataclasses.replace(
            base, iterations=its, lr_milestones=(int(its * 2 / 3),), eval_every=per_epoch,
            precision=precision, channels_last=channels_last, checkpoint_every=its)
        profiles.PROFILES["quick"] = dataclasses.replace(
            quick, settings={**quick.settings, "mnist-rot": settings})
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            rec = train.train("mnist-rot", args.model, "quick", 0, device=args.device,
                              records_root=Path(tmp) / "records",
                              checkpoint_root=Path(tmp) / "ckpt", progress=False)
            wall = time.perf_counter() - t0
        m = rec["metrics"]
        rows.append((precision, 100 * m["test_error"], m.get("orientation", {}).get("abs_r"),
                     rec["provenance"]["train_images_per_s"], wall))
    profiles.PROFILES["quick"] = quick
    print(f"{args.model} on rotated MNIST, {args.epochs} epochs ({its} iterations), "
          f"quick-profile optimiser, seed 0, device {rec['provenance']['device']}")
    print(f"{'precision':10s} {'test error %':>13s} {'|r|':>6s} {'train img/s':>12s} {'wall s':>8s}")
    for p, err, r, ips, wall in rows:
        rs = f"{r:.3f}" if r is not None else "-"
        print(f"{p:10s} {err:13.2f} {rs:>6s} {ips:12.0f} {wall:8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
