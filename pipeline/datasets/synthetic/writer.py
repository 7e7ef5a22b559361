"""A synthetic dataset written in the generic folder format: videos, manifest and provenance (`synth.json`)."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from vava.core.errors import VavaError
from vava.core.files import atomic_write
from vava.core.videoio import write_video
from vava.pipeline.datasets.folder import MANIFEST_NAME, load_folder, write_manifest
from vava.pipeline.datasets.synthetic.actions import ACTIONS
from vava.pipeline.datasets.synthetic.config import SynthConfig, preset
from vava.pipeline.datasets.synthetic.render import render_video, video_rng

PROVENANCE_NAME = "synth.json"
GENERATOR = "vava-synthetic/1"


def _claim_output(out: Path, videos: set[str], force: bool) -> set[str]:
    """Names of the videos a previous synthetic dataset in `out` wrote (this run replaces or removes them).

    Refuses a non-empty folder that holds no synthetic dataset unless `force`, and, even then, any
    file this run would write over (manifest, provenance, `videos`) that no synth run wrote.
    """
    if out.exists() and not out.is_dir():
        raise VavaError(f"{out}: exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return set()
    previous = _previous_videos(out)
    if previous is None and not force:
        raise VavaError(f"{out}: not empty and holds no synthetic dataset ({PROVENANCE_NAME}); use an empty folder "
                        "(or --force to write beside its files)")
    ours = set()
    if previous is not None:
        ours = {out / MANIFEST_NAME, out / PROVENANCE_NAME, *(out / "videos" / name for name in previous)}
    targets = [out / MANIFEST_NAME, out / PROVENANCE_NAME, *(out / "videos" / name for name in sorted(videos))]
    for target in targets:
        if (target.exists() or target.is_symlink()) and target not in ours:
            raise VavaError(f"{target}: exists and was not written by a synth run; move it away first")
    return previous or set()


def _previous_videos(out: Path) -> set[str] | None:
    """File names in `out/videos` that the synthetic dataset in `out` wrote; None if there is none."""
    marker = out / PROVENANCE_NAME
    try:
        provenance = json.loads(marker.read_bytes()) if marker.is_file() else None
    except (OSError, ValueError):
        provenance = None
    if not isinstance(provenance, dict) or provenance.get("generator") != GENERATOR:
        return None
    if "videos" not in provenance:  # written before synth.json listed its videos: its manifest does
        try:
            return {r.path.name for r in load_folder(out) if r.path.parent == (out / "videos").resolve()}
        except VavaError:
            return set()
    names = provenance["videos"]
    return {n for n in names if _is_video_name(n)} if isinstance(names, list) else set()


def _is_video_name(name: object) -> bool:
    """Whether `name` could be one of our video files: a plain `.mp4` name (never a path)."""
    return isinstance(name, str) and name.endswith(".mp4") and Path(name).name == name and not name.startswith(".")


def _write_provenance(out: Path, config: SynthConfig, videos: set[str]) -> None:
    text = json.dumps({"generator": GENERATOR, "config": asdict(config), "videos": sorted(videos)}, indent=2)
    atomic_write(out / PROVENANCE_NAME, text + "\n")


def _splits(videos: int, val_fraction: float) -> list[str]:
    """Per-action splits: the last videos go to val, at least one train and one val when videos >= 2."""
    val = min(max(round(videos * val_fraction), 1), videos - 1)
    return ["train"] * (videos - val) + ["val"] * val


def synthesize(
    out_dir: str | Path, config: SynthConfig, progress: Callable[[int, int], None] | None = None, *,
    force: bool = False,
) -> list[dict]:
    """Render the dataset into `out_dir` (videos/*.mp4, manifest.jsonl, synth.json); return the entries.

    `progress(done, total)` is called after each video. A previous synthetic dataset in `out_dir`
    is replaced: its manifest is removed first, so an interrupted run leaves no stale manifest, and
    of its videos (listed in its synth.json) those not written again are removed. Nothing else is
    ever removed or overwritten. Any other non-empty folder is refused unless `force`.
    """
    out = Path(out_dir)
    actions = list(ACTIONS)[: config.actions]
    names = {f"{_video_id(action, index)}.mp4" for action in actions for index in range(config.videos)}
    previous = _claim_output(out, names, force)
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    # Until the manifest is written, synth.json lists the previous run's videos too, so that an
    # interrupted run is cleaned up by the next one.
    _write_provenance(out, config, previous | names)
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    total = config.actions * config.videos
    entries: list[dict] = []
    for action_index, action in enumerate(actions):
        phases = ACTIONS[action]
        for index, split in enumerate(_splits(config.videos, config.val_fraction)):
            frames, labels, flags = render_video(action, video_rng(config.seed, action_index, index), config)
            video_id = _video_id(action, index)
            write_video(videos / f"{video_id}.mp4", frames, config.fps)
            entries.append({
                "id": video_id,
                "path": f"videos/{video_id}.mp4",
                "split": split,
                "action": action,
                "labels": labels.tolist(),
                "phases": [*phases, "background"],
                "fps": config.fps,
                "background_label": len(phases),
                "flags": flags.tolist(),
            })
            if progress is not None:
                progress(len(entries), total)
    for stale in previous - names:
        (videos / stale).unlink(missing_ok=True)
    _write_provenance(out, config, names)
    write_manifest(out, entries)
    return entries


def _video_id(action: str, index: int) -> str:
    return f"{action}_{index:03d}"


def write_fixture(out_dir: str | Path) -> None:
    """A tiny wild synthetic dataset in the generic folder format (2 actions x 4 videos at 32 px)."""
    synthesize(out_dir, SynthConfig(actions=2, videos=4, val_fraction=0.25, size=32, frames=(16, 20),
                                    variations=preset("wild", 2)))
