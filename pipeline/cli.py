"""The `vava` command line: a thin layer that parses options and calls the stages."""
from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vava.core.errors import ConfigError, Naming, VavaError, naming
from vava.core.location import as_location, is_url

if TYPE_CHECKING:
    from vava.core.location import RemotePath
    from vava.core.records import VideoRecord
    from vava.stages.evaluate.probes import Registry
    from vava.stages.evaluate.probes.base import Option
    from vava.stages.extract.run import ExtractOptions


def _dashed(name: str) -> str:
    """A name spelled as a flag: image_size -> --image-size."""
    return "--" + name.replace("_", "-")


def _flag(key: str, command: click.Command | None = None) -> str:
    """The flag of option `key`: that of the running command's (or `command`'s) parameter of that name
    (target_fps -> --fps), else the key spelled as a flag (image_size -> --image-size)."""
    ctx = click.get_current_context(silent=True)  # None in a worker thread
    command = command or (ctx and ctx.command)
    params = command.get_params(ctx) if command and ctx else []
    return next((p.opts[0] for p in params if p.name == key), None) or _dashed(key)


class _CommandLine(Naming):
    """Messages name options as flags and stage calls as command lines: `--weights`, `vava embed --run RUN`.

    Installed while a command runs, so the text of every error, warning and report made below the
    CLI (stages, cache, core: they name options by key) reads as before, whatever wraps or logs it.
    """

    def option(self, key: str) -> str:
        return _flag(key)

    def invocation(self, stage: str, options: Mapping[str, object]) -> str:
        command = main.commands.get(stage)
        words = [f"vava {stage}"]
        for key, value in options.items():
            words.append(_flag(key, command) if value is True else f"{_flag(key, command)} {value}")
        return " ".join(words)


class _Group(click.Group):
    """Runs its commands with option names spelled as flags (`_CommandLine`), and turns `VavaError` into a
    one-line message and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            with naming(_CommandLine()):
                return super().invoke(ctx)
        except VavaError as err:
            raise click.ClickException(str(err)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vava-align", prog_name="vava", message="%(prog)s %(version)s")
def main() -> None:
    """Self-supervised video alignment (VAVA) on a cached-feature pipeline."""


@contextlib.contextmanager
def _option_errors() -> Iterator[None]:
    """Report a `ConfigError` as click's bad-parameter error (exit 2) on the option its key names."""
    try:
        yield
    except ConfigError as err:
        raise click.BadParameter(err.message, param_hint=_option_hint(err.key)) from None


def _option_hint(key: str) -> str:
    """This command's flag(s) for a config key: target_fps -> --fps, frames/size -> --frames/--size."""
    return "/".join(map(_flag, key.split("/")))


class _Location(click.Path):
    """A local path, or an object-storage URL (`s3://bucket/prefix`) kept as one (`vava.core.location`); with
    `urls=False` a URL is refused, never read as a local folder named `s3:`."""

    def __init__(self, urls: bool = True, **options: object):
        super().__init__(path_type=Path, **options)
        self.urls = urls

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        if not is_url(value):
            return super().convert(value, param, ctx)
        if not self.urls:
            self.fail(f"{value}: a local path, please (object-storage URLs are taken for feature caches and run "
                      "folders: --cache, --features, --run, and --out of train, sweep and diagnose)", param, ctx)
        return as_location(value)


class _Printed(_Location):
    """The path an earlier command prints last (`vava extract`: the feature set, `vava train`: the run folder).

    An empty value, what `FEATURES=$(vava extract ...)` holds when extract failed, is refused with that
    cause, not read as the current folder.
    """

    def __init__(self, printer: str, **options: object):
        super().__init__(**options)
        self.printer = printer

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        if isinstance(value, str) and not value.strip():
            self.fail(f"empty; it is meant to be the path `{self.printer}` prints last, so that command probably "
                      "failed or printed nothing (see its error above)", param, ctx)
        return super().convert(value, param, ctx)


FEATURES = _Printed("vava extract")
RUN = _Printed("vava train", file_okay=False)
LOCAL_FOLDER = _Location(urls=False, file_okay=False)
LOCAL_FILE = _Location(urls=False, dir_okay=False)


# -- data ----------------------------------------------------------------------------------
@main.group(cls=_Group)
def data() -> None:
    """Build and inspect datasets."""


def _frames_range(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    try:
        low, _, high = value.partition(":")
        return int(low), int(high or low)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not MIN:MAX (e.g. 40:80)") from None


@data.command("synth")
@click.argument("out_dir", type=LOCAL_FOLDER)
@click.option("--actions", default=3, show_default=True, help="Number of action classes.")
@click.option("--videos", default=10, show_default=True, help="Videos per action.")
@click.option("--val-fraction", default=0.3, show_default=True, help="Share of each action's videos in val.")
@click.option("--size", default=64, show_default=True, help="Frame width and height in pixels.")
@click.option("--frames", default="40:80", show_default=True, callback=_frames_range,
              help="Procedure length range MIN:MAX in frames (background frames come on top).")
@click.option("--fps", default=15.0, show_default=True, help="Frame rate of the written videos.")
@click.option("--seed", default=0, show_default=True)
@click.option("--benchmark", default=3, show_default=True,
              help="Version: 3 is 2 with three kinds of background (idle, cut-away, distraction); 2 decouples phase "
                   "from time (in-scene background, reordering); 1 is the first release.")
@click.option("--clean", "preset", flag_value="clean", default=True, help="No wild variations (default).")
@click.option("--wild", "preset", flag_value="wild", help="Background, redundant and non-monotonic frames on.")
@click.option("--speed", type=float, help="Strength 0-1 of speed changes and temporal warping.")
@click.option("--appearance", type=float, help="Strength 0-1 of colour, texture, size and position changes.")
@click.option("--jitter", type=float, help="Strength 0-1 of camera jitter.")
@click.option("--noise", type=float, help="Strength 0-1 of pixel noise.")
@click.option("--background", type=float, help="Strength 0-1 of inserted background frames.")
@click.option("--redundant", type=float, help="Strength 0-1 of pauses/holds.")
@click.option("--nonmonotonic", type=float, help="Strength 0-1 of repeated or swapped phases.")
@click.option("--force", is_flag=True, help="Write into a non-empty folder that holds no synthetic dataset "
                                            "(its files are kept; none is overwritten).")
def data_synth(out_dir: Path, preset: str, seed: int, frames: tuple[int, int], benchmark: int, force: bool,
               **options) -> None:
    """Render the built-in synthetic dataset into OUT_DIR (generic folder format).

    Rerunning into the same OUT_DIR replaces the dataset: only videos the previous run wrote are removed.
    """
    import dataclasses

    from vava.pipeline.datasets import synthetic

    strengths = {f.name: options.pop(f.name) for f in dataclasses.fields(synthetic.Variations)}
    overrides = {name: value for name, value in strengths.items() if value is not None}
    with _option_errors():
        variations = dataclasses.replace(synthetic.preset(preset, benchmark), **overrides)
        config = synthetic.SynthConfig(variations=variations, frames=frames, seed=seed, benchmark=benchmark,
                                       **options)
    total = config.actions * config.videos
    with click.progressbar(length=total, label="synth", file=sys.stderr) as bar:
        entries = synthetic.synthesize(out_dir, config, progress=lambda done, _: bar.update(done - bar.pos),
                                       force=force)
    frames_total = sum(len(e["labels"]) for e in entries)
    click.echo(f"{len(entries)} videos, {frames_total} frames", err=True)
    click.echo(str(out_dir))


def _key_values(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE")
        if key.strip() in pairs:  # the last would silently win: actions=squat then actions=situp reads situp only
            raise click.BadParameter(f"{key.strip()} is given twice ({pairs[key.strip()]!r} and {text.strip()!r})")
        pairs[key.strip()] = text.strip()
    return pairs


def _dataset_options(func):
    """--dataset, --root, --dataset-option and --allow-outside-root: where and how to read a dataset."""
    for option in reversed([
        click.option("--dataset", default="folder", show_default=True,
                     help="Dataset adapter (`vava data info --help` lists them)."),
        click.option("--root", required=True, type=_Location(urls=False), help="Dataset root folder."),
        click.option("--dataset-option", "dataset_options", multiple=True, callback=_key_values, metavar="KEY=VALUE",
                     help="An option of the dataset adapter (repeatable), e.g. background=drop."),
        click.option("--allow-outside-root", is_flag=True,
                     help="Read video paths that lead outside --root (absolute, '..', symlinks)."),
    ]):
        func = option(func)
    return func


def _load_records(dataset: str, root: Path, dataset_options: dict[str, str], allow_outside_root: bool) -> list:
    from vava.pipeline.datasets import load_dataset

    if not root.exists():
        raise click.BadParameter(f"{root} does not exist", param_hint="--root")
    return load_dataset(dataset, root, allow_outside_root=allow_outside_root, options=dataset_options)


def _datasets_help() -> str:
    from vava.pipeline.datasets import DATASETS

    lines = []
    for spec in DATASETS.values():
        lines.append(f"{spec.name}: {spec.summary}")
        lines += [f"  {key}: {text}" + (f" (default {default})" if default is not None else "")
                  for key, text, default in spec.option_help()]
    return "\n\n".join(lines)


class _DatasetsCommand(click.Command):
    """A command whose help ends with the registered dataset adapters and their options."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Datasets"):
            for line in _datasets_help().split("\n\n"):
                formatter.write_text(line) if not line.startswith("  ") else formatter.write_text("    " + line.strip())


@data.command("info", cls=_DatasetsCommand)
@_dataset_options
@click.option("--write-split", type=LOCAL_FILE,
              help="Also write the video ids of each split, as read, to this new JSON file "
                   '({"train": [...], "val": [...], "test": [...]}), e.g. for COIN\'s split_file option.')
def data_info(dataset: str, root: Path, dataset_options: dict[str, str], allow_outside_root: bool,
              write_split: Path | None) -> None:
    """Videos per split and action, frames and phases of a dataset, as the adapter reads it, then its notes:
    what the adapter found or assumed (layout, frame rate, sources that disagree)."""
    from vava.pipeline.datasets.notes import collecting_notes
    from vava.pipeline.datasets.splits import check_new_file
    from vava.pipeline.datasets.splits import write_split as write_split_file
    from vava.pipeline.datasets.summary import summarise, summary_table

    if write_split is not None:
        check_new_file(write_split)  # before the (possibly long) read of the dataset
    with collecting_notes() as notes:
        records = _load_records(dataset, root, dataset_options, allow_outside_root)
    click.echo(summary_table(summarise(records)))
    _report_left_out(dataset, root, records, dataset_options)
    for text in notes:
        click.echo(f"note: {text}")
    if write_split is not None:
        write_split_file(records, write_split)
        click.echo(f"split written to {write_split}", err=True)


def _report_left_out(dataset: str, root: Path, records: list[VideoRecord], dataset_options: dict[str, str]) -> None:
    """The videos of the dataset's release its adapter left out, by reason (adapters that say)."""
    from vava.pipeline.datasets import DATASETS, resolve_options

    spec = DATASETS[dataset]
    if spec.left_out is None:
        return
    reasons = spec.left_out(root, records, resolve_options(dataset, dataset_options))
    count = sum(len(videos) for videos in reasons.values())
    if count:
        click.echo(f"left out {count} of {count + len(records)} videos of the release:")
        for why, videos in reasons.items():
            shown = ", ".join(videos[:5]) + (f", ... ({len(videos)} in all)" if len(videos) > 5 else "")
            click.echo(f"  {len(videos)}: {why}: {shown}")


@data.command("manifest")
@click.argument("video_dir", type=LOCAL_FOLDER)
@click.option("--out", required=True, type=LOCAL_FILE,
              help="The manifest to write: a manifest.jsonl in VIDEO_DIR or a folder above it.")
@click.option("--split-by", "split_file", type=LOCAL_FILE, default=None,
              help="File of 'video_id split' lines (or CSV video,split) giving every video's split.")
@click.option("--val-fraction", type=float, default=None,
              help="Without --split-by: share of each action's videos put in val (default 0.2; at least one stays "
                   "in train).")
@click.option("--seed", type=int, default=None, help="Seed of the --val-fraction draw (default 0).")
@click.option("--segments", "segments_file", type=LOCAL_FILE, default=None,
              help="CSV video,start,end,phase (seconds) of phase segments; videos without rows stay unlabelled.")
@click.option("--action", default=None, help="Action of the videos directly in VIDEO_DIR (default: its name).")
@click.option("--force", is_flag=True, help="Replace an existing manifest.")
def data_manifest(video_dir: Path, out: Path, split_file: Path | None, val_fraction: float | None, seed: int | None,
                  segments_file: Path | None, action: str | None, force: bool) -> None:
    """Write a folder-format manifest for the videos and frame folders in VIDEO_DIR.

    VIDEO_DIR/ACTION/VIDEO takes its action from the subfolder. The last stdout line is the
    manifest's folder, the --root of `vava extract`.
    """
    from vava.pipeline.datasets.manifest import MIN_VAL_VIDEOS, few_val_videos, write_video_manifest

    if split_file is not None and (val_fraction is not None or seed is not None):
        raise click.UsageError("give either --split-by or --val-fraction/--seed, not both")
    entries = write_video_manifest(video_dir, out, split_file=split_file,
                                   val_fraction=0.2 if val_fraction is None else val_fraction,
                                   seed=seed or 0, segments_file=segments_file, action=action, force=force)
    splits = {split: sum(e["split"] == split for e in entries) for split in ("train", "val", "test")}
    labelled = sum("labels" in e for e in entries)
    click.echo(f"{len(entries)} videos of {len({e['action'] for e in entries})} action(s) "
               f"({', '.join(f'{n} {split}' for split, n in splits.items() if n)}), {labelled} labelled, "
               f"{len(entries) - labelled} unlabelled", err=True)
    for name, count in few_val_videos(entries).items():
        click.echo(f"warning: action {name!r} has {count} val video{'' if count == 1 else 's'}: Kendall's tau and "
                   f"AP@K compare val videos of one action, so `vava evaluate` will skip them for it (it needs "
                   f"{MIN_VAL_VIDEOS}: raise --val-fraction or add videos)", err=True)
    click.echo(str(out.parent))


@data.command("fixture", cls=_DatasetsCommand)
@click.argument("out_dir", required=False, type=LOCAL_FOLDER)
@click.option("--dataset", help="Dataset adapter whose on-disk format to write.")
@click.option("--list", "list_names", is_flag=True, help="Print the names of the datasets and stop.")
def data_fixture(out_dir: Path | None, dataset: str | None, list_names: bool) -> None:
    """Write a tiny copy of a dataset in its real on-disk format into OUT_DIR (new or empty), the one the tests read."""
    from vava.core.files import check_new_folder
    from vava.pipeline.datasets import DATASETS
    from vava.pipeline.datasets import dataset as find_dataset

    if list_names:
        click.echo("\n".join(DATASETS))
        return
    if dataset is None or out_dir is None:
        raise click.UsageError("give --dataset NAME and OUT_DIR (or --list)")
    spec = find_dataset(dataset)
    check_new_folder(out_dir, "OUT_DIR")
    try:
        spec.fixture(out_dir)
    except OSError as err:  # e.g. a parent that is a file, or a read-only or full disk
        raise VavaError(f"OUT_DIR: cannot write the fixture into {out_dir} ({err.strerror or err})") from None
    click.echo(str(out_dir))


# -- extract -------------------------------------------------------------------------------
def _extraction_options(func):
    """The options of `ExtractOptions` (backbone, weights, frame sampling, batching), shared by extract and reproduce."""
    for option in reversed([
        click.option("--backbone", default="resnet50", show_default=True,
                     help="resnet50 (conv4 = 3rd block of layer3, as VAVA) | resnet50-layer3 (all 6 blocks) | resnet18."),
        click.option("--weights", default="imagenet", show_default=True, help="imagenet | random | PATH to a state dict."),
        click.option("--seed", default=0, show_default=True, help="Seed of --weights random."),
        click.option("--image-size", default=224, show_default=True, help="Input size in pixels (multiple of 16)."),
        click.option("--resize", type=click.Choice(["stretch", "center_crop"]), default="stretch", show_default=True),
        click.option("--scaler", type=click.Choice(["uint8", "float"]), default="uint8", show_default=True,
                     help="uint8: resize the 8-bit RGB frames (in FFmpeg for video files), then convert, fast at "
                          "any resolution; float: float conversion, then resize (feature sets extracted before it)."),
        click.option("--decoder", type=click.Choice(["pyav", "torchcodec"]), default="pyav", show_default=True,
                     help="Video file decoder; torchcodec is an extra (pip install 'vava-align[torchcodec]') "
                          "that needs FFmpeg 4-9 shared libraries."),
        click.option("--fps", "target_fps", type=float, default=None,
                     help="Resample to this frame rate (default: every frame)."),
        click.option("--on-length-mismatch", type=click.Choice(["error", "truncate"]), default="error",
                     show_default=True,
                     help="When label and decoded frame counts differ: fail the video, or keep the common prefix."),
        click.option("--batch-size", default=32, show_default=True, help="Frames per backbone batch."),
        click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]"),
        click.option("--workers", default=2, show_default=True, help="Decode threads."),
    ]):
        func = option(func)
    return func


@main.command(cls=_DatasetsCommand)
@_dataset_options
@click.option("--cache", required=True, type=_Location(file_okay=False),
              help="Feature cache folder, or object-storage URL (s3://bucket/prefix).")
@_extraction_options
@click.option("--repair", is_flag=True, help="Read all cached videos in full; re-extract those failing their checksums.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--dry-run", is_flag=True, help="Only count videos, frames and the bytes they would take; write nothing.")
def extract(dataset: str, root: Path, dataset_options: dict[str, str], cache: Path | RemotePath, quiet: bool,
            allow_outside_root: bool, dry_run: bool, **options) -> None:
    """Decode videos, run the frozen backbone and cache its conv4 maps (zarr).

    The last line printed on stdout is the feature set's path.
    """
    from vava.core.distributed import current_ranks
    from vava.stages.extract.run import ExtractOptions
    from vava.stages.extract.run import extract as run_extract

    extract_options = ExtractOptions(progress=not quiet, **options)
    with _option_errors():
        extract_options.validate()
    records = _load_records(dataset, root, dataset_options, allow_outside_root)
    if dry_run:
        if current_ranks().is_main:  # under torchrun every rank would print the same plan
            _dry_run(records, extract_options)
        return
    provenance = {"adapter": dataset, "root": str(root.resolve()), "options": dataset_options}
    summary = run_extract(records, cache, extract_options, dataset=provenance)
    if not current_ranks().is_main:  # under torchrun rank 0 reports the whole job
        sys.exit(1 if summary.failed else 0)
    for video_id, problem in summary.damaged.items():
        outcome = "extracted again" if video_id in summary.extracted else "not repaired (see failed)"
        click.echo(f"damaged, {outcome}: {video_id}: {problem}", err=True)
    for reason in summary.failed.values():
        click.echo(f"failed: {reason}", err=True)
    rate = summary.frames / summary.seconds if summary.seconds else 0.0
    click.echo(
        f"{len(records)} videos: {len(summary.extracted)} extracted ({summary.frames} frames, {rate:.1f} frames/s), "
        f"{len(summary.cached)} already cached, {len(summary.by_others)} done by another process, "
        f"{len(summary.failed)} failed", err=True)
    if not summary.extracted and not summary.failed and not summary.by_others:
        click.echo("nothing to do: every video is already in the cache", err=True)
    click.echo(str(summary.path))
    if summary.failed:
        sys.exit(1)


def _dry_run(records: list[VideoRecord], options: ExtractOptions) -> None:
    from vava.stages.extract.dry_run import plan_extract, plan_table

    plan = plan_extract(records, options)
    click.echo(plan_table(plan, options), nl=False)
    for problem in plan.unreadable.values():
        click.echo(f"not counted: {problem}", err=True)


# -- evaluation options (evaluate, reproduce) ---------------------------------------------
def _numbers(kind: type) -> click.types.FuncParamType:
    def parse(value: str | tuple) -> tuple:
        if isinstance(value, tuple):
            return value
        try:
            return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a comma list of {kind.__name__} values") from None
    return click.types.FuncParamType(parse)


class _ProbeOptionsCommand(click.Command):
    """A command with a command-line option for each evaluation option of the probe registry, after its own
    first `own_first` options (None: all of them), less those named in `left_out`. With `defaults`
    False every such option defaults to None (not given), for commands that pass on only what was given.

    They are made when click first asks for the options: importing the probes (scikit-learn, FAISS)
    would slow the start of every other command. `probes`: the registry, None for the built-in one.
    """

    probes: Registry | None = None
    own_first: int | None = None
    left_out: tuple[str, ...] = ()
    defaults = True
    _made: tuple[Registry | None, list[click.Option]] = (None, [])

    def registry(self) -> Registry:
        from vava.stages.evaluate.probes import PROBES
        return PROBES if self.probes is None else self.probes

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        from vava.stages.evaluate.options import declared_options

        probes = self.registry()
        if self._made[0] != probes:  # compared by content: a probe registered since is offered too
            self._made = dict(probes), [_probe_option(option, self.defaults) for option in declared_options(probes)
                                  if option.cli and option.name not in self.left_out]
        own = super().get_params(ctx)  # the command's own options, --help last
        first = len(own) - 1 if self.own_first is None else self.own_first
        return [*own[:first], *self._made[1], *own[first:]]


class _EvaluateCommand(_ProbeOptionsCommand):
    own_first = 2  # --run, --compare, then the probes' options, then --plots, --checkpoint, --help


def _probe_option(option: Option, defaults: bool = True) -> click.Option:
    """A comma list, a choice or a plain value, named like the evaluation option (--k is `ks`)."""
    if option.many:
        kind, default = _numbers(option.kind), ",".join(map(str, option.default))
    else:
        kind, default = click.Choice(option.choices) if option.choices else option.kind, option.default
    return click.Option([_dashed(option.flag or option.name), option.name], type=kind,
                        default=default if defaults else None, show_default=defaults, help=option.help)


# -- reproduce -----------------------------------------------------------------------------
class _ReproduceCommand(_DatasetsCommand, _ProbeOptionsCommand):
    """`reproduce`: its own options, then `vava evaluate`'s (not given: the dataset's protocol), the datasets."""

    left_out = ("device",)  # one --device (the extraction's) serves every stage
    defaults = False


@main.command(cls=_ReproduceCommand)
@_dataset_options
@click.option("--out", required=True, type=LOCAL_FOLDER,
              help="Folder of the reproduction: cache/, runs/ and results.md.")
@click.option("--objectives", default="vava,tcc,lav", show_default=True, help="Objectives, comma or space separated.")
@click.option("--per-action", is_flag=True,
              help="One model per action (Penn Action as LAV/VAVA, COIN per activity); default: one joint model.")
@click.option("--config", "preset", default=None,
              help="Training preset or YAML (default: the dataset's preset in configs/, Table 8 values).")
@click.option("--steps", type=int, default=None, help="Steps of every training run (default: the preset's).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Training config override (repeatable).")
@click.option("--seeds", default=None, metavar="S,S,...", help="Train every run once per seed; mean ± sd tables.")
@_extraction_options
def reproduce(dataset: str, root: Path, dataset_options: dict[str, str], allow_outside_root: bool, out: Path,
              objectives: str, per_action: bool, preset: str | None, steps: int | None, overrides: tuple[str, ...],
              seeds: str | None, **options) -> None:
    """A dataset end to end: extract (cached) -> train each objective -> embed -> evaluate -> OUT/results.md
    (OUT/results-per-action.md with --per-action).

    Rerunning skips what is finished; a changed option reruns only what depends on it. The evaluation
    options are `vava evaluate`'s; --kendall-stride defaults to the papers' stride for the dataset
    (pouring 2; penn_action, ikea_asm, coin 5), the others to evaluate's defaults.
    """
    from vava.core.config import parse_overrides
    from vava.pipeline.datasets import DATASETS
    from vava.pipeline.reproduce import parse_objectives
    from vava.pipeline.reproduce import reproduce as run_reproduce
    from vava.pipeline.sweep import parse_seeds
    from vava.stages.evaluate.options import EvalOptions
    from vava.stages.extract.run import ExtractOptions

    command = click.get_current_context().command
    probes = command.registry()
    evaluation = {name: options.pop(name) for name in list(options)
                  if name in EvalOptions(probes).values and name not in command.left_out}
    evaluation = {name: value for name, value in evaluation.items() if value is not None}
    extract_options = ExtractOptions(progress=False, **options)
    with _option_errors():
        extract_options.validate()
        EvalOptions(probes, **evaluation)  # bad values stop here, before any work
        chosen_seeds = None if seeds is None else parse_seeds(seeds)
        chosen = parse_objectives(objectives)
    records = _load_records(dataset, root, dataset_options, allow_outside_root)
    provenance = {"adapter": dataset, "root": str(root.resolve()), "options": dataset_options}
    results, failed = run_reproduce(
        records, out, objectives=chosen, extract_options=extract_options, dataset=provenance, per_action=per_action,
        base=preset or DATASETS[dataset].preset, steps=steps, overrides=parse_overrides(overrides), seeds=chosen_seeds,
        evaluation={name: list(value) if isinstance(value, tuple) else value for name, value in evaluation.items()},
        progress=True, log=lambda line: click.echo(line, err=True))
    for name, reason in failed.items():
        click.echo(f"failed: {name}: {reason}", err=True)
    click.echo(str(results))
    if failed:
        sys.exit(1)


# -- train / embed --------------------------------------------------------------------------
@main.command()
@click.option("--features", required=True, type=FEATURES, help="Feature set (printed by extract).")
@click.option("--objective", default=None, help="Training objective (default: the config's, vava).")
@click.option("--out", required=True, type=_Location(file_okay=False),
              help="Run folder, or object-storage URL (s3://bucket/runs/name).")
@click.option("--config", "preset", default=None, help="YAML file or preset name in configs/ (e.g. synthetic).")
@click.option("--steps", type=int, default=None, help="Optimiser steps (overrides the config).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set data.frames_per_video=40 --set loss.gamma=0.1 (repeatable).")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]")
@click.option("--seed", type=int, default=None, help="Seed (overrides the config).")
@click.option("--eval-every", type=int, default=None,
              help="Score the embedder on the val split every N steps into eval_log.csv and keep the best step as "
                   "checkpoints/best.pt (0: never; overrides the config's eval_every, default 0).")
@click.option("--eval-metric", default=None,
              help="The score best.pt is kept by: classification (val accuracy, label fraction 1.0; the default), "
                   "progress or kendall.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--force", is_flag=True, help="Train into --out even if it is a non-empty folder that is not a run.")
@click.option("--allow-partial", is_flag=True, help="Train even if the feature set lacks some of its videos.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(features: Path, objective: str | None, out: Path | RemotePath, preset: str | None, steps: int | None,
          overrides: tuple[str, ...], device: str, seed: int | None, eval_every: int | None, eval_metric: str | None,
          resume: bool, force: bool, allow_partial: bool, quiet: bool) -> None:
    """Train the frame embedder on a cached feature set. The last stdout line is the run folder."""
    from vava.core.config import merge, parse_overrides
    from vava.core.distributed import current_ranks
    from vava.core.run_folder import BEST, CHECKPOINTS
    from vava.core.staged_run import shown, staged
    from vava.pipeline.val_probes import ValProbes
    from vava.stages.train.config import load_config
    from vava.stages.train.loop import check_out_names
    from vava.stages.train.loop import train as run_train

    values = parse_overrides(overrides)
    direct = {"objective": objective, "steps": steps, "seed": seed, "eval_every": eval_every,
              "eval_metric": eval_metric}
    config = load_config(preset, merge(values, {k: v for k, v in direct.items() if v is not None}))
    main = current_ranks().is_main
    with staged(out, "vava train", writes=main, check=lambda names: check_out_names(out, names, force)) as run_dir:
        summary = run_train(features, run_dir, config, device=device, resume=resume, force=force,
                            progress=not quiet, allow_partial=allow_partial, evaluator=ValProbes())
    if not main:  # under torchrun, rank 0 alone reports
        return
    click.echo(f"trained {config.objective} from step {summary.start_step} to {summary.steps} in "
               f"{summary.seconds:.1f} s ({summary.data_path} data path), last loss {summary.loss:.6g}", err=True)
    if summary.best is not None:
        metric, value, step = summary.best
        click.echo(f"best {metric} {value:.6g} at step {step}: {shown(run_dir / CHECKPOINTS / BEST, run_dir, out)}",
                   err=True)
    click.echo(shown(summary.run_dir, run_dir, out))


@main.command()
@click.option("--run", "run_dir", required=True, type=RUN, help="Run folder, or object-storage URL.")
@click.option("--features", type=FEATURES, default=None,
              help="Feature set (default: the one the run was trained on; required with --identity).")
@click.option("--splits", default="train,val", show_default=True, help="Comma list of splits to embed.")
@click.option("--identity", is_flag=False, flag_value="features", default=None, metavar="[KIND]",
              help="No trained embedder, a reference row; KIND: features (pooled backbone maps; the default), "
                   "features-standardised (z-scored by the train split) or time (t/T).")
@click.option("--checkpoint", default="last", show_default=True, metavar="WHICH",
              help="The checkpoint to embed with: last, best (kept by --eval-every), a saved step N, or the path of a "
                   "checkpoint file of this run. Others than last write embeddings-<best|stepN|file stem>.h5.")
@click.option("--batch-frames", default=256, show_default=True, help="Frames embedded per chunk.")
@click.option("--device", default="auto", show_default=True)
@click.option("--allow-partial", is_flag=True, help="Embed even if the feature set lacks some of its videos.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def embed(run_dir: Path | RemotePath, features: Path | None, splits: str, identity: str | None, checkpoint: str, batch_frames: int,
          device: str, allow_partial: bool, quiet: bool) -> None:
    """Embed every frame of every video into RUN/embeddings.h5 (the last stdout line is its path)."""
    from vava.core.distributed import current_ranks
    from vava.core.staged_run import shown, staged
    from vava.stages.embed.run import embed as run_embed

    chosen = tuple(s.strip() for s in splits.split(",") if s.strip())
    main = current_ranks().is_main
    with staged(run_dir, "vava embed", writes=main) as local:
        path = run_embed(local, features, chosen, identity=identity, device=device, chunk_frames=batch_frames,
                         progress=not quiet, allow_partial=allow_partial, checkpoint=checkpoint)
    if main:  # under torchrun rank 0 wrote the file
        click.echo(shown(path, local, run_dir))


@main.command()
@click.option("--features", required=True, type=FEATURES, help="Feature set to diagnose.")
@click.option("--out", required=True, type=_Location(file_okay=False),
              help="Folder of the runs, or object-storage URL.")
@click.option("--config", "preset", default="synthetic", show_default=True,
              help="Training preset (YAML file or name in configs/) every rung trains with.")
@click.option("--objectives", default="vava,tcc,lav", show_default=True,
              help="Self-supervised objectives to train after supervised (comma list; empty for none).")
@click.option("--steps", type=int, default=None, help="Steps of every training run (default: the preset's).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override for every run (repeatable).")
@click.option("--device", default="auto", show_default=True)
def diagnose(features: Path, out: Path | RemotePath, preset: str, objectives: str, steps: int | None, overrides: tuple[str, ...],
             device: str) -> None:
    """The sanity ladder: frozen features, supervised (must fit its labels, converge and reach the frozen
    features on val), then self-supervised objectives. Writes OUT/ladder.md; exits 1 when supervised fails."""
    from vava.core.config import parse_overrides
    from vava.core.staged_run import shown, staged
    from vava.pipeline.ladder import LADDER_NAME, run_ladder

    chosen = [name.strip() for name in objectives.split(",") if name.strip()]
    with staged(out, "vava diagnose", writes=True, check=lambda names: None) as local:  # a folder of runs
        ladder = run_ladder(features, local, preset, chosen, steps=steps, overrides=parse_overrides(overrides),
                            device=device, log=lambda line: click.echo(line, err=True))
    click.echo((local / LADDER_NAME).read_text(encoding="utf-8"))
    click.echo(shown(local / LADDER_NAME, local, out))
    if not ladder.passed:
        sys.exit(1)


@main.command()
@click.option("--features", required=True, type=FEATURES, help="Feature set every run trains on.")
@click.option("--plan", default="ablations", show_default=True, help="Plan file or name in configs/sweeps/.")
@click.option("--out", required=True, type=_Location(file_okay=False),
              help="Folder of the runs, or object-storage URL.")
@click.option("--steps", type=int, default=None, help="Steps of every training run (default: the plan's base config).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override for every run (repeatable).")
@click.option("--results", type=LOCAL_FILE, default=None,
              help="Also write the result tables here (default: OUT/results.md only).")
@click.option("--seeds", default=None, metavar="S,S,...",
              help="Run the whole sweep once per seed, in OUT/seed-S (every trained run's seed is S); "
                   "OUT/results.md shows mean ± sd over the seeds.")
@click.option("--device", default="auto", show_default=True)
def sweep(features: Path, plan: str, out: Path | RemotePath, steps: int | None, overrides: tuple[str, ...], results: Path | None,
          seeds: str | None, device: str) -> None:
    """Train, embed and evaluate every run of a plan on one feature set; write comparison tables."""
    from vava.core.config import parse_overrides
    from vava.core.files import atomic_write, make_folder
    from vava.core.staged_run import shown, staged
    from vava.pipeline.sweep import RESULTS_NAME, load_plan, parse_seeds, run_sweep

    if results is not None and results.suffix != ".md":
        raise click.BadParameter(f"{results} does not end in .md (the tables are markdown)", param_hint="--results")
    with _option_errors():
        chosen = None if seeds is None else parse_seeds(seeds)
    runs = load_plan(plan)
    with staged(out, "vava sweep", writes=True, check=lambda names: None) as local:  # a folder of runs
        markdown, failed = run_sweep(features, local, runs, steps=steps,
                                     overrides=parse_overrides(overrides), device=device, seeds=chosen,
                                     log=lambda line: click.echo(line, err=True))
        local.mkdir(parents=True, exist_ok=True)
        for path in filter(None, (local / RESULTS_NAME, results)):
            atomic_write(make_folder(path.parent, f"{path}: cannot make its folder") / path.name, markdown)
    click.echo(markdown)
    click.echo(shown(local / RESULTS_NAME, local, out))
    if failed:
        sys.exit(1)


@main.command()
@click.argument("folders", nargs=-1, required=True, type=_Location(urls=False, exists=True, file_okay=False))
@click.option("--plan", required=True, help="Plan file or name in configs/sweeps/: its runs and tables.")
@click.option("--out", required=True, type=LOCAL_FILE, help="Markdown file of the tables (.md).")
@click.option("--loss-curves", type=LOCAL_FILE, default=None,
              help="Also plot each trained run's loss, mean over the seeds, here (.png).")
def gather(folders: tuple[Path, ...], plan: str, out: Path, loss_curves: Path | None) -> None:
    """Make a sweep's tables from the run records (sweep_record.json) under FOLDERS: seeds or parts of a
    sweep built on other machines or in other sittings, one table."""
    from vava.core.files import atomic_write, make_folder
    from vava.pipeline.sweep import gather_records, load_plan, records_markdown, write_loss_curves

    for path, suffix, flag in ((out, ".md", "--out"), (loss_curves, ".png", "--loss-curves")):
        if path is not None and path.suffix != suffix:
            raise click.BadParameter(f"{path} does not end in {suffix}", param_hint=flag)
    for path in filter(None, (out, loss_curves)):  # both folders before anything is written
        make_folder(path.parent, f"{path}: cannot make its folder")
    chosen = load_plan(plan)
    gathered = gather_records(folders, chosen)
    markdown = records_markdown(gathered.runs, gathered.seeds, chosen, {}, gathered.missing)
    if loss_curves is not None and not write_loss_curves(gathered.runs, gathered.seeds, chosen, loss_curves):
        click.echo(f"{loss_curves}: not written, no trained run has a logged loss", err=True)
    atomic_write(out, markdown)
    click.echo(markdown)
    click.echo(out)


# -- evaluate / align -----------------------------------------------------------------------
@main.command(cls=_EvaluateCommand)
@click.option("--run", "run_dir", type=RUN, help="Run folder to evaluate, or object-storage URL.")
@click.option("--compare", "compare", type=_Location(), multiple=True,
              help="Put the reports of these run folders (or object-storage URLs) into one table instead (repeatable).")
@click.option("--plots/--no-plots", default=True, show_default=True, help="t-SNE, alignment and loss plots.")
@click.option("--time-reference/--no-time-reference", default=True, show_default=True,
              help="Also score each frame's time alone (t/T) with the same probes: a reference row in the report.")
@click.option("--checkpoint", default="last", show_default=True, metavar="WHICH",
              help="Whose embeddings to evaluate: last, best, a step N or a checkpoint file, as given to "
                   "`vava embed` (or identity-KIND, for `vava embed --identity KIND` into a trained run); others "
                   "than last write report-<best|stepN|file stem>.json/.md and plots named alike.")
def evaluate(run_dir: Path | RemotePath | None, compare: tuple[Path | RemotePath, ...], plots: bool, time_reference: bool, checkpoint: str,
             **options) -> None:
    """Evaluate a run's embeddings (RUN/report.json, report.md, plots/), or --compare several runs."""
    from vava.core.report_file import REPORT_JSON, REPORT_MD
    from vava.core.run_folder import checkpoint_tag, tagged_name
    from vava.core.staged_run import shown, staged
    from vava.stages.evaluate.report import compare_reports, load_comparable_report, render_text
    from vava.stages.evaluate.run import evaluate_run
    from vava.stages.evaluate.tables import skip_lines

    probes = click.get_current_context().command.registry()
    if compare:
        reports = []
        for path in compare:  # a URL names a run folder: its report alone is fetched
            with staged(path, "vava evaluate --compare", writes=False, wanted=REPORT_JSON.__eq__) as local:
                reports.append(load_comparable_report(local))
        click.echo(compare_reports(reports, probes))
        return
    if run_dir is None:
        raise click.UsageError("give --run RUN_DIR, or --compare RUN_DIR ...")
    with _option_errors(), staged(run_dir, "vava evaluate", writes=True) as local:
        report, drawn = evaluate_run(local, plots=plots, probes=probes, checkpoint=checkpoint,
                                     time_reference=time_reference, **options)
    click.echo(render_text(report, probes))
    for line in skip_lines(report):
        click.echo(f"skipped {line}", err=True)
    tag = checkpoint_tag(checkpoint)
    click.echo(f"report: {shown(local / tagged_name(REPORT_MD, tag), local, run_dir)} and "
               f"{tagged_name(REPORT_JSON, tag)}")
    for png in drawn.written:
        click.echo(f"plot:   {shown(png, local, run_dir)}")
    for name, reason in drawn.skipped.items():
        click.echo(f"skipped plot {name}: {reason}", err=True)


@main.command()
@click.option("--run", "run_dir", required=True, type=RUN, help="Trained run folder, or object-storage URL.")
@click.argument("video_a")
@click.argument("video_b")
@click.option("--out", required=True, type=LOCAL_FILE, help="Output .mp4.")
@click.option("--method", type=click.Choice(["dtw", "nn"]), default="dtw", show_default=True,
              help="Monotonic DTW path, or each frame's nearest neighbour.")
@click.option("--plot", type=LOCAL_FILE, default=None, help="Also write the alignment plot.")
@click.option("--fps", type=float, default=None, help="Output frame rate (default: A's).")
@click.option("--height", default=240, show_default=True, help="Height of each half in pixels.")
@click.option("--weights", default=None, help="Backbone weights file, for videos outside the feature set.")
@click.option("--features", type=FEATURES, default=None,
              help="Feature set of the video ids (default: the one the run was trained on).")
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def align(run_dir: Path | RemotePath, video_a: str, video_b: str, out: Path, method: str, plot: Path | None, fps: float | None,
          height: int, weights: str | None, features: Path | None, device: str, quiet: bool) -> None:
    """Side-by-side video of VIDEO_B re-timed to follow VIDEO_A (ids of the run's feature set, or files)."""
    from vava.core.staged_run import staged
    from vava.stages.align.run import align_videos

    with staged(run_dir, "vava align", writes=False, wanted=lambda name: not name.endswith(".h5")) as local:
        path = align_videos(local, video_a, video_b, out, method=method, plot_png=plot, fps=fps, height=height,
                            weights=weights, device=device, features=features, progress=not quiet)
    if plot is not None:
        click.echo(f"plot: {plot}", err=True)
    click.echo(str(path))


# -- cache ---------------------------------------------------------------------------------
@main.group(cls=_Group)
def cache() -> None:
    """List, inspect, verify and remove feature sets."""


@cache.command("ls")
@click.argument("cache_dir", type=_Location(file_okay=False))
def cache_ls(cache_dir: Path | RemotePath) -> None:
    """List the feature sets in CACHE_DIR (folders that are none are reported on stderr)."""

    from vava.cache.inspect import LISTING_HEADER, listing_row
    from vava.cache.store import scan_cache
    from vava.core.formatting import columns

    sets, skipped = scan_cache(cache_dir)
    for reason in skipped.values():
        click.echo(f"skipped: {reason}", err=True)
    rows = []
    for feature_set in sets:
        try:
            rows.append(listing_row(feature_set))
        except VavaError as err:
            click.echo(f"skipped: {err}", err=True)
    if rows:
        click.echo(columns([LISTING_HEADER, *rows]))
    else:
        click.echo(f"no feature sets in {cache_dir}", err=True)


@cache.command("info")
@click.argument("path", type=_Location())
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def cache_info(path: Path | RemotePath, as_json: bool) -> None:
    """Videos, frames, bytes on disk, compression and fingerprint inputs of a feature set."""
    from vava.cache.inspect import describe
    from vava.cache.store import FOREIGN, FeatureSet

    info = describe(FeatureSet.open(path))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    ratio = info["compression_ratio"]
    size = f"{info['bytes_on_disk'] / 2**20:.1f} MiB"
    if ratio:
        size += f" (raw float16 {info['bytes_raw_float16'] / 2**20:.1f} MiB, {ratio:.2f}x smaller)"
    click.echo(f"path:        {info['path']}")
    click.echo(f"fingerprint: {info['fingerprint']}")
    click.echo(f"created:     {info['created']}")
    click.echo(f"videos:      {info['videos_complete']} complete, {info['videos_incomplete']} incomplete {info['splits']}")
    for video_id, problem in info["videos_unreadable"].items():
        click.echo(f"unreadable:  {video_id}: {problem}", err=True)
    for video_id in info["videos_foreign"]:
        click.echo(f"foreign:     {video_id}: {FOREIGN}; ignored", err=True)
    click.echo(f"frames:      {info['frames']} of shape {info['frame_shape']}")
    click.echo(f"on disk:     {size}")
    click.echo("inputs:\n" + json.dumps(info["inputs"], indent=2))


@cache.command("verify")
@click.argument("path", type=_Location())
def cache_verify(path: Path | RemotePath) -> None:
    """Read every complete video; report incomplete and damaged ones (exit 1 if any)."""
    from vava.cache.inspect import verify
    from vava.cache.store import FOREIGN, FeatureSet

    report = verify(FeatureSet.open(path))
    for video_id in report.incomplete:
        click.echo(f"incomplete: {video_id}", err=True)
    for video_id, problem in report.damaged.items():
        click.echo(f"damaged: {video_id}: {problem}", err=True)
    if report.damaged:
        click.echo("re-extract them with `vava extract --repair` and the options that made this set", err=True)
    for video_id in report.foreign:
        click.echo(f"foreign: {video_id}: {FOREIGN}; train and embed ignore it: move it out of {path / 'videos'}",
                   err=True)
    if report.unchecksummed:
        click.echo(f"{len(report.unchecksummed)} videos were written before checksums (cache format 1): only their "
                   "shape and values were checked; extract again into a new feature set to protect them", err=True)
    click.echo(f"{report.checked} complete videos checked, {len(report.damaged)} damaged, "
               f"{len(report.incomplete)} incomplete" + (f", {len(report.foreign)} foreign" if report.foreign else ""))
    if not report.ok:
        sys.exit(1)


@cache.command("rm")
@click.argument("path", type=_Location())
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def cache_rm(path: Path | RemotePath, yes: bool) -> None:
    """Delete a feature set."""
    from vava.cache.store import removable_feature_set, remove_feature_set

    removable_feature_set(path)
    if not yes:
        click.confirm(f"delete feature set {path}?", abort=True)
    remove_feature_set(path)
    click.echo(f"removed {path}")


if __name__ == "__main__":
    main()
