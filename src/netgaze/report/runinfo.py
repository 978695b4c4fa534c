"""Read a run folder for the report: config, history, checkpoints, artifact manifests, loose files.

Only reads. A run folder holds ``run.json``, ``history.jsonl``, ``checkpoints/`` and
``artifacts/``; studies leave JSON manifests in ``artifacts/`` (see
``netgaze.studies.common``) whose ``figures`` name the pictures they made.

A run folder may come from someone else, so every file read from it must lie inside it
once symbolic links are resolved (``inside_run``): a manifest naming ``/proc/self/environ``,
``../../secret.png`` or a symbolic link out of the folder is refused and listed among the
report's problems, never read.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netgaze._util.containment import inside_run
from netgaze._util.run_json import check_config
from netgaze.errors import RunError

PICTURE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg", ".svg")

# Pictures the trainers write without a manifest: (task, file name) -> (study, title, caption).
KNOWN_PICTURES = {
    ("segment", "predictions.png"): ("segmentation", "Predicted masks",
                                     "Predicted masks over test pictures (the trainer's last epoch)."),
}


@dataclass
class RunInfo:
    """What the report knows about one run folder."""

    path: Path
    config: dict[str, Any]
    history: list[dict[str, Any]]
    checkpoints: list[int]
    manifests: list[dict[str, Any]] = field(default_factory=list)
    loose_pictures: list[Path] = field(default_factory=list)
    curves_png: Path | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def task(self) -> str:
        return str(self.config.get("task", "classify"))

    @property
    def model(self) -> str:
        return str(self.config.get("model", "?"))

    @property
    def dataset(self) -> str:
        return str(self.config.get("data", self.config.get("dataset", "?")))

    @property
    def augment(self) -> str:
        return str(self.config.get("augment", "none"))

    @property
    def epochs(self) -> int:
        return max([int(h.get("epoch", 0)) for h in self.history] + self.checkpoints + [0])

    def last(self, key: str) -> Any:
        """The last history value of ``key`` (None when never recorded)."""
        for row in reversed(self.history):
            if row.get(key) is not None:
                return row[key]
        return None

    def best(self, key: str) -> Any:
        values = [row[key] for row in self.history if isinstance(row.get(key), (int, float))]
        return max(values) if values else None

    @property
    def artifacts(self) -> Path:
        return self.path / "artifacts"


PROJECTIONS = {"tsne": "t-SNE", "pca": "PCA", "umap": "UMAP"}


def is_run_folder(path: Path) -> bool:
    return (path / "run.json").is_file()


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run folders from the given paths: a run folder itself, or a folder of run folders."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            raise RunError(f"no such run folder: {given}")
        if is_run_folder(path):
            found.append(path)
            continue
        inner = sorted(p for p in path.iterdir() if p.is_dir() and is_run_folder(p))
        # a folder of runs shared by someone else: a link to a run elsewhere is not followed
        outside = [p for p in inner if not p.resolve().is_relative_to(path.resolve())]
        for link in outside:
            warnings.warn(f"{link} links to {link.resolve()}, outside {given}; not included in the report",
                          stacklevel=2)
        inner = [p for p in inner if p not in outside]
        if not inner:
            raise RunError(f"{given} is not a run folder (no run.json) and holds none")
        found.extend(inner)
    unique: list[Path] = []
    for path in found:
        if path.resolve() not in [u.resolve() for u in unique]:
            unique.append(path)
    return unique


def read_run(path: Path) -> RunInfo:
    """Everything the report shows about one run; unreadable files become ``problems``."""
    problems: list[str] = []
    config = _read_json(path / "run.json", problems, path) or {}
    if isinstance(config, dict):
        try:
            check_config(config, path / "run.json")
        except RunError as err:  # a field of the wrong type: the run's settings are not shown
            problems.append(f"{err}; its settings are not shown")
            config = {}
    history = _read_jsonl(path / "history.jsonl", problems, path)
    checkpoints = sorted(_epoch_of(p) for p in (path / "checkpoints").glob("epoch-*.safetensors"))
    info = RunInfo(path, config if isinstance(config, dict) else {}, history, [e for e in checkpoints if e >= 0],
                   problems=problems)
    artifacts = path / "artifacts"
    referenced: set[Path] = set()
    if artifacts.is_dir():
        for json_path in sorted(artifacts.rglob("*.json")):
            data = adapt(json_path, _read_json(json_path, problems, path))
            if data is None:
                continue
            wrong = _manifest_problem(data)
            if wrong is not None:
                problems.append(f"{json_path.relative_to(path)}: {wrong}; not shown")
                continue
            data = dict(data)
            data.setdefault("run", path.name)
            for key, value in (("model", info.model), ("dataset", info.dataset)):
                if not data.get(key) and value != "?":
                    data[key] = value
            data["_folder"] = json_path.parent
            data["_file"] = json_path
            figures = []
            for figure in data.get("figures", []) or []:
                if isinstance(figure, str):
                    figure = {"file": figure}
                named = json_path.parent / str(figure.get("file", ""))
                picture = inside_run(path, named)
                if picture is None:
                    problems.append(_refusal(path, json_path, named, figure.get("file")))
                    continue
                referenced.add(picture)
                figures.append({**figure, "_path": picture})
            data["figures"] = figures
            info.manifests.append(data)
        for found in sorted(artifacts.rglob("*")):
            if found.suffix.lower() not in PICTURE_SUFFIXES:
                continue
            picture = inside_run(path, found)
            if picture is None:
                problems.append(f"{found.relative_to(path)} is not a file inside the run folder "
                                "(a link out of it?); not shown")
                continue
            if picture in referenced:
                continue
            known = KNOWN_PICTURES.get((info.task, picture.name))
            if known is None:
                info.loose_pictures.append(picture)
                continue
            study, title, caption = known
            info.manifests.append({"study": study, "title": title, "run": path.name, "model": info.model,
                                   "dataset": info.dataset, "epoch": info.epochs or None,
                                   "figures": [{"file": picture.name, "caption": caption, "_path": picture}],
                                   "_folder": picture.parent, "_file": picture})
    if (path / "curves.png").exists() or (path / "curves.png").is_symlink():
        info.curves_png = inside_run(path, path / "curves.png")
        if info.curves_png is None:
            problems.append("curves.png is not a file inside the run folder (a link out of it?); not shown")
    return info


def _refusal(run: Path, manifest: Path, named: Path, given: Any) -> str:
    """Why a manifest's picture is not shown: missing, or outside the run folder."""
    where = manifest.relative_to(run)
    try:
        exists = named.exists()
    except OSError:
        exists = False
    lexically_inside = Path(os.path.abspath(named)).is_relative_to(os.path.abspath(run))
    if not exists and not named.is_symlink() and lexically_inside:
        return f"{where} names a missing picture {given!r}"
    return f"{where} names {given!r}, which is not a file inside the run folder; refused, not read"


def adapt(json_path: Path, data: Any) -> dict[str, Any] | None:
    """A manifest from a JSON file: study manifests pass; the embedding tools' ``knn.json`` and
    the metrics' method table (``settings``/``columns``/``rows``) are turned into manifests."""
    if not isinstance(data, dict):
        return None
    if "figures" in data or "study" in data:
        return data
    if "label_features" in data and "layer" in data:  # netgaze.embed.embed_run's knn.json
        knn = {"class": data.get("label_features"), "background": data.get("nuisance_features"),
               "class (2-D embedding)": data.get("label_embedding"),
               "background (2-D embedding)": data.get("nuisance_embedding"),
               "class (chance)": data.get("label_chance"), "background (chance)": data.get("nuisance_chance")}
        knn = {k: v for k, v in knn.items() if v is not None}
        figures = [{"file": name} for name in ("embedding.png",) if (json_path.parent / name).is_file()]
        return {"study": "embed", "title": f"{PROJECTIONS.get(str(data.get('method')), 'A projection')} of pooled "
                "features", "layer": data["layer"],
                "method": f"{data.get('method', '?')} {data.get('dims', 2)}-D", "figures": figures,
                "numbers": {"k": data.get("k", 5), "n": data.get("n"), "knn": knn},
                "tables": [{"title": f"kNN accuracy (k={data.get('k', 5)}) on {data.get('n', '?')} {data.get('split', '')} "
                                     f"pictures, features of {data['layer']}",
                            "columns": ["predicted attribute", "accuracy"], "rows": [[k, v] for k, v in knn.items()]}]}
    if {"settings", "columns", "rows"} <= set(data) and isinstance(data["rows"], dict):  # metrics.method_table
        keys = [k for k in data["columns"] if any(k in r for r in data["rows"].values())]
        titles = [f"{data['columns'][k].get('title', k)} ({'↑' if data['columns'][k].get('better') == 'higher' else '↓'})"
                  for k in keys]
        return {"study": "faithfulness", "title": "Faithfulness", "figures": [],
                "numbers": {"rows": data["rows"]},
                "tables": [{"title": "Faithfulness of each method (arrows: which way is better)",
                            "columns": ["method", *titles],
                            "rows": [[m, *[r.get(k) for k in keys]] for m, r in data["rows"].items()]}]}
    return None


def _manifest_problem(data: dict[str, Any]) -> str | None:
    """Why a manifest's fields cannot be shown (a field of the wrong type), or None."""
    for key in ("study", "title", "run", "model", "dataset"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"{key} must be a string"
    figures = data.get("figures")
    if figures is not None:
        if not isinstance(figures, list):
            return "figures must be a list"
        for figure in figures:
            if not (isinstance(figure, str) or (isinstance(figure, dict) and isinstance(figure.get("file", ""), str))):
                return "each figure is a file name or an object with a file name"
    for key in ("numbers", "settings"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            return f"{key} must be a JSON object"
    if data.get("tables") is not None and not isinstance(data["tables"], list):
        return "tables must be a list"
    return None


def _epoch_of(path: Path) -> int:
    try:
        return int(path.stem.split("-")[1])
    except (IndexError, ValueError):
        return -1


def _read_json(path: Path, problems: list[str], run: Path) -> Any:
    if not (path.exists() or path.is_symlink()):
        return None
    if inside_run(run, path) is None:
        problems.append(f"{path.relative_to(run)} is not a file inside the run folder; refused, not read")
        return None
    try:
        return json.loads(path.read_text())
    except RecursionError:
        problems.append(f"could not read {path.name}: JSON nested too deep")
        return None
    except (OSError, ValueError) as err:
        problems.append(f"could not read {path.name}: {str(err).splitlines()[0][:120] if str(err) else err!r}")
        return None


def _read_jsonl(path: Path, problems: list[str], run: Path) -> list[dict[str, Any]]:
    rows = []
    if not (path.exists() or path.is_symlink()):
        return rows
    if inside_run(run, path) is None:
        problems.append(f"{path.relative_to(run)} is not a file inside the run folder; refused, not read")
        return rows
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            problems.append(f"{path.name} line {number} is not JSON (an interrupted write?); skipped")
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
