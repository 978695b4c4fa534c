"""`netgaze explain`: overlay PNGs for picture files; user mistakes are one line and exit 2."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import netgaze as ng
from netgaze.cli import main
from netgaze.studies.explain_files import read_pictures


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), root / "r18.pth")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 60, 3)) * 255).astype(np.uint8)).save(root / "a.jpg")
    Image.fromarray((rng.random((50, 50)) * 255).astype(np.uint8)).save(root / "b.png")
    (root / "bad.jpg").write_bytes(b"not a picture")
    (root / "junk.pth").write_bytes(b"junk")
    return root


def _run(capsys, *args):
    code = main(["explain", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_torchvision_model_with_weights_writes_overlays(files, capsys, tmp_path):
    code, out, err = _run(capsys, "--model", "torchvision:resnet18", "--weights", files / "r18.pth", "--images",
                          files / "a.jpg", files / "b.png", "--layer", "layer4", "--size", "64", "--out", tmp_path)
    assert code == 0, err
    for stem in ("a", "b"):
        png = tmp_path / f"{stem}-gradcam.png"
        assert png.is_file() and Image.open(png).size[0] > 2 * 64
    assert out.count("predicted") == 2
    # the overlay shows the Grad-CAM of the loaded weights: the explanation tile of each PNG is the
    # overlay of ng.gradcam on a resnet18 loaded here by hand (ImageNet normalisation in front)
    reference = torchvision.models.resnet18()
    reference.load_state_dict(torch.load(files / "r18.pth", weights_only=True))
    model = ImageNetInput(reference).eval()
    x = read_pictures([files / "a.jpg", files / "b.png"], 64, 3)
    assert x.shape == (2, 3, 64, 64) and 0 <= x.min() and x.max() <= 1
    with torch.no_grad():
        top = model(x).argmax(1).tolist()
    expected = ng.viz.overlay(x, ng.gradcam(model, x, "net.layer4", target=ng.Class(top)))
    scale = 192 // 64                                  # the tile is the 64-pixel picture enlarged 3 times
    left, top_edge = 2 + 64 * scale + 2, 14 + 2        # grid: pad 2, column titles 14 pixels high
    for i, stem in enumerate(("a", "b")):
        written = np.asarray(Image.open(tmp_path / f"{stem}-gradcam.png").convert("RGB"))
        tile = written[top_edge:top_edge + 64 * scale, left:left + 64 * scale]
        assert tile.shape == (64 * scale, 64 * scale, 3)
        np.testing.assert_array_equal(tile, tile[::scale, ::scale].repeat(scale, 0).repeat(scale, 1))
        difference = np.abs(tile[::scale, ::scale].astype(int) - expected[i].astype(int))
        assert difference.max() <= 2, f"{stem}: the written overlay is not this Grad-CAM (off by {difference.max()})"


class ImageNetInput(torch.nn.Module):
    """A torchvision network behind ImageNet normalisation, written out here (not netgaze's)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


@pytest.mark.parametrize("args, message", [
    (["--images", "nope.jpg"], "no such picture: nope.jpg"),
    (["--images", "{bad}"], "cannot read picture"),
    (["--images", "{a}", "--layer", "layer5"], "unknown layer 'layer5'; closest valid names: 'layer4'"),
    (["--images", "{a}", "--method", "gradcom"], "unknown method 'gradcom'; did you mean gradcam"),
    (["--images", "{a}", "--target", "not-a-class"], "unknown class 'not-a-class'"),
    (["--images", "{a}", "--weights", "{junk}"], "cannot read weights from"),
    (["--images", "{a}", "--weights", "missing.pth"], "argument --weights: no such file: missing.pth"),
])
def test_user_mistakes_are_one_line_exit_2(files, capsys, tmp_path, args, message):
    args = [a.format(a=files / "a.jpg", bad=files / "bad.jpg", junk=files / "junk.pth") for a in args]
    base = ["--model", "torchvision:resnet18", "--size", "32", "--out", str(tmp_path)]
    if "--weights" not in args:
        base += ["--weights", str(files / "r18.pth")]
    code, _, err = _run(capsys, *base, *args)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_explain_a_run_folder(tmp_path, capsys):
    from netgaze.lab.train import train_classifier

    run = train_classifier(data="shapes", epochs=1, out=str(tmp_path / "run"), data_options={"n": 64, "size": 32},
                           model_options={"channels": [4, 8, 8, 8]}, progress=False, seed=0)
    test = run.dataset("test")
    picture = tmp_path / "pic.png"
    Image.fromarray((test[0][0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(picture)
    code, out, err = _run(capsys, "--run", tmp_path / "run", "--images", picture, "--method", "guided_gradcam",
                          "--target", run.classes[1], "--out", tmp_path / "out")
    assert code == 0, err
    assert (tmp_path / "out" / "pic-guided_gradcam.png").is_file()
    x = read_pictures([picture], 32, 3)
    assert torch.allclose(x[0], test[0][0], atol=1 / 255)  # a saved 32x32 picture comes back unchanged
    with torch.no_grad():
        pred = run.model(x).softmax(1)
    assert f"predicted {run.classes[int(pred.argmax())]} ({float(pred.max()):.0%})" in out
    code, _, err = _run(capsys, "--run", tmp_path / "nope", "--images", picture)
    assert code == 2 and "no such run folder" in err

    # --all: the run's whole test split, sharded; the maps equal a direct Grad-CAM call.
    code, out, err = _run(capsys, "--run", tmp_path / "run", "--all", "--method", "gradcam", "--layer", "-1",
                          "--shard-size", "40", "--target", "label", "--out", tmp_path / "all")
    assert code == 0, err
    maps = ng.load_explanations(tmp_path / "all")
    assert len(maps["indices"]) == len(test) and len(list((tmp_path / "all").glob("shard-*.safetensors"))) >= 2
    first = torch.stack([test[i][0] for i in range(4)])
    expected = ng.gradcam(run.model, first, -1, target=[test[i][1] for i in range(4)])
    assert torch.allclose(maps["maps"][:4], expected, atol=1e-5)
    code, _, err = _run(capsys, "--all", "--model", "torchvision:resnet18")
    assert code == 2 and "give --run" in err
