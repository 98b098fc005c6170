"""Launchers: run a list of runs in this process, as parallel local processes, or as a SLURM job array.

* ``inline``: one after the other in this process (what ``python -m stnlib sweep`` always did).
* ``local``: each run a process on this machine, at most ``jobs`` at once
  (``submitit.AutoExecutor(cluster="local")``): a laptop or a GPU box.
* ``slurm``: one SLURM job array, one task per run (``submitit.AutoExecutor(cluster="slurm")``), with
  a time limit, GPUs, CPUs, memory and partition per task.

Every launcher is idempotent: a run whose record is stored, complete and made with the current config
(:meth:`stnlib.runs.RunSpec.stored`) is not run again, so rerunning a finished sweep submits nothing.

Each submitted task is a :class:`TrainRun`, a ``submitit.helpers.Checkpointable``: when SLURM preempts
it or its time limit nears (submitit's ``USR2`` handler), submitit requeues it, and the requeued task
calls :func:`stnlib.runs.train_or_load` again, which resumes from the run's last checkpoint under the
checkpoints root. Records are written atomically by the training loop, so a task killed at any moment
leaves either no record or a whole one.

:func:`launch` waits for every task and returns a :class:`SweepResult`: per run its record or its
failure. A failure of a submitted task names the run, the job id and the job's log file, with the tail
of that log; the others still finish.
"""

from __future__ import annotations

import heapq
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import submitit

from stnlib.paths import checkpoints_root, data_root, records_root
from stnlib.runs import Estimate, RunSpec, train_or_load

LAUNCHERS: tuple[str, ...] = ("inline", "local", "slurm")
#: Lines of a failed job's stderr quoted in its error.
LOG_TAIL_LINES = 15
#: How often to look for finished jobs (result files are checked each time; submitit spaces its sacct calls).
POLL_S = 2.0


class LaunchError(RuntimeError):
    """The scheduler refused a submission (e.g. sbatch rejected a resource request)."""


def check_launcher(name: str) -> str:
    """``name`` if it is a launcher; a ``ValueError`` naming it and the valid choices otherwise."""
    if name not in LAUNCHERS:
        raise ValueError(f"unknown launcher {name!r}; valid launchers: {', '.join(LAUNCHERS)}")
    if name == "slurm" and shutil.which("sbatch") is None:
        raise ValueError("launcher 'slurm' needs SLURM's sbatch, which is not on PATH on this machine; "
                         "run where SLURM is installed, or use --launcher local or inline "
                         "(a test cluster: `bash tools/slurm/cluster.sh start`)")
    return name


@dataclass(frozen=True)
class Resources:
    """What each task asks for. ``jobs``: runs at once (``local``) or the array's ``%`` throttle (``slurm``)."""

    timeout_min: int = 24 * 60
    #: ``None``: slurm asks for none; local lets every run see all of this machine's GPUs.
    gpus_per_task: int | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    partition: str | None = None
    jobs: int | None = None
    #: Requeues allowed after the time limit (preemptions are not counted): each resumes from a checkpoint.
    max_timeouts: int = 10

    def __post_init__(self) -> None:
        for name in ("timeout_min", "jobs", "cpus_per_task"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")
        if self.gpus_per_task is not None and self.gpus_per_task < 0:
            raise ValueError(f"gpus_per_task must be 0 or more, not {self.gpus_per_task}")
        if self.mem_gb is not None and self.mem_gb <= 0:
            raise ValueError(f"mem_gb must be positive, not {self.mem_gb}")


@dataclass
class Outcome:
    """One run of a sweep: its record, or why there is none."""

    spec: RunSpec
    record: dict[str, Any] | None = None
    error: str | None = None
    #: The record was stored and up to date before this call: nothing was run for it.
    stored: bool = False
    job_id: str | None = None
    log: Path | None = None

    def line(self) -> str:
        """One line for a person: the test error and wall time, or the failure's first line."""
        s = self.spec
        head = f"{s.experiment:15s} {s.model:8s} seed {s.seed}"
        if self.record is None:
            return f"{head}: FAILED: {(self.error or '').splitlines()[0]}"
        note = "stored" if self.stored else (f"job {self.job_id}" if self.job_id else "trained")
        return (f"{head}: {100 * self.record['metrics']['test_error']:.2f}%  "
                f"({self.record['provenance']['wall_time_s']:.0f} s, {note})")


@dataclass
class SweepResult:
    outcomes: list[Outcome] = field(default_factory=list)
    #: Where submitit kept this call's scripts, pickles and logs (``None`` when nothing was submitted).
    log_folder: Path | None = None

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def submitted(self) -> int:
        return sum(not o.stored for o in self.outcomes)


@dataclass(frozen=True)
class TrainRun(submitit.helpers.Checkpointable):
    """One run as a submitit task: ``train_or_load`` with every location fixed at submission time.

    The roots are resolved on the submitting machine and carried along, so a task on another node
    writes where the sweep reads, whatever that node's environment says (the folders must be shared).
    """

    spec: RunSpec
    records: Path
    checkpoints: Path
    data: Path
    device: str | None = None
    fresh: bool = False
    threads: int | None = None

    def __call__(self) -> dict[str, Any]:
        if self.threads:
            # Without cgroups nothing confines a task to its CPUs; PyTorch would use every core of the
            # node in every task, and tasks sharing a node would slow each other down.
            import torch

            torch.set_num_threads(self.threads)
        s = self.spec
        return train_or_load(s.experiment, s.model, s.profile, s.seed, fresh=self.fresh, root=self.records,
                             device=self.device, checkpoint_root=self.checkpoints, data_root=self.data)

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        # Nothing to save here: the training loop writes its own checkpoint as the interrupt unwinds
        # it, and the requeued copy of this task resumes from that file.
        print(f"{self.spec}: interrupted; requeued to resume from its checkpoint under {self.checkpoints}",
              flush=True)
        return super().checkpoint(*args, **kwargs)


def pending(specs: Iterable[RunSpec], *, fresh: bool = False,
            root: str | os.PathLike | None = None) -> tuple[list[RunSpec], list[tuple[RunSpec, dict[str, Any]]]]:
    """``(to_run, stored)``: the runs without an up-to-date record, and the others with theirs."""
    to_run, stored = [], []
    for spec in specs:
        rec = None if fresh else spec.stored(root)
        if rec is None:
            to_run.append(spec)
        else:
            stored.append((spec, rec))
    return to_run, stored


def launch(specs: Sequence[RunSpec], launcher: str = "inline", *, resources: Resources = Resources(),
           fresh: bool = False, device: str | None = None, root: str | os.PathLike | None = None,
           log_root: str | os.PathLike | None = None,
           log: Callable[[str], None] = print) -> SweepResult:
    """Run every run of ``specs`` that has no up-to-date record through ``launcher``; wait for all.

    ``root`` is the records root (default :func:`stnlib.paths.records_root`); ``log_root`` the folder
    in which each call makes a fresh folder for submitit's files (default ``<checkpoints>/submitit``).
    ``log`` receives one line per finished run as it finishes. Failures are collected, not raised.
    """
    check_launcher(launcher)
    to_run, stored = pending(specs, fresh=fresh, root=root)
    result = SweepResult([Outcome(spec, record=rec, stored=True) for spec, rec in stored])
    for o in result.outcomes:
        log(o.line())
    if not to_run:
        log(f"all {len(specs)} run(s) are stored and up to date under {records_root(root)}; nothing submitted")
        return result
    if launcher == "inline":
        for spec in to_run:
            result.outcomes.append(o := _run_inline(spec, fresh=fresh, device=device, root=root))
            log(o.line())
        return result

    result.log_folder = _fresh_log_folder(log_root)
    threads = resources.cpus_per_task
    if launcher == "local" and threads is None:
        # Local runs share this machine's cores; each left at PyTorch's default would use all of them.
        threads = max(1, (os.cpu_count() or 1) // min(resources.jobs or len(to_run), len(to_run)))
    tasks = [TrainRun(spec, records=records_root(root).absolute(), checkpoints=checkpoints_root().absolute(),
                      data=data_root().absolute(), device=device, fresh=fresh, threads=threads)
             for spec in to_run]
    executor = _executor(launcher, resources, result.log_folder)
    log(f"submitting {len(tasks)} run(s) to {launcher}; logs under {result.log_folder}")
    finished = (_throttled(executor, tasks, resources.jobs) if launcher == "local"
                else _array(executor, tasks))
    for task, job in finished:
        result.outcomes.append(o := _collect(task.spec, job))
        log(o.line())
    return result


def _run_inline(spec: RunSpec, *, fresh: bool, device: str | None,
                root: str | os.PathLike | None) -> Outcome:
    try:
        rec = train_or_load(spec.experiment, spec.model, spec.profile, spec.seed, fresh=fresh, root=root,
                            device=device)
    except Exception as e:  # one failed run must not stop the others; the sweep reports it at the end
        return Outcome(spec, error=f"{spec}: {type(e).__name__}: {e}")
    return Outcome(spec, record=rec)


def _fresh_log_folder(log_root: str | os.PathLike | None) -> Path:
    # A new folder per call: submitit names its files by job id, and a new (or restarted) cluster
    # numbers jobs from 1 again, so an old folder's result files would be read as this call's.
    # By default next to the checkpoints: the folder holds the pickled tasks a requeue restarts from.
    parent = Path(log_root) if log_root is not None else checkpoints_root() / "submitit"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=parent)).absolute()


def _executor(launcher: str, r: Resources, folder: Path) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(folder=folder, cluster=launcher, slurm_max_num_timeout=r.max_timeouts,
                                     local_max_num_timeout=r.max_timeouts)
    gpus = r.gpus_per_task
    if launcher == "local" and gpus is None:
        # submitit's local executor sets CUDA_VISIBLE_DEVICES to the GPUs a job asks for, none by
        # default: left at that, a sweep on a GPU box would silently train on its CPU.
        import torch

        gpus = torch.cuda.device_count()
    params: dict[str, Any] = dict(timeout_min=r.timeout_min, cpus_per_task=r.cpus_per_task, mem_gb=r.mem_gb,
                                  # one task per job, so GPUs per node are the task's GPUs
                                  gpus_per_node=gpus, name="stnlib")
    if launcher == "slurm":
        params.update(slurm_partition=r.partition, slurm_array_parallelism=r.jobs)
    executor.update_parameters(**params)
    return executor


def _array(executor: submitit.AutoExecutor, tasks: list[TrainRun]) -> Iterator[tuple[TrainRun, submitit.Job]]:
    """Submit ``tasks`` as one job array; yield each with its job as it finishes."""
    try:
        jobs = executor.submit_array(tasks)
    except submitit.core.utils.FailedJobError as e:  # what submitit raises when sbatch exits non-zero
        raise LaunchError(f"SLURM refused the array of {len(tasks)} run(s): {e}; check --partition, "
                          f"--gpus-per-task, --cpus-per-task and --mem-gb against the cluster (`sinfo -o '%P %c %m %G'`); "
                          f"the script is under {executor.folder}") from None
    by_id = {job.job_id: task for task, job in zip(tasks, jobs)}
    for job in submitit.helpers.as_completed(jobs, poll_frequency=POLL_S):
        yield by_id[job.job_id], job


def _throttled(executor: submitit.AutoExecutor, tasks: list[TrainRun],
               jobs: int | None) -> Iterator[tuple[TrainRun, submitit.Job]]:
    """Submit ``tasks`` keeping at most ``jobs`` running (submitit's local executor starts all at once)."""
    queue = list(tasks)
    active: dict[str, tuple[TrainRun, submitit.Job]] = {}
    while queue or active:
        while queue and len(active) < (jobs or len(tasks)):
            task = queue.pop(0)
            job = executor.submit(task)
            active[job.job_id] = (task, job)
        done = next(submitit.helpers.as_completed([job for _, job in active.values()], poll_frequency=POLL_S))
        yield active.pop(done.job_id)


def _collect(spec: RunSpec, job: submitit.Job) -> Outcome:
    """The outcome of a finished job: its record, or an error naming the run, the job and its log."""
    log_path = job.paths.stderr
    try:
        return Outcome(spec, record=job.result(), job_id=job.job_id, log=log_path)
    except Exception as e:  # submitit's UncompletedJobError (cancelled, killed) or the task's own error
        return Outcome(spec, error=_describe_failure(spec, job, e), job_id=job.job_id, log=log_path)


def _describe_failure(spec: RunSpec, job: submitit.Job, err: Exception) -> str:
    state = job.state
    lines = [ln for ln in str(err).splitlines() if ln.strip()]
    if isinstance(err, submitit.core.utils.FailedJobError) and lines:
        # The task raised: the exception's own last line ("stnlib.runs.RunOutOfMemory: ...") says why.
        why = f"failed ({lines[-1].strip()})"
    else:
        why = f"ended without a result (state {state})"
    return (f"{spec}: job {job.job_id} {why}; log {job.paths.stderr}\n"
            + _tail(job.paths.stderr, LOG_TAIL_LINES))


def _tail(path: Path, n: int) -> str:
    """The last ``n`` non-empty lines of a log (progress bars' carriage returns split lines too)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"    (no log at {path}: the job never started)"
    lines = [ln.rstrip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return "\n".join("    " + ln for ln in lines[-n:]) or "    (the log is empty)"


def wall_clock(seconds: Sequence[float], jobs: int) -> float:
    """How long runs taking ``seconds`` take when ``jobs`` run at once, each next one (in order) starting as
    soon as a slot frees, which is how the ``local`` launcher submits them."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    ends = [0.0] * min(jobs, max(1, len(seconds)))
    for s in seconds:
        heapq.heappush(ends, heapq.heappop(ends) + s)
    return max(ends)


def describe_plan(to_run: Sequence[RunSpec], stored: Sequence[Any], estimates: Sequence[Estimate],
                  device: str | None, *, jobs: int | None = None) -> list[str]:
    """Lines saying what a sweep is about to run (per experiment) and what it will cost on ``device``;
    with ``jobs`` (runs at once) also the wall clock, when every run's cost is known."""
    per_exp: dict[str, int] = {}
    for spec in to_run:
        per_exp[spec.experiment] = per_exp.get(spec.experiment, 0) + 1
    total = len(to_run) + len(stored)
    lines = [f"{len(to_run)} of {total} run(s) to train"
             + (": " + ", ".join(f"{exp} {n}" for exp, n in per_exp.items()) if per_exp else "")
             + (f" ({len(stored)} already stored)" if stored else "")]
    if not to_run:
        return lines
    where = device or "the cluster's nodes (device unknown here)"
    known = [e for e in estimates if e.seconds is not None]
    if known:
        lines.append(f"estimated cost on {where}: {_duration(sum(e.seconds for e in known))} for "
                     f"{len(known)} run(s) (sum over runs; from {'; '.join(sorted({e.source for e in known}))})")
        if jobs is not None and jobs > 1 and len(known) == len(estimates):
            lines.append(f"with {jobs} runs at a time: about {_duration(wall_clock([e.seconds for e in known], jobs))} "
                         "of wall clock")
    unknown = [e for e in estimates if e.seconds is None]
    if unknown:
        lines.append(f"estimated cost on {where}: unknown for {len(unknown)} run(s) "
                     "(no record or probe of them on this kind of device)")
        refs = [e.reference for e in unknown if e.reference is not None]
        if refs:
            devices = "; ".join(sorted({f"{dev} ({src})" for _, dev, src in refs}))
            lines.append(f"  for reference: {len(refs)} of them took {_duration(sum(s for s, _, _ in refs))} "
                         f"in all on {devices}")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
