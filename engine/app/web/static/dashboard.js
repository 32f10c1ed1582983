// The dashboard's pages. Charts are Apache ECharts (vendored, see static/vendor/vendor.json);
// this file only fetches data from the server and hands it to ECharts as options.
"use strict";

const TOKEN = document.querySelector('meta[name="tapedeck-token"]').content;
const POINTS = 2000;
const COLORS = { buy: "#0f9d58", sell: "#d93025", fill: "#e11d9b", mid: "#2457c5" };

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function postJSON(url, payload) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "X-Tapedeck-Token": TOKEN, "Content-Type": "application/json" },
    body: JSON.stringify(payload || {}),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function fmtTime(ms) {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", " UTC");
}

function fmtNum(x, digits) {
  if (x === null || x === undefined || Number.isNaN(x)) return "-";
  return Number(x).toLocaleString("en-US", { maximumFractionDigits: digits ?? 4 });
}

function fillTable(table, head, rows) {
  table.replaceChildren(
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))),
  );
}

// --- charts ------------------------------------------------------------------------------

function baseOption(title, range) {
  return {
    animation: false,
    useUTC: true,
    title: { text: title, left: 8, top: 4, textStyle: { fontSize: 13 } },
    legend: { top: 4, right: 8 },
    grid: { left: 70, right: 60, top: 52, bottom: 28 },
    tooltip: { trigger: "axis" },
    xAxis: { type: "time", min: range[0], max: range[1] },
    dataZoom: [{ type: "inside", filterMode: "none" }],
  };
}

function line(id, name, data, extra) {
  return { id, name, type: "line", data, showSymbol: false, sampling: undefined, lineStyle: { width: 1.2 }, ...extra };
}

function markerData(markers, field) {
  return markers.points.map((p) => ({
    value: [p.ms, p.price],
    offset: p.offset,
    port: field,
    symbolRotate: field === "orders" && p.side < 0 ? 180 : 0,
    itemStyle: field === "orders" ? { color: p.side > 0 ? COLORS.buy : COLORS.sell } : undefined,
    info: p,
  }));
}

function markerTip(params) {
  const p = params.data && params.data.info;
  if (!p) return "";
  const what = params.seriesId === "fills" ? `fill of order ${p.order_id}` : `order ${p.order_id} ${p.kind}`;
  return `${what} (${p.purpose})<br>${p.side > 0 ? "buy" : "sell"} ${fmtNum(p.size, 8)} @ ${fmtNum(p.price, 8)}<br>${fmtTime(p.ms)}<br><i>click: causal trace</i>`;
}

const CHARTS = {
  price(summary, c) {
    const areas = ((summary.card && summary.card.periods) || []).map((p) => [
      { name: p.label, xAxis: p.start, itemStyle: { color: p.label.startsWith("in-sample") ? "rgba(255,170,0,0.13)" : "rgba(36,87,197,0.08)" } },
      { xAxis: p.end },
    ]);
    return {
      tooltip: { trigger: "item", formatter: markerTip },
      yAxis: { type: "value", scale: true, name: summary.instrument.currency },
      series: [
        line("mid", "mid", c.lines.mid || [], { color: COLORS.mid, markArea: { silent: true, label: { fontSize: 10 }, data: areas } }),
        { id: "orders", name: "orders", type: "scatter", symbol: "triangle", symbolSize: 11, z: 5, color: COLORS.buy, data: markerData(c.orders, "orders") },
        { id: "fills", name: "fills", type: "scatter", symbol: "diamond", symbolSize: 14, z: 6, color: COLORS.fill, itemStyle: { borderColor: "#fff", borderWidth: 1 }, data: markerData(c.fills, "executions") },
      ],
    };
  },
  equity(summary, c) {
    return {
      yAxis: [{ type: "value", scale: true, name: summary.instrument.currency }, { type: "value", name: "drawdown %", max: 0 }],
      series: [
        line("equity", "equity", c.lines.equity || [], { color: "#0b7285" }),
        line("drawdown", "drawdown %", c.lines.drawdown || [], { yAxisIndex: 1, color: COLORS.sell, areaStyle: { opacity: 0.15 } }),
      ],
    };
  },
  position(summary, c) {
    return { yAxis: { type: "value", name: summary.instrument.symbol }, series: [line("position", "position", c.lines.position || [], { step: "end", color: "#5f3dc4" })] };
  },
  decisions(summary, c) {
    const min = summary.min_confidence;
    return {
      yAxis: { type: "value", min: 0, max: 1 },
      series: [
        { id: "buy confidence", name: "buy", type: "scatter", symbolSize: 4, large: true, largeThreshold: 500, color: COLORS.buy, data: c.lines["buy confidence"] || [],
          markLine: min ? { silent: true, symbol: "none", data: [{ yAxis: min, name: "min confidence" }], label: { formatter: "min confidence {c}" } } : undefined },
        { id: "sell confidence", name: "sell", type: "scatter", symbolSize: 4, large: true, largeThreshold: 500, color: COLORS.sell, data: c.lines["sell confidence"] || [] },
      ],
    };
  },
  probs(summary, c) {
    return {
      yAxis: { type: "value", min: 0, max: 1 },
      series: ["p(down)", "p(flat)", "p(up)"].map((n, i) => line(n, n, c.lines[n] || [], { color: [COLORS.sell, "#868e96", COLORS.buy][i] })),
    };
  },
  votes(summary, c) {
    return {
      yAxis: { type: "value", min: -1, max: 1 },
      series: ["order_flow", "liquidity", "tape_reading", "footprint"].map((n) => line(n, n, c.lines[n] || [])),
    };
  },
};

function seriesData(name, c) {
  if (name === "orders" || name === "fills") return markerData(c[name], name === "orders" ? "orders" : "executions");
  return c.lines[name] || [];
}

function sampleNote(c) {
  const shown = Object.values(c.lines).reduce((n, l) => n + l.length, 0);
  return shown < c.raw_points
    ? `showing ${fmtNum(shown, 0)} of ${fmtNum(c.raw_points, 0)} points (downsampled on the server; zoom in with the mouse wheel for full resolution)`
    : `full resolution: ${fmtNum(c.raw_points, 0)} points`;
}

function buildCharts(summary, c, runId) {
  const range = summary.time_range || [0, 1];
  const charts = {};
  for (const [name, make] of Object.entries(CHARTS)) {
    const node = document.getElementById(`chart-${name}`);
    const chart = echarts.init(node, null, { renderer: "canvas" });
    chart.setOption({ ...baseOption(node.dataset.title, range), ...make(summary, c) });
    chart.group = "run";
    charts[name] = chart;
  }
  charts.price.setOption({ dataZoom: [{ type: "inside", filterMode: "none" }, { type: "slider", filterMode: "none", height: 18, bottom: 4 }], grid: { bottom: 48 } });
  charts.price.on("click", (params) => {
    if (params.data && params.data.port) window.location.href = `/runs/${runId}/trace/${params.data.port}/${params.data.offset}`;
  });
  echarts.connect("run");
  let timer = null;
  charts.price.on("datazoom", () => {
    clearTimeout(timer);
    timer = setTimeout(() => refetch(charts, runId, range), 250);
  });
  window.tapedeckCharts = charts;
  return charts;
}

async function refetch(charts, runId, range) {
  const dz = charts.price.getOption().dataZoom[0];
  const span = range[1] - range[0];
  const start = dz.startValue ?? range[0] + (span * dz.start) / 100;
  const end = dz.endValue ?? range[0] + (span * dz.end) / 100;
  const c = await getJSON(`/api/runs/${runId}/charts?points=${POINTS}&start=${start}&end=${end}`);
  for (const chart of Object.values(charts)) {
    const series = chart.getOption().series.map((s) => ({ id: s.id, data: seriesData(s.id, c) }));
    chart.setOption({ series });
  }
  document.getElementById("sample-note").textContent = sampleNote(c);
}

function renderRejections(summary) {
  const chart = echarts.init(document.getElementById("chart-rejections"));
  const reasons = Object.entries(summary.rejections);
  chart.setOption({
    animation: false,
    grid: { left: 140, right: 30, top: 10, bottom: 24 },
    tooltip: {},
    xAxis: { type: "value" },
    yAxis: { type: "category", data: reasons.map((r) => r[0]) },
    series: [{ type: "bar", data: reasons.map((r) => r[1]), color: COLORS.sell, label: { show: true, position: "right" } }],
  });
}

function renderReport(summary) {
  const table = document.getElementById("report");
  if (!summary.report) {
    table.replaceChildren();
    document.getElementById("report-note").textContent = "this pipeline does not trade";
    return;
  }
  table.replaceChildren(...summary.report.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v))));
  document.getElementById("report-note").textContent = "baseline: not trading keeps the starting equity (net PnL 0).";
}

function renderCard(summary) {
  const box = document.getElementById("card");
  const card = summary.card;
  if (!card) {
    box.replaceChildren(el("p", { class: "note" }, summary.bundle ? "the bundle is not in the model store" : "no model bundle: the online model only (no in-sample period)"));
    return;
  }
  const metrics = el("table", {});
  fillTable(metrics, ["model", "holdout rows", "accuracy", "baseline accuracy", "log loss"],
    Object.entries(card.metrics).map(([role, m]) => [role, fmtNum(m.rows, 0), fmtNum(m.accuracy, 3), fmtNum(m.baseline_accuracy, 3), fmtNum(m.log_loss, 3)]));
  const lines = [
    el("p", {}, `bundle ${summary.bundle.slice(0, 16)} trained on session ${card.session} (labels run ${card.labels_run}, until ${card.until})`),
    el("p", {}, `training rows: ${fmtNum(card.train.rows, 0)}, ${fmtTime(card.train.first_ts / 1e6)} .. ${fmtTime(card.train.last_ts / 1e6)}; holdout: ${fmtNum(card.holdout.rows, 0)}, ${fmtTime(card.holdout.first_ts / 1e6)} .. ${fmtTime(card.holdout.last_ts / 1e6)}`),
    metrics,
  ];
  box.replaceChildren(...lines);
  const note = document.getElementById("in-sample-note");
  if (card.same_session) {
    const inSample = card.periods[0];
    const fillsInside = summary.fills.filter((f) => f.ts / 1e6 >= inSample.start && f.ts / 1e6 <= inSample.end).length;
    note.textContent = `In-sample warning: this run is of the session its models were trained on. The shaded orange span is in-sample (${fillsInside} of ${summary.fills_total} fills fall inside it); only results outside it are out-of-sample. The blue span is the card's holdout.`;
  } else {
    note.textContent = `Out-of-sample: the models were trained on another session (${card.session}).`;
  }
  note.hidden = false;
}

async function renderDrift(runId) {
  const box = document.getElementById("drift");
  const d = await getJSON(`/api/runs/${runId}/drift`);
  if (!d.available) { box.textContent = d.reason; return; }
  const table = el("table", {});
  fillTable(table, ["feature", "PSI", "training mean", "run mean"],
    d.features.slice(0, 12).map((f) => [f.feature, fmtNum(f.psi, 3), fmtNum(f.train_mean, 5), fmtNum(f.run_mean, 5)]));
  box.replaceChildren(el("p", { class: "note" }, "population stability index: < 0.1 stable, > 0.25 a large shift"), table);
}

function traceLink(runId, port, offset, text) {
  return el("a", { href: `/runs/${runId}/trace/${port}/${offset}`, class: "trace-link" }, text);
}

function renderTables(summary, runId) {
  fillTable(document.getElementById("orders"), ["time (UTC)", "order", "side", "kind", "purpose", "price", "size", "trace"],
    summary.orders.map((o) => [fmtTime(o.ts / 1e6), o.order_id, o.side > 0 ? "buy" : "sell", o.kind, o.purpose, fmtNum(o.price, 8), fmtNum(o.size, 8), traceLink(runId, "orders", o.offset, `orders #${o.offset}`)]));
  fillTable(document.getElementById("fills"), ["time (UTC)", "order", "side", "purpose", "price", "size", "liquidity", "fee", "trace"],
    summary.fills.map((f) => [fmtTime(f.ts / 1e6), f.order_id, f.side > 0 ? "buy" : "sell", f.purpose, fmtNum(f.price, 8), fmtNum(f.size, 8), f.liquidity, fmtNum(f.fee, 6), traceLink(runId, "executions", f.offset, `executions #${f.offset}`)]));
}

// --- verification -------------------------------------------------------------------------

function showVerification(job) {
  const state = document.getElementById("verify-state");
  const box = document.getElementById("verify-result");
  state.className = `verify-${job.state}`;
  if (job.state === "queued" || job.state === "running") {
    const p = job.progress || {};
    state.textContent = p.stop ? `replaying: journal offset ${fmtNum(p.offset, 0)} of ${fmtNum(p.stop, 0)}` : "replaying...";
    box.replaceChildren();
    return false;
  }
  if (job.state === "failed") {
    state.textContent = `verification failed: ${job.error}`;
    return true;
  }
  const r = job.result;
  const warnings = r.code_differences.map((d) => el("p", { class: "warn" }, `warning: code differs from the run's manifest: ${d}`));
  if (r.identical) {
    state.textContent = "";
    box.replaceChildren(...warnings, el("p", { class: "ok", id: "verify-identical" },
      `bit-for-bit identical: ${fmtNum(r.events, 0)} events in ${r.topics} topics (outputs hash ${r.outputs_hash.slice(0, 16)})`));
    return true;
  }
  state.textContent = "";
  box.replaceChildren(...warnings, divergenceView(r));
  return true;
}

function divergenceView(r) {
  const ports = el("table", {});
  fillTable(ports, ["topic", "recorded events", "recorded chain", "replayed events", "replayed chain"],
    r.differing.map((p) => [p.port, fmtNum(p.recorded_count, 0), (p.recorded_chain || "-").slice(0, 16), fmtNum(p.replayed_count, 0), p.replayed_chain.slice(0, 16)]));
  const parts = [el("p", { class: "bad" }, `replay diverged in ${r.differing.length} of ${r.topics} topics: ${r.differing.map((p) => p.port).join(", ")}`), ports];
  const d = r.divergence;
  if (!d) {
    parts.push(el("p", {}, "the run's own output topics are gone, so only counts and hashes can be compared"));
    return el("div", { class: "divergence", id: "divergence" }, ...parts);
  }
  parts.push(el("h3", {}, `first divergence: topic ${d.topic} offset ${d.offset}, caused by journal offset ${d.cause}`));
  if (d.missing) parts.push(el("p", {}, `the ${d.missing === "recorded" ? "recorded run" : "replay"} has no event at this offset`));
  const fields = el("table", { id: "divergence-fields" });
  fillTable(fields, ["field", "recorded run", "replay"], d.fields.map((f) => [f.name, JSON.stringify(f.recorded), JSON.stringify(f.replayed)]));
  d.fields.forEach((f, i) => { if (f.differs) fields.tBodies[0].rows[i].className = "diff"; });
  parts.push(fields);
  if (d.journal_event) {
    const journal = el("table", { class: "kv", id: "divergence-journal" });
    journal.replaceChildren(...Object.entries(d.journal_event).map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, JSON.stringify(v)))));
    parts.push(el("p", {}, `journal event ${d.cause} (${d.journal_topic}) that caused it:`), journal);
  }
  if (d.trace) parts.push(el("p", {}, el("a", { href: d.trace, id: "divergence-trace" }, "causal trace of the recorded event")));
  return el("div", { class: "divergence", id: "divergence" }, ...parts);
}

async function pollVerification(runId) {
  const job = await getJSON(`/api/runs/${runId}/verify`);
  if (job.state !== "none" && !showVerification(job)) setTimeout(() => pollVerification(runId), 400);
}

function setupVerify(runId) {
  const button = document.getElementById("verify-button");
  button.addEventListener("click", async () => {
    try {
      showVerification(await postJSON(`/api/runs/${runId}/verify`));
      setTimeout(() => pollVerification(runId), 400);
    } catch (e) {
      document.getElementById("verify-state").textContent = `cannot verify: ${e.message}`;
    }
  });
  pollVerification(runId);
}

async function runPage() {
  const runId = document.body.dataset.run;
  const started = performance.now();
  const [summary, c] = await Promise.all([getJSON(`/api/runs/${runId}`), getJSON(`/api/runs/${runId}/charts?points=${POINTS}`)]);
  buildCharts(summary, c, runId);
  renderRejections(summary);
  renderReport(summary);
  renderCard(summary);
  renderTables(summary, runId);
  document.getElementById("sample-note").textContent = sampleNote(c);
  document.body.dataset.renderMs = String(Math.round(performance.now() - started));
  document.body.dataset.readyMs = String(Math.round(performance.now())); // since navigation began
  document.body.dataset.ready = "1";
  setupVerify(runId);
  renderDrift(runId).catch((e) => { document.getElementById("drift").textContent = e.message; });
}

// --- live ---------------------------------------------------------------------------------

function livePage() {
  const session = document.body.dataset.session;
  const chart = echarts.init(document.getElementById("chart-live"));
  const history = { rate: [], lag: [] };
  chart.setOption({
    animation: false, useUTC: true, legend: { top: 4, right: 8 }, tooltip: { trigger: "axis" },
    title: { text: "events/s and lag", left: 8, top: 4, textStyle: { fontSize: 13 } },
    grid: { left: 70, right: 60, top: 52, bottom: 28 },
    xAxis: { type: "time" }, yAxis: [{ type: "value", name: "events/s" }, { type: "value", name: "lag (events)" }],
    series: [line("rate", "journal events/s", []), line("lag", "lag", [], { yAxisIndex: 1 })],
  });
  for (const button of document.querySelectorAll("button.cmd")) {
    button.addEventListener("click", async () => {
      const note = document.getElementById("control-note");
      try {
        const r = await postJSON(`/api/live/${session}/control/${button.dataset.command}`);
        note.textContent = `${r.command} journaled at offset ${fmtNum(r.journal_offset, 0)}`;
      } catch (e) {
        note.textContent = `not journaled: ${e.message}`;
      }
    });
  }
  const source = new EventSource(`/api/live/${session}/stream`);
  source.addEventListener("status", (message) => {
    const s = JSON.parse(message.data);
    showLive(s, chart, history);
  });
  source.onerror = () => { document.getElementById("live-state").textContent = "reconnecting..."; };
}

function showLive(s, chart, history) {
  const j = s.journal, run = s.run;
  const state = document.getElementById("live-state");
  state.textContent = j.closed ? "session closed" : j.halted ? "halted by operator" : "live";
  state.className = `pill ${j.closed ? "" : j.halted ? "halted" : "live"}`;
  document.getElementById("t-journal-rate").textContent = fmtNum(j.events_per_s, 1);
  document.getElementById("t-end").textContent = fmtNum(j.end, 0);
  const lat = s.latency;
  document.getElementById("t-latency").textContent = lat.samples ? `${fmtNum(lat.feed_p50_ms, 2)} / ${fmtNum(lat.feed_p99_ms, 2)} ms` : "-";
  for (const button of document.querySelectorAll("button.cmd")) button.disabled = !s.control || j.closed;
  document.getElementById("commands").replaceChildren(...s.commands.map((c) => el("li", {}, `${fmtTime(c.ms)} ${c.type} by ${c.operator}${c.reason ? ": " + c.reason : ""}`)));
  const now = s.served_ms;
  history.rate.push([now, j.events_per_s]);
  if (run) history.lag.push([now, run.lag_events]);
  for (const h of Object.values(history)) if (h.length > 240) h.shift();
  chart.setOption({ series: [{ id: "rate", data: history.rate }, { id: "lag", data: history.lag }] });
  if (!run) { document.getElementById("live-run").textContent = "no run of this session yet: start `tape run SESSION --follow`"; return; }
  const through = run.processed < 0 ? "no output appended yet" : `processed through journal offset ${fmtNum(run.processed, 0)}`;
  document.getElementById("live-run").replaceChildren("run ", el("a", { href: `/runs/${run.run_id}` }, run.run_id), ` (${run.status}), `, el("span", { id: "processed", "data-offset": String(run.processed) }, through));
  document.getElementById("t-run-rate").textContent = fmtNum(run.events_per_s, 1);
  document.getElementById("t-lag").textContent = run.lag_seconds === null ? `${fmtNum(run.lag_events, 0)} events` : `${fmtNum(run.lag_events, 0)} events / ${fmtNum(run.lag_seconds, 3)} s`;
  document.getElementById("t-orders").textContent = `${run.orders} / ${run.fills}`;
  const p = run.portfolio;
  const scale = Math.pow(10, -s.instrument.size_scale);
  document.getElementById("t-position").textContent = p ? fmtNum(p.position * scale, 8) : "-";
  document.getElementById("t-pnl").textContent = p ? `${fmtNum(p.net_pnl, 2)} ${s.instrument.currency}` : "-";
  fillTable(document.getElementById("decisions"), ["time (UTC)", "direction", "confidence", "score", "outcome"],
    run.decisions.map((d) => [fmtTime(d.ms), d.direction > 0 ? "buy" : "sell", fmtNum(d.confidence, 3), fmtNum(d.score, 3), d.outcome]));
  document.getElementById("rejections").replaceChildren(...Object.entries(run.rejections).map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, fmtNum(v, 0)))));
}

// --- SQL ----------------------------------------------------------------------------------

function queryPage() {
  document.getElementById("run-sql").addEventListener("click", async () => {
    const state = document.getElementById("sql-state");
    state.textContent = "running...";
    try {
      const r = await postJSON("/api/query", { sql: document.getElementById("sql").value });
      fillTable(document.getElementById("sql-result"), r.columns, r.rows.map((row) => row.map((v) => (v === null ? "NULL" : v))));
      state.textContent = `${fmtNum(r.total_rows, 0)} rows in ${fmtNum(r.seconds, 3)} s`;
    } catch (e) {
      state.textContent = e.message;
    }
  });
}

const PAGES = { run: runPage, live: livePage, query: queryPage };
window.addEventListener("DOMContentLoaded", () => {
  const page = PAGES[document.body.dataset.page];
  if (page) page();
});
