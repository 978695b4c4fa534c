"""explain_dataset takes predictions from the explanation's own forward pass and writes shards off-thread."""
import importlib
import sys
from pathlib import Path

import pytest
import torch

from netgaze.analyses.dataset_explanations import explain_dataset, load_explanations
from netgaze.methods import gradcam

sys.path.insert(0, str(Path(__file__).parent))
from explain_dataset_worker import toy_dataset, toy_model  # noqa: E402


def _counted(model):
    calls = []
    model.register_forward_hook(lambda module, inputs, out: calls.append(inputs[0].shape[0]))
    return calls


@pytest.mark.parametrize("target", [None, "label", 2])
def test_gradcam_costs_one_forward_per_batch_and_keeps_every_number(tmp_path, target):
    model = toy_model()
    calls = _counted(model)
    explain_dataset(model, toy_dataset(), "gradcam", "2", target=target, out=tmp_path, shard_size=5, batch_size=3,
                    progress=False)
    assert calls == [3, 2] * 4 + [3]  # 9 batches, one forward pass each
    result = load_explanations(tmp_path)
    x, labels = toy_dataset().tensors
    with torch.no_grad():
        predictions = model(x).argmax(1)
    assert torch.equal(result["predictions"], predictions)
    explained = {None: predictions, "label": labels, 2: torch.full((23,), 2)}[target]
    assert torch.equal(result["targets"], explained)
    torch.testing.assert_close(result["maps"], gradcam(model, x, "2", target=explained.tolist()),
                               rtol=1e-5, atol=1e-6)


def test_noisy_methods_keep_a_clean_pass_for_the_predictions(tmp_path):
    model = toy_model()
    explain_dataset(model, toy_dataset(), "smoothgrad", out=tmp_path, shard_size=8, batch_size=4, progress=False)
    result = load_explanations(tmp_path)
    x, _ = toy_dataset().tensors
    with torch.no_grad():
        predictions = model(x).argmax(1)
    assert torch.equal(result["predictions"], predictions) and torch.equal(result["targets"], predictions)
    assert result["maps"].shape == (23, 10, 10) and float(result["maps"].sum()) > 0


def test_a_failing_shard_write_is_raised(tmp_path, monkeypatch):
    module = importlib.import_module("netgaze.analyses.dataset_explanations")  # the package attribute is the function

    def broken(path, tensors, config):
        raise OSError("disk full")

    monkeypatch.setattr(module, "_write_shard", broken)
    with pytest.raises(OSError, match="disk full"):
        explain_dataset(toy_model(), toy_dataset(), "gradcam", "2", out=tmp_path, shard_size=5, batch_size=5,
                        progress=False)
    assert not (tmp_path / "index.json").exists()
