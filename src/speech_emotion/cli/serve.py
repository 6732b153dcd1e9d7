"""``speech-emotion serve``: the web page and the service API (FastAPI on uvicorn).

Binds 127.0.0.1 by default. Binding another address needs an API token, read from
``--token-file`` or the ``SPEECH_EMOTION_TOKEN`` environment variable (never from the command
line, where other users of the machine could read it); ``--token-file -`` generates one.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import os
import secrets
import socket
import sys
from pathlib import Path

from ..errors import SpeechEmotionError
from ..processes import end_with_parent
from ..service.options import HOPS, MIN_TOKEN_CHARS, ServiceConfigError, ServiceOptions, is_loopback
from . import plain
from .arguments import port, positive_int, positive_number, thread_count

TOKEN_ENV = "SPEECH_EMOTION_TOKEN"


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = ServiceOptions()
    p = sub.add_parser(
        "serve",
        help="web page and service API (live microphone in the browser)",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default=d.host, help=f"address to bind (default {d.host}: this machine only)")
    p.add_argument("--port", type=port, default=d.port, help=f"port (default {d.port})")
    p.add_argument("--model", default=None, help="bundled model name or bundle folder (default: bundled default)")
    p.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help=f"file holding the API token ('-': generate one and print it; default: ${TOKEN_ENV} if set)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this browser origin (repeatable; default: same origin only)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=positive_number,
        default=d.max_upload_mb,
        help=f"largest upload in MiB (2^20 bytes; default {d.max_upload_mb:g})",
    )
    p.add_argument(
        "--max-duration",
        type=positive_number,
        default=d.max_duration_s,
        metavar="S",
        help=f"longest uploaded recording in seconds (default {d.max_duration_s:g})",
    )
    p.add_argument(
        "--max-streams", type=positive_int, default=d.max_streams, help=f"concurrent streams (default {d.max_streams})"
    )
    p.add_argument(
        "--idle-timeout",
        type=positive_number,
        default=d.idle_timeout_s,
        metavar="S",
        help=f"close a silent stream connection after S seconds (default {d.idle_timeout_s:g})",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also serve requests addressed to this host name when no token is set (repeatable; default: "
        "loopback names only, a guard against DNS rebinding)",
    )
    p.add_argument(
        "--max-connections",
        type=positive_int,
        default=d.max_connections,
        help=f"open connections at once, more get 503 (default {d.max_connections})",
    )
    p.add_argument(
        "--header-timeout",
        type=positive_number,
        default=d.header_timeout_s,
        metavar="S",
        help=f"time to send complete request headers (default {d.header_timeout_s:g})",
    )
    p.add_argument(
        "--body-timeout",
        type=positive_number,
        default=d.body_timeout_s,
        metavar="S",
        help=f"longest pause while sending a request body (default {d.body_timeout_s:g})",
    )
    p.add_argument(
        "--processes",
        type=positive_int,
        default=d.processes,
        help="server processes sharing the port, each with its own model and limits (default 1; one per core "
        "uses every core)",
    )
    p.add_argument(
        "--max-hop",
        type=float,
        choices=HOPS,
        default=d.max_hop_s,
        metavar="S",
        help=f"widest update hop of live streams when the server is behind: {', '.join(f'{h:g}' for h in HOPS)} "
        f"(default {d.max_hop_s:g}; 0.5: never widen)",
    )
    p.add_argument(
        "--upload-workers",
        type=positive_int,
        default=d.upload_workers,
        help="upload inference threads (default: cores/2, >= 2)",
    )
    p.add_argument(
        "--threads", type=thread_count, default=d.threads, help=f"ONNX threads per inference (default {d.threads})"
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (default info)",
    )
    p.set_defaults(func=run)


def read_token(token_file: Path | None) -> tuple[str | None, bool]:
    """``(token, generated)`` from ``--token-file`` (``-``: a fresh one) or the environment; a BOM and surrounding
    whitespace are dropped (an editor's or a shell's ``echo``). :class:`ServiceConfigError` (one line, exit 2) for a
    file that cannot be read or is not UTF-8 text, and for a token no client could send: empty, under
    :data:`MIN_TOKEN_CHARS`, or with a space, a control or a non-ASCII character (a header carries none of them)."""
    if token_file is not None and str(token_file) == "-":
        return secrets.token_urlsafe(24), True
    if token_file is not None:
        where = f"{token_file}: "
        try:
            raw = token_file.read_bytes()
        except OSError as exc:
            raise ServiceConfigError(f"{where}cannot read the token file ({exc.strerror})") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ServiceConfigError(f"{where}the token file is not UTF-8 text (save it as UTF-8)") from None
    else:
        text = os.environ.get(TOKEN_ENV, "")
        if not text.strip():
            return None, False
        where = f"${TOKEN_ENV}: "
    token = text.strip()
    if not token:
        raise ServiceConfigError(f"{where}the token file is empty")
    if not all("!" <= c <= "~" for c in token):
        raise ServiceConfigError(
            f"{where}the token may hold only printable ASCII without spaces (an HTTP header carries no other)"
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise ServiceConfigError(
            f"{where}the token is {len(token)} characters, at least {MIN_TOKEN_CHARS} are needed "
            "(--token-file - makes one)"
        )
    return token, False


def options_from_args(args: argparse.Namespace) -> tuple[ServiceOptions, bool]:
    token, generated = read_token(args.token_file)
    options = ServiceOptions(
        host=args.host,
        port=args.port,
        token=token,
        model=args.model,
        threads=args.threads,
        processes=args.processes,
        max_hop_s=args.max_hop,
        max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration,
        max_streams=args.max_streams,
        idle_timeout_s=args.idle_timeout,
        cors_origins=list(args.cors_origin),
        allowed_hosts=list(args.allow_host),
        max_connections=args.max_connections,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        upload_workers=args.upload_workers,
    )
    options.check()
    return options, generated


def bind(host: str, port: int, shared: bool = False) -> socket.socket:
    """A listening-ready TCP socket on ``host:port``; raises a one-line :class:`SpeechEmotionError` when the
    address cannot be bound (port in use, no permission, unknown host), before anything is printed. ``shared``:
    ``SO_REUSEPORT``, so each of several server processes binds its own socket and the kernel spreads the new
    connections evenly over them (one socket shared by all wakes them all and the quickest takes most)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise SpeechEmotionError(f"cannot serve on {host}:{port}: unknown address ({exc.strerror})") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        if not hasattr(socket, "SO_REUSEPORT"):
            sock.close()
            raise SpeechEmotionError("--processes needs SO_REUSEPORT (Linux, macOS); run one server per port")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SpeechEmotionError(
                f"cannot serve on {host}:{port}: the port is in use (another server?); choose another with --port"
            ) from None
        raise SpeechEmotionError(f"cannot serve on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    options, generated = options_from_args(args)
    # fail on a busy port before loading the model or printing anything; with --processes this socket only holds
    # the port, each server process listens on its own
    if options.processes > 1:
        bind(options.host, options.port).close()  # the port must be free: SO_REUSEPORT alone would join another server
    sock = bind(options.host, options.port, shared=options.processes > 1)
    if options.port == 0:  # the system chose a free port: the address printed and served is that one
        options = dataclasses.replace(options, port=sock.getsockname()[1])
    try:
        return _serve(args, options, generated, sock)
    finally:
        sock.close()


def _serve(args: argparse.Namespace, options: ServiceOptions, generated: bool, sock: socket.socket) -> int:
    if options.processes > 1:
        from ..bundle import load_bundle
        from ..features import prepare_for_processes

        bundle = load_bundle(options.model)  # a bad bundle fails here, before any fork
        prepare_for_processes(bundle.features, bundle.feature_options)  # the URL is printed once it answers
        _banner(options, generated, bundle.name)
        return _serve_processes(args, options, sock)
    app = _app(options)
    _banner(options, generated, app.state.recognizer.name)
    _run_uvicorn(app, options, args.log_level, sock)
    return 0


def _app(options: ServiceOptions):  # noqa: ANN202 (FastAPI, imported late)
    from ..service.app import create_app
    from ..threads import limit_native_threads

    app = create_app(options)
    limit_native_threads()  # the model runs on the scheduler's and upload threads: one BLAS thread each
    return app


def _run_uvicorn(app, options: ServiceOptions, log_level: str, sock: socket.socket) -> None:  # noqa: ANN001
    import uvicorn

    from ..service.server import uvicorn_config

    uvicorn.Server(uvicorn_config(app, options, log_level)).run(sockets=[sock])


def _banner(options: ServiceOptions, generated: bool, model: str) -> None:
    url = options.page_url
    print(f"speech-emotion: model {model}", file=sys.stderr)
    if options.processes > 1:
        print(f"speech-emotion: {options.processes} server processes share the port", file=sys.stderr)
    if options.token and generated:
        print(f"API token (send as 'Authorization: Bearer TOKEN'): {options.token}", file=sys.stderr)
        print(f"open {url}#token={options.token}  (API docs: {url}docs)", flush=True)
    elif options.token:
        print(f"open {url}#token=<your token>  (API docs: {url}docs)", flush=True)
    else:
        print(f"open {url}  (API docs: {url}docs)", flush=True)
    if not is_loopback(options.host):
        print(
            "note: serving beyond this machine; browsers only allow the microphone over https or on "
            "localhost, so put a TLS proxy in front for remote users",
            file=sys.stderr,
        )


def _serve_processes(args: argparse.Namespace, options: ServiceOptions, sock: socket.socket) -> int:
    """Fork ``options.processes`` servers, each listening on its own ``SO_REUSEPORT`` socket of the port (the
    kernel spreads the connections; ``sock`` holds the port meanwhile) and loading its own model; Ctrl-C or
    SIGTERM stops them all. A server that dies is started again, unless it dies within seconds of starting (then
    all stop, exit 1)."""
    import signal
    import time

    if not hasattr(os, "fork"):
        raise SpeechEmotionError("--processes needs a system with fork (Linux, macOS); run one server per port")
    sys.stdout.flush()
    sys.stderr.flush()
    children: dict[int, float] = {}
    stopping = interrupted = False
    parent = os.getpid()

    def start() -> None:
        pid = os.fork()
        if pid == 0:  # the server process: default signals (uvicorn installs its own), then serve until stopped
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            end_with_parent(parent)
            code = 0
            try:
                _run_uvicorn(_app(options), options, args.log_level, bind(options.host, options.port, shared=True))
            except KeyboardInterrupt:
                pass
            except BaseException as exc:  # noqa: BLE001 - reported in one line, the parent decides
                print(f"speech-emotion: a server process failed: {exc}", file=sys.stderr, flush=True)
                code = 1
            os._exit(code)
        children[pid] = time.monotonic()

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping, interrupted
        stopping = True
        interrupted = interrupted or signum == signal.SIGINT
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(options.processes):
        start()
    failed = False
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, None)
        if started is None or stopping:
            continue
        if time.monotonic() - started < 10:
            print("speech-emotion: a server process ended at start-up; stopping", file=sys.stderr, flush=True)
            failed = True
            stop(signal.SIGTERM, None)
            continue
        print(f"speech-emotion: a server process ended (status {status}); starting another", file=sys.stderr)
        start()
    if interrupted:
        print("interrupted", file=sys.stderr)
        return 130
    return 1 if failed else 0
