"""MkDocs hooks: tutorials as pages, llms.txt in the site.

The tutorials are jupytext "percent" files (``docs/tutorials/*.py``), executed as notebooks
by ``tests/docs/test_tutorials.py``. They are rendered here as plain Markdown (markdown
cells as text, code cells as Python blocks) rather than with mkdocs-jupyter: that plugin
pulls in nbconvert and its template stack, and a plain conversion builds offline, under
``--strict`` and with no further dependency. The ``.py`` file is copied beside the page, so
a reader can download it and open it in Jupyter (jupytext) or run it as a script.
"""
from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

CELL = re.compile(r"^# %%(.*)$", re.M)


def percent_to_markdown(source: str, name: str) -> str:
    """A jupytext percent script as Markdown: ``# %% [markdown]`` cells unwrapped, code cells fenced."""
    parts = CELL.split(source)
    out: list[str] = []
    for header, body in zip(parts[1::2], parts[2::2]):
        body = body.strip("\n")
        if "[markdown]" in header:
            out.append("\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines()))
        elif body.strip():
            out.append("```python\n" + body + "\n```")
    out.append(f"[Download this tutorial as a script]({name}) (open it in Jupyter with jupytext, or run it with Python).")
    return "\n\n".join(out) + "\n"


def on_files(files, config):
    docs = Path(config["docs_dir"])
    for script in sorted((docs / "tutorials").glob("*.py")):
        uri = f"tutorials/{script.stem}.md"
        files.append(File.generated(config, uri, content=percent_to_markdown(script.read_text(), script.name)))
    llms = docs.parent / "llms.txt"              # the repository's llms.txt, served at the site's root
    files.append(File.generated(config, "llms.txt", content=llms.read_text()))
    return files
