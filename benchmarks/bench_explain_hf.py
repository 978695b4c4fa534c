"""Grad-CAM on Hugging Face transformers models, zero configuration, beside pytorch-grad-cam's HF recipe.

Two models built from small configs (random weights, nothing downloaded, seconds on a CPU):
a ViT (ViT-Tiny's shape: 12 blocks of width 192, patch 16) and a ConvNeXt (ConvNeXt-Atto's:
depths 2-2-6-2, widths 40-320), batch 8 of 128x128. Every time is a ratio to the model's own
forward pass under ``torch.no_grad()`` on the same batch, measured in the same run: rounds
that call every contender once in a shuffled order, the median over rounds of the time
divided by that round's forward (wall clock, and process CPU time: the fairer number on a
shared machine). Issue 23's goal: netgaze at most 1.10x the forward.

- netgaze (layer and output omitted): ``ng.gradcam(model, x)``: the stage rule, the layout
  detection and the ``logits`` entry, all found by netgaze (cached after the first call);
- netgaze (layer named), for reference;
- pytorch-grad-cam's Hugging Face recipe: ``HuggingfaceToTensorModelWrapper`` (``.logits``),
  the same layer (ViT: the last block's first norm with its ``reshape_transform``, class
  token dropped; ConvNeXt: ``convnext.encoder.stages[-1].layers[-1]``), ``targets=None``.

The maps are checked equal (pytorch-grad-cam's min-max scaling applied to ours) before timing.

    python benchmarks/bench_explain_hf.py            # 15 rounds
    python benchmarks/bench_explain_hf.py --quick    # 5 rounds
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _timing import interleaved_rounds, paired_ratios, print_table, with_cpu, write_results  # noqa: E402

import netgaze as ng  # noqa: E402

warnings.filterwarnings("ignore")
SIZE = 128
BATCH = 8
FORWARD = "forward (no grad)"
OURS = "netgaze (layer omitted)"
PEER = "pytorch-grad-cam (HF recipe)"


def build(name: str) -> torch.nn.Module:
    import transformers as T

    torch.manual_seed(0)
    if name == "hf_vit":
        config = T.ViTConfig(image_size=SIZE, patch_size=16, hidden_size=192, num_hidden_layers=12,
                             num_attention_heads=3, intermediate_size=768, num_labels=10)
        return T.ViTForImageClassification(config).eval()
    config = T.ConvNextConfig(depths=[2, 2, 6, 2], hidden_sizes=[40, 80, 160, 320], num_labels=10)
    return T.ConvNextForImageClassification(config).eval()


def vit_reshape(tensor: torch.Tensor, height: int = SIZE // 16, width: int = SIZE // 16) -> torch.Tensor:
    """pytorch-grad-cam's ViT reshape_transform (class token dropped)."""
    result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
    return result.transpose(2, 3).transpose(1, 2)


class HuggingfaceToTensorModelWrapper(torch.nn.Module):
    """pytorch-grad-cam's Hugging Face tutorial: the model's ``.logits`` as a tensor."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logits


def recipe_layer(name: str, model: torch.nn.Module) -> tuple[torch.nn.Module, object]:
    if name == "hf_vit":
        return model.vit.layers[-1].layernorm_before, vit_reshape
    return model.convnext.encoder.stages[-1].layers[-1], None


def contenders(name: str, model: torch.nn.Module, x: torch.Tensor) -> dict:
    from pytorch_grad_cam import GradCAM

    layer, reshape = recipe_layer(name, model)
    named = next(n for n, m in model.named_modules() if m is layer)
    wrapped = HuggingfaceToTensorModelWrapper(model)

    def forward():
        with torch.no_grad():
            model(x)

    def peer():
        with GradCAM(model=wrapped, target_layers=[layer], reshape_transform=reshape) as cam:
            return cam(input_tensor=x, targets=None)

    return {FORWARD: forward, OURS: lambda: ng.gradcam(model, x), "netgaze (layer named)":
            lambda: ng.gradcam(model, x, named), PEER: peer}


def check_equal(name: str, model: torch.nn.Module, x: torch.Tensor) -> float:
    """Largest difference between ours (scaled as pytorch-grad-cam scales) and the recipe's map."""
    fns = contenders(name, model, x)
    ours, theirs = fns[OURS]().double(), torch.from_numpy(fns[PEER]()).double()
    for _ in range(2):     # scale_cam_image per layer, then across layers
        ours = ours - ours.flatten(1).amin(1)[:, None, None]
        ours = ours / (1e-7 + ours.flatten(1).amax(1)[:, None, None])
    return float((ours - theirs).abs().max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 15")
    parser.add_argument("--repeats", type=int, help="timed rounds (overrides --quick)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = args.repeats or (5 if args.quick else 15)
    results: dict = {"batch": BATCH, "size": [SIZE, SIZE], "device": "cpu", "threads": args.threads,
                     "rounds": repeats, "goal": "netgaze gradcam <= 1.10x the no-grad forward", "models": {}}
    rows = []
    for name in ("hf_vit", "hf_convnext"):
        model = build(name)
        x = torch.rand(BATCH, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
        difference = check_equal(name, model, x)
        if difference > 1e-4:
            raise SystemExit(f"{name}: netgaze's map differs from the recipe's by {difference:.2e}")
        cpu: dict[str, list[float]] = {}
        fns = {lib: with_cpu(cpu, lib, fn) for lib, fn in contenders(name, model, x).items()}
        times = interleaved_rounds(fns, repeats=repeats)
        cpu = {lib: ts[-repeats:] for lib, ts in cpu.items()}     # the warm-up call left out
        wall, cpu_ratio = paired_ratios(times, FORWARD), paired_ratios(cpu, FORWARD)
        entry = results["models"][name] = {
            "default_layer": ng.resolve_layer(model, -1, (3, SIZE, SIZE))[0], "max_map_difference": difference,
            "timing": {lib: {"seconds": round(statistics.median(ts), 4), "ratio_to_forward": round(wall[lib], 3),
                             "cpu_ratio_to_forward": round(cpu_ratio[lib], 3)} for lib, ts in times.items()}}
        entry["timing"][PEER]["netgaze_faster_in"] = round(
            sum(n < p for n, p in zip(times[OURS], times[PEER])) / repeats, 2)
        entry["goal_met"] = wall[OURS] <= 1.10
        entry["goal_met_cpu"] = cpu_ratio[OURS] <= 1.10
        for lib, numbers in entry["timing"].items():
            rows.append([name, lib, f"{numbers['seconds'] * 1000:.0f} ms", f"{numbers['ratio_to_forward']:.2f}x",
                         f"{numbers['cpu_ratio_to_forward']:.2f}x"])
            print(" | ".join(rows[-1]), flush=True)
    print_table(rows, ["model", "library", "median", "wall / forward", "CPU / forward"])
    path = write_results("explain_hf", results)
    print(f"\nwritten {path}")
    print(json.dumps({m: {"wall": e["timing"][OURS]["ratio_to_forward"], "cpu": e["timing"][OURS]
                          ["cpu_ratio_to_forward"], "goal_met": e["goal_met"]} for m, e in results["models"].items()},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
