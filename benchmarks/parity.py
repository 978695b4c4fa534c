"""netgaze's new methods side by side with their peers: pytorch-grad-cam, torchcam, Captum.

resnet18 with random weights (seed 0) on a small picture (64x64 by default), the same
target classes for both. Writes ``benchmarks/results/parity.json``: one row per (method,
peer) with the largest absolute and relative difference and how the maps were compared.

How maps are compared (our maps are raw: not normalised, ReLU'd where the paper says,
upsampled bilinearly to the input size):
- pytorch-grad-cam returns min-max normalised maps (its ``scale_cam_image``, eps 1e-7,
  resized with OpenCV): ours are normalised the same way ("normalise both").
- torchcam returns raw maps at the layer's grid with ``normalized=False``: they are
  upsampled bilinearly like ours and compared raw ("raw").
- Captum returns raw attributions: compared raw.
Relative difference: ``max |ours - peer| / max |peer|``. Random methods draw the same
noise on both sides (a seed; one picture, so the peers' draw of the whole batch is ours).

    python benchmarks/parity.py                 # every pair
    python benchmarks/parity.py --size 96       # another picture size
"""
from __future__ import annotations

import argparse
import sys
import warnings
import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _timing import print_table, write_results  # noqa: E402

import netgaze as ng  # noqa: E402

warnings.filterwarnings("ignore")
TOLERANCE = 1e-5


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's scale_cam_image on [B, H, W] (minus the min, over 1e-7 + max), applied twice
    as pytorch-grad-cam does (per layer, then after averaging the layers): the second pass
    undoes the epsilon's share on maps of small values."""
    for _ in range(2):
        shifted = maps - maps.flatten(1).amin(1)[:, None, None]
        maps = shifted / (1e-7 + shifted.flatten(1).amax(1)[:, None, None])
    return maps


def up(maps: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


def row(method: str, peer: str, ours: torch.Tensor, theirs: torch.Tensor, compared: str, convention: str = "",
        **extra) -> dict:
    ours, theirs = ours.detach().double(), theirs.detach().double()
    diff = float((ours - theirs).abs().max())
    scale = float(theirs.abs().max())
    rel = diff / scale if scale > 0 else diff
    return {"method": method, "peer": peer, "max_abs_diff": diff, "max_rel_diff": rel, "equal": rel <= TOLERANCE,
            "compared": compared, "convention": convention, **extra}


# -- pytorch-grad-cam ---------------------------------------------------------------------------
def gradcam_peers(model, x, classes) -> list[dict]:
    from pytorch_grad_cam import AblationCAM, EigenCAM, EigenGradCAM, GradCAMElementWise
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    targets = [ClassifierOutputTarget(int(c)) for c in classes]
    pairs = {"eigencam": EigenCAM, "eigen_gradcam": EigenGradCAM, "gradcam_elementwise": GradCAMElementWise,
             "ablationcam": AblationCAM}
    rows = []
    for name, peer_class in pairs.items():
        with peer_class(model=model, target_layers=[model.layer4]) as peer:
            theirs = torch.from_numpy(peer(input_tensor=x, targets=targets))
        ours = normalise(ng.methods.METHODS[name](model, x, "layer4", target=classes))
        convention = ""
        if name in ("eigencam", "eigen_gradcam"):
            convention = "sign of the principal component: ours has entries summing to >= 0, the peer's is LAPACK's"
            flipped = _flipped_eigen(model, x, classes, name)
            if (flipped - theirs).abs().max() < (ours - theirs).abs().max():
                rows.append(row(name, "pytorch-grad-cam", flipped, theirs, "normalise both", convention
                                + " (the peer's sign is the opposite here: compared with our map of the other sign)"))
                continue
        if name == "ablationcam":
            convention = ("ablated value: ours 0 (the paper); the peer's 0 when the layer output has a zero, "
                          "else min - 1e7 (resnet18's layer4 ends in a ReLU: 0 for both)")
        rows.append(row(name, "pytorch-grad-cam", ours, theirs, "normalise both", convention))
    return rows + newer_gradcam_peers(model, x, targets, classes)


def newer_gradcam_peers(model, x, targets, classes) -> list[dict]:
    """FEM, KPCA-CAM, ShapleyCAM at layer3 (layer4's 2x2 grid at 64 px has no position above
    mean + 2 std), Finer-CAM at layer4, FullGrad over every bias layer."""
    from pytorch_grad_cam import FEM, KPCA_CAM, FinerCAM, FullGrad, ShapleyCAM

    rows = []
    for name, peer_class in {"fem": FEM, "kpca_cam": KPCA_CAM, "shapleycam": ShapleyCAM}.items():
        with peer_class(model=model, target_layers=[model.layer3]) as peer:
            theirs = torch.from_numpy(peer(input_tensor=x, targets=targets))
        ours = normalise(ng.methods.METHODS[name](model, x, "layer3", target=classes))
        convention = {"kpca_cam": "the peer runs scikit-learn's KernelPCA on float32 activations, ours float64 "
                                  "(equal to scikit-learn in float64 to 1e-8)",
                      "shapleycam": "equal to Grad-CAM here: the Hessian term vanishes through ReLU networks"}.get(name, "")
        rows.append(row(name, "pytorch-grad-cam", ours, theirs, "normalise both", convention, layer="layer3"))
    theirs = torch.from_numpy(FinerCAM(model, [model.layer4])(input_tensor=x, target_idx=int(classes[0])))
    rows.append(row("finercam", "pytorch-grad-cam", normalise(ng.finercam(model, x, "layer4", target=classes)), theirs,
                    "normalise both", "compared classes: the 3 closest logits other than the main class "
                    "(the peer's ranks 1-3 of |logit - main|, equal unless two logits tie)"))
    with FullGrad(model=model, target_layers=[]) as peer:
        theirs = torch.from_numpy(peer(input_tensor=x, targets=targets))
    ours = ng.fullgrad(model, x, target=classes)
    shifted = ours - ours.flatten(1).amin(1)[:, None, None]
    rows.append(row("fullgrad", "pytorch-grad-cam", shifted / (1e-7 + shifted.flatten(1).amax(1)[:, None, None]),
                    theirs, "normalise once", "each channel scaled to [0, 1] at its layer's grid, then upsampled "
                    "(the peer's convention; the authors' code scales per picture across channels)"))
    import numpy as np
    from pytorch_grad_cam import DeepFeatureFactorization

    concepts, maps = DeepFeatureFactorization(model=model, target_layer=model.layer3,
                                              computation_on_concepts=None)(x, n_components=4)
    ours = ng.dff(model, x, "layer3", n_components=4)
    rows.append(row("dff (concepts)", "pytorch-grad-cam", ours.concepts, torch.from_numpy(concepts), "raw",
                    "the same scikit-learn NMF (init random, random_state 0)", layer="layer3"))
    f = ours.factors - ours.factors.flatten(2).amin(2)[..., None, None]
    f = f / (1e-7 + f.flatten(2).amax(2)[..., None, None])
    rows.append(row("dff (maps)", "pytorch-grad-cam", F.interpolate(f, size=tuple(x.shape[-2:]), mode="bilinear",
                                                                  align_corners=False),
                    torch.from_numpy(np.stack(maps)), "normalise each map at the layer's grid",
                    "ours are raw factors (.factors, .maps upsampled); the peer scales each to [0, 1], then resizes",
                    layer="layer3"))
    return rows


def _flipped_eigen(model, x, classes, name) -> torch.Tensor:
    """Our EigenCAM / Eigen-Grad-CAM with the principal component's sign flipped, from the same recording."""
    from netgaze.methods.eigencam import principal_projection

    with ng.Recorder(model, ["layer4"]) as rec:
        out = rec.forward(x)
        acts = rec.activations["layer4"]
        grads = rec.gradients(ng.Class(classes)(out))["layer4"]
        maps = acts.detach() if name == "eigencam" else (acts * grads).detach()
    return normalise(up((-principal_projection(maps)).clamp(min=0), x.shape[-2:]))


# -- torchcam -----------------------------------------------------------------------------------
def torchcam_peers(model, x, classes, seed: int = 0, samples: int = 2) -> list[dict]:
    from torchcam.methods import CAM, ISCAM, SSCAM, SmoothGradCAMpp

    size, shape = x.shape[-2:], tuple(x.shape[1:])
    class_idx = [int(c) for c in classes]
    rows = []

    def raw(extractor_class, relu: bool = False, **kw) -> torch.Tensor:
        with extractor_class(model, "layer4", input_shape=shape, **kw) as extractor:
            scores = model(x)
            maps = extractor(class_idx=class_idx, scores=scores, normalized=False)[0].detach()
        return up(maps.clamp(min=0) if relu else maps, size)

    rows.append(row("cam", "torchcam", ng.cam(model, x, "layer4", target=classes),
                    raw(CAM, relu=True, fc_layer="fc"), "raw",
                    "torchcam's CAM is not ReLU'd (its docstring's formula is): its map is ReLU'd on the layer's grid "
                    "before the upsampling, as ours"))
    masks = ("Score-CAM masks: torchcam min-max scales each channel on the layer's grid, then upsamples; ours "
             "(the paper, pytorch-grad-cam) scales the upsampled map: equal when each channel's extremes lie on the "
             "grid's border (here layer4's grid is 2x2). ")
    rows.append(row("iscam", "torchcam", ng.iscam(model, x, "layer4", target=classes, n=samples),
                    raw(ISCAM, num_samples=samples), "raw",
                    masks + "Mask scale at step i: sum_{j<=i} j / n, as torchcam (its coefficient update)"))
    torch.manual_seed(seed)
    theirs = raw(SSCAM, num_samples=samples, std=2.0)
    rows.append(row("sscam", "torchcam", ng.sscam(model, x, "layer4", target=classes, n=samples, sigma=2.0, seed=seed),
                    theirs, "raw", masks + "Same noise draws: one [C, H, W] standard normal per sample (batch of one)"))
    std = 0.3
    sigma = std / float(x.max() - x.min())
    torch.manual_seed(seed)
    theirs = raw(SmoothGradCAMpp, num_samples=4, std=std)
    ours = ng.smoothgradcam_pp(model, x, "layer4", target=classes, n=4, sigma=sigma, seed=seed)
    rows.append(row("smoothgradcam_pp", "torchcam", ours, theirs, "raw",
                    "the paper's averages (ours) against torchcam's: it weights relu of the LAST noisy copy's "
                    "gradient, sums A * mean(g^3) in alpha's denominator (ours sum(A) * mean(g^3), as Grad-CAM++), "
                    "adds eps 1e-8, and weighs the last noisy copy's activations; sigma = std / value range"))
    rows.append(row("smoothgradcam_pp", "torchcam (its conventions, from netgaze's recording)",
                    torchcam_style_smoothgradcam_pp(model, x, classes, n=4, std=std, seed=seed), theirs, "raw",
                    "torchcam's three conventions rebuilt on ng.Recorder with the same noise: the difference "
                    "above is those conventions only"))
    return rows


def torchcam_style_smoothgradcam_pp(model, x, classes, n: int, std: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    g2 = g3 = 0
    with ng.Recorder(model, ["layer4"]) as rec:
        rec.forward(x)
        clean = rec.activations["layer4"].detach()
        for _ in range(n):
            noisy = x + torch.randn(x.shape, generator=g) * std
            out = rec.forward(noisy)
            grad = rec.gradients(ng.Class(classes)(out))["layer4"]
            g2, g3 = g2 + grad.pow(2), g3 + grad.pow(3)
            last_acts = rec.activations["layer4"].detach()
    g2, g3 = g2 / n, g3 / n
    alpha = g2 / (2 * g2 + (g3 * clean).flatten(2).sum(-1)[..., None, None] + 1e-8)
    weights = (alpha * grad.clamp(min=0)).flatten(2).sum(-1)
    return up((weights[..., None, None] * last_acts).sum(1).clamp(min=0), x.shape[-2:])


# -- Captum -------------------------------------------------------------------------------------
def captum_peers(model, x, classes, seed: int = 0) -> list[dict]:
    from captum.attr import Deconvolution, InputXGradient, NoiseTunnel, Occlusion, Saliency

    target = [int(c) for c in classes]
    rows = [row("input_x_gradient", "captum", ng.input_x_gradient(model, x, target=classes),
                InputXGradient(model).attribute(x.clone().requires_grad_(), target=target), "raw"),
            row("deconvolution", "captum", ng.deconvolution(model, x, target=classes),
                Deconvolution(model).attribute(x.clone().requires_grad_(), target=target), "raw")]
    window, strides = (3, 16, 16), (3, 8, 8)
    theirs = Occlusion(model).attribute(x, sliding_window_shapes=window, strides=strides, baselines=0.0, target=target,
                                        perturbations_per_eval=16)
    rows.append(row("occlusion", "captum", ng.occlusion(model, x, classes, window=window, strides=strides,
                                                        baseline=0.0), theirs, "raw"))
    stdev = 0.2
    for kind in ("smoothgrad", "smoothgrad_sq", "vargrad"):
        one = x[:1]
        torch.manual_seed(seed)
        theirs = NoiseTunnel(Saliency(model)).attribute(one.clone().requires_grad_(), nt_type=kind, nt_samples=8,
                                                        stdevs=stdev, target=target[:1], abs=False)
        ours = ng.smoothgrad(model, one, target=classes[:1], n=8, sigma=stdev / float(one.max() - one.min()),
                             kind=kind, random_state=seed)
        rows.append(row(f"smoothgrad kind={kind}", "captum NoiseTunnel(Saliency)", ours, theirs, "raw",
                        "sigma is a share of the picture's value range (Captum's stdevs absolute): "
                        "sigma = stdev / range; the same draws"))
    from parity_captum_attr import captum_attribution_rows

    return rows + captum_attribution_rows(model, x, classes, row)



# -- zennit -------------------------------------------------------------------------------------
def zennit_peers(model, x, classes) -> list[dict]:
    from zennit import composites
    from zennit.attribution import Gradient
    from zennit.torchvision import ResNetCanonizer

    rows = []
    seed = torch.zeros(len(classes), 10)
    seed[torch.arange(len(classes)), torch.as_tensor(classes)] = 1
    for rule in ("epsilon_plus_flat", "epsilon_plus", "epsilon_alpha2_beta1", "epsilon_alpha2_beta1_flat",
                 "epsilon_gamma_box"):
        kw = {"low": torch.zeros_like(x), "high": torch.ones_like(x)} if rule == "epsilon_gamma_box" else {}
        with Gradient(model=model, composite=composites.COMPOSITES[rule](canonizers=[ResNetCanonizer()], **kw)) as attr:
            _, theirs = attr(x, seed)
        rows.append(row(f"lrp rule={rule}", "zennit", ng.lrp(model, x, target=classes, rule=rule), theirs, "raw",
                        "the same rules: ng.lrp runs zennit's composites and canonizers (a check that our targets, "
                        "model handling and seeds add nothing)"))
    return rows

PEERS = {"pytorch-grad-cam": gradcam_peers, "torchcam": torchcam_peers, "captum": captum_peers, "zennit": zennit_peers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.rand(1, 3, args.size, args.size)
    classes = [3]
    rows = []
    for peer, fn in PEERS.items():
        try:
            rows += fn(model, x, classes)
        except ImportError as err:
            rows.append({"method": "*", "peer": peer, "skipped": f"not installed: {err}"})
    print_table([[r["method"], r["peer"], f"{r.get('max_abs_diff', float('nan')):.2e}",
                  f"{r.get('max_rel_diff', float('nan')):.2e}", r.get("compared", r.get("skipped", ""))]
                 for r in rows], ["method", "peer", "max abs diff", "max rel diff", "compared"])
    path = write_results("parity", {"model": "torchvision resnet18, random weights (seed %d)" % args.seed,
                                    "input": [1, 3, args.size, args.size], "layer": "layer4", "target": classes,
                                    "tolerance_rel": TOLERANCE, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
