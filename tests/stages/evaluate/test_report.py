"""`evaluate`: every probe against hand-computed values on tiny embeddings.h5 files."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy import stats
from sklearn.neighbors import NearestNeighbors

from vava.core.errors import VavaError
from vava.stages.evaluate import classification as cls
from vava.core.embeddings_file import VideoEmbeddings, load_embeddings, natural_key
from vava.stages.evaluate.kendall import kendalls_tau, tau_b_against_order
from vava.stages.evaluate.progression import action_phases, progress_targets, progression_r2
from vava.core.report_file import load_report
from vava.stages.evaluate.report import compare_reports, evaluate_embeddings, render_text, write_report
from vava.stages.evaluate.retrieval import exact_search, leave_one_video_out, precision_at_k
from vava.stages.evaluate.skip import ProbeSkipped

PHASES = ["p0", "p1", "p2"]


def video(id: str, x, y, split: str = "val", action: str = "a", phases=PHASES, bg: int = -1) -> dict:
    y = np.asarray(y, dtype=np.int64)
    return {"id": id, "x": np.asarray(x, dtype=np.float32).reshape(len(y), -1), "y": y, "split": split,
            "action": action, "phases": phases, "bg": bg}


def write_h5(path: Path, videos: list[dict]) -> Path:
    """An embeddings.h5 in the layout `vava embed` writes."""
    with h5py.File(path, "w") as handle:
        handle.attrs.update({"run": "runs/toy", "embedder": "trained", "checkpoint": "runs/toy/checkpoints/last.pt",
                             "step": 3, "objective": "vava", "feature_set": "cache/toy", "fingerprint": "toy",
                             "splits": "train,val", "created": "2024-01-01T00:00:00+00:00"})
        for v in videos:
            group = handle.create_group(f"videos/{v['id']}")
            group.create_dataset("embeddings", data=v["x"])
            group.create_dataset("labels", data=v["y"])
            group.create_dataset("frame_index", data=np.arange(len(v["y"])))
            group.attrs.update({"id": v["id"], "split": v["split"], "action": v["action"], "fps": 15.0,
                                "phases": v["phases"], "background_label": v["bg"]})
    return path


def record(x, y, id: str = "v", split: str = "val") -> VideoEmbeddings:
    y = np.asarray(y, dtype=np.int64)
    return VideoEmbeddings(id, split, "a", np.asarray(x, dtype=np.float32).reshape(len(y), -1), y, tuple(PHASES))


# --------------------------------------------------------------------------------------------
# Kendall's tau


def test_tau_b_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 6, size=(40, 17))  # many ties
    expected = [stats.kendalltau(np.arange(17), row).statistic for row in values]
    assert np.allclose(tau_b_against_order(values), expected)


def test_tau_b_hand_values() -> None:
    # [0, 0, 1, 2]: 6 pairs, 1 tied, 0 discordant -> (5 - 0) / sqrt(6 * 5)
    taus = tau_b_against_order(np.array([[0, 1, 2, 3], [3, 2, 1, 0], [0, 0, 1, 2], [4, 4, 4, 4]]))
    assert taus[:3] == pytest.approx([1.0, -1.0, 5 / np.sqrt(30)])
    assert np.isnan(taus[3])


def ramp(length: int) -> np.ndarray:
    return np.stack([np.arange(length), np.zeros(length)], axis=1).astype(np.float32)


def test_identical_and_reversed_videos() -> None:
    assert kendalls_tau([ramp(6), ramp(6), ramp(6)]).mean == pytest.approx(1.0)
    reversed_pair = kendalls_tau([ramp(6), ramp(6)[::-1]])
    assert reversed_pair.mean == pytest.approx(-1.0) and reversed_pair.pairs == 2


def test_constant_embeddings_pairs_are_dropped() -> None:
    result = kendalls_tau([ramp(5), ramp(5), np.ones((5, 2), np.float32)])
    assert result.mean == pytest.approx(1.0)
    assert (result.pairs, result.nan_pairs) == (6, 4)  # both directions with the constant video are NaN
    with pytest.raises(ProbeSkipped, match="undefined"):
        kendalls_tau([np.ones((4, 2)), np.ones((4, 2))])


def test_ties_in_matches_and_stride() -> None:
    query = np.array([[0.0], [1.0], [10.0], [20.0]])
    candidates = np.array([[0.0], [10.0], [20.0]])
    taus = kendalls_tau([query, candidates]).taus  # query matches [0, 0, 1, 2]; candidates match [0, 2, 3]
    assert taus[0, 1] == pytest.approx(5 / np.sqrt(30))
    assert taus[1, 0] == pytest.approx(1.0)
    # stride 2 keeps frames 0 and 2 of each: [0, 10] vs [0, 20] -> perfect order both ways
    assert kendalls_tau([query, candidates], stride=2).mean == pytest.approx(1.0)


def test_video_shorter_than_stride_gives_dropped_pair() -> None:
    result = kendalls_tau([ramp(8), ramp(8), ramp(3)], stride=4)  # the short video keeps one frame
    assert result.mean == pytest.approx(1.0) and result.nan_pairs == 4


def test_kendall_matches_reference_loop_and_cosine_ignores_scale() -> None:
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(1)
    videos = [np.cumsum(rng.standard_normal((n, 4)), axis=0) for n in (9, 12, 7)]
    expected = [stats.kendalltau(np.arange(len(a)), cdist(a, b, "sqeuclidean").argmin(axis=1)).statistic
                for i, a in enumerate(videos) for j, b in enumerate(videos) if i != j]
    assert kendalls_tau(videos).mean == pytest.approx(np.nanmean(expected))
    scaled = [v * s for v, s in zip(videos, (1.0, 3.0, 0.5))]
    assert kendalls_tau(scaled, distance="cosine").mean == pytest.approx(kendalls_tau(videos, distance="cosine").mean)


# --------------------------------------------------------------------------------------------
# Phase progression


def test_progress_targets_hand_computed() -> None:
    phases = np.arange(3)
    t = np.arange(6)
    targets = progress_targets(np.array([0, 0, 1, 1, 1, 2]), phases)
    assert np.allclose(targets, np.stack([(t - 1) / 6, (t - 4) / 6], axis=1))


def test_progress_targets_missing_phase_fallback() -> None:
    phases = np.arange(3)
    # phase 1 missing: tau_1 = first frame of phase 2 = 2
    assert np.allclose(progress_targets(np.array([0, 0, 2, 2]), phases)[:, 1], (np.arange(4) - 2) / 4)
    # the next higher phase present is phase 2, even though phase 3 starts earlier (non-monotonic order)
    assert np.allclose(progress_targets(np.array([0, 0, 3, 3, 2, 2]), np.arange(4))[:, 1], (np.arange(6) - 4) / 6)
    # phases 1 and 2 missing: tau_1 = T - 1
    assert np.allclose(progress_targets(np.array([0, 0, 0]), phases), [[-2 / 3, -2 / 3], [-1 / 3, -1 / 3], [0, 0]])
    # phase 0 missing: tau_0 = first frame of phase 1
    assert np.allclose(progress_targets(np.array([1, 1, 2]), phases)[:, 0], np.arange(3) / 3)
    # unlabelled frames keep their place on the time axis
    assert np.allclose(progress_targets(np.array([-1, 0, 1, -1]), np.arange(2))[:, 0], (np.arange(4) - 1) / 4)


def test_action_phases_skip_background() -> None:
    keep = record(np.zeros((3, 1)), [0, 1, 2])
    assert action_phases([VideoEmbeddings("v", "val", "a", keep.embeddings, keep.labels, ("a", "b", "bg"), 2)]
                         ).tolist() == [0, 1]
    assert action_phases([VideoEmbeddings("v", "val", "a", keep.embeddings, keep.labels, ("bg", "a", "b"), 0)]
                         ).tolist() == [1, 2]


def test_progression_r2_perfect_and_by_hand() -> None:
    labels = [0, 0, 0, 1, 1, 1, 2, 2]
    exact = [record(np.arange(8) / 8, labels, f"v{i}") for i in range(3)]  # embedding = t / T: targets are linear
    assert progression_r2(exact[:2], exact[2:], np.arange(3)) == pytest.approx([1.0, 1.0])
    rng = np.random.default_rng(0)
    noisy = [record(np.stack([np.arange(8) / 8 + 0.1 * rng.standard_normal(8), rng.standard_normal(8)], 1), labels,
                    f"n{i}") for i in range(4)]
    x = np.concatenate([np.c_[v.embeddings, np.ones(8)] for v in noisy])
    r = np.concatenate([progress_targets(v.labels, np.arange(3)) for v in noisy])
    coef = np.linalg.lstsq(x[:16], r[:16], rcond=None)[0]
    residual = ((r[16:] - x[16:] @ coef) ** 2).sum(0)
    expected = 1 - residual / ((r[16:] - r[16:].mean(0)) ** 2).sum(0)
    assert progression_r2(noisy[:2], noisy[2:], np.arange(3)) == pytest.approx(expected)
    with pytest.raises(ProbeSkipped, match="2 phases"):
        progression_r2(exact[:2], exact[2:], np.arange(1))


# --------------------------------------------------------------------------------------------
# Retrieval (AP@K)


def one_hot(labels) -> np.ndarray:
    return np.eye(3, dtype=np.float32)[labels]


def test_ap_one_hot_is_perfect() -> None:
    labels = [0, 0, 0, 1, 1, 2, 2, 2]
    found = precision_at_k([record(one_hot(labels), labels, "a"), record(one_hot(labels), labels, "b")], (1, 2))
    assert found.frame_weighted == {1: 1.0, 2: 1.0} and found.video_mean == {1: 1.0, 2: 1.0}


def test_ap_hand_computed_partial() -> None:
    a = record([0.0, 10.0], [0, 1], "a")
    b = record([1.0, 2.0, 11.0], [0, 1, 1], "b")
    found = precision_at_k([a, b], (1, 2, 3))
    # K=1: a hits 2/2; b hits 1 (->0), misses 2 (->0), hits 11 (->10)
    assert found.video_mean[1] == pytest.approx((1 + 2 / 3) / 2) and found.frame_weighted[1] == pytest.approx(4 / 5)
    # K=2: a: 1/2, 2/2; b: every query 1/2
    assert found.video_mean[2] == pytest.approx((0.75 + 0.5) / 2) and found.frame_weighted[2] == pytest.approx(3 / 5)
    assert 3 not in found.frame_weighted and "only 2 frames" in found.skipped[3]


def test_ap_ties_go_to_lower_index() -> None:
    # the middle video's frame is 1 away from a frame before it (label 1) and one after it (label 0);
    # they are found by searches at different split levels, and the merge keeps the lower index
    videos = [record([4.0], [1], "a"), record([5.0], [0], "b"), record([6.0], [0], "c")]
    found = leave_one_video_out(np.array([[4.0], [5.0], [6.0]], np.float32), np.arange(4), 2, exact_search("cpu"))
    assert found.tolist() == [[1, 2], [0, 2], [1, 0]]
    found = precision_at_k(videos, (1,))
    assert found.frame_weighted[1] == pytest.approx(1 / 3)  # a -> b (miss), b -> a (tie, miss), c -> b (hit)


def test_ap_stride_and_unlabelled_frames() -> None:
    a = record([0.0, 50.0, 1.0, 60.0], [0, -1, 1, -1], "a")
    b = record([0.5, 70.0, 1.2], [1, 1, 1], "b")
    found = precision_at_k([a, b], (1,), stride=2)  # a -> [0, 1] labels [0, 1]; b -> [0.5, 1.2]
    assert found.queries == 4 and found.frame_weighted[1] == pytest.approx(2 / 4)


def test_ap_matches_sklearn_brute_force() -> None:
    rng = np.random.default_rng(3)
    lengths = (20, 31, 17, 3, 12, 40, 9)
    videos = [record(rng.standard_normal((n, 5)), rng.integers(0, 3, n), f"v{i}") for i, n in enumerate(lengths)]
    found = precision_at_k(videos, (5, 10))
    precisions = []
    for i, v in enumerate(videos):
        others = [w for j, w in enumerate(videos) if j != i]
        model = NearestNeighbors(n_neighbors=10, algorithm="brute").fit(np.concatenate([w.embeddings for w in others]))
        neighbour_labels = np.concatenate([w.labels for w in others])[model.kneighbors(v.embeddings)[1]]
        precisions.append((neighbour_labels[:, :5] == v.labels[:, None]).mean(1))
    assert found.frame_weighted[5] == pytest.approx(np.concatenate(precisions).mean())
    assert found.video_mean[5] == pytest.approx(np.mean([p.mean() for p in precisions]))


def test_ap_needs_two_videos() -> None:
    with pytest.raises(ProbeSkipped, match="at least 2 val videos"):
        precision_at_k([record(one_hot([0, 1]), [0, 1])], (1,))


# --------------------------------------------------------------------------------------------
# Phase classification


def separable(id: str, split: str, flip: bool = False, action: str = "a") -> dict:
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    x = centres[labels[::-1] if flip else labels] + 0.1 * np.random.default_rng(len(id)).standard_normal((8, 2))
    return video(id, x, labels, split, action)


def test_train_count() -> None:
    assert [cls.train_count(f, 70) for f in (0.1, 0.5, 1.0)] == [7, 35, 70]
    assert [cls.train_count(0.5, 103), cls.train_count(0.1, 5), cls.train_count(0.29, 100)] == [51, 1, 29]


def test_classification_separable_and_first_videos_in_natural_order(tmp_path: Path) -> None:
    # natural order: t2 (right labels) < t10 (mirrored labels) < t11 (mirrored); plain sorting would put t10 first
    videos = [separable("t10", "train", flip=True), separable("t2", "train"), separable("t11", "train", flip=True),
              separable("v1", "val"), separable("v2", "val")]
    path = write_h5(tmp_path / "e.h5", videos)
    assert [v.id for v in load_embeddings(path).videos] == ["t2", "t10", "t11", "v1", "v2"]
    report = evaluate_embeddings(path, tasks=("classification",), fractions=(0.34, 1.0))
    assert report["results"]["classification"]["0.34"] == pytest.approx(1.0)  # n = 1: t2 only
    assert report["per_action"]["a"]["classification_train_videos"] == {"0.34": 1, "1.0": 3}
    assert report["results"]["classification"]["1.0"] < 0.5
    logistic = evaluate_embeddings(path, tasks=("classification",), fractions=(0.34,), classifier="logistic")
    assert logistic["results"]["classification"]["0.34"] == pytest.approx(1.0)


def test_classification_ignores_unlabelled_and_handles_one_class() -> None:
    train = [record([[0.0], [0.1], [5.0]], [0, 0, -1], "t")]  # one class left after dropping -1
    val = cls.labelled_frames([record([[0.0], [9.0], [4.0]], [0, -1, 1], "v")])
    assert val[1].tolist() == [0, 1]
    assert cls.accuracy(train, val, "svm") == pytest.approx(0.5)


def test_few_shot_draws_like_tcc(monkeypatch: pytest.MonkeyPatch) -> None:
    train = [record([[float(i)]], [0], f"t{i}") for i in range(6)]
    drawn = []
    monkeypatch.setattr(cls, "accuracy", lambda videos, val, kind: drawn.append([v.id for v in videos]) or 0.5)
    result = cls.few_shot_accuracies(train, (np.zeros((1, 1)), np.zeros(1)), (1, 2, 9), 3, "svm")
    np.random.seed(42)
    expected = [[f"t{i}" for i in np.random.permutation(6)[:k]] for k in (1, 2) for _ in range(3)]
    assert drawn == expected and sorted(result) == [1, 2]  # k = 9 > 6 videos is left out
    mean, half = cls.t_interval([0.5, 0.6, 0.7, 0.9])
    low, high = stats.t.interval(0.95, 3, loc=mean, scale=stats.sem([0.5, 0.6, 0.7, 0.9]))
    assert (mean - half, mean + half) == pytest.approx((low, high))


def test_few_shot_and_robustness_in_report(tmp_path: Path) -> None:
    videos = [separable(f"t{i}", "train") for i in range(4)] + [separable("v1", "val")]
    report = evaluate_embeddings(write_h5(tmp_path / "e.h5", videos), tasks=("few_shot", "robustness"),
                                 few_shot_ks=(1, 2), few_shot_episodes=4, robustness_seeds=3, fractions=(0.5,))
    results = report["results"]
    assert results["few_shot"]["1"]["mean"] == pytest.approx(1.0) and len(results["few_shot"]["2"]["episodes"]) == 4
    assert results["robustness"]["0.5"] == {"mean": pytest.approx(1.0), "std": pytest.approx(0.0),
                                            "runs": pytest.approx([1.0] * 3)}


# --------------------------------------------------------------------------------------------
# Loading, background, per-action averaging, degenerate input


def test_natural_key() -> None:
    assert sorted(["v10", "v2", "v1", "v01"], key=natural_key) == ["v01", "v1", "v2", "v10"]


def test_per_action_unweighted_mean(tmp_path: Path) -> None:
    videos = [video(f"a{i}", ramp(6), [0] * 6, action="jump") for i in range(3)]
    videos += [video("b1", ramp(4), [0] * 4, action="swing"), video("b2", ramp(4)[::-1], [0] * 4, action="swing")]
    report = evaluate_embeddings(write_h5(tmp_path / "e.h5", videos), tasks=("kendall",))
    assert report["per_action"]["jump"]["kendall"] == pytest.approx(1.0)
    assert report["per_action"]["swing"]["kendall"] == pytest.approx(-1.0)
    assert report["results"]["kendall"] == pytest.approx(0.0)  # not the pair-weighted (6 - 2) / 8


def test_background_keep_and_drop(tmp_path: Path) -> None:
    phases = ["bg", "reach", "grasp"]
    # background label 0; the background frames sit far from everything else
    a = video("a", [[100.0], [0.0], [0.1], [5.0], [100.1]], [0, 1, 1, 2, 0], phases=phases, bg=0)
    b = video("b", [[0.05], [100.2], [5.1], [5.2]], [1, 0, 2, 2], phases=phases, bg=0)
    path = write_h5(tmp_path / "e.h5", [a, b])
    dropped = load_embeddings(path, background="drop").videos[0]
    assert dropped.labels.tolist() == [0, 0, 1] and dropped.embeddings[:, 0].tolist() == pytest.approx([0, 0.1, 5])
    assert dropped.phases == ("reach", "grasp") and dropped.background_label == -1
    kept = evaluate_embeddings(path, tasks=("retrieval",), ks=(1, 2))
    without = evaluate_embeddings(path, tasks=("retrieval",), ks=(1, 2), background="drop")
    assert without["options"]["background"] == "drop"
    queries = [r["per_action"]["a"]["retrieval"]["queries"] for r in (kept, without)]
    assert queries == [9, 6]
    # K=2 by hand. Without background: a -> 1/2, 1/2, 1; b -> 1, 1/2, 1/2 (4 of 6). With it, the background
    # frames are one more class: a -> 1/2 (bg), 1/2, 1/2, 1, 1/2 (bg); b -> 1, 1 (bg), 1/2, 1/2 (6 of 9).
    assert without["results"]["retrieval"]["frame_weighted"] == {"1": 1.0, "2": pytest.approx(4 / 6)}
    assert kept["results"]["retrieval"]["frame_weighted"] == {"1": 1.0, "2": pytest.approx(6 / 9)}
    assert kept["results"]["retrieval"]["video_mean"]["2"] == pytest.approx((3 / 5 + 3 / 4) / 2)


def test_degenerate_inputs_raise_clear_errors(tmp_path: Path) -> None:
    nan = video("bad_video", [[0.0], [np.nan]], [0, 1])
    with pytest.raises(VavaError, match="bad_video.*NaN"):
        load_embeddings(write_h5(tmp_path / "nan.h5", [nan, video("ok", [[0.0], [1.0]], [0, 1])]))
    unlabelled = video("no_labels", [[0.0], [1.0]], [-1, -1])
    path = write_h5(tmp_path / "unlabelled.h5", [unlabelled, video("ok", [[0.0], [1.0]], [0, 1])])
    with pytest.raises(VavaError, match="no_labels.*no phase labels"):
        evaluate_embeddings(path)
    assert evaluate_embeddings(path, tasks=("kendall",))["results"]["kendall"] is not None  # labels not needed
    only_train = write_h5(tmp_path / "train.h5", [video("t", [[0.0], [1.0]], [0, 1], split="train")])
    with pytest.raises(VavaError, match="split 'val' has no videos"):
        evaluate_embeddings(only_train)
    only_val = write_h5(tmp_path / "val.h5", [video("v", [[0.0], [1.0]], [0, 1])])
    with pytest.raises(VavaError, match="split 'train' has no videos.*classification"):
        evaluate_embeddings(only_val)
    with pytest.raises(VavaError, match="labels for 2 frames"):
        load_embeddings(write_h5(tmp_path / "len.h5", [{**video("short", [[0.0], [1.0]], [0, 1]), "y": np.zeros(3)}]))
    with pytest.raises(VavaError, match="no such file"):
        load_embeddings(tmp_path / "missing.h5")
    with pytest.raises(VavaError, match="unknown evaluation option"):
        evaluate_embeddings(only_val, tasks=("kendall",), stride=2)
    with pytest.raises(VavaError, match="background"):
        evaluate_embeddings(only_val, background="maybe")


def test_small_inputs_skip_with_reasons(tmp_path: Path) -> None:
    videos = [video("t1", ramp(7), [0, 0, 1, 1, 1, 2, 2], split="train"),
              video("t2", ramp(3), [0, 0, 0], split="train"),          # single phase, shorter than the stride
              video("v1", ramp(7), [0, 0, 1, 1, 2, 2, 2])]            # one val video only
    report = evaluate_embeddings(write_h5(tmp_path / "e.h5", videos), kendall_stride=4, retrieval_stride=4)
    results = report["results"]
    assert results["kendall"] is None and results["retrieval"]["frame_weighted"]["5"] is None
    reasons = {s["task"]: s["reason"] for s in report["skipped"]}
    assert reasons == {"kendall": "needs at least 2 val videos, found 1",
                       "retrieval": "needs at least 2 val videos, found 1"}
    assert results["classification"]["1.0"] is not None and results["progress"] is not None


# --------------------------------------------------------------------------------------------
# Report files


def test_report_files_and_tables(tmp_path: Path) -> None:
    videos = [separable(f"t{i}", "train") for i in range(3)] + [separable(f"v{i}", "val") for i in range(2)]
    report = evaluate_embeddings(write_h5(tmp_path / "e.h5", videos), ks=(1, 2))
    json_path, md_path = write_report(tmp_path / "run", report)
    saved = json.loads(json_path.read_text())
    assert {"file", "attrs", "options", "defaults", "software", "videos", "results", "per_action",
            "skipped"} <= set(saved)
    assert saved["options"]["kendall_stride"] == 1 and saved["defaults"]["background"] == "keep"
    assert saved["attrs"]["objective"] == "vava" and saved["videos"] == {"train": 3, "val": 2}
    assert set(saved["results"]) == {"actions", "classification", "progress", "kendall", "retrieval"}
    assert load_report(tmp_path / "run") == saved
    markdown = md_path.read_text()
    header = ("| Run | Classification 0.1 | Classification 0.5 | Classification 1.0 | Progress | τ | AP@1 | AP@2 |")
    assert header in markdown
    accuracy = 100 * report["results"]["classification"]["1.0"]
    assert f"| toy | {100 * report['results']['classification']['0.1']:.2f} |" in markdown
    assert f"{accuracy:.2f}" in markdown and "| video mean (CARL) |" in markdown
    table = compare_reports([report, evaluate_embeddings(tmp_path / "e.h5", ks=(1, 2), background="drop")])
    lines = table.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("| Run | Background |") and "| toy | without |" in lines[3]
    text = render_text(report).splitlines()
    assert text[0].split()[:3] == ["Run", "Classification", "0.1"] and text[2].startswith("toy")
