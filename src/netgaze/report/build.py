"""Build ONE self-contained ``report.html`` from run folders (it only reads them).

The report follows the seed reports: overview and findings, then per task (classification,
reconstruction, segmentation) the training curves and every study found in the runs'
``artifacts/`` manifests, each figure with a caption from the run (model, dataset, epoch,
method, layer) and the numbers in tables. Pictures are inlined as data URIs, the CSS is
inlined, there is no script and nothing is fetched from the network. All text that comes
from runs (class names, file names, captions) goes through Jinja2's autoescape.
"""
from __future__ import annotations

import base64
import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from tqdm.auto import tqdm

from netgaze.errors import UserError

from netgaze.report.history_figure import curves_png
from netgaze.report.findings import findings
from netgaze.report.runinfo import RunInfo, find_runs, read_run
from netgaze.report.sections import CHAPTERS, FIGURE_ORDER, STUDIES, measured_in_masks, study_of

HERE = Path(__file__).parent
MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def picture(path: Path) -> str:
    return data_uri(path.read_bytes(), MIME.get(path.suffix.lower(), "application/octet-stream"))


def fmt(value: Any) -> str:
    """Numbers for tables: floats with three decimals, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def caption_for(manifest: dict[str, Any], figure: dict[str, Any]) -> str:
    """The study's caption, prefixed with the run's facts unless it already names the model."""
    facts = [f"{key} {manifest[key]}" for key in ("run", "model", "dataset", "epoch", "method", "layer")
             if manifest.get(key) not in (None, "")]
    title = manifest.get("title") or STUDIES.get(study_of(manifest), {}).get("title", "Figure")
    caption = str(figure.get("caption") or "").strip()
    if caption and str(manifest.get("model", "\0")) in caption:
        return caption
    head = f"{title} ({Path(str(figure.get('file', ''))).name}): " + ", ".join(facts)
    return f"{head}. {caption[:1].upper()}{caption[1:]}" + ("" if caption.endswith(".") or not caption else ".") \
        if caption else head + "."


def numbers_table(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """A manifest's flat ``numbers`` (scalars only) as a two-column table, for studies without tables."""
    numbers = manifest.get("numbers")
    if not isinstance(numbers, dict):
        return None
    rows = [[key, value] for key, value in numbers.items()
            if isinstance(value, (int, float, str, bool)) or value is None]
    if not rows:
        return None
    return table({"title": f"{manifest.get('title') or study_of(manifest)}: numbers", "columns": ["quantity", "value"],
                  "rows": rows})


def table(spec: dict[str, Any]) -> dict[str, Any]:
    return {"title": str(spec.get("title", "")), "columns": [str(c) for c in spec.get("columns", [])],
            "rows": [[fmt(v) for v in row] for row in spec.get("rows", [])], "id": None}


def curve_caption(run: RunInfo) -> str:
    what = {"classify": "accuracy (left, dashed = train) and loss (right)",
            "reconstruct": "losses per picture, train and test",
            "segment": "pixel accuracy, mean accuracy and mean IoU (left) and loss (right)"}.get(run.task, "metrics")
    return (f"Training curves of {run.model} on {run.dataset} (augmentation {run.augment}), "
            f"{run.epochs} epochs, run {run.name}: {what}.")


def home_task(run: RunInfo, study: str) -> str:
    """The chapter a run's study goes to: its own task's, else the first chapter that lists the study."""
    for chapter in CHAPTERS:
        if chapter["task"] == run.task and study in chapter["studies"]:
            return run.task
    return next((c["task"] for c in CHAPTERS if study in c["studies"]), run.task)


OVERVIEW_COLUMNS: dict[str, list[tuple[str, str]]] = {  # task -> (header, history key or run attribute)
    "classify": [("train acc.", "train_acc"), ("test acc.", "test_acc"), ("test loss", "test_loss")],
    "reconstruct": [("test loss", "test_loss"), ("pixel MSE", "test_pixel_mse"), ("KL", "test_kl")],
    "segment": [("pixel acc.", "pixel_acc"), ("mean IoU", "mean_iou"), ("test loss", "test_loss")],
}
TASK_NAMES = {"classify": "Classification", "reconstruct": "Reconstruction", "segment": "Segmentation"}


def overview_tables(runs: list[RunInfo]) -> list[dict[str, Any]]:
    """One short table per task: the runs with the final numbers that matter for that task."""
    tables = []
    for task in sorted({r.task for r in runs}, key=lambda t: list(OVERVIEW_COLUMNS).index(t)
                       if t in OVERVIEW_COLUMNS else len(OVERVIEW_COLUMNS)):
        task_runs = [r for r in runs if r.task == task]
        metrics = [(h, k) for h, k in OVERVIEW_COLUMNS.get(task, [("test loss", "test_loss")])
                   if any(r.last(k) is not None for r in task_runs)]
        augmented = any(r.augment not in ("none", "None", "") for r in task_runs)
        columns = ["run", "model", "data"] + (["augment."] if augmented else []) + ["epochs"] + [h for h, _ in metrics]
        rows = [[r.name, r.model, r.dataset] + ([r.augment] if augmented else []) + [r.epochs]
                + [r.last(k) for _, k in metrics] for r in task_runs]
        tables.append(table({"title": f"{TASK_NAMES.get(task, task)} runs (final epoch)", "columns": columns,
                             "rows": rows}))
    return tables


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


class Anchors:
    """Ids and numbers of the report's figures and tables, so findings can link to them."""

    def __init__(self) -> None:
        self.figures: dict[tuple[str, str], dict[str, Any]] = {}
        self.tables: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.used: set[str] = set()
        self.count = 0

    def unique(self, base: str) -> str:
        name, i = base, 2
        while name in self.used:
            name, i = f"{base}-{i}", i + 1
        self.used.add(name)
        return name

    def figure(self, run: str, key: str, entry: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        entry.update(id=self.unique("fig-" + slug(f"{run}-{Path(key).stem}")), number=self.count)
        self.figures.setdefault((run, Path(key).name), entry)
        return entry

    def table(self, run: str, study: str, index: int, entry: dict[str, Any]) -> dict[str, Any]:
        entry["id"] = self.unique("tab-" + slug(f"{run}-{study}-{index}"))
        self.tables.setdefault((run, study, index), entry)
        return entry

    def resolve(self, ref: dict[str, Any]) -> dict[str, str] | None:
        """A finding's reference as ``{"href", "label"}``; None when the report does not show it."""
        if "file" in ref:
            figure = self.figures.get((str(ref["run"]), str(ref["file"])))
            return {"href": f"#{figure['id']}", "label": f"Figure {figure['number']}"} if figure else None
        found = self.tables.get((str(ref.get("run")), str(ref.get("study")), int(ref.get("table", 0))))
        return {"href": f"#{found['id']}", "label": found.get("title") or "table"} if found else None


def gather(runs: list[RunInfo], anchors: Anchors | None = None) -> list[dict[str, Any]]:
    """Chapters -> sections -> figures/tables/notes, in the seed report's order (figures numbered in ``anchors``)."""
    anchors = anchors if anchors is not None else Anchors()
    chapters = []
    for chapter in CHAPTERS:
        task_runs = [r for r in runs if r.task == chapter["task"]]
        sections = []
        curves = []
        for run in task_runs:
            png = curves_png(run.history, f"{run.name}: {run.model} on {run.dataset}")
            if png is not None:
                curves.append(anchors.figure(run.name, "curves", {"src": data_uri(png, "image/png"),
                                                                  "caption": curve_caption(run), "alt": run.name}))
            elif run.curves_png is not None:
                curves.append(anchors.figure(run.name, "curves", {"src": picture(run.curves_png),
                                                                  "caption": curve_caption(run), "alt": run.name}))
        if curves:
            sections.append({"id": f"{chapter['task']}-training", "title": "Training models",
                             "intro": chapter["training_intro"], "figures": curves, "tables": [], "notes": []})
        for study in chapter["studies"]:
            entries = [(run, m) for run in runs for m in run.manifests
                       if study_of(m) == study and home_task(run, study) == chapter["task"]]
            if not entries:
                continue
            entries.sort(key=lambda e: figure_order(e[1]))
            spec = STUDIES[study]
            masked = any(measured_in_masks(m) for _, m in entries)
            intro = spec.get("intro", "") if masked else spec.get("intro_without_masks", spec.get("intro", ""))
            section = {"id": study, "title": spec["title"], "intro": intro,
                       "figures": [], "tables": [], "notes": []}
            several = len({run.path for run, _ in entries}) > 1
            for run, manifest in entries:
                if manifest.get("skipped"):
                    section["notes"].append(f"{run.name}: not run — {manifest['skipped']}")
                    continue
                for figure in manifest.get("figures", []):
                    section["figures"].append(anchors.figure(run.name, figure["_path"].name, {
                        "src": picture(figure["_path"]), "caption": caption_for(manifest, figure),
                        "alt": figure["_path"].name}))
                tables = [table(t) for t in manifest.get("tables") or []]
                if "tables" not in manifest and numbers_table(manifest) is not None:
                    tables = [numbers_table(manifest)]
                for index, t in enumerate(tables):
                    if several and run.name not in t["title"]:
                        t["title"] = f"Run {run.name}: {t['title']}"
                    section["tables"].append(anchors.table(run.name, str(manifest.get("study")), index, t))
                section["notes"].extend(str(n) for n in manifest.get("notes", []) or [])
            sections.append(section)
        if sections:
            chapters.append({"id": chapter["task"], "title": chapter["title"], "intro": chapter["intro"],
                             "sections": sections})
    known = {s for c in CHAPTERS for s in c["studies"]}
    other = []
    for run in runs:
        for manifest in run.manifests:
            if study_of(manifest) not in known:
                for figure in manifest.get("figures", []):
                    other.append(anchors.figure(run.name, figure["_path"].name, {
                        "src": picture(figure["_path"]), "caption": caption_for(manifest, figure),
                        "alt": figure["_path"].name}))
        for path in run.loose_pictures:
            other.append(anchors.figure(run.name, path.name, {
                "src": picture(path), "alt": path.name,
                "caption": f"{path.relative_to(run.path.resolve())} from run {run.name} ({run.model} on {run.dataset})."}))
    if other:
        chapters.append({"id": "other", "title": "Other figures", "intro": "Pictures found in the runs' artifacts "
                         "that no study manifest describes.", "sections": [
                             {"id": "other-figures", "title": "Figures", "intro": "", "figures": other,
                              "tables": [], "notes": []}]})
    return chapters


def figure_order(manifest: dict[str, Any]) -> int:
    """Where a manifest's figures go inside its section (``FIGURE_ORDER``; others after, in file order)."""
    study = str(manifest.get("study", ""))
    return FIGURE_ORDER.index(study) if study in FIGURE_ORDER else len(FIGURE_ORDER)


def linked_findings(runs: list[RunInfo], anchors: Anchors) -> list[dict[str, Any]]:
    """The findings with their references resolved to links (references the report does not show are dropped)."""
    out = []
    for finding in findings(runs):
        links, seen = [], set()
        for ref in finding.get("refs", []):
            link = anchors.resolve(ref)
            if link is not None and link["href"] not in seen:
                seen.add(link["href"])
                links.append(link)
        out.append({"title": finding["title"], "text": finding["text"], "links": links})
    return out


def render(runs: list[RunInfo], title: str | None = None) -> str:
    """The report's HTML text."""
    from netgaze._util.version import VERSION as __version__

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    template = env.get_template("report.html.j2")
    css = Markup((HERE / "static" / "report.css").read_text())
    anchors = Anchors()
    chapters = gather(runs, anchors)
    tasks = sorted({r.task for r in runs})
    return template.render(
        title=title or "netgaze report: " + ", ".join(r.name for r in runs),
        css=css, version=__version__, created=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        runs=runs, tasks=tasks, overviews=overview_tables(runs), findings=linked_findings(runs, anchors),
        chapters=chapters,
        problems=[f"{r.name}: {p}" for r in runs for p in r.problems])


class ReportTargetError(UserError):
    """``--out`` names a file the report must not replace."""


GENERATOR_MARK = b'<meta name="generator" content="netgaze report">'
OLD_REPORT_MARK = b"a self-contained page: every picture is inlined, nothing is fetched"


def is_netgaze_report(path: Path) -> bool:
    """Whether an existing file is a report netgaze wrote (which a new report may replace)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
            if GENERATOR_MARK in head:
                return True
            handle.seek(max(0, path.stat().st_size - 4096))
            return OLD_REPORT_MARK in handle.read()  # reports written before the generator mark
    except OSError:
        return False


def check_target(target: Path, run_paths: Sequence[Path]) -> None:
    """Refuse a report file that would replace something else: a run's own files, any other file.

    An existing file is replaced only when it is a netgaze report; inside a run folder the
    report never goes into ``checkpoints/`` nor takes a name the trainer writes.
    """
    reserved = {"run.json", "history.jsonl", "log.txt", "curves.png", ".netgaze.lock"}
    resolved = target.resolve()
    for run in run_paths:
        root = run.resolve()
        if resolved.is_relative_to(root):
            inside = resolved.relative_to(root)
            if inside.parts[:1] == ("checkpoints",) or str(inside) in reserved:
                raise ReportTargetError(f"--out {target} is one of run {run}'s own files; "
                                        "write the report elsewhere (e.g. RUN/report.html)")
    if target.is_dir():
        raise ReportTargetError(f"--out {target} is a folder; give the report's file name "
                                f"(e.g. {target / 'report.html'})")
    if target.exists() and not target.is_file():   # a FIFO or a device: reading it to check would block
        raise ReportTargetError(f"--out {target} is not a regular file; choose a new file name")
    if target.exists() and not is_netgaze_report(target):
        raise ReportTargetError(f"--out {target} exists and is not a netgaze report; "
                                "choose a new file name (only an earlier report is replaced)")


def build_report(paths: Sequence[str | Path], out: str | Path | None = None, title: str | None = None) -> Path:
    """Write the report for run folders (or folders of run folders) and return its path.

    Args:
        paths: run folders, or folders holding run folders (``runs/demo``).
        out: the HTML file; ``PATH/report.html`` of the first path when None. An existing
            file is replaced only when it is an earlier netgaze report, and never one of a
            run's own files (``ReportTargetError``).
        title: the report's title; the runs' names when None.
    """
    from netgaze._util.atomic import atomic_write_bytes

    run_paths = find_runs(list(paths))
    target = Path(out) if out is not None else Path(paths[0]) / "report.html"
    check_target(target, run_paths)
    runs = [read_run(p) for p in tqdm(run_paths, desc="reading runs", unit="run", file=sys.stderr,
                                      disable=len(run_paths) < 2 or None, leave=False)]
    return atomic_write_bytes(target, render(runs, title).encode("utf-8"))
