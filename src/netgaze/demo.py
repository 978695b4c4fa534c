"""The one-command demo: the seed reports' studies end to end on embedded data, on the CPU.

``run_demo("runs/demo")`` trains the report's classifier family on ``shapes`` with the
spurious background (simple CNN; + batch norm and dropout; + robust augmentation), a VAE
on ``digits`` and an FCN on ``shapes``; runs every study whose code exists; and writes
``runs/demo/report.html``. A step whose code is missing or fails is not dropped
silently: it leaves a manifest with ``"skipped": reason`` that the report shows as a note.
The whole run takes a few minutes on two CPU cores (``quick=True``: well under one).
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from netgaze.studies.common import atomic_write_json, write_manifest


@dataclass
class DemoSettings:
    """Sizes of the demo; ``quick()`` is a smoke-test version of the same pipeline."""

    size: int = 48
    n_train: int | None = None  # shapes' own default: 2,000 train and 500 test pictures
    classifier_epochs: int = 8  # the shortcut is learned by epoch 2; the augmented model needs longer for shapes
    channels: tuple[int, ...] = (16, 32, 64, 64)
    vae_epochs: int = 10
    fcn_epochs: int = 6
    n_eval: int = 200
    embed_limit: int = 500
    featureviz_steps: int = 128
    faithfulness_images: int = 64

    @classmethod
    def quick(cls) -> "DemoSettings":
        return cls(size=32, n_train=256, classifier_epochs=2, channels=(8, 16, 16, 16), vae_epochs=1,
                   fcn_epochs=1, n_eval=32, embed_limit=64, featureviz_steps=8, faithfulness_images=8)


CLASSIFIERS = [  # (run folder, model, augmentation, what the report calls it)
    ("cnn", "simple-cnn", "none", "simple CNN"),
    ("cnn-bn", "simple-cnn-bn", "none", "CNN + batch norm + dropout"),
    ("cnn-robust", "simple-cnn", "robust", "simple CNN + robust augmentation"),
]


@dataclass
class Demo:
    out: Path
    settings: DemoSettings
    progress: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def say(self, message: str) -> None:
        if self.progress:
            print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)

    def step(self, name: str, function: Callable[[], Any], note_in: Path | None = None, study: str | None = None):
        """Run one step; on a missing module or an error, record a visible skip note."""
        self.say(f"{name} ...")
        start = time.perf_counter()
        try:
            result = function()
        except ImportError as err:
            result = self.skip(name, f"its code has not landed yet ({err})", note_in, study)
        except Exception as err:  # a failing step must not sink the demo; the report says so
            if self.progress:
                traceback.print_exc()
            result = self.skip(name, f"it failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}",
                               note_in, study)
        self.timings[name] = round(time.perf_counter() - start, 1)
        self.say(f"{name} done in {self.timings[name]:.0f} s")
        return result

    def skip(self, name: str, reason: str, note_in: Path | None, study: str | None) -> None:
        self.skipped[name] = reason
        self.say(f"{name} SKIPPED: {reason}")
        if note_in is not None and (note_in / "run.json").is_file():
            write_manifest(note_in / "artifacts", f"skipped-{name}", {"study": study or name, "skipped": reason})
        return None

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
                seed=0, progress=False, resume=(path / "run.json").is_file()))
            if (path / "run.json").is_file():
                paths.append(path)
        return paths

    def classifier_studies(self, runs: list[Path]) -> None:
        from netgaze import studies

        s = self.settings
        by_name = {p.name: p for p in runs}
        first = runs[0]
        names = [label for folder, _, _, label in CLASSIFIERS if folder in by_name]
        self.step("study models", lambda: studies.models_study(
            [by_name[f] for f, *_ in CLASSIFIERS if f in by_name], n_images=6, n_eval=s.n_eval, names=names),
            first, "models")
        main = by_name.get("cnn-robust", first)
        self.step("study layers", lambda: studies.layers_study(main, n_images=5), main, "layers")
        self.step("study epochs", lambda: studies.epochs_study(main, n_images=4, n_eval=s.n_eval), main, "epochs")
        for path in runs:
            self.step(f"embed {path.name}", lambda: self.embed(path), path, "embed")
        plain = by_name.get("cnn", first)
        self.step("feature visualization", lambda: self.featureviz(plain), plain, "featureviz")
        self.step("faithfulness", lambda: self.faithfulness(plain), plain, "faithfulness")

    def embed(self, path: Path) -> None:
        from netgaze.embed.pipeline import embed_run
        from netgaze.lab.runs import load_run

        embed_run(load_run(path), path / "artifacts" / "embed", method="tsne", limit=self.settings.embed_limit,
                  perplexity=20.0, progress=False)

    def featureviz(self, path: Path) -> None:
        from netgaze import viz
        from netgaze.featureviz import activation_maps, filter_grid, visualize
        from netgaze.lab.runs import load_run
        from netgaze.studies.common import run_facts
        from netgaze.studies.images import pick_examples

        run = load_run(path)
        facts = run_facts(run)
        folder = run.artifacts / "featureviz"
        s = self.settings
        classes = list(run.classes)
        pictures = visualize(run.model, "logits", channels=range(len(classes)), steps=s.featureviz_steps,
                             size=s.size, random_state=0)
        png = viz.save_png(viz.grid(list(viz.to_uint8(pictures)), ncols=len(classes), col_labels=classes,
                                    scale=max(1, 96 // s.size)), folder / "class_units.png")
        filters_png = viz.save_png(filter_grid(run.model, scale=12), folder / "filters.png")
        where = f"{facts['model']} (run {facts['run']}, epoch {facts['epoch']}) on {facts['dataset']}"
        write_manifest(folder, "featureviz", {
            "study": "featureviz", "title": "Activation maximization", **facts, "method": "activation maximization",
            "layer": "logits", "figures": [{"file": png.name, "caption": (
                f"Pictures synthesised to maximise each class logit of {where}: {s.featureviz_steps} Adam steps, "
                f"Fourier parameterization with transformation robustness, {s.size}x{s.size} pixels.")}]})
        write_manifest(folder, "filters", {
            "study": "filters", "title": "First-layer filters", **facts, "layer": "first conv layer",
            "figures": [{"file": filters_png.name, "caption": f"The first conv layer's kernels of {where}, "
                                                              "each normalised on its own."}]})
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
            "tables": [{"title": "Sparsity grows with depth?", "columns": ["layer", "channels", "size",
                                                                          "blank channels", "mean activation"],
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
                             steps=10, randomization_images=8)
        data = table.to_dict()
        keys = [k for k in data["columns"] if any(k in r for r in data["rows"].values())]
        write_manifest(run.artifacts, "faithfulness", {
            "study": "faithfulness", "title": "Faithfulness", **run_facts(run), "figures": [],
            "numbers": data, "tables": [{
                "title": (f"Faithfulness on {len(examples.indices)} test pictures of {run.config.get('model')} "
                          f"(run {path.name}); arrows say which way is better"),
                "columns": ["method", *[f"{data['columns'][k]['title']} "
                                        f"({'↑' if data['columns'][k]['better'] == 'higher' else '↓'})" for k in keys]],
                "rows": [[m, *[r.get(k) for k in keys]] for m, r in data["rows"].items()]}]})

    # -- reconstruction and segmentation ------------------------------------------------------
    def vae(self, note_in: Path | None) -> None:
        from netgaze.lab.reconstruct import train_reconstruction

        path = self.out / "vae"
        self.step("train vae", lambda: train_reconstruction(
            data="digits", model="vae-conv", loss="bce", latent=16, epochs=self.settings.vae_epochs, out=str(path),
            seed=0, progress=False, resume=(path / "run.json").is_file()), note_in, "latent")
        if not (path / "run.json").is_file():
            return
        self.step("study latent", lambda: __import__("netgaze.studies.latent", fromlist=["latent_study"])
                  .latent_study(str(path)), path, "latent")
        self.step("study area", lambda: __import__("netgaze.studies.area", fromlist=["area_study"])
                  .area_study(str(path)), path, "area")

    def fcn(self, note_in: Path | None) -> None:
        from netgaze.lab.segment import train_segmentation

        path = self.out / "fcn"
        s = self.settings
        self.step("train fcn", lambda: train_segmentation(
            data="shapes", encoder="simple", decoder="fcn8", epochs=s.fcn_epochs, out=str(path), seed=0,
            data_options={**({"n": s.n_train} if s.n_train else {}), "size": s.size}, progress=False,
            resume=(path / "run.json").is_file()), note_in, "segmentation")
        if not (path / "run.json").is_file():
            return
        self.step("study segments", lambda: __import__("netgaze.studies.area_segments", fromlist=["x"])
                  .area_segments_study(str(path)), path, "area_segments")


def run_demo(out: str | Path = "runs/demo", quick: bool = False, progress: bool = True,
             settings: DemoSettings | None = None) -> Path:
    """Train, study and report; returns the path of ``OUT/report.html``.

    Args:
        out: the demo folder; each run is a subfolder, the report lands in it. An existing
            demo folder is resumed (finished trainings are kept).
        quick: a tiny version of the same pipeline (tests, smoke checks).
        progress: print a line per step.
        settings: explicit sizes (overrides ``quick``).
    """
    torch.manual_seed(0)
    demo = Demo(Path(out), settings or (DemoSettings.quick() if quick else DemoSettings()), progress)
    demo.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    runs = demo.step("classifiers", demo.train_classifiers) or []
    note_in = runs[0] if runs else None
    if runs:
        demo.classifier_studies(runs)
    demo.vae(note_in)
    demo.fcn(note_in)
    from netgaze.demo_dataset import dataset_analyses  # issue 16: strategies, dissection, top pictures

    demo.step("dataset-wide analyses", lambda: dataset_analyses(demo))
    from netgaze.report import build_report

    report = demo.step("report", lambda: build_report(
        [demo.out], demo.out / "report.html",
        title="netgaze demo: how task, architecture and training change where a CNN looks"))
    total = round(time.perf_counter() - start, 1)
    atomic_write_json(demo.out / "demo.json", {"seconds": total, "steps": demo.timings, "skipped": demo.skipped,
                                               "settings": demo.settings.__dict__})
    demo.say(f"finished in {total:.0f} s; report: {report}")
    if report is None:
        raise RuntimeError(f"the demo could not write its report; see {demo.out / 'demo.json'}")
    return Path(report)


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(str(run_demo())))
