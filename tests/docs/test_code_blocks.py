"""Every ```python block of README.md and docs/*.md runs as written, in a fresh folder.

Each Markdown file's blocks run in order, as one script, in a fresh interpreter whose working
directory is an empty temporary folder (so a block may use what an earlier block of the same
file defined, and nothing from the repository's working tree leaks in). A block that must not
run (it needs a user's file, a GPU, a network) is marked by an HTML comment right before its
fence: ``<!-- no-run: the reason -->``. Those are counted against ``NO_RUN`` below, so a new one
is a visible change to this file, never a silent skip.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
NO_RUN = re.compile(r"<!--\s*no-run:\s*(.*?)\s*-->\s*\Z", re.S)
PYTHON = {"python", "py", "python3"}

# Blocks marked <!-- no-run: ... -->, per file: adding one means changing this table.
EXPECTED_NO_RUN: dict[str, int] = {}
TIMEOUT_S = 240


@dataclass
class Block:
    file: str
    line: int
    code: str
    no_run: str | None     # the reason, when the block is marked not to run


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def python_blocks(path: Path) -> list[Block]:
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1).lower() not in PYTHON:
            continue
        before = text[:match.start()]
        marked = NO_RUN.search(before)
        name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
        blocks.append(Block(name, before.count("\n") + 1, match.group(2),
                            marked.group(1) if marked else None))
    return blocks


def script_of(blocks: list[Block]) -> str:
    """The blocks that run, in order, each preceded by a comment naming its place."""
    parts = [f"# --- {b.file}, line {b.line}\n{b.code}" for b in blocks if b.no_run is None]
    return "\n".join(parts)


FILES = [p for p in markdown_files() if python_blocks(p)]


def test_the_blocks_are_found():
    """The extraction works: the README's ten lines and every guide have runnable blocks."""
    found = {str(p.relative_to(ROOT)) for p in FILES}
    assert {"README.md", "docs/methods.md", "docs/any-model.md", "docs/getting-started.md"} <= found
    readme = python_blocks(ROOT / "README.md")
    assert any("ng.gradcam(" in b.code and b.no_run is None for b in readme)


def test_blocks_that_do_not_run_are_counted_and_give_a_reason():
    marked: dict[str, int] = {}
    for path in markdown_files():
        for block in python_blocks(path):
            if block.no_run is not None:
                assert block.no_run, f"{block.file}:{block.line}: <!-- no-run: --> needs a reason"
                marked[block.file] = marked.get(block.file, 0) + 1
    assert marked == EXPECTED_NO_RUN, (
        f"blocks marked no-run {marked} differ from EXPECTED_NO_RUN {EXPECTED_NO_RUN}: "
        "make the block run, or update the table on purpose")


def test_no_run_marker_is_read(tmp_path: Path):
    text = ("text\n<!-- no-run: needs your photos -->\n```python\nopen('mine.jpg')\n```\n\n"
            "```bash\nls\n```\n\n```python\nprint(1)\n```\n")
    path = tmp_path / "example.md"
    path.write_text(text)
    blocks = python_blocks(path)
    assert [b.no_run for b in blocks] == ["needs your photos", None]
    assert script_of(blocks).strip().endswith("print(1)")


@pytest.mark.timeout(TIMEOUT_S + 30)
@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_code_blocks_run(path: Path, tmp_path: Path):
    blocks = python_blocks(path)
    script = script_of(blocks)
    if not script.strip():
        pytest.skip(f"every Python block of {path.name} is marked no-run (counted above)")
    (tmp_path / "blocks.py").write_text(script)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, "blocks.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, (
        f"{path.relative_to(ROOT)}: its Python blocks failed (exit {done.returncode})\n"
        f"--- stderr (tail)\n{done.stderr[-4000:]}\n--- stdout (tail)\n{done.stdout[-2000:]}")
