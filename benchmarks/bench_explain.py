"""Explanation core speed and memory, side by side with pytorch-grad-cam, Captum and torchcam.

Batch 8 of 224x224 on the CPU, random weights; every time is a ratio to a plain forward
pass under torch.no_grad() on the same batch, measured in the same run: rounds that call
every contender once in a shuffled order, the median over rounds of the time divided by
that round's forward pass, and the share of rounds in which netgaze beat each peer. Peak memory is
the extra peak RSS of one call over the process's resident set before it, measured in a
fresh subprocess per (model, method). ViT-Tiny and Swin-T (timm) explain their last block
(its first norm, the pytorch-grad-cam recommendation): the peers get their documented
``reshape_transform``; netgaze gets nothing (``layer`` omitted: the stage rule and the
layout detection, cached after the first call) and, for reference, the layer's name.

    python benchmarks/bench_explain.py            # everything
    python benchmarks/bench_explain.py --quick    # fewer repeats
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import warnings

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _timing import RESULTS, interleaved_rounds, paired_ratios, print_table, reset_peak_rss, rss_mb, write_results  # noqa: E402

import netgaze as ng  # noqa: E402

warnings.filterwarnings("ignore")
MODELS = {
    "resnet18": ("layer4", ["layer1", "layer2", "layer3", "layer4"]),
    "vgg16": ("features.29", ["features.8", "features.15", "features.22", "features.29"]),
    # transformers (timm): the last block's first norm, as pytorch-grad-cam's README says
    "vit_tiny": ("blocks.11.norm1", [f"blocks.{i}.norm1" for i in (8, 9, 10, 11)]),
    "swin_t": ("layers.3.blocks.1.norm1", [f"layers.{i}.blocks.{b}.norm1" for i, b in enumerate((1, 1, 5, 1))]),
}
TIMM = {"vit_tiny": "vit_tiny_patch16_224", "swin_t": "swin_tiny_patch4_window7_224"}
SIZE = (224, 224)


def vit_reshape(tensor, height=14, width=14):
    """pytorch-grad-cam's documented ViT reshape_transform (class token dropped)."""
    result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
    return result.transpose(2, 3).transpose(1, 2)


def swin_reshape(tensor):
    """pytorch-grad-cam's documented Swin reshape_transform, for timm's [B, h, w, C] output."""
    result = tensor.reshape(tensor.size(0), tensor.size(1), tensor.size(2), tensor.size(3))
    return result.transpose(2, 3).transpose(1, 2)


RESHAPE = {"vit_tiny": vit_reshape, "swin_t": swin_reshape}


def build(model_name: str):
    torch.manual_seed(0)
    if model_name in TIMM:
        import timm
        model = timm.create_model(TIMM[model_name], pretrained=False).eval()
        with torch.no_grad():   # timm zero-initialises the head: every score would be constant
            for p in model.parameters():
                if p.dim() >= 2 and not p.any():
                    p.normal_(0, 0.02)
    else:
        model = getattr(torchvision.models, model_name)().eval()
    x = torch.rand(8, 3, *SIZE, generator=torch.Generator().manual_seed(0))
    return model, x


def module(model, name):
    return dict(model.named_modules())[name]


def up(maps: torch.Tensor) -> torch.Tensor:
    maps = maps if maps.dim() == 4 else maps[:, None]
    return F.interpolate(maps, size=SIZE, mode="bilinear", align_corners=False)


def top_classes(model, x) -> list[int]:
    with torch.no_grad():
        return model(x).argmax(1).tolist()


def candidates(model_name: str, model, x, classes: list[int] | None = None) -> dict[str, dict]:
    """Task -> {library: callable} computing the same result.

    ``classes`` (Captum's explicit targets) may come from elsewhere so that building the
    candidates runs no forward pass: the memory probe needs a cold process.
    """
    from captum.attr import GuidedBackprop, GuidedGradCam, LayerAttribution, LayerGradCam
    from pytorch_grad_cam import GradCAM as PgcGradCAM
    from pytorch_grad_cam import GuidedBackpropReLUModel
    from torchcam.methods import GradCAM as TcGradCAM

    last, four = MODELS[model_name]
    classes = top_classes(model, x) if classes is None else classes
    reshape = RESHAPE.get(model_name)

    def forward():
        with torch.no_grad():
            model(x)

    def pgc(layers):
        with PgcGradCAM(model=model, target_layers=[module(model, n) for n in layers],
                        reshape_transform=reshape) as cam:
            return cam(input_tensor=x, targets=None)

    def torchcam(layers):
        with TcGradCAM(model, target_layer=list(layers), reshape_transform=reshape) as extractor:
            out = model(x)
            maps = extractor(out.argmax(1).tolist(), out, normalized=False)
        return [up(m) for m in maps]

    def captum_gradcam(layer):
        attr = LayerGradCam(model, module(model, layer)).attribute(x, target=classes, relu_attributions=True)
        return LayerAttribution.interpolate(attr, SIZE, "bilinear")

    # pytorch-grad-cam's guided backprop swaps the model's ReLUs for one shared module and
    # does not put the originals back: it gets a copy, or later tasks lose layers.
    pgc_guided_model = GuidedBackpropReLUModel(model=copy.deepcopy(model), device="cpu")

    def pgc_guided():
        return [pgc_guided_model(x[i:i + 1]) for i in range(len(x))]

    if reshape is not None:   # zero configuration: netgaze finds the layer and the layout itself
        return {
            "gradcam_last": {
                "forward (no grad)": forward,
                "netgaze (layer omitted)": lambda: ng.gradcam(model, x),
                "netgaze": lambda: ng.gradcam(model, x, last),
                "pytorch-grad-cam (reshape_transform)": lambda: pgc([last]),
                "torchcam (reshape_transform)": lambda: torchcam([last]),
            },
            "gradcam_4_layers": {
                "forward (no grad)": forward,
                "netgaze": lambda: ng.gradcam(model, x, four),
                "pytorch-grad-cam (4 calls)": lambda: [pgc([n]) for n in four],
                "torchcam (1 call)": lambda: torchcam(four),
            },
        }
    return {
        "gradcam_last": {
            "forward (no grad)": forward,
            "netgaze": lambda: ng.gradcam(model, x, last),
            "pytorch-grad-cam": lambda: pgc([last]),
            "captum (class given)": lambda: captum_gradcam(last),
            "torchcam": lambda: torchcam([last]),
        },
        "gradcam_4_layers": {
            "forward (no grad)": forward,
            "netgaze": lambda: ng.gradcam(model, x, four),
            "pytorch-grad-cam (4 calls)": lambda: [pgc([n]) for n in four],
            "captum (4 calls)": lambda: [captum_gradcam(n) for n in four],
            "torchcam (1 call)": lambda: torchcam(four),
        },
        "guided_backprop": {
            "forward (no grad)": forward,
            "netgaze": lambda: ng.guided_backprop(model, x),
            "captum (class given)": lambda: GuidedBackprop(model).attribute(x, target=classes),
            "pytorch-grad-cam (per image)": pgc_guided,
        },
        "guided_gradcam": {
            "forward (no grad)": forward,
            "netgaze": lambda: ng.guided_gradcam(model, x, last),
            "captum (class given)": lambda: GuidedGradCam(model, module(model, last)).attribute(x, target=classes),
        },
    }


def memory_probe(model_name: str, task: str, library: str, classes: list[int]) -> float:
    """Run in a fresh subprocess: extra peak RSS (MB) of a first call over the RSS before it.

    No forward pass before the call, not even to find the classes: the allocator would
    keep that memory and hide the call's own peak.
    """
    model, x = build(model_name)
    fn = candidates(model_name, model, x, classes)[task][library]
    baseline = rss_mb()
    reset_peak_rss()
    fn()
    return rss_mb("VmHWM") - baseline


def measure_memory(model_name: str, task: str, library: str, classes: list[int], rounds: int = 5) -> float:
    """Median over ``rounds`` fresh processes: one process's peak varies by a few MB."""
    code = (f"import sys; sys.path.insert(0, {__file__.rsplit('/', 1)[0]!r}); import bench_explain as b; "
            f"print(b.memory_probe({model_name!r}, {task!r}, {library!r}, {classes!r}))")
    peaks = []
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        peaks.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 15")
    parser.add_argument("--repeats", type=int, help="timed rounds per task (overrides --quick)")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--only", choices=["timing", "memory"], help="one half of the benchmark")
    parser.add_argument("--memory-rounds", type=int, default=5, help="fresh processes per memory number")
    args = parser.parse_args()
    torch.set_num_threads(2)
    results: dict = {"batch": 8, "size": list(SIZE), "device": "cpu", "timing": {}, "memory_mb": {}}
    rows = []
    for model_name in args.models:
        model, x = build(model_name)
        for task, fns in candidates(model_name, model, x).items() if args.only != "memory" else ():
            times = interleaved_rounds(fns, repeats=args.repeats or (5 if args.quick else 15))
            ratios = paired_ratios(times, "forward (no grad)")
            entry = results["timing"].setdefault(model_name, {})[task] = {
                lib: {"seconds": round(statistics.median(ts), 4), "ratio_to_forward": round(ratios[lib], 3)}
                for lib, ts in times.items()}
            for lib, ts in times.items():
                if not lib.startswith(("forward (no grad)", "netgaze")):  # rounds in which netgaze was faster
                    entry[lib]["netgaze_faster_in"] = round(
                        sum(n < t for n, t in zip(times["netgaze"], ts)) / len(ts), 2)
            for lib, numbers in entry.items():
                if lib != "forward (no grad)":
                    won = f" (netgaze faster in {numbers['netgaze_faster_in']:.0%} of rounds)" \
                        if "netgaze_faster_in" in numbers else ""
                    rows.append([model_name, task, lib, f"{numbers['seconds'] * 1000:.0f} ms",
                                 f"{numbers['ratio_to_forward']:.2f}x{won}"])
                    print(" | ".join(rows[-1]), flush=True)
        if args.only == "timing":
            continue
        classes = top_classes(model, x)
        libraries = list(candidates(model_name, model, x, classes)["gradcam_last"])
        memory = {lib: measure_memory(model_name, "gradcam_last", lib, classes, rounds=args.memory_rounds)
                  for lib in libraries}
        results["memory_mb"][model_name] = {lib: round(mb, 1) for lib, mb in memory.items()}
        for lib, mb in memory.items():
            rows.append([model_name, "gradcam_last peak extra RSS", lib, f"{mb:.0f} MB",
                         f"{mb / max(memory['forward (no grad)'], 1e-9):.2f}x fwd"])
    print_table(rows, ["model", "task", "library", "time / memory", "ratio"])
    previous = RESULTS / "explain.json"
    if previous.exists():  # keep the numbers of the models and halves not measured now
        old = json.loads(previous.read_text())
        for key in ("timing", "memory_mb"):
            results[key] = {**old.get(key, {}), **results[key]}
    path = write_results("explain", results)
    print(f"\nwritten {path}")
    print(json.dumps(summary(results), indent=2))


def summary(results: dict) -> dict:
    """The issue's goals as booleans, from the measured ratios."""
    goals = {}
    for model_name, tasks in results["timing"].items():
        last = tasks["gradcam_last"]
        peers = [v["ratio_to_forward"] for k, v in last.items() if not k.startswith(("netgaze", "forward"))]
        goals[f"{model_name}: gradcam_last <= 1.15x forward"] = last["netgaze"]["ratio_to_forward"] <= 1.15
        goals[f"{model_name}: gradcam_last below every peer"] = last["netgaze"]["ratio_to_forward"] < min(peers)
        four = tasks["gradcam_4_layers"]
        peers4 = [v["ratio_to_forward"] for k, v in four.items() if not k.startswith(("netgaze", "forward"))]
        goals[f"{model_name}: 4 layers below every peer"] = four["netgaze"]["ratio_to_forward"] < min(peers4)
        for task in ("guided_backprop", "guided_gradcam"):
            if task not in tasks:
                continue
            t = tasks[task]
            goals[f"{model_name}: {task} below captum"] = t["netgaze"]["seconds"] < t["captum (class given)"]["seconds"]
    for model_name, mem in results["memory_mb"].items():
        goals[f"{model_name}: gradcam memory <= 1.5x forward"] = mem["netgaze"] <= 1.5 * mem["forward (no grad)"]
    return goals


if __name__ == "__main__":
    main()
