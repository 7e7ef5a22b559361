"""The package as users install it: one `vava` namespace, presets and plans inside the wheel.

A wheel is built from the repository and installed into a fresh virtual environment that sees the
test environment's dependencies (torch, zarr, ...) but not its editable install of this project;
everything then runs from an unrelated folder that holds a `cache/` directory of its own.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(REPO)], check=True, capture_output=True, cwd=out)
    [built] = out.glob("vava_align-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bin/` folder of a fresh environment with only the wheel installed (dependencies shared)."""
    env = tmp_path_factory.mktemp("env")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    site = Path(subprocess.run([env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # the test environment's packages, as a plain path entry: its own .pth files (the editable
    # install of this repository among them) are not processed from there
    (site / "shared-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install", "-q", "--no-deps",
                    str(wheel)], check=True, capture_output=True)
    return env / "bin"


def test_the_wheel_holds_one_vava_namespace_with_its_presets(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"vava"}
    for preset in ("synthetic", "cpu", "pouring", "penn_action", "ikea_asm", "coin", "sweeps/ablations",
                   "sweeps/objectives"):
        assert f"vava/configs/{preset}.yaml" in names
    sources = {p.relative_to(REPO).as_posix()
               for folder in ("pipeline", "stages", "cache") for p in (REPO / folder).rglob("*.py")}
    assert {f"vava/{source}" for source in sources} <= set(names)  # every module of every layer ships


def test_installed_package_runs_end_to_end_from_a_folder_with_its_own_cache_dir(installed: Path,
                                                                                 tmp_path: Path) -> None:
    work = tmp_path / "notebook"
    (work / "cache").mkdir(parents=True)  # a folder named like a layer must not shadow anything
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*args: str) -> str:
        done = subprocess.run([str(installed / "vava"), *args], cwd=work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    check = ("import importlib.util, vava; from vava.cache import FeatureSet; "
             "from vava.stages.train.config import load_config; from vava.pipeline.sweep import load_plan; "
             "print(vava.__file__); print([importlib.util.find_spec(n) for n in ('pipeline', 'stages')]); "
             "c = load_config('pouring', {}); print(c.data.frames_per_video, c.steps); "
             "print(len(load_plan('ablations').runs) > 10)")
    lines = subprocess.run([str(installed / "python"), "-c", check], cwd=work, env=env, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert not lines[0].startswith(str(REPO))     # the installed copy, not the repository's
    assert lines[1:] == ["[None, None]", "40 150000", "True"]  # no generic top-level packages; presets ship
    run("data", "synth", "data", "--actions", "1", "--videos", "3", "--size", "32", "--frames", "16:18")
    features = run("extract", "--root", "data", "--cache", "cache", "--weights", "random", "--image-size", "32",
                   "--quiet")
    run("train", "--features", features, "--config", "synthetic", "--out", "run", "--steps", "2", "--quiet",
        "--set", "data.frames_per_video=6", "--set", "model.conv_channels=8", "--set", "model.fc_channels=8")
    run("embed", "--run", "run", "--quiet")
    run("evaluate", "--run", "run", "--no-plots", "--tasks", "kendall")
    assert (work / "run" / "report.json").is_file()
