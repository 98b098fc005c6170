"""Tests of stnlib.data.svhn: the real format-1 pipeline on a miniature built in the official layout,
the synthetic stand-in, the task, and the sequence loss/error."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import urllib.error
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from stnlib.data import svhn
from stnlib.data.svhn import archives, synthetic
from stnlib.datasets import SVHN_BLANK
from stnlib.data import get_task

# --------------------------------------------------------------------------- miniature real SVHN

#: (name, image size (W, H), boxes (label, left, top, width, height)); label 10 is the digit 0.
MINI = {
    "train": [
        ("1.png", (120, 60), [(1, 30, 10, 20, 40), (10, 52, 12, 20, 38)]),  # "10", multi-box encoding
        ("2.png", (200, 100), [(5, 80, 30, 40, 40)]),  # "5", single-box encoding, known geometry
        ("3.png", (160, 50), [(d, 10 + 22 * i, 8, 20, 30) for i, d in enumerate((1, 2, 3, 4, 5, 6))]),  # dropped
        ("4.png", (100, 60), [(9, 20, 15, 15, 30), (8, 36, 15, 15, 30), (7, 52, 15, 15, 30)]),
    ],
    "extra": [
        ("1.png", (80, 80), [(7, 25, 20, 30, 40)]),
        ("2.png", (90, 50), [(3, 10, 10, 20, 30), (10, 32, 10, 20, 30)]),
    ],
    "test": [
        ("1.png", (100, 50), [(2, 0, 10, 20, 20)]),  # touches the left edge: the crop is clipped
        ("2.png", (150, 60), [(d, 8 + 26 * i, 10, 24, 36) for i, d in enumerate((4, 10, 6, 2, 1))]),
    ],
}
EXPECTED_LABELS = {
    "train": [[1, 0, 10, 10, 10], [5, 10, 10, 10, 10], [9, 8, 7, 10, 10], [7, 10, 10, 10, 10], [3, 0, 10, 10, 10]],
    "test": [[2, 10, 10, 10, 10], [4, 0, 6, 2, 1]],
}


def write_digit_struct(path: Path, entries) -> None:
    """A digitStruct.mat in MATLAB v7.3 layout: object references into #refs#, names as uint16 chars,
    one-digit fields stored as values, several-digit fields as arrays of references."""
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        group = f.create_group("digitStruct")
        group.attrs["MATLAB_class"] = np.bytes_("struct")
        name_refs, bbox_refs = [], []
        for i, (name, _, boxes) in enumerate(entries):
            nd = refs.create_dataset(f"n{i}", data=np.array([ord(c) for c in name], dtype=np.uint16).reshape(-1, 1))
            nd.attrs["MATLAB_class"] = np.bytes_("char")
            g = refs.create_group(f"b{i}")
            g.attrs["MATLAB_class"] = np.bytes_("struct")
            for j, key in enumerate(("label", "left", "top", "width", "height")):
                vals = [float(b[j]) for b in boxes]
                if len(vals) == 1:
                    g.create_dataset(key, data=np.array([[vals[0]]]))
                else:
                    rr = [refs.create_dataset(f"b{i}{key}{k}", data=np.array([[v]])).ref for k, v in enumerate(vals)]
                    g.create_dataset(key, data=np.array(rr, dtype=h5py.ref_dtype).reshape(-1, 1))
            name_refs.append(nd.ref)
            bbox_refs.append(g.ref)
        group.create_dataset("name", data=np.array(name_refs, dtype=h5py.ref_dtype).reshape(-1, 1))
        group.create_dataset("bbox", data=np.array(bbox_refs, dtype=h5py.ref_dtype).reshape(-1, 1))
    with open(path, "r+b") as fh:  # MATLAB writes a text header into the userblock
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .".ljust(116))


def draw_image(size, boxes) -> Image.Image:
    """Black photo with each digit box filled white (so crop geometry is measurable)."""
    img = Image.new("RGB", size, (0, 0, 0))
    d = ImageDraw.Draw(img)
    for _, left, top, w, h in boxes:
        d.rectangle([left, top, left + w - 1, top + h - 1], fill=(255, 255, 255))
    return img


def make_archive(folder: Path, split: str) -> Path:
    """<folder>/<split>.tar.gz with the official layout: <split>/N.png, digitStruct.mat, see_bboxes.m."""
    src = folder / "src" / split
    src.mkdir(parents=True)
    for name, size, boxes in MINI[split]:
        draw_image(size, boxes).save(src / name)
    write_digit_struct(src / "digitStruct.mat", MINI[split])
    (src / "see_bboxes.m").write_text("% shipped with the official archives\n")
    out = folder / f"{split}.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname=split)
    return out


@pytest.fixture(scope="module")
def mini_archives(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("archives")
    return {s: make_archive(folder, s).read_bytes() for s in ("train", "extra", "test")}


def place(root: Path, archives: dict[str, bytes]) -> None:
    (root / "svhn").mkdir(parents=True, exist_ok=True)
    for split, blob in archives.items():
        (root / "svhn" / f"{split}.tar.gz").write_bytes(blob)


@pytest.fixture(scope="module")
def real_root(tmp_path_factory, mini_archives) -> Path:
    root = tmp_path_factory.mktemp("real")
    place(root, mini_archives)
    svhn.build_svhn_cache(root, verify=False, workers=1, progress=False)
    return root


def test_read_digit_struct_both_encodings(tmp_path):
    path = tmp_path / "digitStruct.mat"
    write_digit_struct(path, MINI["train"])
    parsed = svhn.read_digit_struct(path)
    assert [n for n, _ in parsed] == [n for n, _, _ in MINI["train"]]
    for (_, boxes), (_, _, want) in zip(parsed, MINI["train"]):
        np.testing.assert_array_equal(boxes, np.array(want, dtype=float))
    assert parsed[0][1][1, 0] == 10  # stored label kept; encode_labels maps it to 0


def test_read_digit_struct_rejects_other_files(tmp_path):
    with pytest.raises(ValueError, match="MATLAB v7.3"):
        (tmp_path / "x.mat").write_bytes(b"not hdf5")
        svhn.read_digit_struct(tmp_path / "x.mat")
    with h5py.File(tmp_path / "y.mat", "w") as f:
        f.create_dataset("other", data=[1])
    with pytest.raises(ValueError, match="digitStruct"):
        svhn.read_digit_struct(tmp_path / "y.mat")


def test_encode_labels():
    np.testing.assert_array_equal(svhn.encode_labels([1, 10]), [1, 0, 10, 10, 10])
    np.testing.assert_array_equal(svhn.encode_labels([1, 2, 3, 4, 5]), [1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="1 to 5"):
        svhn.encode_labels([1] * 6)
    with pytest.raises(ValueError, match="0-10"):
        svhn.encode_labels([11])


def test_crop_box_exact_and_clipped():
    # box 40×40 at (80, 30): 1.3× is 52×52 about the centre (100, 50)
    assert svhn.format1_crop_box(np.array([[5, 80, 30, 40, 40]]), (200, 100)) == pytest.approx((74, 24, 126, 76))
    # union of two boxes, then enlarged: union (10, 10)-(50, 40) → 52×39 about (30, 25)
    two = np.array([[1, 10, 10, 20, 30], [2, 30, 20, 20, 10]])
    assert svhn.union_box(two) == (10, 10, 50, 40)
    assert svhn.format1_crop_box(two, (100, 100)) == pytest.approx((4, 5.5, 56, 44.5))
    # touching the left edge: x clipped at 0, y untouched
    assert svhn.format1_crop_box(np.array([[2, 0, 10, 20, 20]]), (100, 50)) == pytest.approx((0, 7, 23, 33))
    with pytest.raises(ValueError, match="empty"):
        svhn.format1_crop_box(np.array([[1, 500, 500, 10, 10]]), (100, 50))


def test_crop_geometry_puts_the_box_where_expected():
    boxes = np.array([[5, 80, 30, 40, 40]], dtype=float)
    out = svhn.crop_and_resize(draw_image((200, 100), boxes), boxes[:, 1:])
    assert out.shape == (3, 64, 64) and out.dtype == np.uint8
    # crop (74, 24)-(126, 76), ×64/52: the box spans 7.38..56.6 in both axes
    inside, outside = out[:, 8:56, 8:56], np.concatenate([out[:, :, :7].ravel(), out[:, :, 57:].ravel(),
                                                          out[:, :7, :].ravel(), out[:, 57:, :].ravel()])
    assert inside.min() == 255 and outside.max() == 0


def test_extract_build_and_load_cache(real_root):
    meta = json.loads((real_root / "svhn" / "cache" / "metadata.json").read_text())
    assert meta["source"] == svhn.REAL_SOURCE
    assert meta["splits"]["train"]["count"] == 5 and meta["splits"]["test"]["count"] == 2
    assert meta["splits"]["train"]["dropped"] == {"too_long": 1, "bad_label": 0, "bad_box": 0}
    assert meta["splits"]["train"]["per_source"]["train"] == {
        "images": 4, "kept": 3, "dropped": {"too_long": 1, "bad_label": 0, "bad_box": 0}}
    assert meta["dropped_too_long"] == {"train": 1, "test": 0}
    for split in ("train", "extra", "test"):
        assert (real_root / "svhn" / "raw" / split / "digitStruct.mat").is_file()
    assert not [p for p in (real_root / "svhn" / "raw").iterdir() if p.name.startswith(".")]  # no temp leftovers

    images, labels, meta2 = svhn.load_svhn_cache(real_root, "train")
    assert images.dtype == np.uint8 and images.shape == (5, 3, 64, 64)
    np.testing.assert_array_equal(labels, EXPECTED_LABELS["train"])
    with np.load(real_root / "svhn" / "cache" / "train.npz") as z:
        assert list(z["names"]) == ["train/1.png", "train/2.png", "train/4.png", "extra/1.png", "extra/2.png"]
    flat = images.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    np.testing.assert_allclose(meta2["mean"], flat.mean(1), rtol=1e-12)
    np.testing.assert_allclose(meta2["std"], flat.std(1), rtol=1e-9)

    test_images, test_labels, _ = svhn.load_svhn_cache(real_root, "test")
    np.testing.assert_array_equal(test_labels, EXPECTED_LABELS["test"])
    # train/2.png is the known-geometry photo: same crop as the direct call
    boxes = np.array(MINI["train"][1][2], dtype=float)
    np.testing.assert_array_equal(images[1], svhn.crop_and_resize(draw_image((200, 100), boxes), boxes[:, 1:]))
    # test/1.png touches the left edge: after clipping the box starts at column 0
    assert test_images[0][:, 9:55, 0].min() == 255 and test_images[0][:, :, 57:].max() == 0


def test_real_task(real_root):
    task = svhn.get_svhn_task("train", root=real_root, source="auto")  # real material present: no warning
    assert task.source == svhn.REAL_SOURCE and task.num_examples == 5
    assert task.metadata["dropped_too_long"]["train"] == 1
    x, y, info = task.raw_batch(torch.arange(5))
    meta = json.loads((real_root / "svhn" / "cache" / "metadata.json").read_text())
    mean = torch.tensor(meta["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(meta["std"]).view(1, 3, 1, 1)
    expected = (torch.from_numpy(svhn.load_svhn_cache(real_root, "train")[0]).float() / 255 - mean / 255) / (std / 255)
    torch.testing.assert_close(x, expected, rtol=1e-5, atol=1e-5)
    assert info == {} and y.dtype == torch.int64
    sub = svhn.get_svhn_task("train", root=real_root, source="real", n_train=3, seed=1)
    assert sub.num_examples == 3 and sub.mean == task.mean


def test_truncated_archive_is_never_used(tmp_path, mini_archives):
    blob = mini_archives["test"]
    (tmp_path / "svhn").mkdir()
    (tmp_path / "svhn" / "test.tar.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        svhn.extract_svhn(tmp_path, "test", verify=False)
    assert not (tmp_path / "svhn" / "raw" / "test").exists()
    assert list((tmp_path / "svhn" / "raw").iterdir()) == []  # the temporary folder is gone
    # with verification (the default) the wrong size is caught before any extraction
    with pytest.raises(ValueError, match="expected 276,555,967"):
        svhn.extract_svhn(tmp_path, "test")
    # "auto" sees real material and commits to it: the incomplete set is reported, no silent fallback
    with pytest.raises(FileNotFoundError, match="'train', 'extra' missing"):
        svhn.get_svhn_task("test", root=tmp_path, source="auto", progress=False)


def test_archive_checks_size_and_md5(tmp_path, mini_archives, monkeypatch):
    blob = mini_archives["test"]
    path = tmp_path / "test.tar.gz"
    path.write_bytes(blob)
    monkeypatch.setitem(svhn.SVHN_ARCHIVES, "test", svhn.ArchiveInfo(len(blob), hashlib.md5(blob).hexdigest(), 2))
    assert svhn.verify_archive(path, "test") == path
    monkeypatch.setitem(svhn.SVHN_ARCHIVES, "test", svhn.ArchiveInfo(len(blob), "0" * 32, 2))
    with pytest.raises(ValueError, match="md5"):
        svhn.verify_archive(path, "test")
    with pytest.raises(ValueError, match="valid choices"):
        svhn.verify_archive(path, "valid")
    with pytest.raises(FileNotFoundError, match="ufldl"):
        svhn.verify_archive(tmp_path / "missing.tar.gz", "test")


def test_wrong_layout_archive(tmp_path, mini_archives):
    (tmp_path / "svhn").mkdir()
    (tmp_path / "svhn" / "extra.tar.gz").write_bytes(mini_archives["test"])  # top folder "test/", not "extra/"
    with pytest.raises(ValueError, match="official layout"):
        svhn.extract_svhn(tmp_path, "extra", verify=False)
    assert not (tmp_path / "svhn" / "raw" / "extra").exists()


def test_corrupt_cache_is_never_used(tmp_path, real_root, monkeypatch):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(real_root / "svhn" / "cache", root / "svhn" / "cache")
    npz = root / "svhn" / "cache" / "train.npz"
    blob = bytearray(npz.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte inside the image array: the zip CRC catches it
    npz.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="corrupt"):
        svhn.load_svhn_cache(root, "train")
    npz.write_bytes(bytes(blob[: len(blob) // 3]))  # truncated
    with pytest.raises(ValueError, match="corrupt or truncated"):
        svhn.get_svhn_task("train", root=root, source="auto")
    (root / "svhn" / "cache" / "metadata.json").write_text("{")
    with pytest.raises(ValueError, match="metadata .* is corrupt"):
        svhn.load_svhn_cache(root, "test")
    (root / "svhn" / "cache" / "metadata.json").unlink()
    with pytest.raises(FileNotFoundError, match="no complete real SVHN cache"):
        svhn.load_svhn_cache(root, "test")


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, status: int, length: int | None = None):
        super().__init__(data)
        self.status = status
        self.headers = {"Content-Length": str(len(data) if length is None else length)}

    def getcode(self):
        return self.status


def test_download_without_network_explains_what_to_do(tmp_path, monkeypatch):
    def offline(request, timeout):
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(archives, "_open_url", offline)
    with pytest.raises(ConnectionError) as err:
        svhn.download_svhn(tmp_path, ("test",), progress=False)
    msg = str(err.value)
    assert "no internet" in msg and "ufldl.stanford.edu/housenumbers" in msg
    assert str(tmp_path / "svhn" / "extra.tar.gz") in msg and "1,955,489,752 bytes" in msg
    assert not (tmp_path / "svhn" / "test.tar.gz").exists()
    with pytest.raises(ValueError, match="valid choices"):
        svhn.download_svhn(tmp_path, ("validation",))


@pytest.mark.parametrize("honours_range", [True, False])
def test_download_resumes_and_verifies(tmp_path, mini_archives, monkeypatch, honours_range):
    blob = mini_archives["test"]
    monkeypatch.setitem(svhn.SVHN_ARCHIVES, "test", svhn.ArchiveInfo(len(blob), hashlib.md5(blob).hexdigest(), 2))
    seen = []

    def server(request, timeout):
        rng = request.get_header("Range")
        seen.append(rng)
        if rng and honours_range:
            start = int(rng.split("=")[1].rstrip("-"))
            return FakeResponse(blob[start:], 206)
        return FakeResponse(blob, 200)

    monkeypatch.setattr(archives, "_open_url", server)
    part = tmp_path / "svhn" / "test.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(blob[:100])
    out = svhn.download_svhn(tmp_path, ("test",), progress=False)
    assert seen == ["bytes=100-"]
    assert out["test"].read_bytes() == blob and not part.exists()
    # a verified final file is not fetched again
    svhn.download_svhn(tmp_path, ("test",), progress=False)
    assert len(seen) == 1


def test_download_rejects_corrupt_bytes(tmp_path, mini_archives, monkeypatch):
    blob = mini_archives["test"]
    monkeypatch.setitem(svhn.SVHN_ARCHIVES, "test", svhn.ArchiveInfo(len(blob), hashlib.md5(blob).hexdigest(), 2))
    bad = bytes(b ^ 1 for b in blob)
    monkeypatch.setattr(archives, "_open_url", lambda request, timeout: FakeResponse(bad, 200))
    with pytest.raises(ValueError, match="md5"):
        svhn.download_svhn(tmp_path, ("test",), progress=False)
    assert not (tmp_path / "svhn" / "test.tar.gz").exists()
    assert not (tmp_path / "svhn" / "test.tar.gz.part").exists()
    # a server announcing another size is refused before anything is written
    monkeypatch.setattr(archives, "_open_url", lambda request, timeout: FakeResponse(blob, 200, length=len(blob) + 5))
    with pytest.raises(ValueError, match="announces"):
        svhn.download_svhn(tmp_path, ("test",), progress=False)
    assert not (tmp_path / "svhn" / "test.tar.gz").exists()


# --------------------------------------------------------------------------- synthetic stand-in


@pytest.fixture(scope="module")
def synth():
    return svhn.make_synthetic_svhn(48, seed=3, return_pose=True)


def test_synthetic_shapes_and_determinism(synth):
    images, labels, pose = synth
    assert images.shape == (48, 3, 64, 64) and images.dtype == np.uint8
    assert labels.shape == (48, 5) and labels.dtype == np.int64
    again, labels2 = svhn.make_synthetic_svhn(48, seed=3)
    assert again.tobytes() == images.tobytes() and np.array_equal(labels2, labels)
    other, _ = svhn.make_synthetic_svhn(8, seed=4)
    assert not np.array_equal(other, images[:8])
    test_split, _ = svhn.make_synthetic_svhn(8, seed=3, split="test")
    assert not np.array_equal(test_split, images[:8])
    # prefix property: any window of the stream is the same images
    window, _ = svhn.make_synthetic_svhn(5, seed=3, start=10)
    assert window.tobytes() == images[10:15].tobytes()


def test_synthetic_worker_count_does_not_change_output(synth, monkeypatch):
    monkeypatch.setattr(synthetic, "_SYNTHETIC_CHUNK", 8)
    pooled, labels = svhn.make_synthetic_svhn(24, seed=3, workers=2)
    assert pooled.tobytes() == synth[0][:24].tobytes() and np.array_equal(labels, synth[1][:24])


def test_synthetic_labels_are_valid(synth):
    _, labels, pose = synth
    assert labels.min() >= 0 and labels.max() <= SVHN_BLANK
    length = (labels != SVHN_BLANK).sum(1)
    assert length.min() >= 1 and length.max() <= 5
    for row, k in zip(labels, length):  # digits first, blanks only at the end
        assert (row[:k] != SVHN_BLANK).all() and (row[k:] == SVHN_BLANK).all()
    np.testing.assert_array_equal(length, pose["n_digits"])
    assert len(set(length.tolist())) >= 3


def test_synthetic_variety(synth):
    images, _, pose = synth
    flat = images.reshape(len(images), -1).astype(np.float64)
    assert len({im.tobytes() for im in images}) == len(images)
    assert flat.std(0).mean() > 30  # images differ a lot pixel by pixel
    assert np.abs(pose["angle_deg"]).max() <= 30 and pose["angle_deg"].std() > 10  # pose varies
    assert len(set(pose["font"].tolist())) >= 5 and np.ptp(pose["crop_scale"]) > 0.2


def test_synthetic_needs_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="matplotlib"):
        svhn.make_synthetic_svhn(1, seed=0)


def test_synthetic_cache_roundtrip_and_extension(tmp_path, synth, monkeypatch):
    images, labels, meta = svhn.synthetic_svhn_arrays("train", 16, root=tmp_path, seed=3, workers=1, progress=False)
    assert images.tobytes() == synth[0][:16].tobytes()
    folder = svhn.synthetic_dir(tmp_path, 3)
    assert folder.parent == tmp_path / "svhn-synthetic"
    stored = json.loads((folder / "train.json").read_text())
    assert stored["source"] == svhn.SYNTHETIC_SOURCE and stored["count"] == 16 and stored["seed"] == 3
    assert "not real SVHN" in stored["source"]
    # smaller requests come from the cache, no rendering
    monkeypatch.setattr(synthetic, "make_synthetic_svhn", lambda *a, **k: pytest.fail("re-rendered"))
    small, _, small_meta = svhn.synthetic_svhn_arrays("train", 10, root=tmp_path, seed=3, progress=False)
    assert small.tobytes() == synth[0][:10].tobytes()
    flat = small.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    np.testing.assert_allclose(small_meta["mean"], flat.mean(1), rtol=1e-12)
    np.testing.assert_allclose(small_meta["std"], flat.std(1), rtol=1e-9)
    monkeypatch.undo()
    more, _, _ = svhn.synthetic_svhn_arrays("train", 20, root=tmp_path, seed=3, workers=1, progress=False)
    assert more.tobytes() == synth[0][:20].tobytes()
    assert json.loads((folder / "train.json").read_text())["count"] == 20
    assert sorted(p.name for p in folder.iterdir()) == ["train.json", "train.npz"]  # no temp files left
    # a corrupt synthetic cache is reported, not silently used
    (folder / "train.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(ValueError, match="corrupt"):
        svhn.synthetic_svhn_arrays("train", 4, root=tmp_path, seed=3, progress=False)


# --------------------------------------------------------------------------- task


def test_synthetic_task_batches_and_normalisation(tmp_path):
    with pytest.warns(svhn.SyntheticDataWarning, match="synthetic SVHN-like stand-in"):
        train = svhn.get_svhn_task("train", root=tmp_path, n_train=24, n_test=8, workers=1, progress=False)
    assert train.source == svhn.SYNTHETIC_SOURCE and train.num_examples == 24
    assert train.input_shape == (3, 64, 64) and train.num_classes == 11
    batches = list(train.batches(10, torch.Generator().manual_seed(0)))
    assert [b[0].shape[0] for b in batches] == [10, 10, 4]
    x, y, info = batches[0]
    assert x.shape == (10, 3, 64, 64) and x.dtype == torch.float32 and y.shape == (10, 5) and y.dtype == torch.int64
    assert info == {}
    everything, _, _ = train.raw_batch(torch.arange(24))
    per_channel = everything.transpose(0, 1).reshape(3, -1).double()
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_channel.std(1, unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)
    pixels = train.denormalize(everything) * 255
    torch.testing.assert_close(pixels, train.images.float(), atol=1e-3, rtol=0)
    # the shuffle is a permutation: one pass sees every example once
    ys = torch.cat([b[1] for b in batches])
    assert sorted(map(tuple, ys.tolist())) == sorted(map(tuple, train.labels.tolist()))

    test = svhn.get_svhn_task("test", root=tmp_path, source="synthetic", n_train=24, n_test=8, channels_last=True,
                              progress=False)
    assert test.num_examples == 8 and test.mean == train.mean and test.std == train.std
    xt, _, _ = next(test.batches(8, torch.Generator(), shuffle=False))
    assert xt.is_contiguous(memory_format=torch.channels_last)
    raw = svhn.get_svhn_task("test", root=tmp_path, source="synthetic", n_train=24, n_test=8, normalize=False,
                             subset=3, progress=False)
    assert raw.num_examples == 3
    torch.testing.assert_close(raw.raw_batch([0, 1, 2])[0] * 255, test.images[:3].float(), atol=1e-4, rtol=0)


def test_get_task_delegates_and_bad_names(tmp_path):
    task = get_task("svhn", "test", root=tmp_path, source="synthetic", n_train=8, n_test=4, subset=2, progress=False)
    assert isinstance(task, svhn.SVHNTask) and task.num_examples == 2 and task.subset == 2
    with pytest.raises(ValueError, match="'auto', 'real', 'synthetic'"):
        svhn.get_svhn_task("test", root=tmp_path, source="fake")
    with pytest.raises(ValueError, match="'train', 'test'"):
        svhn.get_svhn_task("extra", root=tmp_path)
    with pytest.raises(ValueError, match="positive int"):
        svhn.get_svhn_task("test", root=tmp_path, source="synthetic", n_test=0)
    with pytest.raises(FileNotFoundError, match="ufldl"):
        svhn.get_svhn_task("test", root=tmp_path, source="real")


def test_stand_in_difficulties_are_named_and_plain_is_milder():
    with pytest.raises(ValueError, match=r"'hard'.*paper-like, plain"):
        synthetic.difficulty("hard")
    assert synthetic.difficulty("paper-like") == synthetic.SyntheticSVHNConfig()
    _, plain_labels, plain = synthetic.make_synthetic_svhn(64, seed=1, config=synthetic.difficulty("plain"),
                                                           return_pose=True)
    _, _, hard = synthetic.make_synthetic_svhn(64, seed=1, return_pose=True)
    # "plain" draws at most three digits and rotates less; the labels keep the five-position format.
    assert plain["n_digits"].max() <= 3 and plain_labels.shape == (64, 5)
    assert np.abs(plain["angle_deg"]).max() <= 15.0 + 1e-6
    assert np.abs(hard["angle_deg"]).max() > np.abs(plain["angle_deg"]).max()
