"""Frame rates of datasets whose files store none: the rate each adapter assumes, the `fps` option that
overrides it, and the note `vava data info` prints while a rate is assumed."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vava.core.errors import VavaError
from vava.pipeline.cli import main
from vava.pipeline.datasets import DATASETS, load_dataset
from vava.pipeline.datasets.pouring import write_carl_fixture

# dataset -> (the rate assumed, why, as `vava data info` notes it)
ASSUMED = {
    # the released IKEA ASM videos are 25 fps (the dataset's toolbox exports the scan videos at 25)
    "ikea_asm": (25.0, "frame folders store none; the released videos are 25 fps"),
    "penn_action": (30.0, "the release states none"),
    # TCC's videos_to_tfrecords keeps the source rate (fps flag 0) and the shards do not record it
    "pouring": (30.0, "TFRecord shards store none"),
}


def data_info(dataset: str, root: Path, *options: str) -> list[str]:
    args = [arg for option in options for arg in ("--dataset-option", option)]
    result = CliRunner().invoke(main, ["data", "info", "--dataset", dataset, "--root", str(root), *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


@pytest.mark.parametrize("dataset", list(ASSUMED))
def test_an_assumed_rate_is_noted_and_the_fps_option_replaces_it(dataset: str, tmp_path: Path) -> None:
    DATASETS[dataset].fixture(tmp_path / dataset)
    rate, why = ASSUMED[dataset]
    assert {r.fps for r in load_dataset(dataset, tmp_path / dataset)} == {rate}
    note = f"note: {dataset}: frame rate {rate:g} fps assumed ({why}); set it with --dataset-option fps=FPS"
    assert note in data_info(dataset, tmp_path / dataset)
    given = load_dataset(dataset, tmp_path / dataset, options={"fps": "12.5"})
    assert {r.fps for r in given} == {12.5}
    assert not any("fps assumed" in line for line in data_info(dataset, tmp_path / dataset, "fps=12.5"))


@pytest.mark.parametrize("value", ["0", "-25", "x", "nan", "inf", ""])
def test_a_bad_fps_option_is_one_line(value: str, tmp_path: Path) -> None:
    DATASETS["ikea_asm"].fixture(tmp_path / "ikea")
    with pytest.raises(VavaError, match=rf"^--dataset-option fps={value}: must be a positive number of frames per "
                                        r"second$"):
        load_dataset("ikea_asm", tmp_path / "ikea", options={"fps": value})


def test_rates_read_from_the_files_are_not_noted(tmp_path: Path) -> None:
    write_carl_fixture(tmp_path / "carl")  # CARL's mp4s carry their own rate, as COIN's videos do
    assert not any("fps" in line for line in data_info("pouring", tmp_path / "carl"))
    with pytest.raises(VavaError, match=r"^--dataset-option fps=25: the carl layout's mp4s carry their own frame "
                                        r"rate$"):
        load_dataset("pouring", tmp_path / "carl", options={"fps": "25"})
    DATASETS["coin"].fixture(tmp_path / "coin")
    assert not any("fps" in line for line in data_info("coin", tmp_path / "coin", "tasks=MakeRJ45Cable"))
