"""The GPU check (bench/gpu_check.sh, bench/gpu_check.py) on a machine without CUDA: its argument handling, and
its report on tiny data, with the GPU parts skipped for the stated reason."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_check(monkeypatch: pytest.MonkeyPatch):
    """bench/gpu_check.py as a module (bench/ is no package), registered while the test runs."""
    spec = importlib.util.spec_from_file_location("gpu_check", BENCH / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("args", "message"), [
    (["--fast"], "gpu_check.sh: unknown option --fast (usage: bench/gpu_check.sh [--quick] [OUT])"),
    (["a", "b"], "gpu_check.sh: more than one output folder given (usage: bench/gpu_check.sh [--quick] [OUT])"),
    (["report.md"], "gpu_check.sh: {out} is not a folder (a file or a symbolic link); name a folder for the report"),
])
def test_the_script_refuses_bad_arguments_before_doing_anything(args: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("kept\n")
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), *args], cwd=tmp_path, capture_output=True, text=True,
                          check=False, env={"PATH": "/usr/bin:/bin", "GPU_CHECK_PYTHON": "/nonexistent/python"})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [message.format(out=tmp_path / "report.md")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"] and (tmp_path / "report.md").read_text() == "kept\n"


TINY = {"video_size": 32, "image_size": 32, "videos": 3, "frames": (16, 18), "repeats": 2, "workers": (1,),
        "batch_size": 8, "train_steps": 2, "preset": "synthetic", "retrieval_videos": 4, "retrieval_frames": 20}


@pytest.fixture
def check(monkeypatch: pytest.MonkeyPatch):
    """The module, with its quick sizes made tiny and CUDA hidden (so the test runs alike on a GPU machine)."""
    module = load_check(monkeypatch)
    monkeypatch.setattr(module, "QUICK", module.Sizes(**TINY))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(module, "faiss_device", lambda device="auto": "cpu")
    return module


def test_without_cuda_the_report_has_the_cpu_numbers_and_says_why_gpu_parts_were_skipped(check, tmp_path: Path) -> None:
    log = tmp_path / "gpu_tests.log"
    log.write_text("ssss\n=== short test summary info ===\nSKIPPED [1] tests/x.py: no CUDA device\n4 skipped in 1s\n")
    assert check.main(["--quick", "--out", str(tmp_path / "out"), "--tests-log", str(log)]) == 0
    report = (tmp_path / "out" / "gpu_check.md").read_text()
    assert report.startswith("# GPU check (quick sizes)\n")
    assert "GPU: no CUDA device" in report
    assert "    SKIPPED [1] tests/x.py: no CUDA device\n    4 skipped in 1s\n" in report
    rows = [line.split(" | ") for line in report.splitlines() if line.startswith("| 1 | ")]
    assert len(rows) == 1  # one extraction run: 1 decode worker
    frames, seconds, rate = int(rows[0][1]), float(rows[0][2]), float(rows[0][3].strip("*"))
    assert frames > 0 and rate == pytest.approx(frames / seconds, rel=0.1, abs=1)
    waiting, backbone, other = float(rows[0][4]), float(rows[0][5]), float(rows[0][7])
    assert waiting + backbone + other == pytest.approx(seconds, abs=0.2)
    shares = {"decoding": waiting, "backbone": backbone, "writing": other}
    assert rows[0][8].rstrip(" |") == max(shares, key=shares.get)
    assert "12 videos (6 synthetic ones at 32 px, each extracted 2x under other ids)" in report
    assert "| device | skipped | no CUDA device |" in report
    assert "| host | **" in report and "**failed**" not in report
    assert "| gpu | skipped | no CUDA device |  |  |" in report
    assert "4 videos x 20 frames, 128-d" in report


def test_a_failing_part_is_reported_and_the_others_still_run(check, tmp_path: Path, monkeypatch) -> None:
    def broken(*args):
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(check, "extraction", broken)
    assert check.main(["--quick", "--out", str(tmp_path)]) == 1
    report = (tmp_path / "gpu_check.md").read_text()
    assert "## Extraction\n\n**failed**: RuntimeError: decoder exploded\n" in report
    assert "**failed**: RuntimeError: no features: the extraction failed" in report
    assert "| cpu | " in report and "## Tests marked gpu\n\nnot run\n" in report

