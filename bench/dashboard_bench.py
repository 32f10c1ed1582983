"""How fast the dashboard shows a whole GOOG day: the run page in a real browser, and zooming.

Run: ``.venv/bin/python bench/dashboard_bench.py [--data DIR] [--repeat 5]``

Prepares (once, kept in ``--data``, default ``bench/results/dashboard-goog``) the shared
LOBSTER GOOG 2012-06-21 day (147,916 messages): ``tape ingest lobster``, ``tape train --until
60%`` and a ``default`` run with that bundle. Then serves it with ``tape serve``'s app under
uvicorn on loopback and measures, with Debian's chromium driven by Playwright:

- ``page_cold_ms``: the run page's first load after the server started (the server reads the
  run's topics from the log), from navigation start until every chart is drawn;
- ``page_ms``: the same for later loads (median of ``--repeat``; the run is cached);
- ``charts_cold_ms`` / ``charts_ms``: the server's answer to the page's chart request alone
  (HTTP, whole day, 2,000 points per line);
- ``zoom_ms``: a chart request for 1 % of the day at full resolution (median), and the points
  it returned.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import urllib.request
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.app.cli import app  # noqa: E402
from engine.app.pipelines import SHIPPED  # noqa: E402
from engine.app.web import WebSettings, create_app  # noqa: E402
from engine.runtime import read_manifest  # noqa: E402
from tests.dashboard_support import served  # noqa: E402

LOBSTER = ROOT.parent / "shared" / "data" / "lobster"
MESSAGES = LOBSTER / "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
BOOKS = LOBSTER / "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz"
SESSION, RUN = "goog", "goog-day"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip


def tape(data: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--data", str(data), "--fsync", "never", *args])
    if result.exit_code != 0:
        raise SystemExit(f"tape {' '.join(args)} failed:\n{result.output}")
    return result.output


def prepare(data: Path) -> None:
    """Ingest, train and run the GOOG day once (a complete run is kept)."""
    manifest = data / "runs" / RUN / "manifest.json"
    if manifest.is_file() and read_manifest(data, RUN).status == "complete":
        return
    started = time.perf_counter()
    tape(data, "ingest", "lobster", str(MESSAGES), str(BOOKS), "--symbol", "GOOG",
         "--date", "2012-06-21", "--session", SESSION, "--quiet")  # fmt: skip
    trained = tape(data, "train", SESSION, "--until", "60%", "--quiet")
    bundle = next(w for w in re.split(r"\s+", trained) if re.fullmatch(r"[0-9a-f]{64}", w))
    tape(data, "run", SESSION, "--run-id", RUN, "--bundle", bundle, "--quiet")
    print(f"prepared {data} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def get_ms(url: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = response.read()
    return (time.perf_counter() - started) * 1000, body


def page_load_ms(browser: object, url: str) -> float:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=120_000)
    ready = float(page.evaluate("Number(document.body.dataset.readyMs)"))
    context.close()
    return ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "results" / "dashboard-goog")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    prepare(args.data)
    manifest = read_manifest(args.data, RUN)
    outputs = sum(o.count for o in manifest.outputs)
    first = min(o.first_ts for o in manifest.outputs if o.count) / 1e6
    last = max(o.last_ts for o in manifest.outputs if o.count) / 1e6
    from playwright.sync_api import sync_playwright

    settings = WebSettings(data=args.data, pipelines=SHIPPED)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        with served(create_app(settings)) as site:
            page_cold = page_load_ms(browser, f"{site}/runs/{RUN}")
            pages = [page_load_ms(browser, f"{site}/runs/{RUN}") for _ in range(args.repeat)]
            charts = [get_ms(f"{site}/api/runs/{RUN}/charts?points=2000")[0]
                      for _ in range(args.repeat)]  # fmt: skip
            start = first + (last - first) * 0.5
            end = start + (last - first) * 0.01
            zoom_url = f"{site}/api/runs/{RUN}/charts?points=20000&start={start}&end={end}"
            zooms = [get_ms(zoom_url) for _ in range(args.repeat)]
        with served(create_app(settings)) as site:  # a fresh server: nothing cached
            charts_cold = get_ms(f"{site}/api/runs/{RUN}/charts?points=2000")[0]
        browser.close()
    zoom_points = sum(len(v) for v in json.loads(zooms[0][1])["lines"].values())
    print(json.dumps({
        "benchmark": "dashboard", "run": RUN, "output_events": outputs,
        "journal_events": manifest.journal_stop - manifest.journal_start,
        "page_cold_ms": round(page_cold), "page_ms": round(statistics.median(pages)),
        "page_ms_all": [round(p) for p in pages],
        "charts_cold_ms": round(charts_cold), "charts_ms": round(statistics.median(charts)),
        "zoom_ms": round(statistics.median(z for z, _ in zooms)), "zoom_points": zoom_points,
        "date": time.strftime("%Y-%m-%d"),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
