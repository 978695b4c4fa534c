"""``--model hf:FOLDER`` (issue 23, part 4): a save_pretrained folder in explain, visualize and
embed; class names from the config's id2label."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from netgaze.cli import main

transformers = pytest.importorskip("transformers")

NAMES = ["cat", "dog", "fox", "owl"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64, num_labels=4,
                                    id2label=dict(enumerate(NAMES)), label2id={n: i for i, n in enumerate(NAMES)})
    model = transformers.ViTForImageClassification(config).eval()
    model.save_pretrained(root / "vit")
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(root / "pic.png")
    return root, model


def _expected(model, picture) -> str:
    x = torch.from_numpy(np.array(Image.open(picture).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        return NAMES[int(model(x).logits.argmax())]


def test_loaded_from_the_folder(folder):
    from netgaze.zoo import load_named_model

    root, model = folder
    loaded = load_named_model(f"hf:{root / 'vit'}")
    assert loaded.classes == NAMES and loaded.size == 32 and loaded.task == "classify"
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():       # no processor config: pictures go in as they are
        assert torch.equal(loaded.model(x).logits, model(x).logits)


def test_explain_names_the_class_from_id2label(folder, tmp_path, capsys):
    root, model = folder
    code = main(["explain", "--model", f"hf:{root / 'vit'}", "--images", str(root / "pic.png"),
                 "--out", str(tmp_path / "out")])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"predicted {_expected(model, root / 'pic.png')}" in out.out
    assert "random weights" not in out.err
    assert list((tmp_path / "out").glob("*.png"))


def test_weights_with_an_hf_folder_refused(folder, capsys):
    root, _ = folder
    (root / "w.pth").write_bytes(b"")
    code = main(["explain", "--model", f"hf:{root / 'vit'}", "--weights", str(root / "w.pth"),
                 "--images", str(root / "pic.png")])
    assert code == 2 and "hf:FOLDER has its own" in capsys.readouterr().err


def test_not_a_folder_is_one_line(folder, tmp_path, capsys):
    code = main(["explain", "--model", f"hf:{tmp_path / 'nothing'}", "--images", str(folder[0] / "pic.png")])
    err = capsys.readouterr().err
    assert code == 2 and "config.json" in err and err.count("\n") == 1


def test_visualize_and_embed(folder, tmp_path):
    root, _ = folder
    assert main(["visualize", "--model", f"hf:{root / 'vit'}", "--activations", str(root / "pic.png"),
                 "--out", str(tmp_path / "vis"), "--quiet"]) == 0
    assert (tmp_path / "vis" / "sparsity.png").is_file()
    assert main(["embed", "--model", f"hf:{root / 'vit'}", "--data", "digits", "--size", "32", "--limit", "24",
                 "--method", "pca", "--out", str(tmp_path / "emb"), "--no-progress"]) == 0
    with np.load(tmp_path / "emb" / "embedding.npz", allow_pickle=False) as saved:
        # the default layer (prelogits: the final layer norm's tokens) pooled over tokens: 32 channels
        assert saved["features"].shape == (24, 32)


def test_serve_source(folder):
    from netgaze.serve.model_sources import model_source
    from netgaze.serve.sources import Sources

    root, _ = folder
    source = model_source(f"hf:{root / 'vit'}", None, None)
    assert source.classes == NAMES and source.size == (32, 32) and source.task == "classify"
    assert "random" not in source.description
    recipe = Sources.recipe_of([], f"hf:{root / 'vit'}")
    assert recipe["model"] == f"hf:{(root / 'vit').absolute()}"
