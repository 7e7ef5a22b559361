"""Fine-grained frame retrieval, "AP@K": the precision of the labels of the K nearest frames.

Protocol: docs/evaluation.md#retrieval.

Leave one video out within val: the queries are the frames of video v, the support set is every
frame of the other val videos, both at the same stride; frames labelled -1 are neither queries nor
support. Distance: Euclidean, exact (FAISS brute force on float32); equal distances go to the lower
support index. Two aggregations: the mean over videos of each video's mean precision (CARL), and
the mean over all query frames (frame-weighted; LAV/VAOT/VAVA).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

from vava.core.embeddings_file import UNLABELLED, VideoEmbeddings
from vava.core.errors import VavaError, option_name
from vava.core.validation import option_error
from vava.stages.evaluate.probes.base import (
    AT_LEAST_ONE,
    Action,
    Column,
    Option,
    Probe,
    Report,
    Values,
    key,
    markdown,
    mean,
    percent,
)
from vava.stages.evaluate.skip import ProbeSkipped

DEVICES = ("auto", "cpu", "gpu")

Search = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class RetrievalResult:
    video_mean: dict[int, float]
    frame_weighted: dict[int, float]
    queries: int                                           # query frames scored
    skipped: dict[int, str] = field(default_factory=dict)  # K -> why it was not computed


def faiss_device(device: str = "auto") -> str:
    """"cpu" or "gpu": auto takes the GPU when this faiss build has GPU support and sees a GPU."""
    if device not in DEVICES:
        raise option_error("device", f"{device!r} is not one of {', '.join(DEVICES)}")
    available = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    if device == "gpu" and not available:
        raise VavaError(f"{option_name('device')}: gpu asked for, but this faiss build has no GPU support or sees "
                        "no GPU")
    return "gpu" if device != "cpu" and available else "cpu"


def exact_search(device: str = "auto") -> Search:
    """Exact L2 k-NN of queries in a support array with FAISS's flat (IndexFlatL2) kernel, CPU or GPU.

    The kernel is called on contiguous array slices rather than through an index object, so the
    support sets of `leave_one_video_out` need no copy and no ID selector (FAISS GPU indexes
    silently ignore selectors).
    """
    if faiss_device(device) == "cpu":
        return faiss.knn
    resources = faiss.StandardGpuResources()
    return lambda queries, support, k: faiss.knn_gpu(resources, queries, support, k)


def leave_one_video_out(frames: np.ndarray, bounds: np.ndarray, k: int, search: Search) -> np.ndarray:
    """(F, k) indices of each frame's k nearest frames among the *other* videos, nearest first.

    `bounds` holds the videos' frame offsets (N + 1 values). The videos are split into two halves
    (by frame count), each half's frames are searched among the other half's, and each half is
    split again: every pair of frames of different videos is compared exactly once, and the
    top-level searches are large batches, which FAISS handles several times faster per query than
    one video at a time. Each frame keeps a running top k, ordered by (distance, index).
    """
    distance = np.full((frames.shape[0], k), np.inf, dtype=np.float32)
    index = np.full((frames.shape[0], k), np.iinfo(np.int64).max, dtype=np.int64)
    pending = [(0, len(bounds) - 1)]
    while pending:
        lo, hi = pending.pop()
        if hi - lo < 2:
            continue
        mid = int(np.clip(np.searchsorted(bounds, (bounds[lo] + bounds[hi]) / 2), lo + 1, hi - 1))
        first, middle, last = bounds[lo], bounds[mid], bounds[hi]
        for (q0, q1), (s0, s1) in (((first, middle), (middle, last)), ((middle, last), (first, middle))):
            if q0 < q1 and s0 < s1:
                d, i = search(frames[q0:q1], frames[s0:s1], int(min(k, s1 - s0)))
                merged_d = np.concatenate([distance[q0:q1], d], axis=1)
                merged_i = np.concatenate([index[q0:q1], i + s0], axis=1)
                order = np.lexsort((merged_i, merged_d), axis=1)[:, :k]
                distance[q0:q1] = np.take_along_axis(merged_d, order, axis=1)
                index[q0:q1] = np.take_along_axis(merged_i, order, axis=1)
        pending += [(lo, mid), (mid, hi)]
    return index


def precision_at_k(videos: Sequence[VideoEmbeddings], ks: Sequence[int], stride: int = 1,
                   search: Search | None = None) -> RetrievalResult:
    """AP@K (precision of the K nearest) for every K in `ks`, leave-one-video-out over `videos`."""
    if len(videos) < 2:
        raise ProbeSkipped(f"needs at least 2 val videos, found {len(videos)}")
    kept = [(v.embeddings[::stride], v.labels[::stride]) for v in videos]
    kept = [(x[y != UNLABELLED], y[y != UNLABELLED]) for x, y in kept]
    frames = np.ascontiguousarray(np.concatenate([x for x, _ in kept]), dtype=np.float32)
    labels = np.concatenate([y for _, y in kept])
    sizes = np.array([y.size for _, y in kept])
    smallest_support = frames.shape[0] - int(sizes.max())
    valid = [k for k in ks if k <= smallest_support]
    skipped = {k: f"a support set has only {smallest_support} frames" for k in ks if k > smallest_support}
    if not valid:
        raise ProbeSkipped(f"AP@{','.join(map(str, ks))}: a support set has only {smallest_support} frames")
    depths = np.asarray(valid)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    found = leave_one_video_out(frames, bounds, int(depths.max()), search or exact_search())
    hits = np.cumsum(labels[found] == labels[:, None], axis=1)[:, depths - 1]     # (F, len(valid))
    per_video = np.add.reduceat(hits, bounds[:-1][sizes > 0], axis=0) / sizes[sizes > 0, None]
    video_mean = per_video.mean(axis=0) / depths
    frame_weighted = hits.mean(axis=0) / depths
    return RetrievalResult({k: float(v) for k, v in zip(valid, video_mean)},
                           {k: float(v) for k, v in zip(valid, frame_weighted)}, int(frames.shape[0]), skipped)


KS = Option("ks", (5, 10, 15), "AP@K depths.", check=AT_LEAST_ONE, flag="k")
RETRIEVAL_STRIDE = Option("retrieval_stride", 1, check=AT_LEAST_ONE)
DEVICE = Option("device", "auto", "FAISS device for retrieval.", choices=DEVICES)  # auto: the GPU when usable
AGGREGATIONS = {"frame_weighted": "frame-weighted (LAV/VAOT/VAVA)", "video_mean": "video mean (CARL)"}


class Retrieval(Probe):
    name = "retrieval"
    options = (KS, RETRIEVAL_STRIDE, DEVICE)
    default = needs_labels = True
    min_val_videos = 2
    rank = 5

    def __init__(self, o: Any) -> None:
        super().__init__(o)
        self.search = exact_search(o.device)  # once per evaluation: a GPU search holds its resources

    def run(self, action: Action) -> Values:
        found = precision_at_k(action.val, self.o.ks, self.o.retrieval_stride, self.search)
        values: Values = {"retrieval": {"frame_weighted": {key(k): v for k, v in found.frame_weighted.items()},
                                        "video_mean": {key(k): v for k, v in found.video_mean.items()},
                                        "queries": found.queries}}
        if found.skipped:
            values["retrieval_skipped"] = {key(k): why for k, why in found.skipped.items()}
        return values

    def aggregate(self, per_action: Sequence[Values]) -> Values:
        return {agg: {key(k): mean(per_action, "retrieval", agg, key(k)) for k in self.o.ks} for agg in AGGREGATIONS}

    @classmethod
    def columns(cls, options: Mapping[str, Any]) -> list[Column]:
        """The frame-weighted aggregation (LAV/VAOT/VAVA); report.md's section shows both."""
        return [Column(f"AP@{k}", lambda values, k=k: percent(precision(values, "frame_weighted", k)))
                for k in options["ks"]]

    @classmethod
    def setting_columns(cls) -> list[Column]:
        return [Column("AP stride", lambda report: str(report["options"]["retrieval_stride"]))]

    @classmethod
    def section(cls, report: Report) -> str | None:
        results = report["results"]
        if not results.get("retrieval"):
            return None
        ks = report["options"]["ks"]
        rows = [[title, *(percent(precision(results, agg, k)) for k in ks)] for agg, title in AGGREGATIONS.items()]
        return "\n".join(["## Fine-grained retrieval\n", markdown(["Aggregation", *(f"AP@{k}" for k in ks)], rows)])

    @classmethod
    def provenance(cls, options: Mapping[str, Any]) -> str:
        return f"AP@K: stride {options['retrieval_stride']}"

    @classmethod
    def protocol(cls, options: Mapping[str, Any]) -> str:
        return ("- AP@K: precision of the K nearest frames (exact Euclidean) among the other val videos, stride "
                f"{options['retrieval_stride']}; ties go to the lower index.")


def precision(values: Values, aggregation: str, k: object) -> float | None:
    """AP@k in one aggregation, from results or one action's values (None: not computed)."""
    return ((values.get("retrieval") or {}).get(aggregation) or {}).get(str(k))
