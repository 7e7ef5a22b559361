"""The truncated backbones and their weights identities."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision import models

from vava.core.backbone import (
    BACKBONES,
    BackboneSpec,
    backbone_with_cut,
    file_sha256,
    imagenet_weights_path,
    load_backbone,
    sequential_trunk,
)
from vava.core.errors import ConfigError, VavaError


def test_resnet50_conv4_shape_and_frozen() -> None:
    net, identity = load_backbone("resnet50", "random", seed=0)
    assert identity.startswith("random:0:")
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    with torch.inference_mode():
        out = net(torch.zeros(2, 3, 64, 64))
    assert out.shape == (2, 1024, 4, 4)  # conv4: 1024 channels at stride 16


def reference_resnet50(seed: int, blocks: int) -> torch.nn.Sequential:
    """conv1..layer2 and the first `blocks` blocks of layer3 of a torchvision resnet50 seeded like load_backbone."""
    torch.manual_seed(seed)
    net = models.resnet50()
    return torch.nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2,
                               net.layer3[:blocks]).eval()


def test_default_cut_is_the_third_block_of_layer3_and_the_full_layer3_stays_available() -> None:
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    default, _ = load_backbone("resnet50", "random", seed=5)
    full, _ = load_backbone("resnet50-layer3", "random", seed=5)
    assert len(default[-1]) == 3 and len(full[-1]) == 6
    assert (BACKBONES["resnet50"].cut, BACKBONES["resnet50-layer3"].cut) == ("layer3.2", "layer3")
    with torch.inference_mode():
        out_default, out_full = default(images), full(images)
        assert torch.equal(out_default, reference_resnet50(5, 3)(images))
        assert torch.equal(out_full, reference_resnet50(5, 6)(images))
    assert out_default.shape == out_full.shape == (2, 1024, 4, 4)
    assert not torch.allclose(out_default, out_full)


def test_a_recorded_cut_finds_its_registered_backbone() -> None:
    assert backbone_with_cut("resnet50", "layer3.2") == "resnet50"
    assert backbone_with_cut("resnet50", "layer3") == "resnet50-layer3"  # feature sets from before the cut moved
    assert backbone_with_cut("resnet18", "layer3") == "resnet18"
    with pytest.raises(VavaError, match="no registered backbone is resnet18 cut at 'layer3.2' \\(known: resnet50 at "):
        backbone_with_cut("resnet18", "layer3.2")
    with pytest.raises(VavaError, match="no registered backbone is vgg cut at 'layer3'"):
        backbone_with_cut("vgg", "layer3")


def test_random_weights_are_seeded() -> None:
    a, id_a = load_backbone("resnet18", "random", seed=3)
    b, id_b = load_backbone("resnet18", "random", seed=3)
    c, id_c = load_backbone("resnet18", "random", seed=4)
    assert id_a == id_b != id_c
    assert torch.equal(a[0].weight, b[0].weight) and not torch.equal(a[0].weight, c[0].weight)


def test_weights_file_is_loaded_and_hashed(tmp_path: Path) -> None:
    reference = models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    net, identity = load_backbone("resnet18", str(path))
    assert identity == f"sha256:{file_sha256(path)}"
    assert torch.equal(net[0].weight, reference.conv1.weight)
    assert torch.equal(net[6][0].conv1.weight, reference.layer3[0].conv1.weight)


def test_weights_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    expected = imagenet_weights_path("resnet50")
    assert str(expected).startswith(str(tmp_path / "hub"))
    with pytest.raises(VavaError, match=rf"^weights imagenet: {expected} not found .*resnet50-0676ba61.pth"):
        load_backbone("resnet50", "imagenet")
    with pytest.raises(VavaError, match="^weights: file .*missing.pth not found"):
        load_backbone("resnet50", str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"nonsense")
    with pytest.raises(VavaError, match="^weights: .*bad.pth is not a resnet50 state dict"):
        load_backbone("resnet50", str(bad))
    with pytest.raises(VavaError, match="^backbone: unknown backbone 'vgg'"):
        load_backbone("vgg", "random")


def test_empty_or_code_carrying_weights_are_one_line_errors(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(VavaError) as caught:
        load_backbone("resnet18", str(empty))
    assert str(caught.value) == f"weights: {empty} is not a resnet18 state dict (EOFError)"
    shell = tmp_path / "shell.pth"
    torch.save({"conv1.weight": _Shell(f"touch {tmp_path / 'ran'}")}, shell)
    with pytest.raises(VavaError) as caught:
        load_backbone("resnet18", str(shell))
    assert str(caught.value) == (f"weights: {shell} is not a resnet18 state dict (Trying to load unsupported "
                                 "GLOBAL posix.system whose module posix is blocked.)")
    plain = tmp_path / "plain.pkl"  # a plain pickle, protocol 4: torch warns about the protocol, then refuses it
    plain.write_bytes(pickle.dumps({"conv1.weight": _Shell(f"touch {tmp_path / 'ran'}")}, protocol=4))
    with pytest.raises(VavaError) as caught:
        load_backbone("resnet18", str(plain))
    assert str(caught.value) == f"weights: {plain} is not a resnet18 state dict (Weights only load failed)"
    # Nothing run, no torch warning printed. A ResourceWarning here would come from another test's object that the
    # collector happened to free during this one, not from loading weights.
    assert not (tmp_path / "ran").exists()
    assert [str(w.message) for w in recwarn.list if not issubclass(w.category, ResourceWarning)] == []


class _Shell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


# -- checkpoint shapes of --weights FILE ----------------------------------------------------------
@pytest.fixture(scope="module")
def resnet50_weights() -> dict[str, torch.Tensor]:
    """A seeded torchvision resnet50 state dict whose BatchNorm statistics are not the defaults."""
    torch.manual_seed(7)
    state = models.resnet50().state_dict()
    generator = torch.Generator().manual_seed(8)
    for key, value in state.items():
        if key.endswith(("running_mean", "running_var")):
            state[key] = torch.rand(value.shape, generator=generator) + 0.5
    return state


IMAGES = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def reference_conv4(resnet50_weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """conv4 of IMAGES by a torchvision resnet50 carrying the weights."""
    net = models.resnet50()
    net.load_state_dict(resnet50_weights)
    with torch.inference_mode():
        return torch.nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2,
                                   net.layer3[:3]).eval()(IMAGES)


def up_to_conv4(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """The keys up to the third block of layer3, without fc or layer4 (what self-supervised checkpoints keep)."""
    cut = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.0.", "layer3.1.", "layer3.2.")
    return {prefix + k: v for k, v in state.items() if k.startswith(cut)}


def other(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """A second network of the same shape (a momentum branch), different values."""
    return {prefix + k: torch.zeros_like(v) for k, v in up_to_conv4(state).items()}


CHECKPOINTS = {
    "torchvision": lambda s: s,
    "no fc, no layer4, no num_batches_tracked": lambda s: {k: v for k, v in up_to_conv4(s).items()
                                                          if not k.endswith("num_batches_tracked")},
    "module. prefix (DataParallel, SwAV)": lambda s: {**up_to_conv4(s, "module."),
                                                      "module.prototypes.weight": torch.ones(3, 2)},
    "MoCo v2": lambda s: {"epoch": 200, "arch": "resnet50", "state_dict": {
        **up_to_conv4(s, "module.encoder_q."), "module.encoder_q.fc.0.weight": torch.ones(2048, 2048),
        **other(s, "module.encoder_k."), "module.queue": torch.ones(128, 4), "module.queue_ptr": torch.zeros(1)}},
    "MoCo v3": lambda s: {"epoch": 100, "state_dict": {**other(s, "module.momentum_encoder."),
                                                       **up_to_conv4(s, "module.base_encoder."),
                                                       "module.predictor.0.weight": torch.ones(4, 256)}},
    "BYOL (solo-learn, mmselfsup)": lambda s: {"state_dict": {**up_to_conv4(s, "backbone."),
                                                              **other(s, "momentum_backbone."),
                                                              "projector.0.weight": torch.ones(4, 2048)}},
    "model. nesting": lambda s: {"model": up_to_conv4(s), "optimizer": {"state": {}}, "epoch": 3},
}


@pytest.mark.parametrize("shape", CHECKPOINTS)
def test_weights_checkpoint_shapes_give_the_networks_conv4(shape: str, resnet50_weights: dict,
                                                           reference_conv4: torch.Tensor, tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    torch.save(CHECKPOINTS[shape](resnet50_weights), path)
    net, identity = load_backbone("resnet50", str(path))
    assert identity == f"sha256:{file_sha256(path)}"  # the cache fingerprint's weights identity, as before
    with torch.inference_mode():
        assert torch.equal(net(IMAGES), reference_conv4)


def test_weights_that_do_not_fit_name_the_keys(resnet50_weights: dict, tmp_path: Path) -> None:
    state = up_to_conv4(resnet50_weights)
    for key in ("layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn1.running_mean"):
        del state[key]
    path = tmp_path / "partial.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in {**state, "head.weight": torch.ones(1),
                                                             "head.bias": torch.ones(1)}.items()}}, path)
    with pytest.raises(VavaError) as error:
        load_backbone("resnet50", str(path))
    assert str(error.value) == (
        f"weights: {path} does not fit resnet50 (under state_dict.module): missing 4 keys (layer1.0.conv1.weight, "
        "layer1.0.bn1.weight, layer1.0.bn1.bias, ...), unexpected 2 (head.weight, head.bias)")

    torch.save({"head.weight": torch.ones(1)}, path)
    with pytest.raises(VavaError) as error:
        load_backbone("resnet50", str(path))
    needed = [k for k in up_to_conv4(resnet50_weights) if not k.endswith("num_batches_tracked")]
    assert str(error.value) == (f"weights: {path} does not fit resnet50: missing {len(needed)} keys (conv1.weight, "
                                "bn1.weight, bn1.bias, ...), unexpected 1 (head.weight)")

    wrong = {**up_to_conv4(resnet50_weights), "layer2.0.conv1.weight": torch.ones(3), "bn1.bias": torch.ones(2)}
    torch.save(wrong, path)
    with pytest.raises(VavaError) as error:
        load_backbone("resnet50", str(path))
    assert str(error.value) == (f"weights: {path} does not fit resnet50: bn1.bias has shape (2,), expected (64,) "
                                "(and 1 more of the wrong shape)")

    torch.save({"a": up_to_conv4(resnet50_weights), "b": up_to_conv4(resnet50_weights)}, path)
    with pytest.raises(VavaError) as error:
        load_backbone("resnet50", str(path))
    assert str(error.value) == (f"weights: {path} holds several resnet50 networks (under a, b); save the one to "
                                "use as a plain state dict")


# -- another architecture: one spec whose trunk builder is its own ---------------------------------
class _TwoStage(nn.Module):
    """Children not declared in the order they run, so `sequential_trunk` does not fit: stem, then blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(16, 10)
        self.stem = nn.Conv2d(3, 8, 4, stride=4)
        self.blocks = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                                    nn.Conv2d(16, 16, 3, stride=2, padding=1))


def _stem_then_blocks(net: nn.Module, cut: str) -> nn.Module:
    """The stem and the blocks up to `blocks.N`."""
    return nn.Sequential(net.stem, net.blocks[: int(cut.removeprefix("blocks.")) + 1])


TWO_STAGE = BackboneSpec(_TwoStage, "blocks.2", channels=16, stride=16, trunk=_stem_then_blocks)


def test_a_backbone_of_another_architecture_is_one_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKBONES, "two_stage", TWO_STAGE)
    random, identity = load_backbone("two_stage", "random", seed=2)
    assert identity.startswith("random:2:") and identity == load_backbone("two_stage", "random", seed=2)[1]
    assert random(torch.zeros(1, 3, 64, 64)).shape == (1, 16, 4, 4)
    assert backbone_with_cut("two_stage", "blocks.2") == "two_stage"
    torch.manual_seed(3)
    trained = _TwoStage().state_dict()
    path = tmp_path / "two_stage.pth"
    torch.save({"model": {f"module.{key}": value for key, value in trained.items() if not key.startswith("head.")}},
               path)  # the head is past the cut: not needed
    loaded, identity = load_backbone("two_stage", str(path))
    assert identity == f"sha256:{file_sha256(path)}"
    assert torch.equal(loaded[0].weight, trained["stem.weight"]) and torch.equal(loaded[1][2].bias,
                                                                                   trained["blocks.2.bias"])
    torch.save({key: value for key, value in trained.items() if key != "blocks.2.weight"}, path)
    with pytest.raises(VavaError, match=r"does not fit _TwoStage: missing 1 keys \(blocks\.2\.weight\)"):
        load_backbone("two_stage", str(path))
    with pytest.raises(ConfigError, match="^weights: backbone two_stage has no ImageNet weights; use random or a "
                                          "weights file$"):
        load_backbone("two_stage", "imagenet")


def test_the_default_trunk_builder_keeps_the_children_up_to_the_cut() -> None:
    net = models.resnet18()
    assert [type(m).__name__ for m in sequential_trunk(net, "layer2")][-3:] == ["MaxPool2d", "Sequential",
                                                                                  "Sequential"]
    assert len(sequential_trunk(net, "layer3.0")[-1]) == 1 and sequential_trunk(net, "layer3.0")[-1][0] is \
        net.layer3[0]
    with pytest.raises(ValueError, match="ResNet has no child 'conv4'"):
        sequential_trunk(net, "conv4")
