"""Launchers: inline and local here; slurm against a real cluster (``tools/slurm/cluster.sh start``).

The ``slurm`` tests skip, saying why, when no cluster answers, and fail instead when
``STNLIB_REQUIRE_SLURM=1`` (CI starts a cluster and sets it). Every run is a smoke run (seconds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from stnlib import cli, launch, runs, train
from stnlib.runs import RunSpec

CNN = RunSpec("mnist-rot", "cnn", "smoke", 0)
STN = RunSpec("mnist-rot", "stn-c1", "smoke", 0)
STN_C0 = RunSpec("mnist-rot", "stn-c0", "smoke", 0)


def _strip(rec):
    """A record without its provenance (machine, wall time, date): what two equal runs share."""
    rec = json.loads(json.dumps(rec))
    rec.pop("provenance")
    return rec


# ---------------------------------------------------------------------------------------
# no cluster needed

def test_an_unknown_launcher_is_named_with_the_valid_choices(roots):
    with pytest.raises(ValueError, match=r"unknown launcher 'pbs'; valid launchers: inline, local, slurm"):
        launch.launch([CNN], "pbs")


def test_slurm_without_sbatch_says_so(roots, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with nothing on it
    with pytest.raises(ValueError, match="needs SLURM's sbatch, which is not on PATH"):
        launch.launch([CNN], "slurm")


@pytest.mark.parametrize("field, value", [("jobs", 0), ("timeout_min", 0), ("gpus_per_task", -1), ("mem_gb", 0)])
def test_impossible_resources_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        launch.Resources(**{field: value})


@pytest.mark.slow
def test_inline_trains_once_and_a_rerun_submits_nothing(roots, monkeypatch):
    lines = []
    first = launch.launch([CNN], "inline", log=lines.append)
    assert not first.failures and first.submitted == 1
    assert first.outcomes[0].record["status"] == "complete" and not first.outcomes[0].stored

    def must_not_train(*args, **kwargs):
        raise AssertionError("a stored, up-to-date run was trained again")

    monkeypatch.setattr(train, "train", must_not_train)
    lines.clear()
    again = launch.launch([CNN], "inline", log=lines.append)
    assert again.submitted == 0 and again.outcomes[0].stored
    assert again.outcomes[0].record == first.outcomes[0].record
    assert lines[-1].startswith("all 1 run(s) are stored and up to date") and "nothing submitted" in lines[-1]


def test_inline_collects_a_failure_and_runs_the_rest(roots, monkeypatch):
    calls = []

    def fake(experiment, model, profile, seed, **kwargs):
        calls.append(model)
        if model == "cnn":
            raise RuntimeError("boom")
        return {"metrics": {"test_error": 0.5}, "provenance": {"wall_time_s": 1.0}}

    monkeypatch.setattr(launch, "train_or_load", fake)
    result = launch.launch([CNN, STN], "inline", log=lambda line: None)
    assert calls == ["cnn", "stn-c1"]
    assert [o.spec for o in result.failures] == [CNN]
    assert result.failures[0].error == "mnist-rot/cnn (smoke, seed 0): RuntimeError: boom"


@pytest.mark.slow
def test_local_runs_processes_and_names_the_job_and_log_of_a_failure(roots, monkeypatch):
    # A quick run with STNLIB_NO_TRAIN set fails at once inside its job (the job inherits the
    # environment); the smoke run next to it trains and must still be collected.
    monkeypatch.setenv("STNLIB_NO_TRAIN", "1")
    quick = RunSpec("mnist-rot", "cnn", "quick", 0)
    result = launch.launch([CNN, quick], "local", resources=launch.Resources(jobs=2, timeout_min=10),
                           root=roots / "records", log=lambda line: None)
    ok = next(o for o in result.outcomes if o.spec == CNN)
    assert ok.error is None and ok.job_id and ok.record["status"] == "complete"
    assert CNN.stored() is not None
    assert ok.job_id != str(os.getpid())
    [bad] = result.failures
    assert bad.spec == quick and bad.job_id and bad.log is not None and bad.log.exists()
    assert str(bad.log).startswith(str(result.log_folder))
    assert bad.error.startswith(f"mnist-rot/cnn (quick, seed 0): job {bad.job_id} failed (")
    assert "STNLIB_NO_TRAIN is set" in bad.error and f"log {bad.log}" in bad.error


@pytest.mark.parametrize("asked, visible", [(None, 2), (0, 0), (1, 1)])
def test_local_runs_see_the_gpus_of_the_machine_unless_told(tmp_path, monkeypatch, asked, visible):
    # submitit's local executor hides every GPU from a job that asks for none (CUDA_VISIBLE_DEVICES="").
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    executor = launch._executor("local", launch.Resources(gpus_per_task=asked), tmp_path)
    assert executor._executor.parameters["gpus_per_node"] == visible


def test_each_call_gets_a_fresh_log_folder(roots):
    # A restarted cluster numbers jobs from 1 again; reusing a folder would read old result files.
    a, b = launch._fresh_log_folder(None), launch._fresh_log_folder(None)
    assert a != b and a.parent == b.parent == roots / "ckpt" / "submitit"


def test_describe_plan_counts_per_experiment_and_sums_known_costs():
    to_run = [CNN, STN, RunSpec("mnist-trans", "cnn", "smoke", 0)]
    est = [runs.Estimate(60.0, "1 record(s) on cpu: A"), runs.Estimate(120.0, "1 record(s) on cpu: A"),
           runs.Estimate(None, "unknown", (30.0, "cuda: B", "GPU probe p"))]
    lines = launch.describe_plan(to_run, [("stored", {})], est, "cpu: A (2 cores)")
    assert lines[0] == "3 of 4 run(s) to train: mnist-rot 2, mnist-trans 1 (1 already stored)"
    assert lines[1] == "estimated cost on cpu: A (2 cores): 3 min for 2 run(s) (sum over runs; from 1 record(s) on cpu: A)"
    assert "unknown for 1 run(s)" in lines[2]
    assert lines[3] == "  for reference: 1 of them took 30 s in all on cuda: B (GPU probe p)"
    assert len(lines) == 4  # a cost is unknown: no wall clock is claimed
    assert not any("wall clock" in line for line in launch.describe_plan(to_run, [], est, "cpu: A", jobs=2))


def test_plan_gives_the_wall_clock_of_runs_side_by_side_in_submission_order():
    assert launch.wall_clock([], 2) == 0.0
    assert launch.wall_clock([5.0, 3.0], 1) == 8.0
    # In order: slot 1 takes 10, slot 2 takes 1, 1, 1, then the last 10 (not the 11 a balanced split gives).
    assert launch.wall_clock([10.0, 1.0, 1.0, 1.0, 10.0], 2) == 13.0
    assert launch.wall_clock([4.0, 4.0, 4.0], 8) == 4.0
    with pytest.raises(ValueError, match="jobs must be at least 1, not 0"):
        launch.wall_clock([1.0], 0)
    est = [runs.Estimate(3600.0, "r"), runs.Estimate(3600.0, "r"), runs.Estimate(1800.0, "r")]
    lines = launch.describe_plan([CNN, STN, CNN], [], est, "cpu: A", jobs=2)
    assert lines[-1] == "with 2 runs at a time: about 1.5 h of wall clock"
    assert not any("wall clock" in line for line in launch.describe_plan([CNN, STN, CNN], [], est, "cpu: A"))


# ---------------------------------------------------------------------------------------
# a real SLURM cluster

REQUIRE_ENV = "STNLIB_REQUIRE_SLURM"


def _no_cluster_reason() -> str | None:
    """Why no SLURM cluster can be used from here, or ``None`` when one answers with a usable node."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "SLURM's sinfo/sbatch are not on PATH (start a test cluster: bash tools/slurm/cluster.sh start)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    states = out.stdout.split()
    if out.returncode != 0 or not any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states):
        return (f"no SLURM node is up (sinfo exit {out.returncode}: {(out.stdout + out.stderr).strip()[:200]!r}); "
                "start a test cluster: bash tools/slurm/cluster.sh start")
    return None


@pytest.fixture(scope="module")
def cluster():
    reason = _no_cluster_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)


#: What every SLURM test asks for: one CPU (two tasks share the 2-core test node), 1 GB, 30 min.
RES = launch.Resources(cpus_per_task=1, mem_gb=1, timeout_min=30, jobs=2)


def _roots(base: Path, mp: pytest.MonkeyPatch) -> None:
    """The ``roots`` fixture's settings for a folder that outlives one test (the module's first sweep)."""
    mp.setenv("STNLIB_RECORDS", str(base / "records"))
    mp.setenv("STNLIB_CHECKPOINTS", str(base / "ckpt"))


@pytest.fixture(scope="module")
def first_sweep(cluster, tmp_path_factory):
    """(a): CNN and STN as one job array, uninterrupted; the reference for the tests after it."""
    base = tmp_path_factory.mktemp("first")
    with pytest.MonkeyPatch.context() as mp:
        _roots(base, mp)
        t0 = time.perf_counter()
        result = launch.launch([CNN, STN], "slurm", resources=RES, log=print)
        print(f"first sweep: {time.perf_counter() - t0:.1f} s")
    return base, result


def _job_ids(log_folder: Path) -> list[str]:
    return sorted(p.name.removesuffix("_submitted.pkl") for p in log_folder.glob("*_submitted.pkl"))


def _submitted_folder(log_root: Path, timeout: float = 60) -> Path:
    """The one folder a launch in another thread makes under ``log_root``, once its jobs are submitted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        folders = [p for p in log_root.glob("*") if p.is_dir()]
        if folders and _job_ids(folders[0]):
            return folders[0]
        time.sleep(0.1)
    raise AssertionError(f"nothing was submitted under {log_root} within {timeout} s")


def _squeue_state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def _wait_for(what: str, predicate, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slurm
def test_a_sweep_is_one_job_array_with_a_record_per_task(first_sweep):
    base, result = first_sweep
    assert not result.failures, [o.error for o in result.failures]
    ids = [o.job_id for o in result.outcomes]
    array = {i.split("_")[0] for i in ids}
    assert len(array) == 1 and sorted(i.split("_")[1] for i in ids) == ["0", "1"], ids
    for o in result.outcomes:
        on_disk = json.loads((base / "records" / "smoke" / "mnist-rot" / f"{o.spec.model}-seed0.json").read_text())
        assert on_disk == o.record and on_disk["status"] == "complete"
    script = (result.log_folder / f"{array.pop()}_submission.sh").read_text()
    for directive in ("--array=0-1%2", "--cpus-per-task=1", "--mem=1GB", "--time=30", "--signal=USR2@"):
        assert f"#SBATCH {directive}" in script, directive


@pytest.mark.slurm
def test_a_preempted_task_is_requeued_and_resumes_to_the_same_record(first_sweep, roots):
    """(b): USR2 mid-run (what SLURM sends before a time limit or a preemption) -> requeue -> resume."""
    _, reference = first_sweep
    ref = next(o.record for o in reference.outcomes if o.spec == STN)
    ckpt = train.checkpoint_path(STN.experiment, STN.model, STN.profile, STN.seed)
    out: dict = {}
    worker = threading.Thread(target=lambda: out.update(
        result=launch.launch([STN], "slurm", resources=RES, log_root=roots / "logs", log=print)))
    t0 = time.perf_counter()
    worker.start()
    folder = _submitted_folder(roots / "logs")
    [job_id] = _job_ids(folder)
    # The periodic checkpoint (every 6 of 12 iterations) exists: the run is past its middle.
    _wait_for("the first checkpoint", ckpt.exists)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    # SLURM holds a requeued job for about two minutes (Reason=BeginTime); release it now.
    _wait_for("the requeued job to be pending", lambda: _squeue_state(job_id) == "PENDING")
    subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], check=True)
    worker.join(timeout=180)
    assert not worker.is_alive(), "the requeued task did not finish within 180 s"
    result = out["result"]
    assert not result.failures, [o.error for o in result.failures]
    log = (folder / f"{job_id}_0_log.out").read_text() + (folder / f"{job_id}_0_log.err").read_text()
    assert "interrupted; requeued to resume from its checkpoint" in log
    resumed = re.search(r"resuming mnist-rot/stn-c1 \(smoke, seed 0\) from iteration (\d+)", log)
    assert resumed, f"the requeued task did not resume from a checkpoint; log:\n{log[-3000:]}"
    print(f"preempted at iteration {resumed.group(1)}, resumed and finished in {time.perf_counter() - t0:.1f} s")
    assert 6 <= int(resumed.group(1)) < 12
    assert _strip(result.outcomes[0].record) == _strip(ref)
    assert not ckpt.exists()


@pytest.mark.slurm
def test_a_cancelled_task_names_run_job_and_log_and_the_sweep_exits_1(cluster, roots, capsys):
    """(c): scancel one task of a two-task array; the other finishes; the sweep exits non-zero."""
    out: dict = {}
    argv = ["sweep", "mnist-rot", "--profile", "smoke", "--models", "cnn", "stn-c0", "--launcher", "slurm",
            "--cpus-per-task", "1", "--mem-gb", "1", "--timeout-min", "30", "--log-dir", str(roots / "logs")]
    worker = threading.Thread(target=lambda: out.update(rc=cli.main(argv)))
    worker.start()
    folder = _submitted_folder(roots / "logs")
    array = _job_ids(folder)[0].split("_")[0]
    victim = f"{array}_1"  # stn-c0, the second run
    _wait_for(f"job {victim} to run", lambda: _squeue_state(victim) == "RUNNING")
    subprocess.run(["scancel", victim], check=True)
    worker.join(timeout=180)
    assert not worker.is_alive()
    err = capsys.readouterr().err
    print(err)
    assert out["rc"] == 1
    assert f"FAILED: mnist-rot/stn-c0 (smoke, seed 0): job {victim} ended without a result (state CANCELLED" in err
    log = folder / f"{victim}_0_log.err"
    assert f"log {log}" in err and log.exists()
    # The job's last words (slurmstepd's or srun's, depending on when the cancel landed) are quoted.
    last = [ln for ln in log.read_text().replace("\r", "\n").splitlines() if ln.strip()][-1]
    assert f"\n    {last.rstrip()}\n" in err
    assert "1 of 2 run(s) failed" in err
    assert STN_C0.stored() is None and CNN.stored() is not None


def _next_job_id() -> int:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"NEXT_JOB_ID\s*=\s*(\d+)", config).group(1))


@pytest.mark.slurm
def test_rerunning_a_finished_sweep_submits_nothing(first_sweep, monkeypatch, capsys):
    """(d): every record of the first sweep is stored and up to date: no job, no log folder."""
    base, _ = first_sweep
    _roots(base, monkeypatch)
    before = _next_job_id()
    rc = cli.main(["sweep", "mnist-rot", "--profile", "smoke", "--models", "cnn", "stn-c1", "--launcher", "slurm",
                   "--log-dir", str(base / "rerun-logs")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "all 2 run(s) are stored and up to date" in out and "nothing submitted" in out
    assert _next_job_id() == before
    assert not (base / "rerun-logs").exists()
