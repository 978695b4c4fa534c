"""Running the explorer: in the foreground for ``netgaze serve``, or in a background thread."""
from __future__ import annotations

import gc
import secrets
import socket
import sys
import threading
import time

import uvicorn

from netgaze.serve.app import Settings, create_app
from netgaze.serve.api_error import ApiError
from netgaze.serve.processes import WorkerProcesses
from netgaze.serve.sources import Sources

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SWITCH_INTERVAL_S = 0.001


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (benchmarks only: another process may take it before it is
    used; the explorer itself binds its socket with ``bind_socket``)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_host(host: str, token: str | None, out=sys.stderr) -> str | None:
    """The token to require: none on a local host; on any other host the given one, or a new one
    announced with a loud warning."""
    if host in LOCAL_HOSTS:
        return token
    if token:
        return token
    token = secrets.token_urlsafe(18)
    print(f"netgaze serve: warning: listening on {host}, reachable from other machines, without --token: "
          "a generated token is required on every request (the printed URL carries it; anyone with the URL "
          "sees your runs and pictures)", file=out, flush=True)
    return token


def url_of(host: str, port: int, token: str | None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def check_port(host: str, port: int) -> None:
    """Raise a one-line ``ApiError`` when ``host:port`` cannot be listened on (the socket is closed again)."""
    bind_socket(host, port).close()


def bind_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for the server to listen on; port 0 takes any free port
    (``sock.getsockname()[1]`` says which), with no gap in which another process could take it.
    A port that cannot be bound is a one-line ``ApiError``."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        if sys.platform != "win32":       # what uvicorn does: a restart need not wait for TIME_WAIT to end
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ApiError(f"cannot listen on {host}:{port}: {err.strerror or err}; pick another --port") from None
    return sock


def serve(sources: Sources, host: str = "127.0.0.1", port: int = 8765, settings: Settings | None = None,
          workers: WorkerProcesses | None = None, sock: socket.socket | None = None) -> None:
    """Serve until Ctrl-C: uvicorn shuts the workers down cleanly, then the ``KeyboardInterrupt``
    goes on to the caller (``netgaze serve`` exits 130, as every command does on Ctrl-C).
    ``workers``: see ``create_app``. ``sock``: a socket from ``bind_socket`` (default: one bound
    here to ``host:port``); with port 0 the printed URL names the port it got."""
    settings = settings or Settings()
    settings.token = check_host(host, settings.token)
    sock = sock or bind_socket(host, port)
    try:
        app = create_app(sources, settings, workers)
        try:
            app.state.explorer.wait_ready()         # a worker that cannot load is a one-line error, before listening
        except BaseException:
            app.state.explorer.close()
            raise
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
        server = uvicorn.Server(config)
        port = sock.getsockname()[1]
        print(f"netgaze serve: {len(list(sources))} source(s) at {url_of(host, port, settings.token)}  "
              "(Ctrl-C stops)", flush=True)
        settle_process()
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:   # uvicorn shut down cleanly, then re-raised the signal it caught
            print("netgaze serve: stopped", flush=True)
            raise
        print("netgaze serve: stopped", flush=True)
    finally:
        sock.close()


def settle_process() -> None:
    """Tune the serving process once everything is loaded (measured with benchmarks/bench_serve.py).

    * Everything loaded so far (PyTorch, the models, the datasets: ~340k objects) is moved out
      of the garbage collector's sight: a full collection then takes microseconds instead of
      ~150 ms, which a request would otherwise wait for every few hundred answers.
    * The GIL switch interval goes from 5 ms to 1 ms: the event loop and the worker threads hand
      the GIL back and forth around every PyTorch call, and a busy loop could keep a worker
      waiting 5 ms each time (16 users: +12% throughput, the slowest request 15% faster).
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_S)


class BackgroundServer:
    """The explorer in a uvicorn server on a daemon thread (tests, benchmarks, screenshots).

    Use as a context manager: ``with BackgroundServer(sources) as server: server.url``.
    """

    def __init__(self, sources: Sources, settings: Settings | None = None, host: str = "127.0.0.1",
                 port: int | None = None):
        self.socket = bind_socket(host, port or 0)     # port 0: the system picks a free one, no race
        self.host, self.port = host, self.socket.getsockname()[1]
        self.app = create_app(sources, settings)
        config = uvicorn.Config(self.app, host=host, port=self.port, log_level="warning", access_log=False,
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True,
                                       name="netgaze-serve")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the explorer did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()
