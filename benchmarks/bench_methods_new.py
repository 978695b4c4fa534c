"""Speed of the new perturbation methods against their peers, same settings, same machine.

Ablation-CAM (netgaze runs only the network after the layer, batched over channels)
against pytorch-grad-cam's AblationCAM (a whole forward pass per ablated channel, batched)
on resnet18 with random weights, one 3xSIZExSIZE picture, layers ``layer4`` and
``layer3``, ``batch_size`` 64 for both; also netgaze with the tail disabled (whole passes
with the layer's output replaced, its fallback for models torch.fx cannot trace), and
Occlusion against Captum's; feature ablation (8x8 patches), KernelSHAP and LIME (4x4 patches,
200 coalitions), DeepLift and DeepLiftShap (vgg11: Captum refuses resnet18's shared ReLUs)
and GradientSHAP (16 draws) against Captum's at the same settings. Rounds call every contender once in a shuffled order; the
median seconds and the ratio peer / netgaze are printed and written to
``benchmarks/results/methods_new.json``. No timing is asserted anywhere.

    python benchmarks/bench_methods_new.py              # 224x224, 3 rounds
    python benchmarks/bench_methods_new.py --size 128 --repeats 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")     # pytorch-grad-cam's progress bars

import torch  # noqa: E402
import torchvision  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _timing import interleaved_rounds, print_table, write_results  # noqa: E402

import netgaze as ng  # noqa: E402

warnings.filterwarnings("ignore")


def ablation_contenders(model, x, layer: str, classes, batch_size: int) -> dict:
    from pytorch_grad_cam import AblationCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    module = model.get_submodule(layer)
    ablation = sys.modules["netgaze.methods.ablationcam"]

    def peer():
        with AblationCAM(model=model, target_layers=[module], batch_size=batch_size) as cam:
            cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in classes])

    def ours():
        ng.ablationcam(model, x, layer, target=classes, batch_size=batch_size)

    def ours_whole_passes():
        build = ablation.tails.build
        ablation.tails.build = lambda *args: None
        try:
            ng.ablationcam(model, x, layer, target=classes, batch_size=batch_size)
        finally:
            ablation.tails.build = build
    return {"netgaze": ours, "netgaze (whole passes)": ours_whole_passes, "pytorch-grad-cam": peer}


def occlusion_contenders(model, x, classes, window, strides, batch_size: int) -> dict:
    from captum.attr import Occlusion

    def peer():
        Occlusion(model).attribute(x, sliding_window_shapes=window, strides=strides, baselines=0.0, target=classes,
                                   perturbations_per_eval=batch_size)

    def ours():
        ng.occlusion(model, x, classes, window=window, strides=strides, baseline=0.0, batch_size=batch_size)
    return {"netgaze": ours, "captum": peer}


def attribution_contenders(name: str, model, x, classes, batch_size: int) -> dict:
    """Captum's attribution methods against ours at the same settings (their samples drawn their way)."""
    from captum import attr

    from netgaze.methods.feature_masks import grid_mask

    size = tuple(x.shape[-2:])
    refs = torch.rand(4, *x.shape[1:], generator=torch.Generator().manual_seed(0))
    per = dict(perturbations_per_eval=batch_size)
    if name == "feature_ablation":          # 8 x 8 patches
        mask = grid_mask(size, 8)[None, None]
        return {"netgaze": lambda: ng.feature_ablation(model, x, classes, grid=8, batch_size=batch_size),
                "captum": lambda: attr.FeatureAblation(model).attribute(x, target=classes, feature_mask=mask, **per)}
    if name in ("kernel_shap", "lime"):     # 4 x 4 patches, 200 coalitions
        mask = grid_mask(size, 4)[None, None]
        peer = attr.KernelShap if name == "kernel_shap" else attr.Lime
        return {"netgaze": lambda: getattr(ng, name)(model, x, classes, grid=4, n=200, batch_size=batch_size),
                "captum": lambda: peer(model).attribute(x, target=classes, feature_mask=mask, n_samples=200, **per)}
    if name in ("deeplift", "deeplift_shap"):
        base = dict(baselines=torch.zeros_like(x)) if name == "deeplift" else dict(baselines=refs)
        peer = attr.DeepLift if name == "deeplift" else attr.DeepLiftShap
        ours = ng.deeplift if name == "deeplift" else ng.deeplift_shap
        key = "baseline" if name == "deeplift" else "baselines"
        return {"netgaze": lambda: ours(model, x, classes, **{key: base["baselines"]}),
                "captum": lambda: peer(model).attribute(x.clone().requires_grad_(), target=classes, **base)}
    return {"netgaze": lambda: ng.gradient_shap(model, x, classes, baselines=refs, n=16, batch_size=batch_size),
            "captum": lambda: attr.GradientShap(model).attribute(x, baselines=refs, target=classes, n_samples=16)}


def summarise(name: str, times: dict, baseline: str = "netgaze") -> dict:
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {"case": name, "seconds": medians, "all_seconds": times,
            "ratio_to_netgaze": {k: medians[k] / medians[baseline] for k in medians if k != baseline}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=1000).eval()
    x = torch.rand(1, 3, args.size, args.size)
    classes = [int(model(x).argmax())]
    cases = []
    for layer in ("layer4", "layer3"):
        times = interleaved_rounds(ablation_contenders(model, x, layer, classes, args.batch_size), args.repeats)
        cases.append(summarise(f"ablationcam {layer}", times))
    window = (3, args.size // 8, args.size // 8)
    strides = (3, args.size // 16, args.size // 16)
    times = interleaved_rounds(occlusion_contenders(model, x, classes, window, strides, args.batch_size), args.repeats)
    cases.append(summarise(f"occlusion window {window[1:]} stride {strides[1:]}", times))
    # DeepLift on vgg11: Captum's DeepLift refuses resnet18 (one ReLU module called twice per block)
    vgg = torchvision.models.vgg11(num_classes=1000).eval()
    for name in ("feature_ablation", "kernel_shap", "lime", "deeplift", "deeplift_shap", "gradient_shap"):
        net = vgg if name.startswith("deeplift") else model
        target = [int(net(x).argmax())]
        times = interleaved_rounds(attribution_contenders(name, net, x, target, args.batch_size), args.repeats)
        cases.append(summarise(name + (" (vgg11)" if net is vgg else ""), times))
    rows = []
    for case in cases:
        for who, seconds in case["seconds"].items():
            ratio = case["ratio_to_netgaze"].get(who)
            rows.append([case["case"], who, f"{seconds:.3f}", "1.00" if ratio is None else f"{ratio:.2f}"])
    print_table(rows, ["case", "contender", "median s", "time / netgaze"])
    path = write_results("methods_new", {
        "model": "torchvision resnet18, random weights (seed 0), eval", "input": [1, 3, args.size, args.size],
        "batch_size": args.batch_size, "threads": torch.get_num_threads(), "repeats": args.repeats,
        "cases": cases})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
