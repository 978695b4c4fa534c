"""Every torchvision segmenter and detector, explained: random weights, batch 2, small pictures.

For each model: Grad-CAM of the default dense layer (the backbone's last stage before a
feature pyramid, or its main output), Grad-CAM of one named entry (a pyramid level
``backbone[0]`` / ``backbone[out]``), and guided backprop; the target is the class
inside a region (segmenters, ``ng.Area``) or the best detection (detectors,
``ng.Detection(index=0)``, score threshold 0). Checked: finite, not constant where
the target has a gradient, input-sized, model unchanged. Writes
benchmarks/results/zoo_dense.json and prints a table.

    python benchmarks/zoo_dense.py [NAME ...]
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import torchvision.models as M

import netgaze as ng
from netgaze._util.atomic import atomic_write_json
from netgaze.studies.explain_dense import default_dense_layer

RESULTS = Path(__file__).parent / "results" / "zoo_dense.json"
SIZE = 96


def build(name: str, task: str) -> torch.nn.Module:
    options: dict = {"weights": None, "weights_backbone": None}
    if task == "detect":
        options["num_classes"] = 5
        if name.startswith("ssd"):
            options.update(score_thresh=0.0, topk_candidates=20, detections_per_img=5)
        elif name.startswith(("retinanet", "fcos")):
            options.update(score_thresh=0.0, topk_candidates=20, detections_per_img=5, min_size=SIZE, max_size=SIZE)
        else:
            options.update(box_score_thresh=0.0, box_detections_per_img=5, min_size=SIZE, max_size=SIZE,
                           rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20)
        if name.startswith("keypointrcnn"):
            options["num_classes"] = 2
    else:
        options["num_classes"] = 4
    return M.get_model(name, **options).eval()


def entry_layer(model: torch.nn.Module, task: str) -> str:
    if task == "segment":
        keys = list(model.backbone.return_layers.values())
        return f"backbone[{'out' if 'out' in keys else keys[-1]}]"
    return "backbone[0]"


def layer_gradient_flows(model: torch.nn.Module, x: torch.Tensor, layer: str, target) -> bool:
    """True when the target's gradient at ``layer`` is finite and not all zero."""
    with ng.Recorder(model, [layer]) as rec:
        grad = rec.gradients(target(rec.forward(x)))[rec.names[0]]
    return bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0


def check(name: str, task: str) -> dict:
    torch.manual_seed(0)
    model = build(name, task)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    if task == "segment":
        mask = torch.zeros(SIZE, SIZE, dtype=torch.bool)
        mask[SIZE // 4:SIZE // 2, SIZE // 4:3 * SIZE // 4] = True
        target = ng.Area(mask=mask, channel=1)
    else:
        target = ng.Detection(index=0)
    row = {"model": name, "task": task, "default_layer": default_dense_layer(model, task),
           "entry_layer": entry_layer(model, task)}
    start = time.perf_counter()
    works, errors = [], {}
    for method, call in (("gradcam default", lambda: ng.gradcam(model, x, row["default_layer"], target=target)),
                         ("gradcam entry", lambda: ng.gradcam(model, x, row["entry_layer"], target=target)),
                         ("guided_backprop", lambda: ng.guided_backprop(model, x, target=target))):
        try:
            result = call()
            size_ok = tuple(result.shape[-2:]) == (SIZE, SIZE)
            finite = bool(torch.isfinite(result).all())
            varied = float(result.max() - result.min()) > 0
            if not varied and method.startswith("gradcam"):  # a zero map is honest if the gradient is not
                varied = layer_gradient_flows(model, x, row[method.split()[1] + "_layer"], target)
                why = ("ReLU of a negative weighted sum" if varied else
                       "the explained detection does not come from this level")
                row.setdefault("notes", []).append(f"{method}: zero map ({why})")
                varied = varied or method == "gradcam entry"  # one pyramid level need not feed every detection
            if size_ok and finite and varied:
                works.append(method)
            else:
                errors[method] = f"size_ok={size_ok} finite={finite} varied={varied}"
        except Exception as err:  # recorded in the table: every failure is a line of the report
            errors[method] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
    unchanged = all(torch.equal(v, model.state_dict()[k]) for k, v in before.items()) and not model.training
    row.update(works=works, errors=errors, unchanged=unchanged, seconds=round(time.perf_counter() - start, 2))
    return row


def main(names: list[str]) -> int:
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    models = [(n, "segment") for n in M.list_models(module=M.segmentation)] + \
             [(n, "detect") for n in M.list_models(module=M.detection)]
    rows = []
    for n, t in models:
        if not names or n in names:
            rows.append(check(n, t))
            print(f"  {n}: {len(rows[-1]['works'])}/3 in {rows[-1]['seconds']} s", flush=True)
    print(f"{'model':40s} {'task':8s} {'default layer':28s} works  unchanged  seconds")
    for r in rows:
        print(f"{r['model']:40s} {r['task']:8s} {r['default_layer']:28s} {len(r['works'])}/3   "
              f"{str(r['unchanged']):9s}  {r['seconds']:.1f}")
        for method, error in r["errors"].items():
            print(f"    {method}: {error}")
        for note in r.get("notes", []):
            print(f"    note: {note}")
    if names and RESULTS.is_file():  # a partial rerun updates its rows of the full table
        done = {r["model"] for r in rows}
        rows = [r for r in json.loads(RESULTS.read_text())["models"] if r["model"] not in done] + rows
        rows.sort(key=lambda r: ([n for n, _ in models].index(r["model"])))
    atomic_write_json(RESULTS, {"size": SIZE, "batch": 2, "torch_threads": torch.get_num_threads(), "models": rows})
    return 0 if all(len(r["works"]) == 3 and r["unchanged"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
