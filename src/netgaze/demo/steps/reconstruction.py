"""Demo step: seed 000's reconstruction family on ``digits``: VAE, conditional VAE, denoising VAE, VAE-GAN.

Each model gets its own run folder; the studies show what each adds: the VAE's latent
space (principal directions, interpolation between classes, imputation, embedding) and
area explanations, the conditional VAE's style mixing, the denoising VAE's noisy input and
reconstruction, and samples of every model side by side. When the digits classifier of
the demo exists, it judges the style mixing and the samples (which digit they look like).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from netgaze.demo.session import DemoSession

# run folder -> (model, extra builder arguments); epochs and latent size come from the settings
FAMILY = {
    "vae": ("vae-conv", {}),
    "cvae": ("cvae", {"arch": "conv"}),
    "dvae": ("dvae", {"arch": "conv"}),
    "vaegan": ("vaegan", {"gate_prior": True}),
}


def train_family(demo: DemoSession) -> dict[str, Path]:
    """Train every member whose epochs are set; returns the run folders that exist."""
    from netgaze.lab.reconstruct import train_reconstruction

    s = demo.settings
    epochs = {"vae": s.vae_epochs, "cvae": s.cvae_epochs, "dvae": s.dvae_epochs, "vaegan": s.vaegan_epochs}
    runs = {}
    for name, (model, extra) in FAMILY.items():
        if not epochs[name]:
            continue
        path = demo.out / name
        demo.step(f"train {name}", lambda: train_reconstruction(
            data="digits", model=model, loss="bce", latent=s.vae_latent, epochs=epochs[name],
            batch_size=s.vae_batch_size, out=str(path), seed=0, progress=False,
            model_args={"width": s.vae_width, **extra}, resume=demo.resuming(path)), None, "latent")
        if (path / "run.json").is_file():
            runs[name] = path
    return runs


def judge_model(demo: DemoSession) -> Any:
    """The demo's digits classifier (eval mode), or None when it was not trained."""
    path = demo.out / "digits-cnn"
    if not (path / "run.json").is_file():
        return None
    from netgaze.lab.runs import load_run

    return load_run(path).model.eval()


def reconstruction_family(demo: DemoSession) -> None:
    from netgaze.studies import area, latent, reconstructions

    runs = train_family(demo)
    judge = judge_model(demo)
    if "vae" in runs:
        vae = runs["vae"]
        demo.step("study latent", lambda: latent.latent_study(str(vae), classes=demo.settings.morph_classes),
                  vae, "latent")
        demo.step("study area", lambda: area.area_study(str(vae)), vae, "area")
    if "cvae" in runs:
        demo.step("study style mixing", lambda: latent.style_mixing(str(runs["cvae"]), classifier=judge),
                  runs["cvae"], "style_mixing")
    if "dvae" in runs:
        demo.step("study denoising", lambda: reconstructions.denoising(str(runs["dvae"])), runs["dvae"], "denoising")
    samplers = [runs[name] for name in ("vae", "vaegan") if name in runs]
    if samplers:
        demo.step("study samples", lambda: reconstructions.prior_samples(
            [str(p) for p in samplers], classifier=judge), samplers[0], "prior_samples")
