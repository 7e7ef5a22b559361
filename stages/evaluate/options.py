"""Every choice the evaluation makes, with its default; the protocols are in docs/evaluation.md."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from pipeline.errors import VavaError
from stages.evaluate.classification import CLASSIFIERS
from stages.evaluate.embeddings import BACKGROUND_MODES
from stages.evaluate.kendall import DISTANCES
from stages.evaluate.retrieval import DEVICES

TASKS = ("classification", "progress", "kendall", "retrieval", "few_shot", "robustness")
DEFAULT_TASKS = TASKS[:4]
TRAIN_TASKS = frozenset({"classification", "progress", "few_shot", "robustness"})  # need train videos
LABEL_TASKS = TRAIN_TASKS | {"retrieval"}                                           # need phase labels


@dataclass(frozen=True)
class EvalOptions:
    tasks: tuple[str, ...] = DEFAULT_TASKS
    fractions: tuple[float, ...] = (0.1, 0.5, 1.0)      # classification: fractions of train videos
    ks: tuple[int, ...] = (5, 10, 15)                   # retrieval depths
    classifier: str = "svm"                             # svm (TCC/LAV) | logistic (CARL)
    background: str = "keep"                            # keep ("with background") | drop ("without")
    progress_fraction: float = 1.0                      # the single progression number TCC/CARL report
    kendall_stride: int = 1
    kendall_distance: str = "sqeuclidean"               # sqeuclidean | cosine
    retrieval_stride: int = 1
    few_shot_ks: tuple[int, ...] = tuple(range(1, 11))  # TCC FEW_SHOT_NUM_LABELED
    few_shot_episodes: int = 50
    robustness_seeds: int = 10                          # random subsets drawn with seeds 0..n-1
    device: str = "auto"                                # faiss: auto (GPU when usable) | cpu | gpu

    def __post_init__(self) -> None:
        for name, kind in (("tasks", str), ("fractions", float), ("ks", int), ("few_shot_ks", int)):
            value = getattr(self, name)
            values = (value,) if isinstance(value, (str, int, float)) else value
            object.__setattr__(self, name, tuple(kind(v) for v in values))
        for name in ("tasks", "fractions", "ks", "few_shot_ks"):
            if not getattr(self, name):
                raise VavaError(f"{_flag(name)}: give at least one value")
        _one_of("tasks", self.tasks, TASKS, many=True)
        _one_of("classifier", self.classifier, CLASSIFIERS)
        _one_of("background", self.background, BACKGROUND_MODES)
        _one_of("kendall_distance", self.kendall_distance, DISTANCES)
        _one_of("device", self.device, DEVICES)
        for name, values in (("fractions", self.fractions), ("progress_fraction", (self.progress_fraction,))):
            if not all(0 < f <= 1 for f in values):
                raise VavaError(f"{_flag(name)}: must be in (0, 1]")
        counts = {"ks": self.ks, "few_shot_ks": self.few_shot_ks, "kendall_stride": (self.kendall_stride,),
                  "retrieval_stride": (self.retrieval_stride,), "few_shot_episodes": (self.few_shot_episodes,),
                  "robustness_seeds": (self.robustness_seeds,)}
        for name, values in counts.items():
            if min(values) < 1:
                raise VavaError(f"{_flag(name)}: must be at least 1")

    @classmethod
    def create(cls, **values: object) -> EvalOptions:
        """Like the constructor, but an unknown option name is a VavaError."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise VavaError(f"unknown evaluation option(s): {', '.join(unknown)}")
        return cls(**values)

    def as_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _one_of(name: str, value: object, allowed: tuple[str, ...], many: bool = False) -> None:
    bad = [v for v in (value if many else (value,)) if v not in allowed]
    if bad:
        raise VavaError(f"{_flag(name)}: {', '.join(map(repr, bad))} not one of {', '.join(allowed)}")


def _flag(name: str) -> str:
    """The command-line spelling the CLI's option-error handler expects: kendall_stride -> --kendall-stride."""
    return "--" + name.replace("_", "-")
