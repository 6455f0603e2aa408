"""The headless side of ``deepsquare serve``: find Chromium and playwright-core, drive the page, time the bundles.

``--headless-bench`` opens the served page in a headless Chromium through npm's playwright-core
(``tools/drive.mjs`` of the web app), times every bundle x {onnxruntime-web, litert.js} with the
project's interleaved protocol inside the page, and writes the records. No torch here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import processes
from .files import write_text_atomically
from .records import BenchRecord
from .timing import ratio_interval
from .web import BROWSERS, Site, WebAppError, server_url, start_server


def find_browser(explicit: str | None) -> str | None:
    if explicit:
        return explicit if Path(explicit).is_file() or shutil.which(explicit) else None
    if os.environ.get("DEEPSQUARE_CHROMIUM"):
        return os.environ["DEEPSQUARE_CHROMIUM"]
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def find_playwright(app_dir: Path) -> Path | None:
    """The playwright-core that node gives tools/drive.mjs: the first node_modules/playwright-core above the script's
    real path (in a clone, apps/web/node_modules; a wheel carries none)."""
    script = (app_dir / "tools" / "drive.mjs").resolve()
    return next(
        (
            d / "node_modules" / "playwright-core"
            for d in script.parents
            if (d / "node_modules" / "playwright-core").is_dir()
        ),
        None,
    )


def check_driver(app_dir: Path) -> Path:
    """tools/drive.mjs, once node can import playwright-core from it; else WebAppError saying how to get it."""
    script = app_dir / "tools" / "drive.mjs"
    if not script.is_file():
        raise WebAppError(f"{script} is missing: reinstall deepsquare, or pass --app-dir CLONE/apps/web")
    if find_playwright(app_dir) is None:
        raise WebAppError(
            "--headless-bench drives Chromium through npm's playwright-core, a development tool that this install "
            f"does not carry (no node_modules/playwright-core above {script.resolve().parent}): run it from a clone "
            "set up with bash apps/web/setup.sh (its development install, or --app-dir CLONE/apps/web)"
        )
    return script


def drive_page(
    url: str,
    out_json: Path,
    app_dir: Path,
    browser: str,
    *,
    upload: list[Path] = (),
    click_samples: int | str | None = None,
    bench: dict[str, Any] | None = None,
    screenshot: Path | None = None,
    timeout_s: float = 600,
    progress=None,
) -> dict[str, Any]:
    """Run apps/web/tools/drive.mjs against ``url``; returns what the page held (window.deepsquare).
    ``click_samples``: click that many of the bundle's sample thumbnails (``"all"``) before any upload."""
    node = shutil.which("node")
    if node is None:
        raise WebAppError("driving a headless browser needs Node.js (node) on PATH")
    script = check_driver(app_dir)
    command = [
        node,
        str(script),
        "--url",
        url,
        "--out",
        str(out_json),
        "--browser",
        browser,
        "--timeout",
        str(int(timeout_s)),
    ]
    if click_samples is not None:
        command += ["--click-samples", str(click_samples)]
    if upload:
        command += ["--upload", ",".join(str(p) for p in upload)]
    if bench is not None:
        command += ["--bench", json.dumps(bench)]
    if screenshot is not None:
        command += ["--screenshot", str(screenshot)]
    errors: list[str] = []
    # The browser dies with this process, even a SIGKILL-ed one; an error or Ctrl+C here kills it too.
    with processes.child(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True) as proc:
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
    check_driver(site.app_dir)  # before anything is written
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
    print(f"records: {records_file} (show them with deepsquare bench --add-records {records_file})")
    print(f"screenshot: {args.out / 'page.png'}")
    return 0
