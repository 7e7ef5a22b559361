"""The truncated backbones and their weights identities."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision import models

from vava.core.backbone import BACKBONES, backbone_with_cut, file_sha256, imagenet_weights_path, load_backbone
from vava.core.errors import VavaError


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
    with pytest.raises(VavaError, match=rf"--weights imagenet: {expected} not found .*resnet50-0676ba61.pth"):
        load_backbone("resnet50", "imagenet")
    with pytest.raises(VavaError, match="--weights: file .*missing.pth not found"):
        load_backbone("resnet50", str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"nonsense")
    with pytest.raises(VavaError, match="--weights: .*bad.pth is not a resnet50 state dict"):
        load_backbone("resnet50", str(bad))
    with pytest.raises(VavaError, match="--backbone: unknown backbone 'vgg'"):
        load_backbone("vgg", "random")
