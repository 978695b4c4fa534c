"""`netgaze explain` on a torchvision detector and segmenter, timm models, random weights."""
from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from netgaze.cli import main
from netgaze.studies.explain_dense import explain_dense_files
from netgaze.studies.explain_files import LoadedModel, read_pictures

DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("dense")
    torch.manual_seed(0)
    detector = torchvision.models.get_model(DETECTOR, weights=None, weights_backbone=None).eval()
    torch.save(detector.state_dict(), root / f"{DETECTOR}-907ea3f9.pth")  # torchvision's file name: COCO names
    segmenter = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None).eval()
    torch.save(segmenter.state_dict(), root / "lraspp.pth")  # 21 classes: VOC names by count
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((48, 48, 3)) * 255).astype(np.uint8)).save(root / "a.png")
    return SimpleNamespace(root=root, detector=detector)


def _run(capsys, *args):
    code = main(["explain", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_detector_from_the_command_line(files, capsys, tmp_path, one_thread):
    detector = files.detector
    detector.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        best = detector(read_pictures([files.root / "a.png"], 48, 3))[0]
    categories = torchvision.models.get_model_weights(DETECTOR).COCO_V1.meta["categories"]
    box = ", ".join(f"{v:.0f}" for v in best["boxes"][0].tolist())
    line = f"explained {categories[int(best['labels'][0])]} {float(best['scores'][0]):.0%} at ({box})"
    # the default target: the best detection
    loaded = LoadedModel(detector, list(categories), 48, 3, DETECTOR, task="detect")
    [(png, text)] = explain_dense_files(loaded, [files.root / "a.png"], "gradcam", None, None, tmp_path / "lib")
    assert "explained " + text == line and png.is_file()
    # the command line, with the best detection's box as the target
    x0, y0, x1, y1 = best["boxes"][0].tolist()
    code, out, err = _run(capsys, "--model", f"torchvision:{DETECTOR}", "--weights", files.root / f"{DETECTOR}-907ea3f9.pth",
                          "--images", files.root / "a.png", "--size", "48", "--score-threshold", "0",
                          "--target", f"box:{x0},{y0},{x1},{y1}", "--layer", "backbone[0]", "--out", tmp_path)
    assert code == 0, err
    assert err == "" and line in out and (tmp_path / "a-gradcam.png").is_file()


def test_segmenter_from_the_command_line(files, capsys, tmp_path, one_thread):
    from netgaze.zoo.named import load_named_model

    code, out, err = _run(capsys, "--model", "torchvision:lraspp_mobilenet_v3_large", "--weights", files.root / "lraspp.pth",
                          "--images", files.root / "a.png", "--size", "48", "--target", "class:aeroplane@4,8,30,40",
                          "--method", "guided_gradcam", "--out", tmp_path)
    assert code == 0, err
    assert "explained aeroplane inside (4,8,30,40)" in out and (tmp_path / "a-guided_gradcam.png").is_file()
    loaded = load_named_model("torchvision:lraspp_mobilenet_v3_large", files.root / "lraspp.pth", size=48)
    assert loaded.classes[1] == "aeroplane"
    with torch.no_grad():
        predicted = loaded.model(read_pictures([files.root / "a.png"], 48, 3))["out"].argmax(1)[0]
    c = int(predicted.flatten().mode().values)
    share = float((predicted == c).float().mean())
    [(_, text)] = explain_dense_files(loaded, [files.root / "a.png"], "gradcam", None, None, tmp_path)
    assert text == f"{loaded.classes[c]} where predicted ({share:.0%} of pixels)"


def test_random_weights_warn_once_and_print_no_imagenet_name(files, capsys, tmp_path, one_thread):
    for model in ("torchvision:resnet18", "timm:resnet18"):
        code, out, err = _run(capsys, "--model", model, "--images", files.root / "a.png", "--size", "32", "--out", tmp_path)
        assert code == 0, err
        assert err.count("\n") == 1 and "warning" in err and "random weights" in err
        assert re.search(r"predicted \d+ \(\d+%\)", out)


@pytest.mark.parametrize("args, message", [
    (["--model", "hub:resnet18"], "--model takes torchvision:NAME or timm:NAME"),
    (["--model", "torchvision:resnet18", "--score-threshold", "0"], "--score-threshold goes with a detector"),
    (["--model", f"torchvision:{DETECTOR}", "--target", "box:1,2,3"], "box: takes x0,y0,x1,y1"),
    (["--model", f"torchvision:{DETECTOR}", "--target", "zebra"], "unknown class 'zebra'"),
    (["--model", f"torchvision:{DETECTOR}", "--target", "box:nan,nan,10,10"], "takes finite pixel coordinates"),
    (["--model", f"torchvision:{DETECTOR}", "--target", "box:0,0,1e400,10"], "takes finite pixel coordinates"),
    (["--model", f"torchvision:{DETECTOR}", "--target", "det:²"], "det:I takes a detection index"),
    (["--model", f"torchvision:{DETECTOR}", "--target", "box:0,0,10,10:²"], "unknown class '²'"),
    (["--model", "torchvision:lraspp_mobilenet_v3_large", "--target", "class:1@50,50,60,60"], "outside the 32x32"),
    (["--model", "torchvision:resnet18", "--labels", "missing.txt"], "argument --labels: no such file: missing.txt"),
])
def test_dense_user_mistakes_are_one_line(files, capsys, tmp_path, one_thread, args, message):
    code, _, err = _run(capsys, *args, "--images", files.root / "a.png", "--size", "32", "--out", tmp_path)
    assert code == 2, err
    lines = [line for line in err.splitlines() if "warning" not in line]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err
