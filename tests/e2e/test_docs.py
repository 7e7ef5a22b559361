"""The documentation against the repository: `make` targets that exist, links that reach a file and a heading,
tables that render, shell recipes that stop at a failure."""
from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers import DELIMITER_ROW, table_cells

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", ROOT / "bench" / "README.md", *(ROOT / "docs").rglob("*.md")])


def _targets() -> set[str]:
    """The Makefile's targets; a pattern rule `benchmark-%:` stands for `benchmark-` plus anything."""
    found = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([a-z][\w%-]*(?: [a-z][\w%-]*)*):(?!=)", line)
        if match:
            found.update(match.group(1).split())
    return found


def _covered(target: str, targets: set[str]) -> bool:
    return target in targets or any(t.endswith("%") and target.startswith(t[:-1]) for t in targets)


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_make_target_the_docs_name_exists(doc: Path) -> None:
    text = doc.read_text()
    named = re.findall(r"`make (?:-\S+ )*([a-z][\w-]*)", text)  # inline code
    named += re.findall(r"^\s*make (?:-\S+ )*([a-z][\w-]*)", text, flags=re.MULTILINE)  # lines of code blocks
    targets = _targets()
    assert [name for name in named if not _covered(name, targets)] == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_table_line_has_as_many_cells_as_its_header(doc: Path) -> None:
    """GitHub renders no table at all where the header and the delimiter row differ in cells (as an unescaped `|`
    inside a header once made them), and drops or pads the cells of a row that differs."""
    lines = doc.read_text().splitlines()
    ragged = []
    for i, line in enumerate(lines[1:], start=1):
        if DELIMITER_ROW.match(line):
            header = len(table_cells(lines[i - 1]))
            rows = itertools.takewhile(lambda row: row.startswith("|"), lines[i:])
            ragged += [(i + j, row[:60]) for j, row in enumerate(rows) if len(table_cells(row)) != header]
    assert ragged == []


_FENCED = re.compile(r"^```.*?^```", flags=re.DOTALL | re.MULTILINE)


def _prose(doc: Path) -> str:
    """The document without its fenced code blocks (a `#` line there is a comment, a `](` is code)."""
    return _FENCED.sub("", doc.read_text())


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: link text for links, lower case, every character but letters, digits, `_`,
    `-` and spaces dropped, spaces to `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    """The anchors of a document's headings; a repeated heading's get `-1`, `-2`, ... as on GitHub."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _prose(doc), flags=re.MULTILINE):
        slug = _slug(heading)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_slug_follows_github() -> None:
    assert _slug("Protocol 2 at S = 24000: built in parts, kept as run records") == (
        "protocol-2-at-s--24000-built-in-parts-kept-as-run-records"
    )
    assert _slug("A training step, part by part (`bench/bench_step.py`)") == "a-training-step-part-by-part-benchbench_steppy"
    assert _slug("Does VAVA's [alignment](x.md) term matter?") == "does-vavas-alignment-term-matter"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_its_heading(doc: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(doc)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = doc.parent / path if path else doc
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            broken.append(target)
    assert broken == []


def test_every_docs_reference_in_the_code_reaches_its_heading() -> None:
    """Docstrings and configs point at a heading of a page in `docs/` for what they do not repeat (a page named
    without a heading may be one a make target writes)."""
    folders = ("pipeline", "stages", "cache", "core", "configs", "bench", "tests")
    sources = [path for folder in folders for path in (ROOT / folder).rglob("*") if path.suffix in (".py", ".yaml")]
    broken = []
    for source in sources:
        for path, anchor in re.findall(r"\b((?:docs/[\w/.-]+|README)\.md)#([\w-]+)", source.read_text()):
            linked = ROOT / path
            if not linked.exists() or anchor not in _anchors(linked):
                broken.append(f"{source.relative_to(ROOT)}: {path}#{anchor}")
    assert broken == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_shell_recipes_that_pass_output_on_stop_at_the_first_failure(doc: Path) -> None:
    """A block that feeds one command's output to the next (`X=$(vava ...)`) would otherwise go on after a failure
    with an empty X and bury the first error under others."""
    blocks = re.findall(r"```sh\n(.*?)```", doc.read_text(), flags=re.DOTALL)
    chained = [block for block in blocks if "$(vava " in block]
    assert [block for block in chained if not re.search(r"^set -e", block, flags=re.MULTILINE)] == []


def test_every_torch_spec_the_readme_gives_reaches_pip_as_written(tmp_path: Path) -> None:
    """`make setup TORCH_SPEC="..."` (the CPU-only install among them): make passes the spec to pip unchanged."""
    specs = re.findall(r'make setup TORCH_SPEC="([^"]+)"', (ROOT / "README.md").read_text())
    assert "torch torchvision --index-url https://download.pytorch.org/whl/cpu" in specs
    venv = tmp_path / "venv"  # not there: make plans the whole setup (-n: prints it, runs nothing)
    for spec in set(specs):
        # --no-print-directory: under `make test` this make is a sub-make, which would add "Leaving directory"
        planned = subprocess.run(["make", "-n", "--no-print-directory", "setup", f"VENV={venv}", f"TORCH_SPEC={spec}"],
                                 cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.splitlines()
        assert f"{venv}/bin/pip install -q {spec}" in planned
        assert planned[-2:] == [f'{venv}/bin/pip install -q -e ".[dev]"', f"touch {venv}/.installed"]
    assert not venv.exists()
