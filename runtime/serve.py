"""``deepsquare serve BUNDLE...``: the browser demo with exported bundles, or time them headless.

Examples:
  deepsquare serve runs/sq/export                      # serves http://127.0.0.1:8000/, prints the URL
  deepsquare serve runs/gap/export runs/sq/export --headless-bench --runs 100 --out runs/web

The page classifies photos (file picker, drag-and-drop, paste, camera) with ONNX Runtime Web and
LiteRT.js side by side and benchmarks them. The server sends the cross-origin isolation headers
(COOP/COEP) that WebAssembly threads need, serves every script and .wasm file itself (no CDN:
the page works offline), and serves only the bundle folders it was given.

--headless-bench drives the same page in a headless Chromium (Debian's chromium, through npm's
playwright-core), times every bundle x {onnxruntime-web, litert.js} with the project's interleaved
protocol, and writes browser-records.json in the benchmark record schema for
``deepsquare bench --add-records``, plus a table of ratios to gap from paired rounds.

The page and its two runtimes ship inside the package; --headless-bench also needs Chromium and npm's
playwright-core (``bash apps/web/setup.sh`` in a clone installs both). No torch here.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
from pathlib import Path

from .bundle import BundleError
from .options import UsageError, add_out, add_rounds, add_threads, add_verbosity, check_rounds, one_value
from .web import (
    Site,
    WebAppError,
    check_app_dir,
    check_bundles,
    default_app_dir,
    is_wildcard,
    listen_urls,
    server_url,
    start_server,
)
from .web_bench import find_browser, headless_bench


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "bundles",
        nargs="+",
        type=Path,
        metavar="BUNDLE",
        help="folders written by deepsquare export (the page opens the first; the benchmark times all)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (127.0.0.1: this machine only; 0.0.0.0 or ::, written out: the network)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (0 picks a free one)")
    parser.add_argument("--app-dir", type=Path, help="another copy of the web app to serve (default: the packaged one)")
    bench = parser.add_argument_group("--headless-bench: time the bundles in a headless Chromium, write records, exit")
    bench.add_argument("--headless-bench", action="store_true", help="benchmark instead of serving")
    add_rounds(bench, what="timed interleaved rounds")
    add_threads(bench, help="WebAssembly threads per runtime")
    add_out(bench, default="runs/web", help="folder for browser-records.json, browser-bench.md, page.png")
    bench.add_argument("--browser", help="Chromium executable (default: chromium on PATH, or $DEEPSQUARE_CHROMIUM)")
    bench.add_argument("--timeout", type=float, default=1800, help="seconds before the browser is stopped")
    add_verbosity(parser)


def check(args: argparse.Namespace) -> None:
    if not args.host.strip():
        raise UsageError("--host is empty (an unset shell variable?); give an address, e.g. 127.0.0.1")
    if is_wildcard(args.host) and args.host not in ("0.0.0.0", "::"):
        raise UsageError(
            f"--host {args.host!r} means every address of this machine: write --host 0.0.0.0 (or ::) to serve "
            "the bundles to the network, or give one address (127.0.0.1: this machine only)"
        )
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    check_rounds(args)
    args.threads = one_value("--threads", args.threads)
    if not 1 <= args.threads <= 64 or not 0 < args.timeout < math.inf:  # nan is refused too
        raise UsageError(
            f"--threads must be in 1..64 and --timeout a finite number > 0, got {args.threads} and {args.timeout}"
        )


def run(args: argparse.Namespace) -> int:
    check(args)
    app_dir = args.app_dir or default_app_dir()
    try:
        check_app_dir(app_dir)
        problems = check_bundles(args.bundles, strict=args.headless_bench)
        site = Site(app_dir, args.bundles)
        if args.headless_bench:
            return headless_bench(args, site)
        for problem in problems:  # served anyway: the page shows the same message
            print(f"deepsquare serve: warning: {problem}", file=sys.stderr)
        server = start_server(site, args.host, args.port, args.verbose)
    except (WebAppError, BundleError, ValueError) as exc:
        print(f"deepsquare serve: error: {exc}", file=sys.stderr)
        return 1
    url = server_url(server)
    print(f"serving {', '.join(str(b) for b in args.bundles)} at {url}", flush=True)
    if is_wildcard(args.host):
        print(f"listening on every address of this machine: {', '.join(listen_urls(server))}", flush=True)
        print(
            f"deepsquare serve: warning: --host {args.host} serves the bundles to the network: anyone who can "
            "reach this machine can download them (--host 127.0.0.1 keeps them on this machine)",
            file=sys.stderr,
            flush=True,
        )
    browser = find_browser(None)
    print(
        f"open {url} in a browser"
        + ("" if browser else " (no Chromium found here; any recent browser works)")
        + "; Ctrl+C stops",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.shutdown()
    return 0
