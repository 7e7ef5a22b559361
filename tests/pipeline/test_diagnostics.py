"""virtual_mass: the virtual frame's share of the plan on background and procedure frames of a run's val videos."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from tests.stages.train.helpers import config as tiny_config
from vava.core.embeddings_file import EmbeddingsWriter
from vava.core.errors import VavaError
from vava.core.run_folder import load_checkpoint
from vava.pipeline.diagnostics import DIAGNOSTICS, Diagnostic, diagnose, plan_frame_scores, virtual_mass
from vava.stages.train.loop import train
from vava.stages.train.objectives.vava import PriorWidthHead, VavaConfig, unmatched_share, vava_pair_terms

BALANCED = {"cost": "normalised", "unit_embeddings": True, "virtual": "partial", "phi_schedule": "budget",
            "total_steps": 40}
BACKGROUND = 2  # label of the background phase


def trajectory(frames: int, phase: float, dim: int = 16) -> np.ndarray:
    t, k = np.arange(frames)[:, None], np.arange(dim)[None, :]
    return np.sin(0.4 * (t + phase) * (1 + k / 8) + 0.25 * k)


def video(name: str, action: str, split: str, shift: float, background: int = 0, dim: int = 16) -> dict:
    """A 10-frame procedure (phases 0 then 1) with `background` random frames (its own) inserted after frame 4."""
    procedure = trajectory(10, shift, dim)
    noise = np.random.default_rng(round(100 * shift)).standard_normal((background, dim))
    labels = np.r_[np.zeros(5), np.full(background, BACKGROUND), np.ones(5)].astype(np.int64)
    return {"info": SimpleNamespace(id=name, split=split, action=action, fps=10.0, phases=("p0", "p1", "bg"),
                                    background_label=BACKGROUND),
            "embeddings": np.concatenate([procedure[:5], noise, procedure[5:]]).astype(np.float32),  # as stored
            "labels": labels}


def make_run(root: Path, videos: list[dict], objective: str = "vava", loss: dict | None = None,
             step: int = 30) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump({"objective": objective, "steps": 40,
                                                      "loss": BALANCED if loss is None else loss}))
    with EmbeddingsWriter(root / "embeddings.h5", {"objective": objective, "step": step}) as writer:
        for v in videos:
            writer.add(v["info"], v["embeddings"], v["labels"], np.arange(len(v["labels"])),
                       np.zeros(len(v["labels"]), dtype=np.uint8))
    return root


def expected_shares(videos: list[dict], config: VavaConfig, step: int) -> tuple[float, float]:
    """(background, procedure) means over every ordered pair of the given videos, computed directly."""
    shares, masks = [], []
    for a in videos:
        for b in videos:
            if a is not b:
                x, y = (torch.from_numpy(v["embeddings"]).double() for v in (a, b))
                plan = vava_pair_terms(x, y, step, config)["plan"]
                rows, cols = unmatched_share(plan)
                shares += [rows.numpy(), cols.numpy()]
                masks += [a["labels"] == BACKGROUND, b["labels"] == BACKGROUND]
    share, mask = np.concatenate(shares), np.concatenate(masks)
    return float(share[mask].mean()), float(share[~mask].mean())


def test_background_frames_go_to_the_virtual_frame(tmp_path: Path) -> None:
    val = [video("a1", "a", "val", 0.0, background=4), video("a2", "a", "val", 0.3),
           video("a3", "a", "val", 0.6, background=3)]
    others = [video("a0", "a", "train", 0.1, background=4), video("b1", "b", "val", 0.2, background=4)]
    run = make_run(tmp_path / "run", [*others, *val])
    result = virtual_mass(run)
    assert result["pairs"] == 6  # ordered pairs of a1..a3; the train video and the lone video of b take no part
    background, procedure = expected_shares(val, VavaConfig(**BALANCED), 30)
    assert result["background"] == pytest.approx(background, rel=1e-12)
    assert result["procedure"] == pytest.approx(procedure, rel=1e-12)
    assert result["background"] > 0.5 and result["procedure"] < 0.1
    assert json.loads((run / "virtual_mass.json").read_text()) == result
    # the plan matches background to the virtual frame and procedure frames to their own phase
    assert result["alignment"] > 0.8 and result["alignment_background"]["idle"] > 0.8


def test_plan_frame_scores_by_hand() -> None:
    """Rows of a plan (column 0 virtual) for a video labelled (0, bg, 1, -1) against one labelled (0, 1, -1)."""
    labels, partner_labels = np.array([0, BACKGROUND, 1, -1]), np.array([0, 1, -1])
    background = labels == BACKGROUND
    rows = np.array([[0.1, 0.6, 0.3, 0.0],   # frame 0 -> second's frame 0 (label 0): right
                     [0.5, 0.2, 0.3, 0.0],   # background -> virtual: right
                     [0.6, 0.1, 0.3, 0.0],   # phase 1 -> virtual: wrong
                     [0.0, 1.0, 0.0, 0.0]])  # unlabelled: not scored
    np.testing.assert_array_equal(plan_frame_scores(rows, labels, partner_labels, background), [1, 1, 0, np.nan])
    rows[0] = [0.0, 0.0, 0.0, 1.0]  # matched to an unlabelled frame: not scored
    assert np.isnan(plan_frame_scores(rows, labels, partner_labels, background)[0])


def test_pairs_are_capped_per_action_and_background_may_be_missing(tmp_path: Path) -> None:
    val = [video(f"a{i}", "a", "val", 0.1 * i) for i in range(6)]  # 30 ordered pairs
    for v in val:
        v["info"].background_label = None
    result = virtual_mass(make_run(tmp_path / "run", val))
    assert result["pairs"] == 20 and result["background"] is None and 0 <= result["procedure"] < 0.1
    alone = virtual_mass(make_run(tmp_path / "alone", val[:1]))
    assert alone == {"background": None, "procedure": None, "pairs": 0, "alignment": None,
                     "alignment_background": {"idle": None, "cutaway": None, "distraction": None}}


def test_other_objectives_give_none_and_write_nothing(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [video("a1", "a", "val", 0.0), video("a2", "a", "val", 0.3)], objective="tcc",
                   loss={})
    assert virtual_mass(run) is None
    assert not (run / "virtual_mass.json").exists()


def test_diagnose_runs_the_diagnostic_registered_for_the_run_objective(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert DIAGNOSTICS["vava"].run is virtual_mass and DIAGNOSTICS["vava"].file == "virtual_mass.json"
    called: list[Path] = []
    monkeypatch.setitem(DIAGNOSTICS, "toy", Diagnostic("toy.json", called.append, {}))
    for objective in ("toy", "tcc", None):  # None: a reference row
        diagnose(tmp_path, objective)
    assert called == [tmp_path]


def test_a_diagnostic_file_reads_as_a_dict_or_nothing(tmp_path: Path) -> None:
    found = Diagnostic("toy.json", lambda run_dir: None, {})
    assert found.read(None) == {} and found.read(tmp_path) == {}  # no run (a seed that failed), no file
    for text, expected in (('{"a": 0.5}', {"a": 0.5}), ('{"a": 0.', {}), ("[1]", {})):
        (tmp_path / "toy.json").write_text(text)
        assert found.read(tmp_path) == expected


def test_missing_files_are_one_line_errors(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [video("a1", "a", "val", 0.0), video("a2", "a", "val", 0.3)])
    (run / "config.yaml").unlink()
    with pytest.raises(VavaError, match=r"config.yaml: no such file \(virtual_mass needs the run's training config\)"):
        virtual_mass(run)
    with pytest.raises(VavaError, match=r"embeddings.h5: no such file"):
        virtual_mass(tmp_path / "empty")


def test_learned_prior_width_comes_from_the_checkpoint(toy_features: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(toy_features, run, tiny_config("steps=2", "loss.learned_variance=true", "optim.lr=0.05"), progress=False)
    val = [video("a1", "a", "val", 0.0, background=3, dim=8), video("a2", "a", "val", 0.4, dim=8)]
    with EmbeddingsWriter(run / "embeddings.h5", {"objective": "vava", "step": 2}) as writer:
        for v in val:
            writer.add(v["info"], v["embeddings"], v["labels"], np.arange(len(v["labels"])),
                       np.zeros(len(v["labels"]), dtype=np.uint8))
    result = virtual_mass(run)
    config = VavaConfig(learned_variance=True, embedding_dim=8)
    head = PriorWidthHead(8, 2.0).double()
    head.load_state_dict({k.removeprefix("width_head."): v for k, v in
                          load_checkpoint(run / "checkpoints" / "last.pt")["objective"].items()})
    shares, masks = [], []
    for a, b in ((val[0], val[1]), (val[1], val[0])):
        x, y = (torch.from_numpy(v["embeddings"]).double()[None] for v in (a, b))
        sigma = head(x, y).detach()
        assert float(sigma) != pytest.approx(2.0, abs=1e-6)  # the head has trained away from sigma_prior
        rows, cols = unmatched_share(vava_pair_terms(x, y, 2, config, sigma)["plan"][0])
        shares += [rows.numpy(), cols.numpy()]
        masks += [a["labels"] == BACKGROUND, b["labels"] == BACKGROUND]
    share, mask = np.concatenate(shares), np.concatenate(masks)
    assert result["pairs"] == 2
    assert result["background"] == pytest.approx(float(share[mask].mean()), rel=1e-10)
    assert result["procedure"] == pytest.approx(float(share[~mask].mean()), rel=1e-10)
