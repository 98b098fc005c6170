"""Try a variant of a quick-profile schedule and print what it gives (for sizing profiles).

Trains one model of one experiment with the library's training loop under a modified copy of
the quick settings (length in epochs, learning-rate milestones, localisation learning-rate
multiplier, base learning rate), records into a temporary folder (with ``--keep TAG``: into
``book/records/calibration/TAG``, where the chapters read calibration runs), and prints one JSON line: final test error, orientation statistics, the learning curve of
test error and |r|, throughput and wall time. Used to choose the ``quick`` settings; the
profile's comments cite what it measured.

    python benchmarks/calibrate.py mnist-trans stn-sl1 --epochs 10 --milestones 7 9
    python benchmarks/calibrate.py mnist-trans stn-c0 --epochs 6 --loc-lr 0.1 --device cuda
    python benchmarks/calibrate.py mnist-trans cnn --epochs 16 --milestones 10 12 --keep trans_e16

The variant starts from the profile's current schedule, never from a pinned one (see ``Pinned``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def install_variant(profile: str, experiment: str, settings) -> None:
    """Make ``settings`` the schedule of every model of ``experiment`` in ``profile`` (this process only).

    The experiment's pins go too: a pinned model would otherwise keep its own settings.
    """
    from stnlib import profiles

    prof = profiles.get_profile(profile)
    profiles.PROFILES[profile] = dataclasses.replace(
        prof, settings={**prof.settings, experiment: settings},
        pinned={e: p for e, p in prof.pinned.items() if e != experiment})


def main(argv: list[str] | None = None) -> int:
    from stnlib import profiles, train
    from stnlib.report.calibration import calibration_root

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("experiment", choices=[e for e in profiles.EXPERIMENTS if e.startswith("mnist")])
    ap.add_argument("model")
    ap.add_argument("--epochs", type=float, required=True)
    ap.add_argument("--milestones", type=float, nargs="*", default=None,
                    help="epochs after which the learning rate is divided by 10 (default: 2/3 and 5/6)")
    ap.add_argument("--loc-lr", type=float, default=None, help="localisation learning-rate multiplier")
    ap.add_argument("--lr", type=float, default=None, help="base learning rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", default="quick", help="the profile whose settings are varied")
    ap.add_argument("--device", default=None)
    ap.add_argument("--keep", metavar="TAG", default=None,
                    help="store the record under book/records/calibration/TAG instead of a temporary folder")
    args = ap.parse_args(argv)
    if args.keep is not None and not args.keep.replace("_", "").replace("-", "").isalnum():
        ap.error(f"--keep {args.keep!r}: a tag is letters, digits, '_' and '-'")

    quick = profiles.get_profile(args.profile)
    base = quick.settings[args.experiment]
    per_epoch = 60_000 // base.batch_size
    milestones = args.milestones
    if milestones is None:
        milestones = [round(args.epochs * 2 / 3), round(args.epochs * 5 / 6)]
    iterations = max(1, round(args.epochs * per_epoch))
    changes = {
        "iterations": iterations,
        "lr_milestones": tuple(round(m * per_epoch) for m in milestones),
        "eval_every": min(per_epoch, iterations),
        "checkpoint_every": iterations,
    }
    if args.loc_lr is not None:
        changes["loc_lr_multiplier"] = args.loc_lr
    if args.lr is not None:
        changes["lr"] = args.lr
    settings = dataclasses.replace(base, **changes)
    install_variant(args.profile, args.experiment, settings)
    with tempfile.TemporaryDirectory() as tmp:
        kept = None if args.keep is None else calibration_root() / args.keep
        t0 = time.perf_counter()
        rec = train.train(args.experiment, args.model, args.profile, args.seed, device=args.device,
                          records_root=kept or Path(tmp) / "records", checkpoint_root=Path(tmp) / "ckpt",
                          progress=False)
        wall = time.perf_counter() - t0
    m = rec["metrics"]
    orientation = m.get("orientation") or {}
    curves = rec["curves"]
    out = {
        "experiment": args.experiment,
        "model": args.model,
        "epochs": args.epochs,
        "milestones": milestones,
        "loc_lr_multiplier": settings.loc_lr_multiplier,
        "lr": settings.lr,
        "seed": args.seed,
        "test_error_pct": round(100 * m["test_error"], 3),
        "abs_r": orientation.get("abs_r"),
        "slope": orientation.get("slope"),
        "curve_test_error_pct": [round(100 * e, 2) for e in curves["test_error"]],
        "curve_abs_r": [None if o is None else round(o["abs_r"], 3)
                        for o in curves.get("orientation") or []],
        "train_images_per_s": rec["provenance"]["train_images_per_s"],
        "wall_s": round(wall, 1),
        "device": rec["provenance"]["device"],
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
