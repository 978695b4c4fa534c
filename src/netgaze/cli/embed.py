"""``netgaze embed``: pooled features of a layer -> PCA / t-SNE / UMAP, views and projector export."""
from __future__ import annotations

import argparse
from pathlib import Path

from netgaze.cli.parsing import perplexity, seed
from netgaze.cli.parsing import (UserError, add_model_arguments, batch_size, load_model_argument, nonnegative_int,
                                 out_dir, picture_side, positive_int, run_folder)
from netgaze.errors import printable

HELP = "embed a run's images by one layer's pooled features: PCA / t-SNE / UMAP, HTML view, TensorBoard projector"
EXAMPLES = """examples:
  netgaze embed --run runs/digits --layer -1 --method tsne --dims 2 --out runs/digits/artifacts/embed
  netgaze embed --run runs/shapes --layer prelogits --method tsne --dims 3 --tensorboard runs/shapes/projector
  netgaze embed --run runs/vae --method pca --split test --limit 2000     (a VAE: posterior means)
  netgaze embed --run moved/dogs --data /mnt/data/Images   (the run's data moved)
  netgaze embed --model torchvision:resnet18 --weights resnet18-f37072fd.pth --data folder:dogs/Images \
      --split all --size 224 --method umap --out embed-dogs      (a named model on any picture dataset)

--layer takes a dotted module name (layer4.1.conv2), a negative int counting stages
from the end (-1 = last), "prelogits" (default: the input of the last linear layer) or
"logits". Writes embedding.npz, embedding.html, embedding.png and knn.json into --out
(default RUN/artifacts/embed-LAYER-METHOD-DIMSd); view the projector folder with
`tensorboard --logdir DIR`.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=run_folder, help="run folder (runs/NAME)")
    add_model_arguments(parser, source)
    parser.add_argument("--size", type=picture_side, default=224, help="with --model: picture size (default 224)")
    parser.add_argument("--epoch", type=nonnegative_int, default=None, help="checkpoint epoch (default: the last)")
    parser.add_argument("--layer", default="prelogits",
                        help="layer name, negative conv index, 'prelogits' (default) or 'logits'")
    parser.add_argument("--method", choices=("pca", "tsne", "umap"), default="tsne")
    parser.add_argument("--dims", type=int, choices=(2, 3), default=2)
    parser.add_argument("--split", default="test", help="dataset split (default: test)")
    parser.add_argument("--data", default=None, metavar="SPEC",
                        help="with --run: where the run's data is now, when it moved (default: from run.json); "
                        "with --model: the pictures (digits, shapes, mnist:PATH, folder:PATH)")
    parser.add_argument("--perplexity", type=perplexity, default=30.0, help="t-SNE perplexity (default 30)")
    parser.add_argument("--seed", type=seed, default=0, help="random_state of the projection and subsamples")
    parser.add_argument("--limit", type=positive_int, default=None, help="embed only the first N images")
    parser.add_argument("--batch-size", type=batch_size, default=64)
    parser.add_argument("--out", default=None, type=out_dir, help="output folder (default: RUN/artifacts/embed-...)")
    parser.add_argument("--tensorboard", default=None, type=out_dir, metavar="DIR",
                        help="also write a TensorBoard Embedding Projector folder here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_layer(text: str) -> str | int:
    """A negative integer as int (a stage from the end), anything else as a name."""
    try:
        value = int(text)
    except ValueError:
        return text
    if value >= 0:
        raise UserError(f"--layer {text}: integer layers count stages from the end (-1 = last)")
    return value


def run(args: argparse.Namespace) -> int:
    from netgaze.embed.pipeline import embed_run
    from netgaze.lab.runs import check_finite_weights, load_run

    if args.limit is not None and args.limit < 6:
        raise UserError("--limit must be at least 6 (each point's k = 5 nearest neighbours)")
    layer = parse_layer(args.layer)
    if args.model:
        loaded, out = _model_on_data(args)
    else:
        if args.weights or args.labels or args.weights_enum:
            raise UserError("--weights, --weights-enum and --labels go with --model; a run has its own")
        loaded = load_run(args.run, args.epoch, data=args.data)
        check_finite_weights(loaded)     # a diverged training: one line naming the checkpoint
        out = Path(args.out) if args.out else Path(loaded.artifacts) / f"embed-{args.layer}-{args.method}-{args.dims}d"
    try:
        result = embed_run(loaded, out, layer=layer, method=args.method, dims=args.dims, split=args.split,
                           perplexity=args.perplexity, random_state=args.seed, limit=args.limit,
                           tensorboard=args.tensorboard, batch_size=args.batch_size,
                           progress=not args.no_progress)
    except ImportError as err:  # umap-learn missing
        raise UserError(str(err)) from err
    F = result.features
    print(printable(f"embedded {len(F)} images by {F.layer} ({F.features.shape[1]} features) -> {args.method} {args.dims}-D"))
    for key, value in result.knn.items():
        print(printable(f"  kNN (k=5) {key.replace('_', ' ')}: {value:.3f}"))
    for kind, path in result.files.items():
        print(printable(f"  {kind}: {path}"))
    return 0


def _model_on_data(args: argparse.Namespace):
    """``--model`` with ``--data``: a run-like pairing for ``embed_run`` and the output folder."""
    from netgaze.embed.model_on_data import ModelOnData

    if not args.data:
        raise UserError("--model needs --data: the pictures to embed (digits, shapes, folder:PATH)")
    if args.epoch is not None:
        raise UserError("--epoch goes with --run")
    loaded = load_model_argument(None, args.model, args.weights, args.size, labels=args.labels,
                                 weights_enum=args.weights_enum, command="embed")
    if loaded.task != "classify":
        raise UserError(f"embed takes a classifier's features; {args.model} is a {loaded.task} model")
    name = args.model.replace(":", "-")
    out = Path(args.out or f"embed-{name}-{args.layer}-{args.method}-{args.dims}d")
    return ModelOnData(loaded, args.data, args.size), out
