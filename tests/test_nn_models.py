"""stnlib.nn.models: the factory, shapes, exact parameter counts (book/protocol.md, Networks), where each ST sits, parameter groups."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from stnlib.datasets import DATASETS
from stnlib.nn.models import build_model, valid_models

DATASET_SHAPES = {k: v.input_shape for k, v in DATASETS.items()}
from stnlib.transforms import identity_theta, rotation_theta

MNIST = ("mnist-rot", "mnist-trans")
ALL_MODELS = [(ds, name) for ds in DATASET_SHAPES for name in valid_models(ds)]
SMALL = 0.25  # SVHN width for forward passes (a named quick-profile deviation; keeps tests fast)


def conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def lin(i: int, o: int) -> int:
    return i * o + o


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def small(name: str, dataset: str):
    torch.manual_seed(0)
    return build_model(name, dataset, width=SMALL if dataset == "svhn" else 1.0)


def set_rotation(model, angle: float) -> None:
    """Make the ST output a fixed rotation regardless of its input (weights 0, bias = theta - identity)."""
    with torch.no_grad():
        model.st.fc_loc.weight.zero_()
        model.st.fc_loc.bias.copy_(rotation_theta(angle).flatten() - model.st.identity)


def rot90(t: torch.Tensor) -> torch.Tensor:
    return torch.rot90(t, 1, dims=(-2, -1))


# --------------------------------------------------------------------------- names and errors


def test_valid_models():
    for ds in MNIST:
        assert valid_models(ds) == ("cnn", "stn-c0", "stn-c1", "stn-sl1", "stn-dl1")
    assert valid_models("svhn") == (
        "cnn", "stn-c0", "stn-c3", "stn-c6", "stn-c8", "stn-sl3", "stn-sl6", "stn-sl8", "stn-dl3", "stn-dl6", "stn-dl8",
    )  # fmt: skip


@pytest.mark.parametrize(
    "name,dataset,kwargs,pattern",
    [
        ("cnn", "cifar", {}, r"'cifar'.*mnist-rot, mnist-trans, svhn"),
        ("resnet", "mnist-rot", {}, r"'resnet'.*cnn, stn-c0, stn-c1, stn-sl1, stn-dl1"),
        ("stn-c9", "mnist-rot", {}, r"'stn-c9'.*X=9.*stn-c0, stn-c1"),
        ("stn-sl0", "mnist-rot", {}, r"'stn-sl0'.*X=0 is stn-c0.*stn-sl1"),
        ("stn-dl0", "svhn", {}, r"'stn-dl0'.*X=0 is stn-c0.*stn-dl8"),
        ("stn-c1", "svhn", {}, r"'stn-c1'.*stn-c3"),
        ("cnn", "mnist-rot", {"width": 0.5}, r"width=0.5.*svhn only"),
        ("cnn", "svhn", {"width": 0.0}, r"width must be positive"),
        ("cnn", "mnist-rot", {"dropout": 0.0}, r"dropout=0.0.*svhn only"),
        ("cnn", "svhn", {"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_factory_errors(name, dataset, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        build_model(name, dataset, **kwargs)


def test_wrong_input_shape_raises():
    model = small("stn-c1", "mnist-rot")
    with pytest.raises(ValueError, match=r"\[N, 1, 28, 28\].*\[2, 1, 60, 60\]"):
        model(torch.zeros(2, 1, 60, 60))
    with pytest.raises(ValueError, match=r"\[N, 1, 28, 28\].*\[1, 28, 28\]"):
        model(torch.zeros(1, 28, 28))
    with pytest.raises(ValueError, match=r"\[N, 3, 64, 64\]"):
        small("cnn", "svhn").transform(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="no spatial transformer"):
        small("cnn", "mnist-rot").transform(torch.zeros(1, 1, 28, 28))


# --------------------------------------------------------------------------- sizes

CNN_ROT = conv(1, 64, 9) + conv(64, 64, 7) + lin(256, 10)


def test_rotated_mnist_exact_parameter_counts():
    assert CNN_ROT == 208_586
    expected = {
        "cnn": 208_586,
        "stn-c0": 208_586 + 36_286,
        "stn-c1": 208_586 + 43_786,
        "stn-sl1": 208_586 + 43_786,
        "stn-dl1": 208_586 + 49_034,  # C1 head + its own copy of conv1 (5,248)
    }
    for name, count in expected.items():
        model = build_model(name, "mnist-rot")
        assert n_params(model) == count, name
        if model.st is not None:
            assert model.st.padding_mode == "border" and model.st.out_size is None


def test_translated_mnist_sizes():
    # Every ST halves its output: C0/SL1/DL1 sample 30×30 from 60×60 (Linear 256), C1 13×13 from 26×26 (576).
    expected = {"cnn": (6400, None), "stn-c0": (256, (30, 30)), "stn-c1": (576, (13, 13)),
                "stn-sl1": (256, (30, 30)), "stn-dl1": (256, (30, 30))}  # fmt: skip
    heads = {0: conv(1, 20, 5) + conv(20, 20, 5) + lin(2880, 20) + lin(20, 6),
             1: conv(64, 20, 5) + conv(20, 20, 5) + lin(980, 20) + lin(20, 6)}  # fmt: skip
    convs = conv(1, 64, 9) + conv(64, 64, 7)
    for name, (n_in, out_size) in expected.items():
        model = build_model(name, "mnist-trans")
        assert model.head[-1].in_features == n_in, name
        loc = 0 if model.st is None else heads[model.placement] + (conv(1, 64, 9) if model.kind == "dl" else 0)
        assert n_params(model) == convs + lin(n_in, 10) + loc, name
        if model.st is not None:
            assert model.st.out_size == out_size and model.st.padding_mode == "border"


SVHN_CHANNELS = [48, 64, 128, 160, 192, 192, 192, 192]
SVHN_CONVS = [conv(cin, cout, 5) for cin, cout in zip([3] + SVHN_CHANNELS[:-1], SVHN_CHANNELS)]
SVHN_CNN = sum(SVHN_CONVS) + 3 * lin(3072, 3072) + 5 * lin(3072, 11)
SVHN_HEAD = {0: 1_077_926, 3: 194_886, 6: 196_934, 8: 184_646}  # SVHN-l + Linear(→6), see test_stn


def test_svhn_width_one_parameter_counts():
    assert sum(SVHN_CONVS) == 4_331_168 and SVHN_CNN == 32_820_951  # spec: 4.33 M conv, ≈ 32.8 M total
    with torch.device("meta"):  # shapes only: no 33 M-parameter initialisation
        for name in valid_models("svhn"):
            model = build_model(name, "svhn")
            expected = SVHN_CNN
            if model.st is not None:
                expected += SVHN_HEAD[model.placement]
                if model.kind == "dl":
                    expected += sum(SVHN_CONVS[: model.placement])
                assert model.st.padding_mode == "zeros" and model.st.out_size is None
            assert n_params(model) == expected, name


def test_svhn_width_scales_channels():
    model = build_model("cnn", "svhn", width=SMALL)
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [12, 16, 32, 40, 48, 48, 48, 48]
    assert model.head.hidden[1].in_features == 48 * 4 * 4 and model.head.hidden[1].out_features == 768
    tiny = build_model("cnn", "svhn", width=0.001)
    assert all(m.out_channels == 1 for m in tiny.modules() if isinstance(m, nn.Conv2d))


def test_svhn_block_layout():
    model = build_model("cnn", "svhn", width=SMALL)
    for index, block in enumerate(model.features, start=1):
        kinds = [type(m) for m in block]
        expected = [nn.Conv2d, nn.ReLU]
        expected += [nn.MaxPool2d] if index in (1, 3, 5, 7) else []
        expected += [nn.Dropout] if index > 1 else []
        assert kinds == expected, index
    assert sum(isinstance(m, nn.Dropout) for m in model.head.modules()) == 3


def test_svhn_dropout_setting():
    """dropout=0 (the quick profile's deviation) removes every Dropout layer, parameters unchanged."""
    for name in ("cnn", "stn-c3", "stn-sl3", "stn-dl3"):
        paper_net = build_model(name, "svhn", width=SMALL)
        no_dropout = build_model(name, "svhn", width=SMALL, dropout=0.0)
        assert not any(isinstance(m, nn.Dropout) for m in no_dropout.modules()), name
        assert n_params(no_dropout) == n_params(paper_net), name
    p = [m.p for m in build_model("cnn", "svhn", width=SMALL, dropout=0.3).modules() if isinstance(m, nn.Dropout)]
    assert p == [0.3] * 10


@pytest.mark.parametrize("dataset,name", ALL_MODELS)
def test_forward_shapes_and_identity_start(dataset, name):
    model = small(name, dataset).eval()
    x = torch.rand(2, *DATASET_SHAPES[dataset])
    logits, theta = model.forward_with_theta(x)
    assert logits.shape == ((2, 10) if dataset != "svhn" else (2, 5, 11))
    torch.testing.assert_close(model(x), logits)
    if model.st is None:
        assert theta is None
        return
    assert torch.equal(theta, identity_theta(2))  # exact: zero fc_loc + identity buffer
    warped, theta_t = model.transform(x)
    assert torch.equal(theta_t, theta)
    source = x if model.kind != "c" else model.features[: model.placement](x)
    if dataset == "mnist-trans":
        expected = F.avg_pool2d(source, 2)  # identity at half size averages 2×2 blocks
    else:
        expected = source
    # float32 grid rounding puts samples ~1e-7·W px off the pixel centres (see test_transforms)
    atol = 2e-7 * source.shape[-1] * max(1.0, source.abs().max().item())
    torch.testing.assert_close(warped, expected, atol=atol, rtol=0)


def test_first_layer():
    model = small("stn-sl1", "mnist-rot")
    assert model.first_layer(torch.rand(2, 1, 28, 28)).shape == (2, 64, 10, 10)
    assert model.first_layer(torch.rand(2, 1, 30, 30)).shape == (2, 64, 11, 11)  # any size (warped inputs)
    assert small("cnn", "mnist-trans").first_layer(torch.rand(1, 1, 60, 60)).shape == (1, 64, 26, 26)
    svhn = small("cnn", "svhn").eval()
    assert svhn.first_layer(torch.rand(1, 3, 64, 64)).shape == (1, 12, 32, 32)
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\]"):
        model.first_layer(torch.rand(1, 3, 28, 28))


# --------------------------------------------------------------------------- what each variant warps


@pytest.mark.parametrize("dataset", ["mnist-rot", "svhn"])
def test_variants_warp_the_right_tensor(dataset):
    x = torch.rand(2, *DATASET_SHAPES[dataset], dtype=torch.float64)
    tol = dict(atol=1e-10, rtol=0)
    for name in valid_models(dataset):
        if name == "cnn":
            continue
        model = small(name, dataset).double().eval()
        set_rotation(model, 90.0)
        warped, theta = model.transform(x)
        torch.testing.assert_close(theta, rotation_theta(90.0, batch=2, dtype=torch.float64))
        X = model.placement
        if model.kind == "c":
            # STN-CX rotates the feature map after block X; the rest of the network runs on it
            fmap = model.features[:X](x)
            torch.testing.assert_close(warped, rot90(fmap), **tol)
            expected_logits = model.head(model.features[X:](rot90(fmap)))
        else:
            # SL/DL rotate the input image; the whole classifier runs on it
            torch.testing.assert_close(warped, rot90(x), **tol)
            expected_logits = model.head(model.features(rot90(x)))
        torch.testing.assert_close(model(x), expected_logits, **tol)


def test_sl_uses_own_layers_and_dl_uses_independent_copies():
    x = torch.rand(2, 1, 28, 28)
    sl = small("stn-sl1", "mnist-rot")
    dl = small("stn-dl1", "mnist-rot")
    for model in (sl, dl):
        with torch.no_grad():
            model.st.fc_loc.weight.normal_(0, 0.05)
    # SL: theta is the loc head applied to the classifier's own first block
    torch.testing.assert_close(sl.transform(x)[1], sl.st.theta(sl.features[0](x)), rtol=0, atol=0)
    # DL: the loc net holds re-initialised copies: same shapes, different values, different tensors
    copy_conv = dl.st.localization[0][0][0]
    own_conv = dl.features[0][0]
    assert copy_conv.weight.shape == own_conv.weight.shape
    assert copy_conv.weight.data_ptr() != own_conv.weight.data_ptr()
    assert not torch.allclose(copy_conv.weight, own_conv.weight)
    torch.testing.assert_close(dl.transform(x)[1], dl.st.theta(x), rtol=0, atol=0)
    # changing the classifier's first block changes SL's theta but not DL's
    before_sl, before_dl = sl.transform(x)[1], dl.transform(x)[1]
    with torch.no_grad():
        sl.features[0][0].weight.mul_(2)
        dl.features[0][0].weight.mul_(2)
    assert not torch.allclose(sl.transform(x)[1], before_sl)
    torch.testing.assert_close(dl.transform(x)[1], before_dl, rtol=0, atol=0)


def test_svhn_sl_dropout_runs_in_both_passes():
    model = small("stn-sl3", "svhn").train()
    x = torch.rand(2, 3, 64, 64)
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, model(x))  # dropout active in training
    model.eval()
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


# --------------------------------------------------------------------------- parameter groups


@pytest.mark.parametrize("dataset,name", ALL_MODELS)
def test_param_groups_disjoint_and_complete(dataset, name):
    model = small(name, dataset)
    groups = model.param_groups(0.01, 0.1)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    assert groups[0]["name"] == "classifier" and groups[0]["lr"] == 0.01
    loc_ids = {id(p) for p in model.localization_parameters()}
    cls_ids = {id(p) for p in model.classifier_parameters()}
    assert not loc_ids & cls_ids
    if model.st is None:
        assert len(groups) == 1 and not loc_ids
        return
    assert groups[1]["name"] == "localization" and groups[1]["lr"] == pytest.approx(0.001)
    assert loc_ids == {id(p) for p in model.st.parameters()}
    assert {id(p) for p in model.features.parameters()} <= cls_ids  # SL's shared blocks train with the classifier
    if model.kind == "dl":
        assert id(model.st.localization[0][0][0].weight) in loc_ids
    torch.optim.SGD(groups, lr=0.01)  # accepted by torch.optim


# --------------------------------------------------------------------------- precision and layout


@pytest.mark.parametrize("dataset,name", [("mnist-rot", "stn-c1"), ("mnist-trans", "stn-sl1"), ("svhn", "stn-dl3")])
def test_autocast_bfloat16_and_channels_last(dataset, name):
    model = small(name, dataset).eval()
    with torch.no_grad():
        model.st.fc_loc.weight.normal_(0, 0.01)
    x = torch.rand(2, *DATASET_SHAPES[dataset])
    ref_logits, ref_theta = model.forward_with_theta(x)
    model = model.to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    logits_cl, _ = model.forward_with_theta(x_cl)
    torch.testing.assert_close(logits_cl, ref_logits, atol=1e-4, rtol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, theta = model.forward_with_theta(x_cl)
    assert theta.dtype == torch.float32
    assert torch.isfinite(logits.float()).all()
    torch.testing.assert_close(theta, ref_theta, atol=0.05, rtol=0)  # loc body ran in bfloat16
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(x_cl).float().square().mean()
    loss.backward()
    assert model.st.fc_loc.weight.grad is not None and torch.isfinite(model.st.fc_loc.weight.grad).all()
