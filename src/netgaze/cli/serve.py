"""netgaze serve: a local web explorer over runs (and models) in the browser."""
from __future__ import annotations

import argparse

HELP = "explore runs in the browser: explain, area, epochs, embedding, units (and an HTTP API)"
EXAMPLES = """examples:
  netgaze serve runs/demo/*                       # every run of the demo; open the printed URL
  netgaze serve runs/cnn runs/vae --port 9000
  netgaze serve --model torchvision:resnet18 --weights resnet18-f37072fd.pth --images photos/
  netgaze serve runs/cnn --host 0.0.0.0 --token SECRET   # reachable from other machines: token required
  curl -s localhost:8765/api/runs
  curl -s -X POST localhost:8765/api/explain -H 'content-type: application/json' \\
       -d '{"run": "cnn", "image": {"split": "test", "index": 0}, "method": "gradcam", "layer": -1}'
The HTTP API is documented in the README (section "netgaze serve"). Ctrl-C stops the server.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run folders made by `netgaze train` (or the demo)")
    parser.add_argument("--model", help="also serve torchvision:NAME or timm:NAME (random weights unless --weights)")
    parser.add_argument("--weights", help="weights for --model: .pth/.pt (weights_only) or .safetensors")
    parser.add_argument("--images", help="a folder of pictures to explain with --model")
    parser.add_argument("--size", type=int, default=224, help="picture size for --model (default 224)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument("--token", help="require this token on every request (needed with a non-local --host)")
    parser.add_argument("--workers", type=int, default=1, help="explanation worker threads (default 1)")
    parser.add_argument("--threads", type=int, help="PyTorch threads per operation (default: PyTorch's own; "
                        "1 serves small models best on a busy machine)")
    parser.add_argument("--max-batch", type=int, default=16, help="most requests batched into one pass (default 16)")
    parser.add_argument("--max-queue", type=int, default=64, help="waiting requests before answering 503 (default 64)")
    parser.add_argument("--cache-mb", type=int, default=512, help="memory bound of each cache in MB (default 512)")


def run(args: argparse.Namespace) -> int:
    from netgaze.cli.common import UserError, user_errors
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise UserError(f"netgaze serve needs {err.name}: pip install 'netgaze[serve]'") from None
    from netgaze.serve.app import Settings
    from netgaze.serve.server import serve
    from netgaze.serve.sources import Sources

    if not args.runs and not args.model:
        raise UserError("give run folders (netgaze serve runs/demo/*) or --model torchvision:NAME")
    for name in ("workers", "max_batch", "max_queue", "cache_mb", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    with user_errors():
        sources = Sources.from_arguments(args.runs, args.model, args.weights, args.images, args.size)
    settings = Settings(workers=args.workers, max_batch=args.max_batch, max_queue=args.max_queue,
                        cache_mb=args.cache_mb, token=args.token)
    serve(sources, args.host, args.port, settings)
    return 0
