"""Train as much of the ``full`` profile as one short GPU window allows, resumably, and time packing.

One call (``benchmarks/gpu_full.sh`` on the GPU machine, about 9 minutes):

1. takes the previous window's output (``--prev``: ``checkpoints-*.tar`` and ``records.tar``) if any;
2. times STN-C0 on rotated MNIST a few hundred steps each way: the eager loop of
   :func:`stnlib.train.train` (one run), one run as a CUDA graph, and a pack of 3 seeds (graphed and
   eager): img/s per run and in all;
3. trains the runs that have no record yet, experiment by experiment (rotated MNIST's Table 1 column
   first: CNN, STN-C0, STN-C1, STN-SL1, STN-DL1 × seeds 0, 1, 2), one pack of seeds per model, all
   packs of an experiment interleaved on their own CUDA streams, until the deadline;
4. checkpoints what is unfinished and writes everything to ``--out`` as at most 8 flat files (what the
   device tool copies back): ``summary.json``, ``summary.txt``, ``records.tar`` (the finished runs'
   records, ``records/<profile>/<experiment>/<model>-seed<k>.json``), ``checkpoints-<i>.tar`` (the
   packs' checkpoints, ≤ 15 MiB each). ``gpu_full.sh`` adds ``log.txt`` (everything printed).

The deadline is hard: the budget counts from this script's start, training stops ``--reserve`` seconds
before it, and an interrupt (SIGINT or SIGTERM, e.g. from ``timeout``) checkpoints and writes the
output too. Every error is printed with its traceback; one failing pack does not stop the others.

``--dry-run`` runs the same code on the CPU with the smoke profile (the tests do so, in seconds).

    python benchmarks/gpu_full.py --out OUT [--prev PREV_OUT] [--budget 540]
    python benchmarks/gpu_full.py --dry-run --out /tmp/out --models cnn stn-c0 --seeds 0 1
    python benchmarks/gpu_full.py --prepare-carry .gpu-carry [--prev-from FETCHED_OUT]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: What the device tool copies back from $OUT: at most 8 files of at most 16 MiB.
MAX_FILES = 8
PART_BYTES = 15 * 2**20
#: The order in which the full profile is trained: Table 1 (rotated, then translated), Adam, SVHN.
DEFAULT_EXPERIMENTS = ("mnist-rot", "mnist-trans", "mnist-rot-adam", "svhn")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def log_error(what: str, err: BaseException) -> dict[str, str]:
    log(f"ERROR {what}: {type(err).__name__}: {err}")
    print(traceback.format_exc(), flush=True)
    return {"what": what, "error": f"{type(err).__name__}: {err}"}


class Interrupted(Exception):
    """SIGTERM, turned into an exception so that the run checkpoints and writes its output."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Interrupted(f"signal {signum}")


# ---------------------------------------------------------------------------------------
# the previous window's output, and this one's


def _safe_members(tar: tarfile.TarFile, tops: tuple[str, ...]) -> list[tarfile.TarInfo]:
    out = []
    for m in tar.getmembers():
        parts = Path(m.name).parts
        if m.name.startswith("/") or ".." in parts or not parts or parts[0] not in tops:
            raise ValueError(f"{tar.name}: unexpected member {m.name!r} (expected paths under {tops})")
        if not (m.isfile() or m.isdir()):
            raise ValueError(f"{tar.name}: member {m.name!r} is not a plain file or folder")
        out.append(m)
    return out


def import_previous(prev: Path, work: Path) -> list[str]:
    """Unpack a previous window's ``records.tar`` and ``checkpoints-*.tar`` into ``work``."""
    found = []
    for name in sorted(p.name for p in prev.glob("*.tar")):
        if name != "records.tar" and not name.startswith("checkpoints-"):
            continue
        with tarfile.open(prev / name) as tar:
            members = _safe_members(tar, ("records", "checkpoints"))
            tar.extractall(work, members=members)
        found.append(name)
    return found


def bundle(work: Path, out: Path, *, reserved: int) -> list[str]:
    """Write ``records.tar`` and as many ``checkpoints-<i>.tar`` (≤ :data:`PART_BYTES`) as needed."""
    written = []
    recs = sorted(p for p in (work / "records").rglob("*.json")) if (work / "records").exists() else []
    with tarfile.open(out / "records.tar", "w") as tar:
        for p in recs:
            tar.add(p, arcname=str(p.relative_to(work)))
    written.append("records.tar")
    ckpts = sorted(p for p in (work / "checkpoints").rglob("*.pt")
                   if not p.name.endswith("-final.pt")) if (work / "checkpoints").exists() else []
    parts: list[list[Path]] = []
    size = PART_BYTES + 1
    for p in ckpts:
        n = p.stat().st_size
        if size + n > PART_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(p)
        size += n
    room = MAX_FILES - reserved - len(written)
    if len(parts) > room:
        raise RuntimeError(f"{len(ckpts)} checkpoints need {len(parts)} files of ≤ {PART_BYTES >> 20} MiB, "
                           f"but only {room} more files come back from $OUT")
    for i, group in enumerate(parts):
        name = f"checkpoints-{i}.tar"
        with tarfile.open(out / name, "w") as tar:
            for p in group:
                tar.add(p, arcname=str(p.relative_to(work)))
        written.append(name)
    return written


# ---------------------------------------------------------------------------------------
# timing


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_separate(experiment: str, model: str, profile: str, steps: int, warmup: int, device: Any) -> float:
    """img/s of the eager loop of :func:`stnlib.train.train` (one run; the loss read every step)."""
    import torch

    from stnlib.profiles import settings_for
    from stnlib.train import make_network, mix_seed, to_channels_last, train_step, training_batch
    from stnlib.train.config import make_tasks
    from stnlib.train.state import TrainState

    s = settings_for(profile, experiment)
    from stnlib.train.config import build_config

    dataset = build_config(experiment, model, profile, 0)["dataset"]
    torch.manual_seed(mix_seed(0, 0))
    net = make_network(model, dataset, s).to(device)
    if s.channels_last:
        to_channels_last(net)
    task, _ = make_tasks(dataset, s, device, None)
    state = TrainState.start(net, s)
    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        x, y = training_batch(task, s, 0, i, device)
        torch.manual_seed(mix_seed(0, 3, i))
        train_step(state, x, y, device=device, precision=s.precision)
    _sync(device)
    return steps * s.batch_size / (time.perf_counter() - t0)


def time_packed(experiment: str, model: str, profile: str, seeds: tuple[int, ...], steps: int, warmup: int,
                device: Any, graphs: bool, scratch: Path) -> tuple[float, str]:
    """img/s in all of a pack (``graphs``: one CUDA graph per step), and the engine that ran."""
    from stnlib.train.packed import PackedRun

    run = PackedRun(experiment, model, profile, seeds, device=device, graphs=graphs, resume=False,
                    progress=False, records_root=scratch / "records", checkpoint_root=scratch / "checkpoints",
                    read_every=10**9)
    s = run.settings
    steps = min(steps, s.iterations - warmup - 1)
    for _ in range(warmup):
        run.step()
    run._wait()
    t0 = time.perf_counter()
    for _ in range(steps):
        run.step()
    run._wait()
    return steps * len(seeds) * s.batch_size / (time.perf_counter() - t0), run.engine


def timings(args: argparse.Namespace, device: Any, scratch: Path, deadline: float) -> list[dict[str, Any]]:
    """Each way of training STN-C0 for a few hundred steps (a timing that fails is logged and skipped)."""
    exp, model, k = args.timing_experiment, args.timing_model, args.timing_pack
    seeds = tuple(range(k))
    rows: list[dict[str, Any]] = []
    plans: list[tuple[str, int, Any]] = [
        ("separate, eager loop (stnlib.train.train)", 1,
         lambda: (time_separate(exp, model, args.profile, args.timing_steps, args.timing_warmup, device), "eager")),
    ]
    if device.type == "cuda" and args.use_graphs is not False:
        plans.append(("one run, CUDA graph", 1, lambda: time_packed(
            exp, model, args.profile, (0,), args.timing_steps, args.timing_warmup, device, True, scratch / "t1")))
        plans.append((f"pack of {k}, CUDA graph", k, lambda: time_packed(
            exp, model, args.profile, seeds, args.timing_steps, args.timing_warmup, device, True, scratch / "tk")))
    plans.append((f"pack of {k}, eager", k, lambda: time_packed(
        exp, model, args.profile, seeds, args.timing_steps, args.timing_warmup, device, False, scratch / "te")))
    for what, runs, fn in plans:
        if time.monotonic() > deadline:
            log(f"timing: skipped {what!r} (the timing budget is spent)")
            continue
        try:
            total, engine = fn()
            rows.append({"what": what, "experiment": exp, "model": model, "runs": runs, "engine": engine,
                         "img_s_total": round(total, 1), "img_s_per_run": round(total / runs, 1)})
            log(f"timing: {what}: {total:,.0f} img/s in all, {total / runs:,.0f} per run ({engine})")
        except Exception as err:  # noqa: BLE001 - a timing must not stop the training
            rows.append({"what": what, **log_error(f"timing {what}", err)})
    return rows


# ---------------------------------------------------------------------------------------
# training


def plan_packs(args: argparse.Namespace, work: Path) -> list[tuple[str, str, tuple[int, ...]]]:
    """(experiment, model, seeds without a record) in training order; finished runs are skipped."""
    from stnlib import records
    from stnlib.profiles import EXPERIMENTS
    from stnlib.train import build_config

    packs = []
    for exp in args.experiments:
        models = args.models or EXPERIMENTS[exp]["models"]
        for model in models:
            if model not in EXPERIMENTS[exp]["models"]:
                continue
            todo = []
            for seed in args.seeds:
                h = records.config_hash(build_config(exp, model, args.profile, seed))
                try:
                    rec = records.load_record(exp, model, args.profile, seed, expected_hash=h, root=work / "records")
                except records.RecordError as err:
                    log_error(f"{exp}/{model} seed {seed}: unreadable record, trained again", err)
                    rec = None
                if rec is None:
                    todo.append(seed)
                else:
                    log(f"{exp}/{model} seed {seed}: record exists ({rec['status']}), skipped")
            if todo:
                packs.append((exp, model, tuple(todo)))
    return packs


def train_window(args: argparse.Namespace, device: Any, work: Path, deadline: float,
                 report: dict[str, Any]) -> None:
    """Interleave the packs of one experiment at a time until all are done or the deadline passes."""
    from stnlib.train import TrainingDiverged
    from stnlib.train.packed import PackedRun

    queue = plan_packs(args, work)
    report["planned"] = [{"experiment": e, "model": m, "seeds": list(s)} for e, m, s in queue]
    runs = report["runs"]
    rounds = 0
    while queue and time.monotonic() < deadline:
        exp = queue[0][0]
        batch = [p for p in queue if p[0] == exp][:args.concurrent]
        queue = [p for p in queue if p not in batch]
        active: list[tuple[PackedRun, dict[str, Any]]] = []
        tasks = None
        for e, m, seeds in batch:
            entry: dict[str, Any] = {"experiment": e, "model": m, "seeds": list(seeds)}
            runs.append(entry)
            try:
                run = PackedRun(e, m, args.profile, seeds, device=device, progress=False, tasks=tasks,
                                records_root=work / "records", checkpoint_root=work / "checkpoints",
                                read_every=args.read_every, graphs=args.use_graphs)
                tasks = (run.train_task, run.test_task)
                run.provenance_extra = {"concurrent_packs": len(batch), "driver": "benchmarks/gpu_full.py"}
                entry.update(start_iteration=run.state.iteration, iterations=run.settings.iterations,
                             resumed_from=run.resumed_from, batch_size=run.settings.batch_size)
                log(f"{e}/{m} seeds {list(seeds)}: from iteration {run.state.iteration} of "
                    f"{run.settings.iterations}" + (f" (resumed: {run.resumed_from})" if run.resumed_from else ""))
                active.append((run, entry))
            except Exception as err:  # noqa: BLE001
                entry.update(log_error(f"setting up {e}/{m}", err))
        t_start = time.perf_counter()
        for _, entry in active:
            entry["t_start"] = t_start
        next_note = time.monotonic() + args.note_every
        try:
            while active and time.monotonic() < deadline:
                if time.monotonic() >= next_note:
                    next_note += args.note_every
                    log("queued: " + ", ".join(f"{r.model} {r.state.iteration}" for r, _ in active)
                        + f" of {active[0][0].settings.iterations}; {deadline - time.monotonic():.0f} s to the deadline")
                if args.max_rounds is not None and rounds >= args.max_rounds:
                    log(f"stopping after {rounds} rounds (--max-rounds)")
                    deadline = time.monotonic()  # as if the time were up: checkpoint below
                    break
                rounds += 1
                for run, entry in list(active):
                    try:
                        run.step()
                        if run.done:
                            _close(run, entry, t_start)
                            entry["records"] = [r["config_hash"] for r in run.finish()]
                            entry["done"] = True
                            log(f"{run.experiment}/{run.model}: done, {len(entry['records'])} records")
                            active.remove((run, entry))
                    except TrainingDiverged as err:
                        entry.update(log_error(f"{run.experiment}/{run.model} diverged", err))
                        active.remove((run, entry))
                    except Exception as err:  # noqa: BLE001 - one pack's failure must not stop the others
                        entry.update(log_error(f"training {run.experiment}/{run.model}", err))
                        _checkpoint(run, entry)
                        active.remove((run, entry))
        finally:
            for run, entry in active:  # the deadline, or an interrupt: keep what was trained
                _checkpoint(run, entry)
                _close(run, entry, t_start)
    report["rounds"] = rounds
    report["unstarted"] = [{"experiment": e, "model": m, "seeds": list(s)} for e, m, s in queue]


def _checkpoint(run: Any, entry: dict[str, Any]) -> None:
    try:
        if run.state.iteration > run.start_iteration and not run.state.in_update:
            run.read()
            entry["checkpoint"] = str(run.checkpoint())
    except Exception as err:  # noqa: BLE001
        entry.update(log_error(f"checkpointing {run.experiment}/{run.model}", err))


def _close(run: Any, entry: dict[str, Any], t_start: float) -> None:
    run._wait()
    wall = time.perf_counter() - t_start
    steps = run.state.iteration - run.start_iteration
    images = steps * run.settings.batch_size * run.state.k
    entry.update(end_iteration=run.state.iteration, steps=steps, wall_s=round(wall, 2), engine=run.engine,
                 img_s_pack=round(images / max(wall, 1e-9), 1),
                 img_s_per_run=round(images / max(wall, 1e-9) / run.state.k, 1),
                 failed={run.seeds[k]: msg for k, msg in run.state.failed.items()})


# ---------------------------------------------------------------------------------------
# the carry folder for the next call


def prepare_carry(carry: Path, prev_from: Path | None) -> None:
    """Fill ``carry`` (an ignored folder of the repo) with gzipped MNIST and the previous output."""
    from stnlib.data import ensure_mnist

    carry = carry.resolve()  # relative to the working directory, which may be the repository root or not
    raw = ensure_mnist(None)
    (carry / "mnist").mkdir(parents=True, exist_ok=True)
    for f in sorted(raw.glob("*-ubyte")):
        target = carry / "mnist" / (f.name + ".gz")
        if not target.exists():
            with open(f, "rb") as src, gzip.open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    if prev_from is not None:
        prev = carry / "prev"
        shutil.rmtree(prev, ignore_errors=True)
        prev.mkdir(parents=True)
        for f in sorted(prev_from.glob("*.tar")):
            shutil.copy2(f, prev / f.name)
    try:
        exclude = Path(subprocess.run(["git", "rev-parse", "--git-path", "info/exclude"], cwd=ROOT, check=True,
                                      capture_output=True, text=True).stdout.strip())
        exclude = exclude if exclude.is_absolute() else ROOT / exclude
        line = f"/{carry.resolve().relative_to(ROOT)}/"
        if line not in (exclude.read_text().split() if exclude.exists() else []):
            exclude.parent.mkdir(parents=True, exist_ok=True)
            with open(exclude, "a") as f:
                f.write(f"\n{line}\n")
            print(f"added {line} to {exclude} (carry needs an ignored path)")
    except (OSError, ValueError, subprocess.SubprocessError) as err:
        print(f"could not add {carry} to .git/info/exclude ({err}); add it by hand")
    total = sum(p.stat().st_size for p in carry.rglob("*") if p.is_file())
    print(f"{carry}: {total / 2**20:.1f} MiB; run with carry=[{str(carry.relative_to(ROOT))!r}]")


# ---------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-full-out")),
                    help="where the ≤ 8 output files go (default: $OUT)")
    ap.add_argument("--prev", type=Path, default=None, help="a previous window's output, to resume from")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--profile", default="full")
    ap.add_argument("--experiments", nargs="+", default=list(DEFAULT_EXPERIMENTS))
    ap.add_argument("--models", nargs="+", default=None, help="only these models (default: each experiment's)")
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="default: the profile's seeds")
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument("--budget", type=float, default=540.0, help="seconds from the start to the last output")
    ap.add_argument("--reserve", type=float, default=45.0,
                    help="seconds kept after training for the last checkpoints, records and tar files")
    ap.add_argument("--concurrent", type=int, default=5, help="packs interleaved at once (each on a CUDA stream)")
    ap.add_argument("--read-every", type=int, default=None, help="steps between reads of the loss and NaN flags")
    ap.add_argument("--graphs", choices=("auto", "on", "off"), default="auto",
                    help="CUDA graphs for the packed steps (auto: on CUDA)")
    ap.add_argument("--note-every", type=float, default=30.0, help="seconds between progress lines")
    ap.add_argument("--timing-steps", type=int, default=300)
    ap.add_argument("--timing-warmup", type=int, default=20)
    ap.add_argument("--timing-budget", type=float, default=75.0, help="seconds at most for the timings")
    ap.add_argument("--timing-experiment", default="mnist-rot")
    ap.add_argument("--timing-model", default="stn-c0")
    ap.add_argument("--timing-pack", type=int, default=3)
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--max-rounds", type=int, default=None, help="stop training after this many rounds (tests)")
    ap.add_argument("--dry-run", action="store_true",
                    help="CPU, smoke profile, a few timing steps: the same code path, in seconds")
    ap.add_argument("--prepare-carry", type=Path, default=None, metavar="DIR",
                    help="only fill DIR with gzipped MNIST (and --prev-from's tar files) for the next call")
    ap.add_argument("--prev-from", type=Path, default=None)
    args = ap.parse_args(argv)
    args.use_graphs = {"auto": None, "on": True, "off": False}[args.graphs]
    if args.dry_run:
        args.device = args.device or "cpu"
        args.profile = "smoke" if args.profile == "full" else args.profile
        args.timing_steps, args.timing_warmup = min(args.timing_steps, 2), min(args.timing_warmup, 1)
        args.timing_pack = min(args.timing_pack, 2)
    from stnlib.profiles import EXPERIMENTS, get_profile

    prof = get_profile(args.profile)
    unknown = [e for e in args.experiments if e not in EXPERIMENTS]
    if unknown:
        ap.error(f"unknown experiment(s) {unknown}; valid: {', '.join(EXPERIMENTS)}")
    args.seeds = list(args.seeds if args.seeds is not None else prof.seeds)
    return args


def main(argv: list[str] | None = None) -> int:
    t_begin = time.monotonic()
    args = parse(argv)
    if args.prepare_carry is not None:
        prepare_carry(args.prepare_carry, args.prev_from)
        return 0
    import torch

    from stnlib.hardware import device_name, resolve_device

    deadline = t_begin + args.budget - args.reserve
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-full-"))
    work.mkdir(parents=True, exist_ok=True)
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    report: dict[str, Any] = {"schema": "stnlib.gpu-full/1", "argv": sys.argv[1:] if argv is None else argv,
                              "profile": args.profile, "budget_s": args.budget, "reserve_s": args.reserve,
                              "errors": [], "runs": [], "timing": []}
    status = 0
    try:
        device = resolve_device(args.device)
        report.update(device=device_name(device), torch=torch.__version__, work=str(work))
        log(f"{report['device']}; torch {torch.__version__}; profile {args.profile}; budget {args.budget:.0f} s")
        if args.prev is not None and args.prev.exists():
            report["imported"] = import_previous(args.prev, work)
            log(f"imported {report['imported']} from {args.prev}")
        if not args.no_timing:
            timing_deadline = min(deadline, time.monotonic() + args.timing_budget)
            report["timing"] = timings(args, device, work / "timing-scratch", timing_deadline)
            shutil.rmtree(work / "timing-scratch", ignore_errors=True)
        t_train = time.monotonic()
        train_window(args, device, work, deadline, report)
        report["train_wall_s"] = round(time.monotonic() - t_train, 1)
    except (KeyboardInterrupt, Interrupted) as err:
        report["errors"].append(log_error("interrupted (checkpoints were written)", err))
        status = 130
    except Exception as err:  # noqa: BLE001 - still write what there is
        report["errors"].append(log_error("gpu_full", err))
        status = 1
    finally:
        signal.signal(signal.SIGTERM, old_term)
        status = max(status, write_output(args, work, report, t_begin))
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return status


def write_output(args: argparse.Namespace, work: Path, report: dict[str, Any], t_begin: float) -> int:
    status = 0
    try:
        report["files"] = bundle(work, args.out, reserved=3)  # summary.json, summary.txt, log.txt
    except Exception as err:  # noqa: BLE001
        report["errors"].append(log_error("writing the tar files", err))
        status = 1
    runs = [r for r in report["runs"] if "img_s_pack" in r]
    if runs and report.get("train_wall_s"):
        images = sum(r["steps"] * r["batch_size"] * len(r["seeds"]) for r in runs)
        report["aggregate_img_s"] = round(images / report["train_wall_s"], 1)  # over the whole training phase
    report["total_wall_s"] = round(time.monotonic() - t_begin, 1)
    (args.out / "summary.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (args.out / "summary.txt").write_text(summary_text(report))
    log(f"wrote {args.out} ({', '.join(report.get('files', []))}, summary.json, summary.txt) "
        f"after {report['total_wall_s']} s")
    return status


def summary_text(report: dict[str, Any]) -> str:
    lines = [f"gpu_full: {report.get('device', '?')}, torch {report.get('torch', '?')}, profile "
             f"{report['profile']}, {report.get('total_wall_s', '?')} s of a {report['budget_s']:.0f} s budget", ""]
    if report["timing"]:
        lines.append("Timing (img/s):")
        for t in report["timing"]:
            if "img_s_total" in t:
                lines.append(f"  {t['what']:40s} {t['img_s_total']:>10,.0f} in all  {t['img_s_per_run']:>10,.0f} per run")
            else:
                lines.append(f"  {t['what']:40s} failed: {t.get('error')}")
        lines.append("")
    lines.append("Training:")
    for r in report["runs"]:
        head = f"  {r['experiment']}/{r['model']} seeds {r['seeds']}"
        if "end_iteration" in r:
            lines.append(f"{head}: iterations {r['start_iteration']} -> {r['end_iteration']} of {r['iterations']}"
                         f"{' (done)' if r.get('done') else ''}, {r['img_s_pack']:,.0f} img/s for the pack "
                         f"({r['img_s_per_run']:,.0f} per run), {r['engine']}")
        if "error" in r:
            lines.append(f"{head}: ERROR {r['error']}")
    if "aggregate_img_s" in report:
        lines.append(f"  aggregate: {report['aggregate_img_s']:,.0f} img/s")
    for u in report.get("unstarted", []):
        lines.append(f"  not started: {u['experiment']}/{u['model']} seeds {u['seeds']}")
    for e in report["errors"]:
        lines.append(f"ERROR {e['what']}: {e['error']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
