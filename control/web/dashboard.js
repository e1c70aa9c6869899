// xlagg live dashboard: one snapshot a second over server-sent events; rates are the
// differences between consecutive snapshots. Per lagg: packets/s and bits/s per port over the
// last five minutes, per-port state with LACP partner, drops by reason, worker busy ratio and
// the receive-to-transmit latency histogram, and (hash policy) the bucket map: every bucket of
// the distribution table in its member's colour, as strong as its packets per second; below,
// the event timeline.
"use strict";

const HISTORY = 300; // seconds of chart history
const COLORS = ["#0b63b6", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#e67700", "#1098ad", "#5c940d"];
let previous = null; // last snapshot
const history = {}; // "lagg/port" -> [{t, rxPps, txPps, rxBps, txBps}]
const busyPrev = {};
const latencyPrev = {};
const bucketPrev = {}; // lagg -> hits per bucket at the previous snapshot

const $ = (sel, root) => (root || document).querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function human(v, unit) {
  const steps = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [n, p] of steps) if (Math.abs(v) >= n) return (v / n).toFixed(2) + " " + p + unit;
  return v.toFixed(0) + " " + unit;
}

// The rate axes: a step of 1, 2, 2.5 or 5 times a power of ten (at least 1: a chart of rates
// has no use for ticks of fractions of a frame per second), four steps to a top at or above
// the largest value; every label in the top's unit prefix with as many decimals as the step
// needs, so no two ticks ever print the same.
function axisTicks(max, unit) {
  const raw = Math.max(0, max) / 4;
  let step = 1;
  if (raw > 1) {
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw * (1 - 1e-12));
  }
  const top = 4 * step;
  const [scale, prefix] = [[1e9, "G"], [1e6, "M"], [1e3, "k"], [1, ""]].find(([n]) => top >= n);
  let decimals = 0;
  while (decimals < 3 && Math.abs(Math.round((step / scale) * 10 ** decimals) - (step / scale) * 10 ** decimals) > 1e-9) decimals++;
  const labels = [];
  for (let i = 4; i >= 0; i--) {
    labels.push(i === 0 ? "0" : ((i * step) / scale).toFixed(decimals) + " " + prefix + unit);
  }
  return { top, labels };
}

function ns(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(2) + " ms";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + " µs";
  return v + " ns";
}

function drawChart(canvas, series, key, unit) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr;
  canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  let largest = 0;
  for (const s of series) for (const p of s.points) largest = Math.max(largest, p[key]);
  const { top: max, labels } = axisTicks(largest, unit);
  canvas.dataset.ticks = labels.join("|");
  const left = 64, bottom = 16, top = 6;
  g.font = "11px DejaVu Sans, sans-serif";
  g.fillStyle = "#68737f";
  g.strokeStyle = "#e3e8ee";
  for (let i = 0; i <= 4; i++) {
    const y = top + ((h - top - bottom) * i) / 4;
    g.beginPath();
    g.moveTo(left, y);
    g.lineTo(w, y);
    g.stroke();
    g.fillText(labels[i], 2, y + 4);
  }
  g.fillText("-5 min", left, h - 3);
  g.fillText("now", w - 26, h - 3);
  const now = Date.now() / 1000;
  series.forEach((s, i) => {
    g.strokeStyle = COLORS[i % COLORS.length];
    g.lineWidth = 1.6;
    g.beginPath();
    s.points.forEach((p, j) => {
      const x = left + ((w - left) * (HISTORY - (now - p.t))) / HISTORY;
      const y = top + (h - top - bottom) * (1 - p[key] / max);
      if (j === 0) g.moveTo(x, y);
      else g.lineTo(x, y);
    });
    g.stroke();
  });
}

// The bucket map: one cell per bucket, in its member's colour (the members' order, as in the
// legend), its strength the bucket's packets per second on a log scale against the busiest.
function drawBuckets(panel, l, dt) {
  const box = $(".buckets", panel);
  box.hidden = !l.buckets;
  if (!l.buckets) return;
  const prev = bucketPrev[l.name];
  bucketPrev[l.name] = l.buckets.hits;
  const rates = l.buckets.hits.map((n, b) => (prev && dt > 0 ? Math.max(0, (n - prev[b]) / dt) : 0));
  const peak = Math.max(...rates);
  const members = l.ports.filter((p) => p.role === "member").map((p) => p.name);
  const cells = rates.map((r, b) => {
    const member = l.buckets.member[b];
    const strength = r > 0 ? 0.25 + (0.75 * Math.log1p(r)) / Math.log1p(peak) : 0.06;
    const colour = COLORS[Math.max(0, members.indexOf(member)) % COLORS.length];
    const cell = el("div", {
      "data-bucket": String(b),
      "data-member": member,
      "data-pps": String(r),
      title: "bucket " + b + " → " + member + ": " + human(r, "pkt/s"),
    });
    cell.style.background = colour;
    cell.style.opacity = strength.toFixed(3);
    return cell;
  });
  $(".heat", box).replaceChildren(...cells);
  const hot = rates.filter((r) => r > 0).length;
  $(".heat-note", box).textContent = prev
    ? hot + " of " + rates.length + " buckets carry traffic" + (hot ? "; the busiest " + human(peak, "pkt/s") : "")
    : "rates from the next snapshot";
}

function laggPanel(l) {
  let panel = $("#lagg-" + l.name);
  if (panel) return panel;
  panel = el("section", { class: "panel", id: "lagg-" + l.name });
  panel.append(
    el("div", { class: "lagg-head" }, el("h2", {}, l.name), el("span", { class: "facts" })),
    el(
      "div",
      { class: "charts" },
      el("div", { class: "chart" }, el("h3", {}, "Packets/s per port (rx + tx)"), el("canvas", { class: "pps" })),
      el("div", { class: "chart" }, el("h3", {}, "Bits/s per port (rx + tx)"), el("canvas", { class: "bps" }))
    ),
    el("div", { class: "legend" }),
    el(
      "table",
      { class: "ports" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...["Port", "Role", "Flags", "LACP actor", "LACP partner", "rx pkt/s", "tx pkt/s", "rx bit/s", "tx bit/s", "tx share"].map((t, i) =>
            el("th", { class: i >= 5 ? "num" : "" }, t)
          )
        )
      ),
      el("tbody")
    ),
    el(
      "div",
      { class: "buckets", hidden: true },
      el("h3", {}, "Buckets: member and packets/s (hash policy; hover for each)"),
      el("div", { class: "heat" }),
      el("p", { class: "heat-note muted" })
    ),
    el(
      "div",
      { class: "grid3" },
      el("div", {}, el("h3", {}, "Drops by reason (per second, total)"), el("table", { class: "drops" }, el("tbody"))),
      el("div", {}, el("h3", {}, "Worker busy ratio"), el("table", { class: "workers" }, el("tbody"))),
      el("div", {}, el("h3", {}, "Latency, receive to transmit submit (last second)"), el("div", { class: "hist" }), el("p", { class: "pct muted" }))
    )
  );
  $("#laggs").append(panel);
  return panel;
}

function render(snap) {
  const dt = previous ? (snap.time_ms - previous.time_ms) / 1000 : 0;
  const t = snap.time_ms / 1000;
  $("#none").hidden = snap.laggs.length > 0;
  for (const old of document.querySelectorAll("#laggs > section")) {
    if (!snap.laggs.some((l) => "lagg-" + l.name === old.id)) old.remove();
  }
  for (const l of snap.laggs) {
    const panel = laggPanel(l);
    const before = previous && previous.laggs.find((x) => x.name === l.name);
    $(".facts", panel).textContent =
      l.laggproto + " · active ports " + l.active_ports + " · failovers " + l.failovers + " · link changes " + l.flaps +
      (l.imbalance != null ? " · imbalance " + l.imbalance.toFixed(2) + " (busiest active port over the mean)" : "") +
      (l.rebalance_moves != null ? " · rebalanced " + l.rebalance_moves + " buckets" : "");
    const rows = [];
    const dropRows = [];
    const series = [];
    for (const p of l.ports) {
      const b = before && before.ports.find((x) => x.name === p.name);
      const rate = (k) => (b && dt > 0 ? Math.max(0, (p[k] - b[k]) / dt) : 0);
      const r = { t, rxPps: rate("rx_packets"), txPps: rate("tx_packets"), rxBps: rate("rx_bytes") * 8, txBps: rate("tx_bytes") * 8 };
      const key = l.name + "/" + p.name;
      const h = (history[key] = history[key] || []);
      if (dt > 0) h.push(Object.assign(r, { pps: r.rxPps + r.txPps, bps: r.rxBps + r.txBps }));
      while (h.length && t - h[0].t > HISTORY) h.shift();
      series.push({ name: p.name, points: h });
      const flags = [p.link ? "UP" : "DOWN"];
      if (p.collecting) flags.push("COLLECTING");
      if (p.distributing) flags.push("DISTRIBUTING");
      const cell = (metric, v, fmt) => el("td", { class: "num", "data-port": p.name, "data-metric": metric, "data-value": String(v) }, fmt(v));
      rows.push(
        el(
          "tr",
          { "data-port": p.name },
          el("td", {}, p.name),
          el("td", {}, p.role),
          el("td", { class: "flags" }, flags.join(", ")),
          el("td", { class: "flags" }, p.lacp ? p.lacp.actor_state.join(", ") + " " + p.lacp.mux : "-"),
          el("td", { class: "flags" }, p.lacp ? p.lacp.partner + " " + p.lacp.partner_state.join(", ") : "-"),
          cell("rx_pps", r.rxPps, (v) => human(v, "")),
          cell("tx_pps", r.txPps, (v) => human(v, "")),
          cell("rx_bps", r.rxBps, (v) => human(v, "b")),
          cell("tx_bps", r.txBps, (v) => human(v, "b")),
          cell("tx_share", p.tx_share == null ? "" : p.tx_share, (v) => (v === "" ? "-" : (v * 100).toFixed(0) + " %"))
        )
      );
      for (const [reason, n] of Object.entries(p.drops)) {
        if (n === 0) continue;
        const perSec = b && dt > 0 ? (n - (b.drops[reason] || 0)) / dt : 0;
        dropRows.push(el("tr", {}, el("td", {}, p.name), el("td", {}, reason), el("td", { class: "num" }, human(perSec, "/s")), el("td", { class: "num" }, String(n))));
      }
    }
    $("tbody", $(".ports", panel)).replaceChildren(...rows);
    drawBuckets(panel, l, dt);
    $("tbody", $(".drops", panel)).replaceChildren(...(dropRows.length ? dropRows : [el("tr", {}, el("td", { class: "muted" }, "none"))]));
    $(".legend", panel).replaceChildren(
      ...series.map((s, i) => el("span", {}, el("i", { style: "background:" + COLORS[i % COLORS.length] }), s.name))
    );
    drawChart($("canvas.pps", panel), series, "pps", "");
    drawChart($("canvas.bps", panel), series, "bps", "b");
    // Workers: busy nanoseconds per wall nanosecond.
    const workerRows = l.workers.map((w) => {
      const k = l.name + "/" + w.queue;
      const ratio = busyPrev[k] !== undefined && dt > 0 ? Math.min(1, (w.busy_ns - busyPrev[k]) / (dt * 1e9)) : 0;
      busyPrev[k] = w.busy_ns;
      return el(
        "tr",
        {},
        el("td", {}, "worker " + w.queue),
        el("td", { class: "num", "data-metric": "busy", "data-value": String(ratio) }, (ratio * 100).toFixed(1) + " %"),
        el("td", {}, el("span", { class: "meter", style: "width:" + Math.round(ratio * 120) + "px" }))
      );
    });
    $("tbody", $(".workers", panel)).replaceChildren(...workerRows);
    // Latency: the last second's frames per bucket.
    const counts = new Map(l.latency.buckets.map(([upper, n]) => [upper, n]));
    const prev = latencyPrev[l.name] || new Map();
    latencyPrev[l.name] = counts;
    const recent = [...counts.entries()].map(([u, n]) => [u, n - (prev.get(u) || 0)]).filter(([, n]) => n > 0);
    const peak = Math.max(1, ...recent.map(([, n]) => n));
    $(".hist", panel).replaceChildren(
      ...recent.map(([u, n]) => {
        const d = el("div", { title: "< " + ns(u) + ": " + n });
        d.style.height = Math.max(2, Math.round((n / peak) * 88)) + "px";
        return d;
      })
    );
    const p = l.latency.percentiles_ns;
    $(".pct", panel).textContent = p
      ? "since start: p50 " + ns(p[0]) + " · p90 " + ns(p[1]) + " · p99 " + ns(p[2]) + " · p99.9 " + ns(p[3]) + " · max " + ns(p[4])
      : "no frames yet";
  }
  const body = $("#events tbody");
  for (const e of snap.events) {
    const time = new Date(e.time_ms).toLocaleTimeString();
    body.prepend(
      el("tr", { class: "kind-" + e.kind }, el("td", {}, time), el("td", {}, e.lagg), el("td", {}, e.port || ""), el("td", {}, e.kind), el("td", {}, e.text))
    );
  }
  while (body.children.length > 200) body.lastChild.remove();
  previous = snap;
  $("#live").textContent = "live · " + new Date(snap.time_ms).toLocaleTimeString();
}

const source = new EventSource("/api/v1/stream");
source.onmessage = (m) => render(JSON.parse(m.data));
source.onerror = () => {
  $("#live").textContent = "disconnected; retrying";
};
