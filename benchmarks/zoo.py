"""`make zoo`: every torchvision classifier, the common timm and Hugging Face families, zero configuration.

For each model (random weights, batch 2, the smallest input at which its stages are those
of its native size): Grad-CAM on the default layer, a three-stage call in one pass
(``layer=[-3, -2, -1]``), guided backprop and Grad-CAM++. Each must be finite, not
constant, input-sized, and leave the model unchanged (no parameter or buffer written,
same ``training`` flags and ``requires_grad``, no hook left). Writes
``benchmarks/results/zoo.json`` after every model and regenerates the model table of the
documentation's zoo page (``docs/zoo.md``, and of any other page that carries the markers)
between ``<!-- zoo:start -->`` and ``<!-- zoo:end -->``.

    python benchmarks/zoo.py                     # everything (heavy models last)
    python benchmarks/zoo.py --only resnet18 tv:vit_b_16
    python benchmarks/zoo.py --resume            # skip models already in zoo.json
    python benchmarks/zoo.py --table             # only regenerate the table in docs/zoo.md
"""
from __future__ import annotations

import argparse
import copy
import gc
import json
import sys
import time
import warnings
from pathlib import Path

import torch

import netgaze as ng
from netgaze._util.atomic import atomic_write_json, atomic_write_text
from netgaze.core.layer_entries import split_entry
from netgaze.core.layouts import detect
from netgaze.core.stages import stage_names, trace

HERE = Path(__file__).parent
RESULT = HERE / "results" / "zoo.json"
# Pages whose text between the markers this script writes: the zoo page first (it must have the
# markers), then any other page that carries them.
PAGES = (HERE.parent / "docs" / "zoo.md", HERE.parent / "README.md")
MARKERS = ("<!-- zoo:start -->", "<!-- zoo:end -->")
SIZES = (32, 64, 96, 128, 160, 192, 224, 256, 299)
TIMM = {  # family -> models (small members; the rule is the family's, not the size's)
    "resnet": ["resnet18", "resnet50d"], "resnetv2": ["resnetv2_18", "resnetv2_50"],
    "efficientnet": ["efficientnet_b0"], "mobilenetv3": ["mobilenetv3_small_050", "mobilenetv3_large_100"],
    "regnet": ["regnetx_002", "regnety_002"], "convnext": ["convnext_atto", "convnext_tiny"],
    "vit": ["vit_tiny_patch16_224", "vit_small_patch32_224"],
    "deit (distilled)": ["deit_tiny_distilled_patch16_224"],
    "vit + registers": ["vit_little_patch16_reg4_gap_256", "vit_dwee_patch16_reg1_gap_256"],
    "swin": ["swin_tiny_patch4_window7_224"], "swinv2": ["swinv2_tiny_window8_256", "swinv2_cr_tiny_224"],
    "maxvit": ["maxvit_pico_rw_256", "maxvit_tiny_tf_224"], "coatnet": ["coatnet_nano_rw_224", "coatnet_0_rw_224"],
    "pvt_v2": ["pvt_v2_b0"], "levit": ["levit_128s", "levit_conv_128s"], "mobilevit": ["mobilevit_xxs", "mobilevitv2_050"],
    "poolformer/caformer": ["poolformer_s12", "poolformerv2_s12", "caformer_s18"],
    "fastvit": ["fastvit_t8"], "eva": ["eva02_tiny_patch14_224"],
}
# Hugging Face transformers vision models, built from their default configs (random weights, no
# download): family -> the model class (the "for image classification" head; Segformer's
# semantic segmentation head, explained through its logits).
HF = {
    "vit": "ViTForImageClassification", "deit (with teacher)": "DeiTForImageClassificationWithTeacher",
    "beit": "BeitForImageClassification", "dinov2": "Dinov2ForImageClassification",
    "swin": "SwinForImageClassification", "swinv2": "Swinv2ForImageClassification",
    "convnext": "ConvNextForImageClassification", "convnextv2": "ConvNextV2ForImageClassification",
    "resnet": "ResNetForImageClassification", "regnet": "RegNetForImageClassification",
    "efficientnet": "EfficientNetForImageClassification", "mobilenet_v2": "MobileNetV2ForImageClassification",
    "mobilevit": "MobileViTForImageClassification", "levit": "LevitForImageClassification",
    "pvt_v2": "PvtV2ForImageClassification", "segformer": "SegformerForSemanticSegmentation",
}
HEAVY = ("vit_h_14", "regnet_y_128gf", "vit_l_16", "vit_l_32", "regnet_y_32gf", "regnet_y_16gf", "vit_b_16",
         "vit_b_32", "efficientnet_b7", "efficientnet_b6", "efficientnet_v2_l", "convnext_large", "swin_v2_b", "swin_b")


def entries() -> list[tuple[str, str, str]]:
    """(key, family, name) for every model, the heaviest last."""
    import torchvision

    tv = [(f"tv:{n}", "torchvision " + n.rstrip("0123456789_x").split("_")[0], n)
          for n in torchvision.models.list_models(module=torchvision.models)]
    tv.sort(key=lambda e: (e[2] in HEAVY, HEAVY.index(e[2]) * -1 if e[2] in HEAVY else 0))
    timm_models = [(f"timm:{n}", f"timm {family}", n) for family, names in TIMM.items() for n in names]
    hf = [(f"hf:{cls}", f"transformers {family}", cls) for family, cls in HF.items()]
    return timm_models + hf + [e for e in tv if e[2] not in HEAVY] + [e for e in tv if e[2] in HEAVY]


def build(key: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if key.startswith("tv:"):
        import torchvision
        kwargs = {"aux_logits": False, "init_weights": True} if key[3:] in ("inception_v3", "googlenet") else {}
        model = torchvision.models.get_model(key[3:], weights=None, **kwargs)
    elif key.startswith("hf:"):
        import transformers
        cls = getattr(transformers, key[3:])
        model = cls(cls.config_class(num_labels=10))
    else:
        import timm
        model = timm.create_model(key[5:], pretrained=False)
    with torch.no_grad():   # zero-initialised heads (timm) would make every score constant
        for p in model.parameters():
            if p.dim() >= 2 and not p.any():
                p.normal_(0, 0.02)
    return model.eval()


def smallest_input(model: torch.nn.Module, key: str) -> tuple[int, int, int]:
    """The smallest square input whose stages equal those at the native size."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    side = 299 if key.endswith("inception_v3") else getattr(model, "image_size", None) or \
        getattr(getattr(model, "config", None), "image_size", 224)
    side = side if isinstance(side, int) else 224
    native = tuple(cfg.get("input_size", ())) or (3, side, side)
    want = stage_names(model, native)
    for s in SIZES:
        if s >= native[1]:
            break
        try:
            if stage_names(model, (3, s, s)) == want:
                return (3, s, s)
        except Exception:
            continue
    return tuple(native)


class Untouched:
    """Proves a call changed nothing: parameter/buffer versions and pointers, flags, hooks."""

    def __init__(self, model):
        self.model = model
        self.state = self._state()

    def _state(self):
        m = self.model
        tensors = [(n, t._version, t.data_ptr()) for n, t in [*m.named_parameters(), *m.named_buffers()]]
        hooks = sum(len(getattr(mod, a, {})) for mod in m.modules()
                    for a in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks"))
        return (tensors, [mod.training for mod in m.modules()],
                [p.requires_grad for p in m.parameters()], [p.grad is None for p in m.parameters()], hooks)

    def check(self):
        if self._state() != self.state:
            raise AssertionError("the model changed")


def check_map(m: torch.Tensor, shape: tuple) -> None:
    if tuple(m.shape) != shape:
        raise AssertionError(f"shape {tuple(m.shape)}, expected {shape}")
    if not torch.isfinite(m).all():
        raise AssertionError("not finite")
    if not (m.amax() > m.amin()):
        raise AssertionError("zero map" if m.amax() == 0 else "constant map")


def run_model(key: str, family: str) -> dict:
    row = {"model": key, "family": family, "methods": {}, "errors": {}, "commit": _commit()}
    start = time.perf_counter()
    model = build(key)
    # probed on a copy: a forward pass at a smaller size can change a model for good (HF Swin shrinks
    # its window to the input and keeps it)
    row["input"] = list(smallest_input(copy.deepcopy(model), key))
    stages = stage_names(model, row["input"])
    row["default_layer"], row["stages"] = stages[-1], len(stages)
    tr = trace(model, row["input"])
    base = split_entry(stages[-1])[0]     # a stage seen through a tuple ("layers.3[0]"): its module's trace
    row["layout"] = detect(tr.shapes[base], row["input"][1:], module=dict(model.named_modules())[base],
                           model=model).describe()
    row["setup_s"] = round(time.perf_counter() - start, 2)
    x = torch.rand(2, *row["input"], generator=torch.Generator().manual_seed(0))
    H, W = row["input"][1:]
    # a segmenter (dense logits) is explained for the centre quarter of the picture, in input pixels
    dense = "Segmentation" in key
    target = ng.Area(box=(H // 4, W // 4, 3 * H // 4, 3 * W // 4), channel=1, size=(H, W)) if dense else None
    checks = {
        "gradcam": lambda: check_map(ng.gradcam(model, x, target=target), (2, H, W)),
        "three_stages": lambda: [check_map(m, (2, H, W)) for m in ng.gradcam(model, x, layer=[-3, -2, -1],
                                                                              target=target).values()]
        if len(stages) >= 3 else check_map(ng.gradcam(model, x, layer=list(range(-len(stages), 0)),
                                                      target=target)[stages[-1]], (2, H, W)),
        "guided_backprop": lambda: check_map(ng.guided_backprop(model, x, target=target), (2, 3, H, W)),
        "gradcam_pp": lambda: check_map(ng.gradcam_pp(model, x, target=target), (2, H, W)),
    }
    for name, fn in checks.items():
        untouched = Untouched(model)
        t = time.perf_counter()
        try:
            fn()
            untouched.check()
            row["methods"][name] = round(time.perf_counter() - t, 2)
        except Exception as err:  # recorded, not raised: the zoo reports every failure
            row["errors"][name] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def _commit() -> str:
    import subprocess
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _flat(method: str, error: str) -> bool:
    """A ReLU'd CAM that came out flat: a property of random weights, not an error."""
    return method in ("gradcam", "three_stages", "gradcam_pp") and error.endswith(("constant map", "zero map"))


def write_table(rows: list[dict]) -> None:
    lines = ["| family | model | input | default layer (`layer=-1`) | layout | works | s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        works = "all 4" if not r.get("errors") else ", ".join(r.get("methods", {})) or "none"
        flat = {k: v for k, v in r.get("errors", {}).items() if _flat(k, v)}
        hard = {k: v for k, v in r.get("errors", {}).items() if k not in flat}
        if flat:
            works += " — ReLU'd map all zero on random weights: " + ", ".join(flat)
        if hard:
            works += " — fails: " + "; ".join(f"{k} ({v[:60]})" for k, v in hard.items())
        size = "x".join(str(s) for s in r["input"][1:]) if r.get("input") else "-"
        lines.append(f"| {r['family']} | `{r['model'].split(':', 1)[1]}` | {size} | `{r.get('default_layer', '-')}` "
                     f"| {r.get('layout', '-')} | {works} | {r.get('seconds', '-')} |")
    ok = [r for r in rows if not r.get("errors")]
    ran = [r for r in rows if all(_flat(k, v) for k, v in r.get("errors", {}).items())]
    tv = [r for r in rows if r["model"].startswith("tv:")]
    tm = [r for r in rows if r["model"].startswith("timm:")]
    planned = entries()
    n_tv = sum(1 for k, _, _ in planned if k.startswith("tv:"))
    summary = (f"torchvision: {sum(1 for r in tv if r in ok)} of {len(tv)} run pass all four checks, "
               f"{sum(1 for r in tv if r in ran)} without an error ({n_tv} classifiers listed); timm: "
               f"{sum(1 for r in tm if r in ok)} of {len(tm)} run pass all four, {sum(1 for r in tm if r in ran)} "
               f"without an error ({len(planned) - n_tv} listed). \"Without an error\" counts maps that came out "
               "all zero: a CAM is ReLU'd, and with random weights every location can score below zero "
               "(the maps equal the peers' recipe, `tests/test_layouts.py`). A failure is named with its error.")
    begin, end = MARKERS
    block = begin + "\n" + summary + "\n\n" + "\n".join(lines) + "\n" + end
    for number, page in enumerate(PAGES):
        text = page.read_text() if page.exists() else ""
        if begin not in text or end not in text:
            if number == 0:
                raise SystemExit(f"{page}: the zoo table's markers {begin} / {end} are missing")
            continue
        head, rest = text.split(begin, 1)
        atomic_write_text(page, head + block + rest.split(end, 1)[1])
        print(f"wrote the zoo table into {page}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="model keys (tv:NAME, timm:NAME, hf:CLASS) or bare names")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in zoo.json")
    parser.add_argument("--table", action="store_true", help="only regenerate the table in docs/zoo.md")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    old = json.loads(RESULT.read_text()) if RESULT.exists() else {"rows": []}
    rows = {r["model"]: r for r in old["rows"]} if (args.resume or args.only or args.table) else {}
    todo = [] if args.table else entries()
    if args.only:
        todo = [e for e in todo if e[0] in args.only or e[2] in args.only]
    for key, family, name in todo:
        if args.resume and key in rows:
            continue
        try:
            row = run_model(key, family)
        except Exception as err:
            row = {"model": key, "family": family, "errors": {"setup": f"{type(err).__name__}: {str(err)[:200]}"}}
        rows[key] = row
        status = "ok" if not row["errors"] else f"FAIL {row['errors']}"
        print(f"{key:45s} {row.get('input', '')} {row.get('default_layer', '')} {row.get('seconds', '')} s {status}",
              flush=True)
        ordered = [rows[k] for k, _, _ in entries() if k in rows]
        atomic_write_json(RESULT, {"torch": torch.__version__, "rows": ordered})
        gc.collect()
    write_table([rows[k] for k, _, _ in entries() if k in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
