"""The one-command demo: the seed reports' studies end to end on embedded data, on the CPU.

``run_demo("runs/demo")`` trains the report's classifier family on ``shapes`` with the
spurious background (simple CNN; + batch norm and dropout; + robust augmentation), a
digits classifier for activation maximization, seed 000's reconstruction family on
``digits`` (VAE, conditional VAE, denoising VAE, VAE-GAN) and an FCN on ``shapes``; runs
every study whose code exists; and writes ``runs/demo/report.html``. A step whose code is
missing or fails is not dropped silently: it leaves a manifest with ``"skipped": reason``
that the report shows as a note.

The steps form two independent groups (``GROUPS``: everything on ``shapes``; everything on
``digits``) that run in two processes at once, one thread each, which on two cores
is faster than one process with two threads for models this small; the report is written
after both. Each step prints its wall time and its CPU time.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from netgaze.demo.group_processes import run_groups_in_processes
from netgaze.demo.session import DemoSession
from netgaze.demo.settings import DemoSettings, _settings_from_json, settings_json
from netgaze.studies.common import atomic_write_json, write_manifest


SHORT_HEADERS = {"pointing": "pointing", "energy_pointing": "energy pointing", "deletion_auc": "deletion",
                 "insertion_auc": "insertion", "randomization_spearman": "random. ρ", "seconds": "seconds",
                 "road_morf": "ROAD MoRF", "road_lerf": "ROAD LeRF", "relevance_mass": "rel. mass",
                 "relevance_rank": "rel. rank", "sparseness": "sparse", "complexity": "complex",
                 "average_drop": "avg. drop", "increase_confidence": "incr. conf.", "infidelity": "infid.",
                 "random_logit": "rand. logit"}

CLASSIFIERS = [  # (run folder, model, augmentation, what the report calls it)
    ("cnn", "simple-cnn", "none", "simple CNN"),
    ("cnn-bn", "simple-cnn-bn", "none", "CNN + batch norm + dropout"),
    ("cnn-robust", "simple-cnn", "robust", "simple CNN + robust augmentation"),
]


class Demo(DemoSession):
    """The demo's steps in order, grouped by dataset (``GROUPS``)."""

    # -- classification ----------------------------------------------------------------
    def data_options(self) -> dict[str, Any]:
        s = self.settings
        return {**({"n": s.n_train} if s.n_train else {}), "size": s.size, "spurious": True}

    def train_classifiers(self) -> list[Path]:
        from netgaze.lab.train import train_classifier

        paths = []
        for folder, model, augment, _ in CLASSIFIERS:
            path = self.out / folder
            self.step(f"train {folder}", lambda: train_classifier(
                data="shapes", model=model, augment=augment, epochs=self.settings.classifier_epochs, out=str(path),
                data_options=self.data_options(), model_options={"channels": list(self.settings.channels)},
                seed=0, progress=False, resume=self.resuming(path)))
            if (path / "run.json").is_file():
                paths.append(path)
        return paths

    def classifier_studies(self, runs: list[Path]) -> None:
        from netgaze import studies

        s = self.settings
        by_name = {p.name: p for p in runs}
        first = runs[0]
        names = [folder for folder, *_ in CLASSIFIERS if folder in by_name]
        self.step("study models", lambda: studies.models_study(
            [by_name[f] for f, *_ in CLASSIFIERS if f in by_name], n_images=6, n_eval=s.n_eval, names=names),
            first, "models")  # named by run folder, as everywhere else in the report
        main = by_name.get("cnn-robust", first)
        self.step("study layers", lambda: studies.layers_study(main, n_images=5), main, "layers")
        self.step("study epochs", lambda: studies.epochs_study(main, n_images=4, n_eval=s.n_eval), main, "epochs")
        for path in runs:
            self.step(f"embed {path.name}", lambda: self.embed(path), path, "embed")
        plain = by_name.get("cnn", first)
        self.step("activations and filters", lambda: self.activations_and_filters(plain), plain, "activations")
        self.step("faithfulness", lambda: self.faithfulness(plain), plain, "faithfulness")

    def embed(self, path: Path) -> None:
        from netgaze.embed.pipeline import embed_run
        from netgaze.lab.runs import load_run

        embed_run(load_run(path), path / "artifacts" / "embed", method="tsne", limit=self.settings.embed_limit,
                  perplexity=20.0, progress=False)

    def activations_and_filters(self, path: Path) -> None:
        """First-layer filters and the activation maps of one picture in every layer (S6, S4)."""
        from netgaze import viz
        from netgaze.featureviz import activation_maps, filter_grid
        from netgaze.lab.runs import load_run
        from netgaze.studies.common import run_facts
        from netgaze.studies.images import pick_examples

        run = load_run(path)
        facts = run_facts(run)
        folder = run.artifacts / "featureviz"
        filters_png = viz.save_png(filter_grid(run.model, scale=12), folder / "filters.png")
        where = f"{facts['model']} (run {facts['run']}, epoch {facts['epoch']}) on {facts['dataset']}"
        write_manifest(folder, "filters", {
            "study": "filters", "title": "First-layer filters", **facts, "layer": "first conv layer",
            "figures": [{"file": filters_png.name, "caption": f"The first conv layer's kernels of {where}, "
                                                              "each normalised on its own."}], "tables": []})
        example = pick_examples(run.dataset("test"), 1, seed=0)
        maps = activation_maps(run.model, example.images[0])
        figures = []
        for stats in maps.stats:
            file = f"activations_{stats.name.replace('.', '_')}.png"
            viz.save_png(maps.grid(stats.name, scale=max(1, 96 // stats.height)), folder / file)
            figures.append({"file": file, "caption": (
                f"Every channel of {stats.name} of {where} for test picture #{example.indices[0]} "
                f"({example.names()[0].split(' ', 1)[1]}): {stats.channels} channels of {stats.height}x{stats.width}, "
                f"{stats.blank_share:.0%} blank.")})
        write_manifest(folder, "activations", {
            "study": "activations", "title": "Activation maps of one picture in every layer", **facts,
            "method": "activations (ReLU)", "figures": figures,
            "numbers": {"per_layer": {st.name: {"blank_share": st.blank_share, "mean_activation": st.mean_activation}
                                      for st in maps.stats}},
            "tables": [{"title": "Blank channels (sparsity) per layer", "columns": ["layer", "channels", "size",
                                                                                  "blank share", "mean activation"],
                        "rows": [[st.name, st.channels, f"{st.height}x{st.width}", st.blank_share, st.mean_activation]
                                 for st in maps.stats]}]})

    def faithfulness(self, path: Path) -> None:
        from netgaze.lab.runs import load_run
        from netgaze.metrics import method_table
        from netgaze.studies.common import run_facts
        from netgaze.studies.images import pick_examples

        run = load_run(path)
        examples = pick_examples(run.dataset("test"), self.settings.faithfulness_images, seed=2)
        table = method_table(run.model, examples.images, examples.masks,
                             methods=["gradcam", "gradcam_pp", "layercam", "saliency", "guided_backprop"],
                             steps=10, randomization_images=8, costly_images=8)
        data = table.to_dict()
        keys = [k for k in data["columns"] if any(k in r for r in data["rows"].values())]
        write_manifest(run.artifacts, "faithfulness", {
            "study": "faithfulness", "title": "Faithfulness", **run_facts(run), "figures": [],
            "numbers": data, "tables": [{
                "title": (f"Faithfulness on {len(examples.indices)} test pictures of {run.config.get('model')} "
                          f"(run {path.name}); arrows say which way is better"),
                "columns": ["method", *[f"{SHORT_HEADERS.get(k, data['columns'][k]['title'])} "
                                        f"{'↑' if data['columns'][k]['better'] == 'higher' else '↓'}" for k in keys]],
                "rows": [[m, *[r.get(k) for k in keys]] for m, r in data["rows"].items()]}]})

    # -- digits classifier: activation maximization (netgaze.demo.steps.digits_units) --------------
    def digits(self) -> None:
        from netgaze.demo.steps.digits_units import digits_classifier

        digits_classifier(self)

    # -- reconstruction family (netgaze.demo.steps.reconstruction) ------------------------------
    def reconstruction(self) -> None:
        from netgaze.demo.steps.reconstruction import reconstruction_family

        reconstruction_family(self)

    # -- segmentation -------------------------------------------------------------------------
    def fcn(self, note_in: Path | None = None) -> None:
        from netgaze.lab.segment import train_segmentation

        path = self.out / "fcn"
        s = self.settings
        self.step("train fcn", lambda: train_segmentation(
            data="shapes", encoder="simple", decoder="fcn8", epochs=s.fcn_epochs, out=str(path), seed=0,
            data_options={**({"n": s.n_train} if s.n_train else {}), "size": s.size}, progress=False,
            resume=self.resuming(path)), note_in, "segmentation")
        if not (path / "run.json").is_file():
            return
        self.step("study segments", lambda: __import__("netgaze.studies.area_segments", fromlist=["x"])
                  .area_segments_study(str(path)), path, "area_segments")


    # -- groups -------------------------------------------------------------------------------
    def classification(self) -> None:
        runs = self.step("classifiers", self.train_classifiers) or []
        if runs:
            self.classifier_studies(runs)

    def shapes(self) -> None:
        """Everything on ``shapes``: the classifiers and their studies, then the FCN."""
        self.classification()
        self.fcn()

    def digits_and_reconstruction(self) -> None:
        """Everything on ``digits``: the digits classifier's activation maximization, then the VAE family
        (whose studies use the digits classifier as a judge); then the dataset-wide analyses of a
        ``shapes`` model with a planted marker, which share nothing with the ``shapes`` group and
        keep the two processes about equally long."""
        self.digits()
        self.reconstruction()
        self.dataset_wide()

    # -- dataset-wide analyses (netgaze.demo.steps.dataset_wide) ----------------------------------------------
    def dataset_wide(self) -> None:
        from netgaze.demo.steps.dataset_wide import dataset_analyses  # issue 16: strategies, dissection, top pictures

        self.step("dataset-wide analyses", lambda: dataset_analyses(self))


# Groups of steps that share nothing until the report (one per dataset): each may run in its own process.
GROUPS = {"shapes": "shapes", "digits": "digits_and_reconstruction"}


def _run_group(out: str, settings: DemoSettings, progress: bool, group: str, threads: int | None) -> dict[str, Any]:
    """Run one group of steps (in a worker process or here); returns its bookkeeping."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    demo = Demo(Path(out), settings, progress, group=group if settings.workers > 1 else "")
    start = time.perf_counter()
    getattr(demo, GROUPS[group])()
    return {"timings": demo.timings, "cpu": demo.cpu, "skipped": demo.skipped, "unplaced": demo.unplaced,
            "reused": demo.reused, "seconds": round(time.perf_counter() - start, 1)}


DEMO_RUNS = [folder for folder, *_ in CLASSIFIERS] + ["fcn", "digits-cnn", "vae", "cvae", "dvae", "vaegan", "cnn-marker"]


def set_aside_other_settings(out: Path, settings: DemoSettings) -> list[str]:
    """Move runs a demo with other settings left in ``out`` to ``out/replaced-<time>/``; say what moved.

    A folder with no ``demo.json`` but demo runs in it (a demo of an older netgaze) counts as
    other settings too. Nothing is deleted: the old runs stay readable where they were moved,
    and ``netgaze report`` over ``out`` no longer mixes them in.
    """
    present = [name for name in DEMO_RUNS if (out / name).is_dir()]
    if not present:
        return []
    try:
        old = json.loads((out / "demo.json").read_text()).get("settings")
    except (OSError, ValueError, AttributeError):
        old = None
    if old == settings_json(settings):
        return []
    stamp, number = time.strftime("%Y%m%d-%H%M%S"), 1
    aside = out / f"replaced-{stamp}"
    while aside.exists():
        number += 1
        aside = out / f"replaced-{stamp}-{number}"
    aside.mkdir()
    for name in present:
        (out / name).rename(aside / name)
    what = "other settings" if old is not None else "unknown settings (no demo.json)"
    quick = " (a --quick demo)" if old == settings_json(DemoSettings.quick()) else ""
    return [f"{out} held runs trained with {what}{quick}: moved {', '.join(present)} to {aside} and training "
            "again with these settings"]


def _place_notes(out: Path, unplaced: dict[str, dict[str, str]]) -> None:
    """Skip notes of steps that had no run folder (a failed training) go to the first run that exists."""
    runs = sorted(p for p in out.iterdir() if (p / "run.json").is_file())
    if runs:
        for name, note in unplaced.items():
            write_manifest(runs[0] / "artifacts", f"skipped-{name}", note)


def run_demo(out: str | Path = "runs/demo", quick: bool = False, progress: bool = True,
             settings: DemoSettings | None = None) -> Path:
    """Train, study and report; returns the path of ``OUT/report.html``.

    Args:
        out: the demo folder; each run is a subfolder, the report lands in it. An existing
            demo folder made with the same settings is resumed (finished trainings are kept
            and named in ``demo.json``'s ``reused``); runs made with other settings (a
            ``--quick`` demo before a full one) are moved to ``out/replaced-<time>/`` and
            trained again, which is said on stderr.
        quick: a tiny version of the same pipeline (tests, smoke checks).
        progress: print a line per step.
        settings: explicit sizes (overrides ``quick``).
    """
    settings = settings or (DemoSettings.quick() if quick else DemoSettings())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for line in set_aside_other_settings(out, settings):
        print(f"[demo] {line}", file=sys.stderr, flush=True)  # always said, even with progress=False
    atomic_write_json(out / "demo.json", {"settings": settings_json(settings), "finished": False})
    start = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    if settings.workers > 1:
        threads = max(1, (torch.get_num_threads() or 1) // settings.workers)
        results = run_groups_in_processes(out, settings, progress, threads, list(GROUPS))
    else:
        results = {g: _run_group(str(out), settings, progress, g, None) for g in GROUPS}
    demo = Demo(out, settings, progress)
    for result in results.values():
        demo.timings.update(result["timings"])
        demo.cpu.update(result["cpu"])
        demo.skipped.update(result["skipped"])
        demo.unplaced.update(result["unplaced"])
        demo.reused.extend(result.get("reused", []))
    _place_notes(out, demo.unplaced)
    from netgaze.report import build_report

    report = demo.step("report", lambda: build_report(
        [demo.out], demo.out / "report.html",
        title="netgaze demo: how task, architecture and training change where a CNN looks"))
    total = round(time.perf_counter() - start, 1)
    atomic_write_json(demo.out / "demo.json", {
        "seconds": total, "groups": {g: r["seconds"] for g, r in results.items()}, "steps": demo.timings,
        "cpu_seconds": demo.cpu, "skipped": demo.skipped, "settings": settings_json(demo.settings),
        "finished": True, "reused": demo.reused, "load_average": list(os.getloadavg()), "cpus": os.cpu_count()})
    demo.say(f"finished in {total:.0f} s (groups: " + ", ".join(f"{g} {r['seconds']} s" for g, r in results.items())
             + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); report: {report}")
    if report is None:
        raise RuntimeError(f"the demo could not write its report; see {demo.out / 'demo.json'}")
    return Path(report)


def _main(argv: list[str] | None = None) -> int:
    """``python -m netgaze.demo --group NAME ...``: one group of steps, for ``run_demo``'s worker processes."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m netgaze.demo", description=_main.__doc__)
    parser.add_argument("--group", choices=list(GROUPS), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--result", required=True, help="JSON file for the group's timings and skip notes")
    parser.add_argument("--settings", required=True, help="DemoSettings as JSON")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    result = _run_group(args.out, _settings_from_json(args.settings), not args.quiet, args.group, args.threads)
    atomic_write_json(args.result, result)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
