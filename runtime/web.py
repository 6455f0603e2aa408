"""The web app's server and headless browser driver behind ``deepsquare serve`` (no torch here).

What it serves and how the headless bench works: ``deepsquare.runtime.serve`` (the command's help).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import mimetypes
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .bundle import BundleError, load_bundle
from .schema import SCHEMA_FILE

WEB_RUNTIMES = {"onnxruntime-web": "onnx", "litert.js": "tflite"}  # record runtime -> bundle format it runs
# The files of node_modules that the page loads, the only ones served, and the only ones a wheel carries (pyproject's
# [tool.setuptools.package-data] names the same; tests/test_wheel.py checks): index.html's import map, and the
# WebAssembly that src/runtimes.js points the two runtimes at.
VENDORED = (
    "onnxruntime-web/dist/ort.all.bundle.min.mjs",  # the import map's onnxruntime-web (wasm and webgpu backends)
    "onnxruntime-web/dist/ort-wasm-simd-threaded.jsep.mjs",  # what that bundle loads from wasmPaths; threads' worker
    "onnxruntime-web/dist/ort-wasm-simd-threaded.jsep.wasm",
    "@litertjs/core/dist/index.js",
    "@litertjs/core/wasm/litert_wasm_internal.js",  # loadLiteRt(threads: false) where relaxed SIMD is supported
    "@litertjs/core/wasm/litert_wasm_internal.wasm",
    "@litertjs/core/wasm/litert_wasm_compat_internal.js",  # ... and where it is not
    "@litertjs/core/wasm/litert_wasm_compat_internal.wasm",
    "@litertjs/wasm-utils/dist/index.js",  # @litertjs/core's one dependency
    "ajv-dist/dist/ajv7.min.js",  # Ajv's draft-07 browser build: the page checks model.json against the schema
)
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
    """The web app installed with the package, ``deepsquare/webapp``: pyproject maps apps/web there as package data
    (a wheel holds a copy; the development install links each file back into the clone's apps/web)."""
    root = resources.files("deepsquare") / "webapp"
    return root if isinstance(root, Path) else Path(str(root))  # a zipped install has no folder: check_app_dir says so


def check_app_dir(app_dir: Path) -> None:
    """Raises WebAppError naming what is missing (the page, or which runtime files) and how to get it."""
    installed = app_dir == default_app_dir()
    if not (app_dir / "index.html").is_file():
        how = (
            "this install of deepsquare lacks its web app: reinstall it (from a clone: pip install ., "
            "or bash .ci/setup for the development install)"
            if installed
            else "pass --app-dir a folder holding the page's index.html (a clone's apps/web)"
        )
        raise WebAppError(f"the web app is not at {app_dir}: {how}")
    missing = [v for v in VENDORED if not (app_dir / "node_modules" / v).is_file()]
    if not missing:
        return
    what = f"{app_dir / 'node_modules' / missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
    if installed:
        raise WebAppError(
            f"this install of deepsquare has no copy of the page's runtimes ({what} missing): it was built from a "
            "source tree without apps/web/node_modules. In the clone run bash apps/web/setup.sh (needs Node.js 18+ "
            "and npm), then reinstall (pip install ., or bash .ci/setup for the development install); "
            "or pass --app-dir CLONE/apps/web"
        )
    how = (
        f"run bash {app_dir / 'setup.sh'}"
        if (app_dir / "setup.sh").is_file()
        else "run bash apps/web/setup.sh in a clone"
    )
    raise WebAppError(f"the page's npm packages are not installed ({what} missing): {how} (needs Node.js 18+ and npm)")


def app_file(app_dir: Path, relative: str) -> Path | None:
    """``app_dir/relative`` if that file exists and ``relative`` has no ``..``, ``.`` or empty part. Links are
    followed: the development install links every file of the app into the clone's apps/web."""
    parts = relative.split("/")
    if "\x00" in relative or any(part in ("", ".", "..") for part in parts):
        return None
    path = app_dir.joinpath(*parts)
    return path if path.is_file() else None


def resolve_inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it is a file inside ``root`` (no ``..``, no link out), else None."""
    if "\x00" in relative:
        return None
    target = (root / relative.lstrip("/")).resolve()
    root = root.resolve()
    return target if target.is_file() and (target == root or root in target.parents) else None


class Site:
    """What the server serves: the app folder, its vendored packages, the bundle schema (``/bundle.schema.json``),
    and numbered bundle folders (each folder's own files and its ``samples/`` images)."""

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
            return app_file(self.app_dir, "index.html")
        if path == "/bundles.json":
            return self.bundles_json()
        if path == "/bundle.schema.json":  # the schema of this deepsquare: the page checks every bundle against it
            return SCHEMA_FILE
        if path.startswith("/bundle/"):
            index, _, name = path[len("/bundle/") :].partition("/")
            folder, _, inner = name.rpartition("/")
            if not index.isdigit() or int(index) >= len(self.bundles) or folder not in ("", "samples") or not inner:
                return None  # a bundle's files lie directly in its folder, its sample images in samples/
            return resolve_inside(self.bundles[int(index)], name)
        if path.startswith("/node_modules/"):
            inner = path[len("/node_modules/") :]
            return app_file(self.app_dir, f"node_modules/{inner}") if inner in VENDORED else None
        if path.startswith("/src/"):
            return app_file(self.app_dir, path[1:])
        return None


def make_handler(site: Site, verbose: bool):
    class Handler(SimpleHTTPRequestHandler):
        server_version = "deepsquare-web"
        timeout = 30  # seconds a silent client may hold a worker

        def do_GET(self):
            self.respond(send_body=True)

        def do_HEAD(self):
            self.respond(send_body=False)

        def respond(self, send_body: bool) -> None:
            try:
                self.answer(send_body)
            except (ConnectionError, TimeoutError) as exc:  # the client went away mid-answer: its business
                self.close_connection = True
                self.log_message("%s: client went away (%s)", self.path, exc.strerror or type(exc).__name__)

        def answer(self, send_body: bool) -> None:
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
                sys.stderr.write(f"deepsquare serve: {self.address_string()} {format % args}\n")

    return Handler


class Server(ThreadingHTTPServer):
    """A page loads ~20 files at once: a deep listen backlog (Python's default is 5); at most ``workers``
    threads answer (ThreadingHTTPServer alone starts one per connection, unbounded), and beyond ``workers +
    waiting`` accepted connections the rest wait in the backlog. A client that goes away mid-answer is its own
    business, not a traceback on the server's stderr."""

    request_queue_size = 256
    daemon_threads = True
    workers, waiting = 32, 256

    def __init__(self, address: tuple[str, int], handler) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="deepsquare-web")
        self.slots = threading.BoundedSemaphore(self.workers + self.waiting)
        super().__init__(address, handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            with contextlib.suppress(OSError, AttributeError):
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def process_request(self, request, client_address) -> None:
        self.slots.acquire()
        try:
            self.pool.submit(self.answer_one, request, client_address)
        except RuntimeError:  # shut down meanwhile
            self.slots.release()
            self.shutdown_request(request)

    def answer_one(self, request, client_address) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def shutdown(self) -> None:
        super().shutdown()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def start_server(site: Site, host: str, port: int, verbose: bool = False) -> Server:
    """Bind and serve in a daemon thread; the caller calls ``shutdown()``."""
    try:
        server = Server((host, port), make_handler(site, verbose))
    except OSError as exc:
        hint = " (another server uses it: pass --port 0 for a free one)" if port else ""
        raise WebAppError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from exc
    threading.Thread(target=server.serve_forever, daemon=True, name="deepsquare-web").start()
    return server


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return url_of({"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host), port)


def is_wildcard(host: str) -> bool:
    """Whether ``host`` means every address of this machine (0.0.0.0, ::, and spellings such as 0 or ::0)."""
    if not host.strip():
        return True
    try:
        found = socket.getaddrinfo(host.strip(), None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return False  # a name, not a numeric address
    return any(ipaddress.ip_address(info[4][0].partition("%")[0]).is_unspecified for info in found)


def listen_urls(server: ThreadingHTTPServer) -> list[str]:
    """The URLs a server bound to every address answers on: loopback, the host name's, the default route's."""
    port = server.server_address[1]
    families = [socket.AF_INET6, socket.AF_INET] if server.address_family == socket.AF_INET6 else [socket.AF_INET]
    found = []
    for family in families:  # :: takes IPv4 clients too (dual stack, see Server.server_bind)
        found.append("::1" if family == socket.AF_INET6 else "127.0.0.1")
        with contextlib.suppress(OSError):
            found += [i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None, family, socket.SOCK_STREAM)]
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(("2001:db8::1" if family == socket.AF_INET6 else "192.0.2.1", 9))  # sends nothing
            found.append(probe.getsockname()[0])
    return [url_of(a.partition("%")[0], port) for a in dict.fromkeys(found)]


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
