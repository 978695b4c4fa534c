"""netgaze serve: a local web explorer over runs (and models) in the browser."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from netgaze.cli.parsing import (UserError, batch_size, existing_dir, existing_file, picture_side, positive_int,
                                 process_count, run_folder)
from netgaze.errors import printable

HELP = "explore runs in the browser: explain, area, epochs, embedding, units (and an HTTP API)"
EXAMPLES = """examples:
  netgaze serve runs/demo/*                       # every run of the demo; open the printed URL
  netgaze serve runs/cnn runs/vae --port 9000
  netgaze serve --model torchvision:resnet18 --weights resnet18-f37072fd.pth --images photos/
  netgaze serve runs/cnn --host 0.0.0.0 --token SECRET   # reachable from other machines: token required
  curl -s localhost:8765/api/runs
  curl -s -X POST localhost:8765/api/explain -H 'content-type: application/json' \\
       -d '{"run": "cnn", "image": {"split": "test", "index": 0}, "method": "gradcam", "layer": -1}'
The HTTP API is documented in the README (section "netgaze serve"). Ctrl-C stops the server (exit status 130).
"""


def _token(text: str) -> str:
    """A token of at least 8 printable characters (an empty one would silently disable the check)."""
    if len(text) < 8 or not text.isprintable() or text != text.strip():
        raise argparse.ArgumentTypeError("a token has at least 8 characters, no spaces around it")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", metavar="RUN", type=_existing,
                        help="run folders (made by `netgaze train`, the demo, ng.RunWriter, a RunCallback or "
                             "ng.import_checkpoints); with several, as a shell "
                             "glob gives them, files and folders that are not runs are skipped (and listed)")
    parser.add_argument("--model", help="also serve torchvision:NAME or timm:NAME (random weights unless --weights)")
    parser.add_argument("--weights", type=existing_file,
                        help="weights for --model: .pth/.pt (weights_only) or .safetensors")
    parser.add_argument("--images", type=existing_dir, help="a folder of pictures to explain with --model")
    parser.add_argument("--size", type=picture_side, default=224, help="picture size for --model (default 224)")
    parser.add_argument("--host", default="127.0.0.1", 
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=_port, default=8765,
                        help="port (default 8765; 0: any free port, named in the printed URL)")
    parser.add_argument("--token", type=_token, help="require this token on every request (needed with a non-local --host)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="also answer requests for this host name (without a token only 127.0.0.1, localhost, "
                             "::1 and --host are answered: DNS rebinding protection); repeatable")
    parser.add_argument("--workers", type=process_count, default=1,
                        help="explanation worker processes, each with its own model copies (default 1)")
    parser.add_argument("--threads", type=positive_int, help="PyTorch threads per worker (default: 1 when every "
                        "served model's forward pass is under 10 ms on one thread, which serves many users of small "
                        "models best, else PyTorch's own)")
    parser.add_argument("--max-batch", type=batch_size, default=16,
                        help="most requests batched into one pass (default 16)")
    parser.add_argument("--max-queue", type=positive_int, default=64,
                        help="waiting requests before answering 503 (default 64)")
    parser.add_argument("--cache-mb", type=positive_int, default=512,
                        help="memory bound of each cache in MB (default 512)")


def _existing(text: str) -> str:
    """A path that exists (a typo is an error; what kind of path it is is checked in ``run_folders``)."""
    if not Path(text).exists():
        return run_folder(text)          # the usual "no such run folder" message
    return text


def run_folders(paths: list[str], out=None) -> list[str]:
    """The run folders among ``paths`` (folders holding a ``run.json``). With one path, anything
    else is an error; with several (``runs/demo/*``), the others are skipped and listed."""
    runs = [p for p in paths if (Path(p) / "run.json").is_file()]
    others = [p for p in paths if p not in runs]
    if len(paths) == 1 and others:
        run_folder(others[0])             # a file: "is a file, not a run folder"
        raise UserError(f"{others[0]} is not a run folder: it has no run.json")
    if others:
        print(printable(f"netgaze serve: skipped {len(others)} path(s) that are not run folders: {', '.join(others)}"),
              file=out or sys.stderr, flush=True)
    if paths and not runs:
        raise UserError(f"none of the {len(paths)} paths is a run folder (a folder with a run.json)")
    return runs


def _port(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    from netgaze.cli.parsing import nonnegative_int

    value = nonnegative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port lies between 0 and 65535, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise UserError(f"netgaze serve needs {err.name}: pip install 'netgaze[serve]'") from None
    from netgaze.serve.app import Settings
    from netgaze.serve.processes import WorkerProcesses
    from netgaze.serve.server import bind_socket, serve
    from netgaze.serve.sources import Sources

    if not args.runs and not args.model:
        raise UserError("give run folders (netgaze serve runs/demo/*) or --model torchvision:NAME")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    try:
        runs = run_folders(args.runs)
    except argparse.ArgumentTypeError as err:
        raise UserError(str(err)) from None
    processes = sys.platform != "win32"      # the worker's pipes need a POSIX event loop; Windows uses threads
    settings = Settings(workers=args.workers, processes=processes, threads=args.threads, max_batch=args.max_batch,
                        max_queue=args.max_queue, cache_mb=args.cache_mb, token=args.token,
                        allowed_hosts=(*args.allow_host, *([args.host] if args.host not in ("0.0.0.0", "::", "") else [])))
    sock = bind_socket(args.host, args.port)        # --port 0: any free port; the printed URL names it
    try:
        recipe = Sources.recipe_of(runs, args.model, args.weights, args.images, args.size)
        workers = WorkerProcesses.start_loading(recipe, settings) if processes else None   # they load while we do
        try:
            sources = Sources.from_arguments(runs, args.model, args.weights, args.images, args.size)
            serve(sources, args.host, args.port, settings, workers, sock=sock)
        finally:
            if workers is not None:
                workers.close()
    finally:
        sock.close()
    return 0       # Ctrl-C goes on as KeyboardInterrupt: `netgaze` prints "interrupted" and exits 130
