"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright.

Without /usr/bin/chromium (or Playwright) these tests skip, saying why; with ``CI`` set they
fail instead. Screenshots go to ``$TAPE_SCREENSHOTS`` (default ``test-artifacts/dashboard``);
the ones in docs/dashboard/ were made by running these tests with
``TAPE_SCREENSHOTS=docs/dashboard``.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.app.pipelines import SHIPPED
from engine.app.web import WebSettings, create_app
from engine.runtime import RunConfig, execute
from tests.dashboard_support import TAMPERED, TRADED, LiveFeed, served, tampered_offset

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).parents[2]
SHOTS = Path(os.environ.get("TAPE_SCREENSHOTS") or ROOT / "test-artifacts" / "dashboard")
FILL_RGB = (0xE1, 0x1D, 0x9B)
"""The fill markers' colour (COLORS.fill in static/dashboard.js)."""
WAIT_MS = 120_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless chromium; skipped (or failed under CI) when it is not installed."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "the playwright package is not installed (bootstrap --dev installs it)"
    if reason is None and not CHROMIUM.is_file():
        reason = f"{CHROMIUM} is missing: apt-get install chromium"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need a browser in CI: {reason}")
        pytest.skip(reason)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(dashboard_demo: Path) -> Iterator[str]:
    settings = WebSettings(data=dashboard_demo, pipelines=SHIPPED)
    with served(create_app(settings)) as url:
        yield url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"the page raised: {errors}"


def open_run(page: Any, site: str, run_id: str) -> None:
    page.goto(f"{site}/runs/{run_id}")
    page.wait_for_selector("body[data-ready='1']", timeout=WAIT_MS)


def series_length(page: Any, chart: str, series_id: str) -> int:
    return int(
        page.evaluate(
            """([chart, id]) => echarts.getInstanceByDom(document.getElementById(chart))
                 .getOption().series.find((s) => s.id === id).data.length""",
            [chart, series_id],
        )
    )


def first_fill_pixel(page: Any) -> tuple[float, float, list[int]]:
    """Where the first fill marker is drawn in the price chart, and the colour there."""
    x, y, rgba = page.evaluate(
        """() => {
            const chart = echarts.getInstanceByDom(document.getElementById('chart-price'));
            const fill = chart.getOption().series.find((s) => s.id === 'fills').data[0];
            const [x, y] = chart.convertToPixel({seriesId: 'fills'}, fill.value);
            const canvas = chart.getDom().querySelector('canvas');
            const ratio = canvas.width / canvas.clientWidth;
            const pixel = canvas.getContext('2d')
                .getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data;
            return [x, y, Array.from(pixel)];
        }"""
    )
    return x, y, rgba


def test_run_page_draws_equity_and_fill_markers_and_a_fill_opens_its_trace(
    page: Any, site: str
) -> None:
    open_run(page, site, TRADED)
    assert series_length(page, "chart-equity", "equity") > 10
    assert series_length(page, "chart-price", "mid") > 100
    assert series_length(page, "chart-price", "fills") >= 1
    x, y, rgba = first_fill_pixel(page)
    assert all(abs(a - b) <= 40 for a, b in zip(rgba[:3], FILL_RGB, strict=True)), rgba
    page.screenshot(path=str(SHOTS / "run.png"), full_page=True)
    page.locator("#chart-price").screenshot(path=str(SHOTS / "price-chart.png"))
    box = page.locator("#chart-price").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_url("**/trace/executions/*", timeout=WAIT_MS)
    assert "Causal trace of executions #" in page.inner_text("h1")
    journal = page.locator("ul.trace .port", has_text="journal")
    assert journal.count() >= 1


def test_an_order_trace_goes_back_to_the_journal(page: Any, site: str) -> None:
    open_run(page, site, TRADED)
    page.locator("#orders a.trace-link").first.click()
    page.wait_for_url("**/trace/orders/0", timeout=WAIT_MS)
    ports = page.locator("ul.trace .port").all_inner_texts()
    for port in ("orders", "decisions", "votes", "predictions", "features", "book", "journal"):
        assert port in ports, ports
    page.screenshot(path=str(SHOTS / "order-trace.png"))


def test_verify_from_the_page_is_bit_for_bit_identical(page: Any, site: str) -> None:
    open_run(page, site, TRADED)
    page.click("#verify-button")
    found = page.wait_for_selector("#verify-identical", timeout=WAIT_MS)
    assert found.inner_text().startswith("bit-for-bit identical:")
    page.locator("#verify").screenshot(path=str(SHOTS / "verified.png"))
    page.goto(site)
    row = page.locator("#runs tr", has=page.locator(f"a[href='/runs/{TRADED}']"))
    assert "identical" in row.inner_text()
    page.screenshot(path=str(SHOTS / "runs.png"))


def test_a_tampered_journal_shows_the_divergence(
    page: Any, site: str, dashboard_demo: Path
) -> None:
    open_run(page, site, TAMPERED)
    page.click("#verify-button")
    page.wait_for_selector("#divergence", timeout=WAIT_MS)
    heading = page.inner_text("#divergence h3")
    assert f"caused by journal offset {tampered_offset(dashboard_demo)}" in heading
    assert page.locator("#divergence-fields tr.diff").count() >= 1
    assert "market.order_added" in page.inner_text("#divergence-journal")
    page.locator("#verify").screenshot(path=str(SHOTS / "divergence.png"))
    page.click("#divergence-trace")
    page.wait_for_url("**/trace/**", timeout=WAIT_MS)
    assert page.locator("ul.trace .port", has_text="journal").count() >= 1


def number(page: Any, selector: str) -> int:
    return int(page.inner_text(selector).replace(",", ""))


def test_live_page_follows_a_growing_journal_and_journals_a_halt(
    page: Any, samples_master: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(samples_master, data, ignore=shutil.ignore_patterns("writer.lock"))
    feed = LiveFeed(data, "demo-wdo", "live-wdo", history=1900, burst=5, close=False)
    feed.start(pause=0.1)
    run = threading.Thread(
        target=execute,
        args=(feed.log, "live-wdo", RunConfig()),
        kwargs={"pipelines": SHIPPED, "run_id": "live-1", "follow": True},
        daemon=True,
    )
    run.start()
    settings = WebSettings(data=data, pipelines=SHIPPED, control=True, operator="test")
    try:
        with served(create_app(settings)) as site:
            page.goto(f"{site}/live/live-wdo")
            page.wait_for_selector("#processed[data-offset]", timeout=WAIT_MS)
            feed.go.set()
            first = number(page, "#t-end")
            page.wait_for_function(
                f"() => Number(document.getElementById('t-end').textContent"
                f".replace(/,/g, '')) > {first}",
                timeout=WAIT_MS,
            )  # the page moves as the journal grows
            assert page.inner_text("#live-state") == "live"
            latency = page.inner_text("#t-latency")  # the feed's venue delays are 1.5-12 ms
            p50 = float(latency.split("/")[0])
            assert 1.0 <= p50 <= 13.0, latency
            page.wait_for_selector("#rejections tr", timeout=WAIT_MS)  # late in the session
            assert page.locator("#decisions tbody tr").count() >= 1
            page.click("button[data-command='halt']")
            page.wait_for_function(
                "() => document.getElementById('control-note').textContent"
                ".includes('journaled at')",
                timeout=WAIT_MS,
            )
            page.wait_for_selector("#commands li", timeout=WAIT_MS)
            assert "control.halt_trading by test" in page.inner_text("#commands")
            page.wait_for_function(
                "() => document.getElementById('live-state').textContent === 'halted by operator'",
                timeout=WAIT_MS,
            )
            page.screenshot(path=str(SHOTS / "live.png"), full_page=True)
    finally:
        feed.stop.set()
        feed.join()
        feed.close_session()
        run.join(timeout=120)
    assert not run.is_alive()
