"""`tape serve`'s JSON API and pages on a demo data directory (docs/dashboard.md)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
from starlette.testclient import TestClient

from engine.app.analysis import topic_frame
from engine.app.pipelines import SHIPPED
from engine.app.web import WebSettings, create_app
from engine.events import decode
from engine.events.control import HaltTrading
from engine.log import EmbeddedLog
from engine.log.journal import JournalWriter, journal_topic
from engine.runtime import read_manifest
from engine.runtime.runs import session_opened
from tests.dashboard_support import TAMPERED, TRADED, tampered_offset, tape

BASE = "http://127.0.0.1:8765"


def client(data: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(WebSettings(data=data, pipelines=SHIPPED, **settings)), BASE)


@pytest.fixture(scope="module")
def api(dashboard_demo: Path) -> TestClient:
    with client(dashboard_demo, token="t0ken") as c:
        yield c


def verified(api: TestClient, run_id: str) -> dict[str, Any]:
    started = api.post(f"/api/runs/{run_id}/verify", headers={"X-Tapedeck-Token": "t0ken"})
    assert started.status_code == 200, started.text
    deadline = time.monotonic() + 180
    while (job := api.get(f"/api/runs/{run_id}/verify").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def test_lists_sessions_and_runs_with_status_bundle_and_hash(api: TestClient) -> None:
    runs = {r["run_id"]: r for r in api.get("/api/runs").json()}
    manifest = read_manifest(api.app.state.dashboard.log.root, TRADED)
    assert runs[TRADED]["status"] == "complete"
    assert runs[TRADED]["bundle"] == manifest.models["bundle"]
    assert runs[TRADED]["outputs_hash"] == manifest.outputs_hash
    assert runs[TRADED]["events"] == sum(o.count for o in manifest.outputs)
    page = api.get("/")
    assert page.status_code == 200
    assert TRADED in page.text
    assert "demo-btcusdt-spot-day" in page.text


def test_run_summary_has_report_fills_and_the_in_sample_period(api: TestClient) -> None:
    summary = api.get(f"/api/runs/{TRADED}").json()
    manifest = read_manifest(api.app.state.dashboard.log.root, TRADED)
    report = manifest.report["trading"]
    assert summary["fills_total"] == report["fills"] > 0
    risk = topic_frame(EmbeddedLog(api.app.state.dashboard.log.root), f"run.{TRADED}.risk")
    rejected = risk.filter(pl.col("type") == "risk.decision_rejected")["reason"].value_counts()
    assert summary["rejections"] == dict(zip(rejected["reason"], rejected["count"], strict=True))
    assert dict(summary["report"])["fills"].startswith(str(report["fills"]))
    card = summary["card"]
    assert card["same_session"] is True
    labels = [p["label"] for p in card["periods"]]
    assert labels[0].startswith("in-sample")
    assert labels[1].startswith("out-of-sample")
    assert card["periods"][0]["end"] < card["periods"][1]["start"]


def test_charts_are_downsampled_and_full_resolution_in_a_small_window(api: TestClient) -> None:
    whole = api.get(f"/api/runs/{TRADED}/charts?points=200").json()
    mids = read_manifest(api.app.state.dashboard.log.root, TRADED).outputs
    mid_count = next(o.count for o in mids if o.port == "mid")
    assert mid_count > 1000
    assert 100 <= len(whole["lines"]["mid"]) <= 200
    assert whole["lines"]["equity"]
    assert whole["fills"]["total"] > 0
    first, last = whole["lines"]["mid"][0][0], whole["lines"]["mid"][-1][0]
    # a window of 2 % of the run holds fewer than 200 mids: every one of them comes back
    start = first + (last - first) * 0.50
    end = first + (last - first) * 0.52
    window = api.get(f"/api/runs/{TRADED}/charts?points=200&start={start}&end={end}").json()
    times = [t for t, _ in window["lines"]["mid"]]
    assert times
    assert all(start <= t <= end for t in times)
    assert len(times) < 200
    finer = api.get(f"/api/runs/{TRADED}/charts?points=20000&start={start}&end={end}").json()
    assert [t for t, _ in finer["lines"]["mid"]] == times


def test_trace_of_an_order_reaches_the_journal(api: TestClient) -> None:
    tree = api.get(f"/api/runs/{TRADED}/trace/orders/0").json()
    assert tree["port"] == "orders"
    assert tree["event"]["type"] == "orders.order_submitted@1"

    def ports(node: dict[str, Any]) -> set[str]:
        return {node["port"]}.union(*(ports(c) for c in node["inputs"]))

    assert {"decisions", "votes", "predictions", "features", "journal"} <= ports(tree)
    page = api.get(f"/runs/{TRADED}/trace/orders/0")
    assert page.status_code == 200
    assert "market." in page.text


def test_verify_from_the_api_is_bit_for_bit_identical(api: TestClient) -> None:
    job = verified(api, TRADED)
    assert job["state"] == "identical", job
    manifest = read_manifest(api.app.state.dashboard.log.root, TRADED)
    assert job["result"]["events"] == sum(o.count for o in manifest.outputs)
    assert job["result"]["outputs_hash"] == manifest.outputs_hash
    runs = {r["run_id"]: r for r in api.get("/api/runs").json()}
    assert runs[TRADED]["verification"] == "identical"
    assert not (api.app.state.dashboard.log.root / "scratch").exists()  # nothing written


def test_a_tampered_journal_shows_the_first_divergence(api: TestClient) -> None:
    job = verified(api, TAMPERED)
    assert job["state"] == "diverged", job
    d = job["result"]["divergence"]
    tampered = tampered_offset(api.app.state.dashboard.log.root)
    assert d["cause"] == tampered
    assert d["journal_event"]["type"] == "market.order_added@1"
    differing = [f["name"] for f in d["fields"] if f["differs"]]
    assert differing
    assert "cause" not in differing
    assert d["trace"] == f"/runs/{TAMPERED}/trace/{d['port']}/{d['offset']}"
    assert api.get(d["trace"]).status_code == 200


def test_feature_drift_of_the_bundle_inputs(api: TestClient) -> None:
    drift = api.get(f"/api/runs/{TRADED}/drift").json()
    assert drift["available"] is True
    psi = [f["psi"] for f in drift["features"]]
    assert len(psi) > 10
    assert psi == sorted(psi, reverse=True)
    assert api.get(f"/api/runs/{TAMPERED}/drift").json()["available"] is False


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/runs/..%2F..%2Fetc", 404),  # the router never matches an encoded slash
        ("/api/runs/a.b", 400),
        ("/api/runs/" + "x" * 101, 400),
        ("/api/runs/no-such-run", 404),
        (f"/api/runs/{TRADED}/trace/orders/-1", 400),
        (f"/api/runs/{TRADED}/trace/orders/1e3", 400),
        (f"/api/runs/{TRADED}/trace/orders/99999999", 409),
        (f"/api/runs/{TRADED}/trace/..%2Fjournal/0", 404),
        (f"/api/runs/{TRADED}/trace/Orders/0", 400),
        (f"/api/runs/{TRADED}/trace/nosuchport/0", 404),
        (f"/api/runs/{TRADED}/charts?start=nan", 400),
        (f"/api/runs/{TRADED}/charts?start=1e300", 400),
        (f"/api/runs/{TRADED}/charts?points=5", 400),
        ("/live/..%2F..", 404),
        ("/live/.hidden", 400),
        ("/live/no-such-session", 404),
        ("/static/../settings.py", 404),
        ("/static/%2e%2e/settings.py", 404),
    ],
)
def test_every_path_parameter_is_validated(api: TestClient, path: str, status: int) -> None:
    response = api.get(path)
    assert response.status_code == status, response.text


def test_security_headers_host_check_and_token(api: TestClient) -> None:
    page = api.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert 'name="tapedeck-token" content="t0ken"' in page.text
    missing = api.get("/runs/no-such-run")  # a page says so as a page
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "no run &#x27;no-such-run&#x27; in this data directory" in missing.text  # escaped
    rebound = api.get("/api/runs", headers={"Host": "evil.example:8765"})
    assert rebound.status_code == 400
    assert api.post(f"/api/runs/{TRADED}/verify").status_code == 400
    wrong = api.post(f"/api/runs/{TRADED}/verify", headers={"X-Tapedeck-Token": "guess"})
    assert wrong.status_code == 400


def test_operator_commands_need_control_and_are_journaled(
    dashboard_demo: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(dashboard_demo, data, ignore=shutil.ignore_patterns("writer.lock"))
    opened = session_opened(EmbeddedLog(data), "demo-wdo")
    writer = JournalWriter(EmbeddedLog(data), "open-wdo")  # a session still open
    writer.event(msgspec.structs.replace(opened, session="open-wdo"))
    writer.close()
    topic = journal_topic("open-wdo")
    headers = {"X-Tapedeck-Token": "k"}
    with client(data, token="k") as read_only:
        refused = read_only.post("/api/live/open-wdo/control/halt", headers=headers)
        assert refused.status_code == 403
        assert "--control" in refused.json()["error"]
    before = EmbeddedLog(data).watermarks(topic)[1]
    with client(data, token="k", control=True, operator="alice") as c:
        assert c.post("/api/live/open-wdo/control/halt").status_code == 400  # no token
        assert c.post("/api/live/open-wdo/control/explode", headers=headers).status_code == 404
        done = c.post("/api/live/open-wdo/control/halt", headers=headers).json()
        closed = c.post("/api/live/demo-btcusdt-spot/control/halt", headers=headers)
        assert closed.status_code == 409
        assert "closed" in closed.json()["error"]
        status = c.get("/api/live/open-wdo").json()
    assert done["journal_offset"] == before
    batch = EmbeddedLog(data).reader(topic).read(before, 1)
    event = decode(batch.values()[0])
    assert isinstance(event, HaltTrading)
    assert event.operator == "alice"
    assert status["journal"]["halted"] is True
    assert status["commands"][-1]["type"] == "control.halt_trading"


def test_sql_page_is_read_only(dashboard_demo: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(dashboard_demo, data, ignore=shutil.ignore_patterns("writer.lock"))
    tape(data, "db", "upgrade")
    tape(data, "project", TAMPERED)
    url = f"sqlite:///{data / 'store.sqlite'}"
    headers = {"X-Tapedeck-Token": "k"}
    with client(data, token="k", db_url=url) as c:
        rows = c.post("/api/query", json={"sql": "SELECT run_id FROM runs"}, headers=headers)
        assert rows.json()["rows"] == [[TAMPERED]]
        write = c.post("/api/query", json={"sql": "DELETE FROM runs"}, headers=headers)
        assert write.status_code == 409
        assert "read-only" in write.json()["error"]
        again = c.post("/api/query", json={"sql": "SELECT count(*) FROM runs"}, headers=headers)
        assert again.json()["rows"] == [[1]]
        assert c.post("/api/query", json={"sql": "SELECT 1"}).status_code == 400  # no token
