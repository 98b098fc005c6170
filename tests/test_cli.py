import subprocess
import sys

import pytest

from stnlib import cli
from stnlib.profiles import EXPERIMENTS, PROFILES


def test_help_lists_every_experiment_model_and_profile():
    out = subprocess.run([sys.executable, "-m", "stnlib", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for name in [*EXPERIMENTS, *PROFILES, "stn-sl1", "stn-dl8", "table1", "table2"]:
        assert name in out, name


@pytest.mark.parametrize("argv, bad", [
    (["train", "mnist-rot", "stn-c9", "--profile", "smoke"], "stn-c9"),
    (["train", "mnist-scale", "cnn", "--profile", "smoke"], "mnist-scale"),
    (["train", "mnist-rot", "cnn", "--profile", "medium"], "medium"),
    (["sweep", "table9", "--profile", "smoke"], "table9"),
])
def test_bad_names_exit_2_with_the_valid_choices(argv, bad, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert bad in err and "valid" in err
