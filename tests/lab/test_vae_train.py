"""Reconstruction training: run folder, history keys, resume equals an uninterrupted run, CLI."""
from __future__ import annotations

import json

import pytest
import torch

from netgaze.cli import main
from netgaze.lab.reconstruct import train_reconstruction
from netgaze.lab.runs import RunError, load_run

TINY = {"hidden": 16}


pytestmark = pytest.mark.usefixtures("one_thread")


def _train(out, epochs, resume=False, model="vae-linear", args=TINY, loss="bce"):
    return train_reconstruction("digits", model, loss=loss, latent=2, epochs=epochs, batch_size=256, out=out,
                                seed=3, resume=resume, model_args=args, progress=False)


def test_history_checkpoints_and_resume_reproduce_an_uninterrupted_run(tmp_path):
    full = _train(tmp_path / "full", 3)
    assert full.config["task"] == "reconstruct" and full.epoch == 3
    assert [e for e, _ in full.checkpoints] == [0, 1, 2, 3]
    keys = {"epoch", "train_loss", "test_loss", "train_recon", "train_kl", "test_recon", "test_kl",
            "test_pixel_mse", "seconds"}
    assert keys <= set(full.history[-1])
    for record in full.history:  # loss = recon + kl, per image
        assert record["test_loss"] == pytest.approx(record["test_recon"] + record["test_kl"], rel=1e-6)
    assert full.history[-1]["test_loss"] < full.history[0]["test_loss"]
    assert (tmp_path / "full" / "curves.png").is_file()

    _train(tmp_path / "part", 2)
    with pytest.raises(RunError, match="already holds a run"):
        _train(tmp_path / "part", 3)
    with pytest.raises(RunError, match="different configuration"):
        _train(tmp_path / "part", 3, resume=True, loss="mse")
    resumed = _train(tmp_path / "part", 3, resume=True)
    for a, b in zip(resumed.history, full.history):
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    state_a, state_b = resumed.model.state_dict(), full.model.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    lines = (tmp_path / "part" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


@pytest.mark.filterwarnings("ignore:vaegan.*updates per epoch")  # 6 big batches: fast, not for quality
def test_cvae_and_vaegan_train_and_reload(tmp_path):
    cvae = _train(tmp_path / "cvae", 1, model="cvae", args={"hidden": 16})
    assert cvae.model.num_classes == 10 and cvae.model.conditional
    gan = _train(tmp_path / "gan", 1, model="vaegan", args={"width": 4})
    record = gan.history[-1]
    for key in ("train_gan_dec", "train_gan_dis", "train_dis_updates", "train_dec_updates", "test_kl"):
        assert key in record and record[key] == record[key]  # present and not NaN
    assert 0.0 <= record["train_dis_updates"] <= 1.0
    again = load_run(tmp_path / "gan")
    x = again.dataset("test")[0][0][None]
    assert torch.equal(again.model(x)[0], gan.model(x)[0])  # eval reconstructions are deterministic


def test_cli_trains_and_refuses_foreign_options(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["train", "reconstruct", "--data", "digits", "--model", "vae-linear", "--hidden", "16",
                 "--latent", "2", "--epochs", "1", "--batch-size", "256", "--out", str(out), "--quiet"])
    assert code == 0
    assert "test_loss" in capsys.readouterr().out
    assert load_run(out).config["model_args"]["hidden"] == 16
    code = main(["train", "reconstruct", "--data", "digits", "--model", "vae-linear", "--width", "8",
                 "--out", str(tmp_path / "bad"), "--quiet"])
    assert code == 2
    assert "--width does not apply to vae-linear" in capsys.readouterr().err
