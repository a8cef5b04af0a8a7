// The live dashboard, one self-contained page: inline CSS and script, SVG charts drawn by
// hand, system fonts only, so it works offline and from a loopback-only admin port. It
// reads dashboard.json once and then follows dashboard/events (SSE), falling back to
// polling. Request paths are attacker-controlled text: the script only ever sets them
// through textContent, never innerHTML.
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Sluice — live</title>
<style>
  :root { --bg:#0f1419; --panel:#171d24; --line:#2a323c; --text:#d7dde4; --muted:#8793a0;
          --queue:#f0a030; --upstream:#3d8bfd; --body:#a371f7; --coalesce:#2bb3a3; --job:#d9534f; --gateway:#6b7785;
          --busy:#3d8bfd; --waiting:#f0a030; --bad:#f26b5b; --good:#4cc38a; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--text);
         font: 14px/1.4 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", sans-serif; }
  header { display:flex; align-items:baseline; gap:16px; padding:14px 20px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; letter-spacing:.5px; }
  header .meta { color:var(--muted); font-size:12px; }
  #conn::before { content:"●"; margin-right:4px; color:var(--muted); }
  #conn.live::before { color:var(--good); }
  main { padding:16px 20px; display:grid; gap:16px; grid-template-columns: repeat(12, 1fr); }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; min-width:0; }
  section h2 { margin:0 0 8px; font-size:12px; font-weight:600; color:var(--muted); text-transform:uppercase; letter-spacing:.8px; }
  .card { grid-column: span 3; }
  .wide { grid-column: span 6; }
  .full { grid-column: span 12; }
  .big { font-size:30px; font-weight:600; font-variant-numeric: tabular-nums; }
  .big small { font-size:16px; color:var(--muted); font-weight:400; }
  .sub { color:var(--muted); font-size:12px; margin-top:4px; font-variant-numeric: tabular-nums; }
  .server { display:grid; grid-template-columns: 1fr auto; gap:2px 8px; margin-top:8px; font-size:12px; }
  .server .url { color:var(--muted); overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
  .meter { grid-column: span 2; height:8px; background:#222a33; border-radius:4px; overflow:hidden; }
  .meter > div { height:100%; background:var(--busy); }
  svg { width:100%; height:170px; display:block; }
  svg text { fill:var(--muted); font-size:10px; }
  .legend { display:flex; gap:14px; font-size:12px; color:var(--muted); margin-top:4px; }
  .legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px; vertical-align:-1px; }
  table { width:100%; border-collapse:collapse; font-size:13px; font-variant-numeric: tabular-nums; }
  th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); }
  th { color:var(--muted); font-weight:500; font-size:12px; }
  td.num, th.num { text-align:right; }
  .share { height:6px; background:var(--upstream); border-radius:3px; min-width:1px; }
  .wf-row { display:grid; grid-template-columns: minmax(200px, 40%) 1fr 72px; gap:10px; align-items:center; padding:3px 0; font-size:12px; }
  .wf-label { overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
  .wf-label .st { color:var(--muted); margin-left:6px; }
  .wf-bar { display:flex; height:12px; background:#1d242c; border-radius:3px; overflow:hidden; }
  .wf-bar span { height:100%; }
  .wf-total { text-align:right; font-variant-numeric: tabular-nums; }
  .empty { color:var(--muted); font-size:12px; padding:6px 0; }
  @media (max-width: 1000px) { .card { grid-column: span 6; } .wide { grid-column: span 12; } }
</style>
</head>
<body>
<header>
  <h1>Sluice</h1>
  <span class="meta" id="conn">connecting</span>
  <span class="meta">updated <span id="updated">—</span></span>
  <span class="meta"><span id="samples">0</span> s of history</span>
  <span class="meta" id="cluster" hidden></span>
</header>
<main>
  <section class="card" id="card-slots">
    <h2>Slots in use</h2>
    <div class="big"><span id="slots-busy">—</span> <small>/ <span id="slots-total">—</span></small></div>
    <div id="servers"></div>
  </section>
  <section class="card" id="card-queue">
    <h2>Waiting for a slot</h2>
    <div class="big" id="queue-waiting">—</div>
    <div class="sub">oldest <span id="queue-oldest">—</span></div>
    <div class="sub" id="queue-by-priority"></div>
  </section>
  <section class="card" id="card-wait">
    <h2>Queue wait, last second</h2>
    <div class="big"><span id="wait-p50">—</span> <small>p50</small></div>
    <div class="sub">p99 <span id="wait-p99">—</span> · max <span id="wait-max">—</span></div>
    <div class="sub"><span id="rps">—</span> req/s · <span id="requests-total">0</span> total · <span id="shed-total">0</span> shed</div>
  </section>
  <section class="card" id="card-cache">
    <h2>Cache hit ratio, last minute</h2>
    <div class="big" id="cache-ratio">—</div>
    <div class="sub"><span id="cache-hits">0</span> hits of <span id="cache-lookups">0</span> lookups</div>
  </section>
  <section class="wide">
    <h2>Slots busy and queue depth</h2>
    <svg id="chart-load" viewBox="0 0 600 170" preserveAspectRatio="none" role="img" aria-label="slots busy and queue depth over time"></svg>
    <div class="legend"><span><i style="background:var(--busy)"></i>slots busy</span><span><i style="background:var(--waiting)"></i>waiting</span></div>
  </section>
  <section class="wide">
    <h2>Queue wait percentiles (ms)</h2>
    <svg id="chart-wait" viewBox="0 0 600 170" preserveAspectRatio="none" role="img" aria-label="queue wait p50 and p99 over time"></svg>
    <div class="legend"><span><i style="background:var(--upstream)"></i>p50</span><span><i style="background:var(--bad)"></i>p99</span></div>
  </section>
  <section class="wide">
    <h2>Top routes by slot time, last minute</h2>
    <table id="top-routes"><thead><tr><th>route</th><th class="num">slot time</th><th class="num">on a slot now</th><th style="width:35%">share of capacity</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="wide">
    <h2>Recent slow requests</h2>
    <div class="legend"><span><i style="background:var(--queue)"></i>queue</span><span><i style="background:var(--body)"></i>body</span><span><i style="background:var(--coalesce)"></i>coalesce</span><span><i style="background:var(--job)"></i>job</span><span><i style="background:var(--upstream)"></i>upstream</span><span><i style="background:var(--gateway)"></i>gateway</span></div>
    <div id="slow"></div>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms >= 1000) return (ms / 1000).toFixed(ms >= 10000 ? 1 : 2) + " s";
  if (ms >= 10) return Math.round(ms) + " ms";
  return ms.toFixed(1) + " ms";
}
function setText(id, value) { const el = $(id); if (el.textContent !== String(value)) el.textContent = String(value); }
function el(tag, props, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "text") node.textContent = v; else if (k === "style") node.style.cssText = v; else node.setAttribute(k, v);
  }
  for (const c of children || []) node.appendChild(c);
  return node;
}
function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function lineChart(svg, data, lines, windowS) {
  const W = 600, H = 170, L = 34, B = 16, T = 6;
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const now = data.length ? data[data.length - 1].t : Date.now();
  // The x axis grows with the history, from one minute up to the whole window.
  const spanS = Math.min(windowS, Math.max(60, data.length ? Math.ceil((now - data[0].t) / 1000) + 1 : 60));
  let max = 0;
  for (const p of data) for (const l of lines) max = Math.max(max, p[l.key]);
  max = niceMax(max);
  const x = (t) => L + (W - L) * (1 - (now - t) / (spanS * 1000));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  for (const f of [0, 0.5, 1]) {
    const g = document.createElementNS(SVG_NS, "line");
    g.setAttribute("x1", L); g.setAttribute("x2", W); g.setAttribute("y1", y(max * f)); g.setAttribute("y2", y(max * f));
    g.setAttribute("stroke", "#2a323c"); g.setAttribute("stroke-width", "1");
    svg.appendChild(g);
    const label = document.createElementNS(SVG_NS, "text");
    label.setAttribute("x", 2); label.setAttribute("y", y(max * f) + 3); label.textContent = String(Math.round(max * f * 10) / 10);
    svg.appendChild(label);
  }
  const ago = spanS >= 120 ? "-" + Math.round(spanS / 60) + " min" : "-" + spanS + " s";
  for (const [i, text] of [[0, ago], [1, "now"]]) {
    const label = document.createElementNS(SVG_NS, "text");
    label.setAttribute("x", i ? W - 22 : L); label.setAttribute("y", H - 3); label.textContent = text;
    svg.appendChild(label);
  }
  for (const l of lines) {
    const poly = document.createElementNS(SVG_NS, "polyline");
    poly.setAttribute("points", data.filter((p) => x(p.t) >= L).map((p) => x(p.t).toFixed(1) + "," + y(p[l.key]).toFixed(1)).join(" "));
    poly.setAttribute("fill", "none"); poly.setAttribute("stroke", l.color); poly.setAttribute("stroke-width", "1.6");
    poly.setAttribute("vector-effect", "non-scaling-stroke");
    svg.appendChild(poly);
  }
  svg.setAttribute("data-points", String(data.length));
}

function renderServers(servers) {
  const box = $("servers");
  box.replaceChildren(...servers.map((s) => el("div", { class: "server", "data-url": s.url }, [
    el("span", { class: "url", text: s.url, title: s.url }),
    el("span", { class: "count", text: s.busy + "/" + s.total }),
    el("div", { class: "meter" }, [el("div", { style: "width:" + (100 * s.busy / Math.max(1, s.total)).toFixed(1) + "%" })]),
  ])));
}

function renderTopRoutes(routes) {
  const body = $("top-routes").tBodies[0];
  if (!routes.length) { body.replaceChildren(el("tr", {}, [el("td", { class: "empty", colspan: "4", text: "no backend calls in the last minute" })])); return; }
  body.replaceChildren(...routes.map((r) => el("tr", { "data-route": r.route }, [
    el("td", { text: r.route }),
    el("td", { class: "num", text: fmtMs(r.slotMs) }),
    el("td", { class: "num", text: String(r.inflight) }),
    el("td", {}, [el("div", { class: "share", style: "width:" + Math.max(0.5, r.share * 100).toFixed(1) + "%" })]),
  ])));
}

function renderSlow(slow) {
  const box = $("slow");
  if (!slow.length) { box.replaceChildren(el("div", { class: "empty", text: "no requests in the last minute" })); return; }
  const max = Math.max(...slow.map((r) => r.totalMs), 1);
  box.replaceChildren(...slow.map((r) => {
    const gateway = Math.max(0, r.totalMs - r.queueMs - r.readBodyMs - r.coalesceMs - r.jobMs - r.upstreamMs);
    const parts = [["queue", r.queueMs], ["body", r.readBodyMs], ["coalesce", r.coalesceMs], ["job", r.jobMs], ["upstream", r.upstreamMs], ["gateway", gateway]];
    const title = parts.map(([n, v]) => n + " " + fmtMs(v)).join(" · ");
    return el("div", { class: "wf-row", "data-request-id": r.id, title: r.id + ": " + title }, [
      el("div", { class: "wf-label" }, [el("span", { text: r.status + " " + r.method + " " + r.path }), el("span", { class: "st", text: r.route + (r.cache ? " · " + r.cache : "") + (r.coalesce ? " · " + r.coalesce : "") })]),
      el("div", { class: "wf-bar" }, parts.filter(([, v]) => v > 0).map(([n, v]) => el("span", { class: "seg-" + n, style: "width:" + (100 * v / max).toFixed(2) + "%;background:var(--" + n + ")" }))),
      el("div", { class: "wf-total", text: fmtMs(r.totalMs) }),
    ]);
  }));
}

function render(d) {
  // Scale-out: which instance this is, and the cluster's slot use next to its own.
  if (d.cluster) {
    $("cluster").hidden = false;
    const busy = d.cluster.servers.map((s) => s.cluster_busy === null ? "?" : s.cluster_busy).join("+");
    setText("cluster", "instance " + d.cluster.instance + " · " + d.cluster.mode + " · cluster slots busy " + busy + " · " + (d.cluster.instances ?? "?") + " instances");
  }
  setText("slots-busy", d.slots.busy);
  setText("slots-total", d.slots.total);
  renderServers(d.slots.servers);
  setText("queue-waiting", d.queue.waiting);
  setText("queue-oldest", fmtMs(d.queue.oldestWaitMs));
  setText("queue-by-priority", Object.entries(d.queue.byPriority).filter(([, n]) => n > 0).map(([p, n]) => p + " " + n).join(" · ") || "no one waiting");
  const last = d.series.length ? d.series[d.series.length - 1] : null;
  setText("wait-p50", last ? fmtMs(last.waitP50) : "—");
  setText("wait-p99", last ? fmtMs(last.waitP99) : "—");
  setText("wait-max", last ? fmtMs(last.waitMax) : "—");
  setText("rps", last ? last.requests : 0);
  setText("requests-total", d.totals.requests);
  setText("shed-total", d.totals.shed);
  setText("cache-ratio", d.cache.hitRatio === null ? "—" : (d.cache.hitRatio * 100).toFixed(1) + " %");
  setText("cache-hits", d.cache.hits);
  setText("cache-lookups", d.cache.lookups);
  setText("samples", d.series.length);
  setText("updated", new Date(d.now).toLocaleTimeString());
  lineChart($("chart-load"), d.series, [{ key: "busy", color: "#3d8bfd" }, { key: "waiting", color: "#f0a030" }], d.windowS);
  lineChart($("chart-wait"), d.series, [{ key: "waitP50", color: "#3d8bfd" }, { key: "waitP99", color: "#f26b5b" }], d.windowS);
  renderTopRoutes(d.topRoutes);
  renderSlow(d.slow);
  document.body.setAttribute("data-rendered", String(Number(document.body.getAttribute("data-rendered") || 0) + 1));
}

function poll() {
  setText("conn", "polling");
  const once = () => fetch("dashboard.json", { cache: "no-store" }).then((r) => r.json()).then(render).catch(() => setText("conn", "admin unreachable"));
  once();
  setInterval(once, 1000);
}

function follow() {
  if (!("EventSource" in window)) return poll();
  const events = new EventSource("dashboard/events");
  events.onopen = () => { setText("conn", "live"); $("conn").classList.add("live"); };
  events.onmessage = (e) => render(JSON.parse(e.data));
  events.onerror = () => { setText("conn", "reconnecting"); $("conn").classList.remove("live"); };
}

fetch("dashboard.json", { cache: "no-store" }).then((r) => r.json()).then(render).catch(() => {});
follow();
</script>
</body>
</html>
`;
