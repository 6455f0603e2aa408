"""deepsquare-web: serve the browser demo (apps/web) with exported bundles, or time them headless.

    deepsquare-web runs/sq/export                       # serves http://127.0.0.1:8000/, prints the URL
    deepsquare-web runs/gap/export runs/sq/export --headless-bench --runs 100 --out runs/web

The page classifies photos (file picker, drag-and-drop, paste, camera) with ONNX Runtime Web and
LiteRT.js side by side and benchmarks them. The server sends the cross-origin isolation headers
(COOP/COEP) that WebAssembly threads need, serves every script and .wasm file itself (no CDN:
the page works offline), and serves only the bundle folders it was given.

--headless-bench drives the same page in a headless Chromium (Debian's chromium, through npm's
playwright-core), times every bundle x {onnxruntime-web, litert.js} with the project's interleaved
protocol, and writes browser-records.json in the benchmark record schema for
``deepsquare-bench --add-records``, plus a table of ratios to gap from paired rounds.

Set-up of the page's packages: ``bash apps/web/setup.sh`` (``.ci/setup`` runs it). No torch here.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .bundle import BundleError, load_bundle
from .files import write_text_atomically
from .records import BenchRecord
from .timing import ratio_interval

WEB_RUNTIMES = {"onnxruntime-web": "onnx", "litert.js": "tflite"}  # record runtime -> bundle format it runs
# Only these parts of node_modules are served: the two runtimes and LiteRT.js's one dependency.
VENDORED = ("onnxruntime-web/dist/", "@litertjs/core/dist/", "@litertjs/core/wasm/", "@litertjs/wasm-utils/dist/")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HEADERS = {
    # Cross-origin isolation: SharedArrayBuffer, hence WebAssembly threads, in both runtimes.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".css": "text/css",
    ".html": "text/html; charset=utf-8",
    ".map": "application/json",
}


class WebAppError(RuntimeError):
    """The page's files or packages are missing, or the browser cannot be driven; one line says what to do."""


def default_app_dir() -> Path:
    # runtime/web.py -> the repository's apps/web (an editable install links back to the clone)
    return Path(__file__).resolve().parents[1] / "apps" / "web"


def check_app_dir(app_dir: Path) -> None:
    if not (app_dir / "index.html").is_file():
        raise WebAppError(f"the web app is not at {app_dir}: run from a clone of the repository or pass --app-dir")
    missing = [v for v in VENDORED if not (app_dir / "node_modules" / v).is_dir()]
    if missing:
        raise WebAppError(
            f"the page's npm packages are not installed ({app_dir}/node_modules/{missing[0]} "
            f"is missing): run bash {app_dir}/setup.sh"
        )


def resolve_inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it is a file inside ``root`` (no ``..``, no link out), else None."""
    if "\x00" in relative:
        return None
    target = (root / relative.lstrip("/")).resolve()
    root = root.resolve()
    return target if target.is_file() and (target == root or root in target.parents) else None


class Site:
    """What the server serves: the app folder, its vendored packages, and numbered bundle folders."""

    def __init__(self, app_dir: Path, bundles: list[Path]):
        self.app_dir = app_dir
        self.bundles = bundles

    def names(self) -> list[str]:
        """Folder names; where two bundles share one (runs/a/export, runs/b/export), with their parent's."""
        short = [b.resolve().name for b in self.bundles]
        return [
            f"{b.resolve().parent.name}/{name}" if short.count(name) > 1 else name
            for b, name in zip(self.bundles, short, strict=True)
        ]

    def bundles_json(self) -> bytes:
        rows = [{"name": name, "url": f"bundle/{i}/"} for i, name in enumerate(self.names())]
        return (json.dumps({"bundles": rows}) + "\n").encode()

    def lookup(self, url_path: str) -> Path | bytes | None:
        path = unquote(urlsplit(url_path).path)
        if path in ("/", "/index.html"):
            return resolve_inside(self.app_dir, "index.html")
        if path == "/bundles.json":
            return self.bundles_json()
        if path.startswith("/bundle/"):
            index, _, name = path[len("/bundle/") :].partition("/")
            if not index.isdigit() or int(index) >= len(self.bundles) or "/" in name or not name:
                return None  # a bundle's files lie directly in its folder
            return resolve_inside(self.bundles[int(index)], name)
        if path.startswith("/node_modules/"):
            inner = path[len("/node_modules/") :]
            if not inner.startswith(VENDORED):
                return None
            return resolve_inside(self.app_dir / "node_modules", inner)
        if path.startswith("/src/"):
            return resolve_inside(self.app_dir / "src", path[len("/src/") :])
        return None


def make_handler(site: Site, verbose: bool):
    class Handler(SimpleHTTPRequestHandler):
        server_version = "deepsquare-web"

        def do_GET(self):
            self.respond(send_body=True)

        def do_HEAD(self):
            self.respond(send_body=False)

        def respond(self, send_body: bool) -> None:
            found = site.lookup(self.path)
            if found is None:
                self.send_error(404, "not found")
                return
            body = found if isinstance(found, bytes) else found.read_bytes()
            suffix = ".json" if isinstance(found, bytes) else found.suffix
            self.send_response(200)
            self.send_header(
                "Content-Type", TYPES.get(suffix) or mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"
            )
            self.send_header("Content-Length", str(len(body)))
            for key, value in HEADERS.items():
                self.send_header(key, value)
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format, *args):
            if verbose:
                sys.stderr.write(f"deepsquare-web: {self.address_string()} {format % args}\n")

    return Handler


def start_server(site: Site, host: str, port: int, verbose: bool = False) -> ThreadingHTTPServer:
    """Bind and serve in a daemon thread; the caller calls ``shutdown()``."""
    try:
        server = ThreadingHTTPServer((host, port), make_handler(site, verbose))
    except OSError as exc:
        hint = " (another server uses it: pass --port 0 for a free one)" if port else ""
        raise WebAppError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="deepsquare-web").start()
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"


def find_browser(explicit: str | None) -> str | None:
    if explicit:
        return explicit if Path(explicit).is_file() or shutil.which(explicit) else None
    if os.environ.get("DEEPSQUARE_CHROMIUM"):
        return os.environ["DEEPSQUARE_CHROMIUM"]
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def drive_page(
    url: str,
    out_json: Path,
    app_dir: Path,
    browser: str,
    *,
    upload: list[Path] = (),
    bench: dict[str, Any] | None = None,
    screenshot: Path | None = None,
    timeout_s: float = 600,
    progress=None,
) -> dict[str, Any]:
    """Run apps/web/tools/drive.mjs against ``url``; returns what the page held (window.deepsquare)."""
    node = shutil.which("node")
    if node is None:
        raise WebAppError("driving a headless browser needs Node.js (node) on PATH")
    if not (app_dir / "node_modules" / "playwright-core").is_dir():
        raise WebAppError(f"playwright-core is not installed in {app_dir}/node_modules: run bash {app_dir}/setup.sh")
    command = [
        node,
        str(app_dir / "tools" / "drive.mjs"),
        "--url",
        url,
        "--out",
        str(out_json),
        "--browser",
        browser,
        "--timeout",
        str(int(timeout_s)),
    ]
    if upload:
        command += ["--upload", ",".join(str(p) for p in upload)]
    if bench is not None:
        command += ["--bench", json.dumps(bench)]
    if screenshot is not None:
        command += ["--screenshot", str(screenshot)]
    errors: list[str] = []
    with subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True) as proc:
        try:
            for line in proc.stderr:
                if line.startswith("progress ") and progress is not None:
                    progress(float(line.split()[1]))
                elif line.strip():
                    errors.append(line.strip())
            proc.wait(timeout=timeout_s + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise WebAppError(f"the headless browser did not finish within {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        report = next((i for i, e in enumerate(errors) if e.startswith("drive.mjs:")), None)
        raise WebAppError(
            "\n".join(errors[report:])
            if report is not None
            else f"the headless browser exited with code {proc.returncode}"
        )
    return json.loads(out_json.read_text())


def ratio_table(records: list[dict[str, Any]]) -> str:
    """Markdown: each record's p50, its paired ratio to gap (same runtime) and to the other runtime."""
    lines = [
        "| model | variant | runtime | backend | threads | p50 ms | ratio to gap (95% CI) | vs other runtime |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def fmt(r):
        return f"{r[0]:.3f} ({r[1]:.3f}-{r[2]:.3f})"

    for rec in records:
        rounds = rec["extra"].get("round_ms")
        gap = next(
            (
                g
                for g in records
                if g["runtime"] == rec["runtime"]
                and g["variant"] == "gap"
                and g is not rec
                and g["model"] == rec["model"]
                and g["extra"].get("input_size") == rec["extra"].get("input_size")
            ),
            None,
        )
        other = next(
            (
                o
                for o in records
                if o["extra"].get("bundle") == rec["extra"].get("bundle") and o["runtime"] != rec["runtime"]
            ),
            None,
        )
        to_gap = fmt(ratio_interval(rounds, gap["extra"]["round_ms"])) if gap and rounds else "-"
        to_other = f"{fmt(ratio_interval(rounds, other['extra']['round_ms']))} x {other['runtime']}" if other else "-"
        lines.append(
            f"| {rec['model']} | {rec['variant']} | {rec['runtime']} | {rec['extra'].get('backend', '-')} | "
            f"{rec['threads']} | {rec['p50_ms']:.2f} | {to_gap} | {to_other} |"
        )
    return "\n".join(lines) + "\n"


def headless_bench(args: argparse.Namespace, site: Site) -> int:
    from tqdm import tqdm

    browser = find_browser(args.browser)
    if browser is None:
        raise WebAppError("--headless-bench needs Chromium: apt-get install chromium (or pass --browser PATH)")
    args.out.mkdir(parents=True, exist_ok=True)
    server = start_server(site, args.host, 0, args.verbose)
    bar = tqdm(total=100, desc="browser bench", unit="%", disable=args.quiet, file=sys.stderr)
    try:
        with tempfile.TemporaryDirectory(prefix="deepsquare-web-") as tmp:
            state = drive_page(
                f"{server_url(server)}?threads={args.threads}",
                Path(tmp) / "state.json",
                site.app_dir,
                browser,
                bench={"runs": args.runs, "warmup": args.warmup, "threads": args.threads, "all": True},
                screenshot=args.out / "page.png",
                timeout_s=args.timeout,
                progress=lambda f: bar.update(round(f * 100) - bar.n),
            )
    finally:
        bar.close()
        server.shutdown()
    if state.get("error") and not state.get("records"):
        raise WebAppError(f"the page reported: {state['error'].splitlines()[0]}")
    records = [BenchRecord.from_dict(r).to_dict() for r in state["records"]]  # the schema, checked
    write_text_atomically(args.out / "browser-records.json", json.dumps(records, indent=2) + "\n")
    table = ratio_table(records)
    write_text_atomically(args.out / "browser-bench.md", table)
    print(table)
    records_file = args.out / "browser-records.json"
    print(f"records: {records_file} (show them with deepsquare-bench --add-records {records_file})")
    print(f"screenshot: {args.out / 'page.png'}")
    return 0


def check_bundles(folders: list[Path], strict: bool) -> list[str]:
    """Problems per folder; with ``strict`` (headless bench) any problem is an error."""
    problems = []
    for folder in folders:
        if not folder.is_dir():
            raise WebAppError(f"{folder} is not a folder")
        try:
            _, meta = load_bundle(folder)
        except BundleError as exc:
            problems.append(str(exc))
            continue
        if not set(WEB_RUNTIMES.values()) & set(meta.formats):
            problems.append(
                f"{folder} has no ONNX or TFLite model for a browser runtime (export with --to onnx,tflite)"
            )
    if strict and problems:
        raise WebAppError(problems[0])
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deepsquare-web", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "bundles",
        nargs="+",
        type=Path,
        metavar="BUNDLE",
        help="folders written by deepsquare-export (the page opens the first; the benchmark times all)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--app-dir", type=Path, help="the web app folder (default: apps/web of this clone)")
    bench = parser.add_argument_group("--headless-bench: time the bundles in a headless Chromium, write records, exit")
    bench.add_argument("--headless-bench", action="store_true", help="benchmark instead of serving")
    bench.add_argument("--runs", type=int, default=50, help="timed interleaved rounds (default 50)")
    bench.add_argument("--warmup", type=int, default=5, help="untimed rounds per block of new sessions (default 5)")
    bench.add_argument("--threads", type=int, default=1, help="WebAssembly threads per runtime (default 1)")
    bench.add_argument(
        "--out",
        type=Path,
        default=Path("runs/web"),
        help="folder for browser-records.json, browser-bench.md, page.png (default runs/web)",
    )
    bench.add_argument("--browser", help="Chromium executable (default: chromium on PATH, or $DEEPSQUARE_CHROMIUM)")
    bench.add_argument("--timeout", type=float, default=1800, help="seconds before the browser is stopped (1800)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be in 0..65535")
    if args.runs < 2 or args.warmup < 0 or not 1 <= args.threads <= 64 or args.timeout <= 0:
        parser.error("--runs must be >= 2, --warmup >= 0, --threads in 1..64, --timeout > 0")
    app_dir = args.app_dir or default_app_dir()
    try:
        check_app_dir(app_dir)
        problems = check_bundles(args.bundles, strict=args.headless_bench)
        site = Site(app_dir, args.bundles)
        if args.headless_bench:
            return headless_bench(args, site)
        for problem in problems:  # served anyway: the page shows the same message
            print(f"deepsquare-web: warning: {problem}", file=sys.stderr)
        server = start_server(site, args.host, args.port, args.verbose)
    except (WebAppError, BundleError, ValueError) as exc:
        print(f"deepsquare-web: error: {exc}", file=sys.stderr)
        return 1
    url = server_url(server)
    print(f"serving {', '.join(str(b) for b in args.bundles)} at {url}", flush=True)
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


if __name__ == "__main__":
    sys.exit(main())
