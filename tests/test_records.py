import json
import os

import numpy as np
import pytest

from stnlib import records


def _rec(**over):
    cfg = {"a": 1, "b": [1, 2]}
    rec = {"schema": records.SCHEMA, "experiment": "mnist-rot", "model": "cnn", "profile": "smoke",
           "seed": 0, "status": "complete", "config": cfg, "config_hash": records.config_hash(cfg),
           "metrics": {"test_error": 0.5}, "curves": {}, "summaries": {}, "provenance": {}}
    rec.update(over)
    return rec


def test_config_hash_ignores_key_order_but_not_values():
    assert records.config_hash({"a": 1, "b": 2}) == records.config_hash({"b": 2, "a": 1})
    assert records.config_hash({"a": 1}) != records.config_hash({"a": 2})
    assert len(records.config_hash({})) == 16


def test_config_hash_leaves_deviation_wording_out_from_protocol_2_only():
    v1 = {"protocol_version": 1, "lr": 0.01, "deviations": ["a"]}
    v2 = {**v1, "protocol_version": 2}
    # Version 1 records hashed their deviations: keep them valid as they are.
    assert records.config_hash(v1) != records.config_hash({**v1, "deviations": ["b"]})
    # From version 2 on, rewording a deviation leaves the hash alone; a setting still changes it.
    assert records.config_hash(v2) == records.config_hash({**v2, "deviations": ["b"]})
    assert records.config_hash(v2) != records.config_hash({**v2, "lr": 0.02})


def test_atomic_write_leaves_no_temp_files_and_roundtrips(tmp_path):
    p = records.atomic_write_json(tmp_path / "x" / "r.json", _rec())
    assert records.read_record(p)["metrics"]["test_error"] == 0.5
    assert os.listdir(p.parent) == ["r.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    p = records.atomic_write_json(tmp_path / "r.json", _rec())
    with pytest.raises(TypeError):
        records.atomic_write_json(p, {"bad": object()})
    assert records.read_record(p)["status"] == "complete"
    assert os.listdir(tmp_path) == ["r.json"]


def test_corrupt_record_gives_a_clear_error(tmp_path):
    p = tmp_path / "r.json"
    p.write_text('{"schema": "stnlib.record/1", "truncated')
    with pytest.raises(records.RecordError, match="corrupt record.*delete it"):
        records.read_record(p)


def test_malformed_record_names_missing_keys(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"schema": records.SCHEMA}))
    with pytest.raises(records.RecordError, match="missing keys"):
        records.read_record(p)


def test_hand_edited_config_is_detected(tmp_path):
    rec = _rec()
    rec["config"]["a"] = 2  # edited without updating the hash
    p = records.atomic_write_json(tmp_path / "r.json", rec)
    with pytest.raises(records.RecordError, match="config_hash"):
        records.read_record(p)


def test_load_record_rejects_another_config(tmp_path):
    rec = _rec()
    records.atomic_write_json(records.record_path("mnist-rot", "cnn", "smoke", 0, tmp_path), rec)
    assert records.load_record("mnist-rot", "cnn", "smoke", 0, root=tmp_path,
                               expected_hash=rec["config_hash"]) is not None
    assert records.load_record("mnist-rot", "cnn", "smoke", 0, root=tmp_path,
                               expected_hash="0" * 16) is None
    assert records.load_record("mnist-rot", "stn-c0", "smoke", 0, root=tmp_path) is None


def test_image_encoding_roundtrip():
    x = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(1, 28, 28)
    d = records.encode_image(x)
    y = records.decode_image(d)
    assert y.shape == x.shape
    assert np.abs(y - x).max() <= 0.5 / 255 + 1e-7
