"""Fixtures shared by several test modules."""

import pytest


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """Empty record and checkpoint roots under ``tmp_path`` (the data root stays: MNIST is there)."""
    monkeypatch.setenv("STNLIB_RECORDS", str(tmp_path / "records"))
    monkeypatch.setenv("STNLIB_CHECKPOINTS", str(tmp_path / "ckpt"))
    return tmp_path
