// Draws sweep's report from the JSON in #report-data with Plotly.js: the leaderboard
// (sortable, filterable), the optimisation history, the Pareto front and hypervolume (several
// objectives), learning curves of any metric, parallel
// coordinates (brushing filters the leaderboard), parameter importance, slice plots, a contour
// of the two most important parameters and the best trial's confusion matrix. Clicking a
// trial anywhere selects it in every chart and in the leaderboard.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var root = document.getElementById("report");
  var charts = []; // { name, div, highlight(index or null) }
  var drawing = []; // promises of the first draw of every chart
  var selected = null;
  var brushed = null; // trial indices inside every brushed range, or null
  var lastCurves = Promise.resolve(); // the learning curves' latest redraw
  function curvesRedrawn() { return lastCurves; }

  var STATUS_COLOUR = {
    completed: "#1f77b4", pruned: "#8c8c8c", diverged: "#9467bd", failed: "#d62728",
    timeout: "#d62728", oom: "#d62728", running: "#ff7f0e", interrupted: "#ff7f0e", stale: "#ff7f0e", pending: "#bbbbbb"
  };
  var FAILED = { failed: true, diverged: true, timeout: true, oom: true };
  var HIGHLIGHT = "#ff6d00";
  var PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var MAX_COLOURED = 20;
  var better = D.mode === "max" ? function (a, b) { return a > b; } : function (a, b) { return a < b; };

  // ---------- small helpers ----------
  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") e.textContent = attrs[k];
        else if (k === "html") e.innerHTML = attrs[k];
        else if (k === "class") e.className = attrs[k];
        else e.setAttribute(k, attrs[k]);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) return "";
    if (typeof v !== "number") return typeof v === "string" ? v : JSON.stringify(v);
    if (v === 0) return "0";
    var a = Math.abs(v);
    if (a >= 1e6 || a < 1e-3) return v.toExponential(3).replace(/\.?0+e/, "e");
    return String(Number(v.toPrecision(5)));
  }
  function trialName(t) { return t.label ? t.label + " (" + t.id + ")" : t.id; }
  var hoverCache = new Map();
  function hover(t) {
    if (!hoverCache.has(t)) hoverCache.set(t, hoverText(t));
    return hoverCache.get(t);
  }
  function hoverText(t) {
    var lines = ["<b>" + esc(trialName(t)) + "</b> #" + t.number + " · " + t.status +
      (t.rank ? " · rank " + t.rank : "")];
    if (D.pareto) {
      var p = D.pareto.points.find(function (q) { return D.trials[q.trial] === t; });
      lines.push(D.pareto.objectives.map(function (o, j) { return esc(o[0]) + " = " + (p ? fmt(p.values[j]) : "none"); }).join(", ") +
        (p ? " · front rank " + p.rank + (p.feasible ? "" : " · infeasible") : "") + (t.startup ? " (start-up)" : t.by ? " (proposed by " + t.by + ")" : ""));
    } else {
      lines.push(esc(D.metric) + " = " + (t.value === null ? "none" : fmt(t.value)) +
        (t.startup ? " (start-up)" : t.by ? " (proposed by " + t.by + ")" : ""));
    }
    D.columns.forEach(function (c, j) { lines.push(esc(c.name) + " = " + esc(fmt(t.values[j]))); });
    if (t.stop) lines.push("stopped at epoch " + t.stop.epoch);
    if (t.message && FAILED[t.status]) lines.push(esc(t.message.slice(0, 120)));
    return lines.join("<br>");
  }
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function baseLayout(extra) {
    var layout = {
      margin: { l: 70, r: 20, t: 30, b: 55 }, height: 400, hovermode: "closest",
      font: { family: "system-ui, sans-serif", size: 12 },
      legend: { orientation: "h", y: -0.22 }
    };
    Object.keys(extra || {}).forEach(function (k) { layout[k] = extra[k]; });
    return layout;
  }
  function toNumber(col, v) {
    if (v === null || v === undefined) return null;
    if (col.kind === "category") {
      var i = col.categories.indexOf(String(v));
      return i < 0 ? null : i;
    }
    return typeof v === "number" ? v : Number(v);
  }
  // A parameter axis as the spec draws it: log exactly when the spec's scale is, categories in
  // the spec's order, and the ticks the report's tick rule chose.
  function paramAxis(col) {
    var a = { title: { text: col.name }, automargin: true, zeroline: false };
    if (col.kind === "category") {
      a.type = "category"; a.categoryorder = "array"; a.categoryarray = col.categories;
    } else {
      a.type = col.kind === "log" ? "log" : "linear";
      if (col.ticks.vals.length) { a.tickmode = "array"; a.tickvals = col.ticks.vals; a.ticktext = col.ticks.text; }
    }
    return a;
  }
  function epochAxis() {
    var a = { title: { text: "epoch" }, zeroline: false };
    if (D.epoch_ticks.vals.length) { a.tickmode = "array"; a.tickvals = D.epoch_ticks.vals; a.ticktext = D.epoch_ticks.text; }
    return a;
  }
  function section(title, note) {
    var s = el("section", null, el("h2", { text: title }));
    if (note) s.appendChild(el("p", { class: "note", html: note }));
    root.appendChild(s);
    return s;
  }
  // Draws a chart and registers it: `highlight(i)` returns the restyle that shows trial i (or
  // nothing) in its highlight trace; clicking a point with customdata selects that trial.
  function plot(parent, name, cls, traces, layout, highlight) {
    var div = el("div", { class: "chart " + cls, "data-chart": name, id: "chart-" + name });
    parent.appendChild(div);
    var chart = { name: name, div: div, highlight: highlight };
    charts.push(chart);
    var done = Plotly.newPlot(div, traces, layout, PLOT_CONFIG).then(function () {
      div.on("plotly_click", function (ev) {
        var p = ev.points && ev.points[0];
        if (p && typeof p.customdata === "number") select(p.customdata);
      });
    });
    drawing.push(done);
    return chart;
  }
  function rankedOrder() {
    return D.trials.map(function (_, i) { return i; }).sort(function (a, b) {
      var ra = D.trials[a].rank, rb = D.trials[b].rank;
      if (ra === null) ra = Infinity;
      if (rb === null) rb = Infinity;
      return ra - rb || D.trials[a].number - D.trials[b].number;
    });
  }
  // Colours of the best trials, by rank: the winner black, then purple to yellow (viridis).
  var VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
  function rankColour(k, n) {
    if (k === 0) return "#000000";
    var x = n <= 2 ? 0 : (k - 1) / (n - 2);
    return VIRIDIS[Math.min(VIRIDIS.length - 1, Math.floor(x * (VIRIDIS.length - 1) + 0.5))];
  }

  // ---------- header ----------
  function header() {
    root.appendChild(el("h1", null, "Sweep ", el("code", { text: D.name })));
    if (D.live) {
      var live = el("p", { class: "live", id: "live" }, el("b", {
        text: "running: " + D.live.finished + " of " + D.live.total + " finished, updated " + D.generated.slice(11)
      }), " (this page reloads itself every 15 s)");
      root.appendChild(live);
    }
    var counts = Object.keys(D.counts).map(function (k) { return D.counts[k] + " " + k; }).join(", ");
    var ranking = D.pareto ? "ranked by the Pareto front of " + D.pareto.objectives.map(function (o) { return o[0] + " (" + o[1] + ")"; }).join(", ") +
      (D.pareto.constraints.length ? " subject to " + D.pareto.constraints.join(" and ") : "") + "; best/ by " + D.pareto.rule
      : "ranked by " + D.metric + " (" + D.mode + ")" +
        (D.constraints.length ? " subject to " + D.constraints.join(" and ") : "");
    var bits = [D.trials.length + " trials (" + counts + ")", ranking];
    if (D.sampler) bits.push("sampler " + D.sampler);
    else if (D.method) bits.push(D.method + " search" + (D.method === "tpe" ? ", " + D.startup + " random start-up trials" : ""));
    if (D.pruner) bits.push("pruner: " + D.pruner);
    bits.push("trial time " + duration(D.trial_seconds));
    bits.push("generated " + D.generated);
    root.appendChild(el("p", { class: "sub", text: bits.join(" · ") }));
    if (D.description) root.appendChild(el("p", { class: "description", text: D.description }));
    root.appendChild(el("p", { html: D.selection_html }));
    if (D.space.length) {
      var table = el("table", { class: "space" }, el("tr", null, el("th", { text: "searched key" }), el("th", { text: "values" })));
      D.space.forEach(function (p) { table.appendChild(el("tr", null, el("td", null, el("code", { text: p[0] })), el("td", null, el("code", { text: p[1] })))); });
      root.appendChild(el("details", null, el("summary", { text: "search space (" + D.space.length + " keys)" }), table));
    }
  }
  function duration(s) {
    if (!s) return "0 s";
    if (s < 120) return s.toFixed(1) + " s";
    if (s < 7200) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(2) + " h";
  }

  // ---------- leaderboard ----------
  var table = { sortColumn: null, descending: false, filter: "", status: "", body: null, count: null, rows: {} };
  function leaderboard() {
    var s = section("Leaderboard", "Click a column to sort, a row to select the trial in every chart. " +
      "Brushing an axis of the parallel coordinates below filters these rows.");
    var filter = el("input", { type: "search", placeholder: "filter: any text in a row", id: "filter" });
    filter.addEventListener("input", function () { table.filter = filter.value.toLowerCase(); renderRows(); });
    var status = el("select", { id: "status-filter" }, el("option", { value: "", text: "every status" }));
    Object.keys(D.counts).forEach(function (k) { status.appendChild(el("option", { value: k, text: k + " (" + D.counts[k] + ")" })); });
    status.addEventListener("change", function () { table.status = status.value; renderRows(); });
    table.count = el("span", { id: "row-count" });
    table.brush = el("span", { id: "brush-note" });
    s.appendChild(el("div", { class: "controls" }, filter, status, table.count, table.brush));
    var head = el("tr");
    D.header.forEach(function (h, j) {
      var th = el("th", { text: h, class: j === 1 || j === 2 ? "l" : "" });
      th.addEventListener("click", function () {
        if (table.sortColumn === j) table.descending = !table.descending;
        else { table.sortColumn = j; table.descending = false; }
        Array.prototype.forEach.call(head.children, function (c) { c.classList.remove("sorted-asc", "sorted-desc"); });
        th.classList.add(table.descending ? "sorted-desc" : "sorted-asc");
        renderRows();
      });
      head.appendChild(th);
    });
    table.body = el("tbody");
    s.appendChild(el("div", { class: "scroll" }, el("table", { id: "leaderboard" }, el("thead", null, head), table.body)));
    renderRows();
  }
  function cellKey(v) {
    if (v === "") return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function renderRows() {
    var order = D.rows.map(function (_, i) { return i; });
    if (table.sortColumn !== null) {
      var j = table.sortColumn, sign = table.descending ? -1 : 1;
      order.sort(function (a, b) {
        var x = cellKey(D.rows[a][j]), y = cellKey(D.rows[b][j]);
        if (x === null || y === null) return (x === null) - (y === null); // blanks last
        if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
        return (x < y ? -1 : x > y ? 1 : 0) * sign || a - b;
      });
    }
    var shown = order.filter(function (i) {
      if (table.status && D.trials[i].status !== table.status) return false;
      if (brushed && !brushed.has(i)) return false;
      return !table.filter || D.rows[i].join(" ").toLowerCase().indexOf(table.filter) >= 0 ||
        (D.trials[i].label || "").toLowerCase().indexOf(table.filter) >= 0;
    });
    table.body.textContent = "";
    table.rows = {};
    shown.forEach(function (i) {
      var t = D.trials[i];
      var isBest = D.pareto ? t.id === D.pareto.best : t.rank === 1 && t.status === "completed";
      var cls = "status-" + t.status + (isBest ? " best" : "") + (selected === i ? " selected" : "");
      var tr = el("tr", { class: cls, "data-trial": t.id });
      D.rows[i].forEach(function (c, j) { tr.appendChild(el("td", { text: c, class: j === 1 || j === 2 ? "l" : "" })); });
      tr.addEventListener("click", function () { select(i); });
      table.body.appendChild(tr);
      table.rows[i] = tr;
    });
    table.count.textContent = "showing " + shown.length + " of " + D.rows.length + " trials";
  }

  // ---------- selection ----------
  var bar = null;
  function select(i) {
    selected = selected === i ? null : i;
    Object.keys(table.rows).forEach(function (k) { table.rows[k].classList.toggle("selected", Number(k) === selected); });
    if (selected !== null && table.rows[selected]) table.rows[selected].scrollIntoView({ block: "nearest" });
    charts.forEach(function (c) { if (c.highlight) c.highlight(selected); });
    if (!bar) {
      bar = el("div", { id: "selection" });
      document.body.appendChild(bar);
    }
    bar.hidden = selected === null;
    document.body.setAttribute("data-selected", selected === null ? "" : D.trials[selected].id);
    if (selected !== null) {
      var t = D.trials[selected];
      bar.innerHTML = "selected " + hover(t).replace(/<br>/g, " · ");
      var clear = el("button", { text: "clear" });
      clear.addEventListener("click", function () { select(selected); });
      bar.appendChild(clear);
    }
  }
  // The restyle of a chart's highlight trace (its last) to trial i's points, or to none.
  function highlightTrace(div, points) {
    return function (i) {
      var p = i === null ? { x: [], y: [] } : points(i);
      Plotly.restyle(div(), { x: [p.x], y: [p.y] }, [div().data.length - 1]);
    };
  }

  // ---------- optimisation history ----------
  function history() {
    var s = section("Optimisation history", "Every trial's " + esc(D.metric) + " by trial number (the order trials were asked for), " +
      "and the best so far among completed trials." + (D.method === "tpe" ? " Hollow diamonds are TPE's random start-up trials." : D.method === "gp" || D.method === "auto" ? " Hollow diamonds are the quasi-random start-up trials; squares the GP's proposals." : "") +
      " Pruned and failed trials show the best value they reached before they stopped; a failed trial without any sits on the bottom edge.");
    var byNumber = D.trials.map(function (t, i) { return i; }).sort(function (a, b) { return D.trials[a].number - D.trials[b].number; });
    var valued = byNumber.filter(function (i) { return D.trials[i].value !== null; });
    if (!valued.length) { s.appendChild(el("p", { class: "note", text: "No trial has a value yet." })); return; }
    var ys = valued.map(function (i) { return D.trials[i].value; });
    var lo = Math.min.apply(null, ys), hi = Math.max.apply(null, ys);
    var worstEdge = D.mode === "max" ? lo - 0.05 * (hi - lo || 1) : hi + 0.05 * (hi - lo || 1);
    function group(name, pick, marker, yOf) {
      var idx = byNumber.filter(function (i) { return pick(D.trials[i]); });
      return {
        type: "scatter", mode: "markers", name: name + " (" + idx.length + ")",
        x: idx.map(function (i) { return D.trials[i].number; }),
        y: idx.map(function (i) { return yOf ? yOf(D.trials[i]) : D.trials[i].value; }),
        customdata: idx, text: idx.map(function (i) { return hover(D.trials[i]); }),
        hovertemplate: "%{text}<extra></extra>", marker: marker, visible: idx.length ? true : "legendonly"
      };
    }
    var traces = [];
    if (D.method === "tpe" || D.method === "gp" || D.method === "auto") {
      traces.push(group(D.method === "tpe" ? "random start-up" : "quasi-random start-up", function (t) { return t.status === "completed" && t.startup && t.value !== null; },
        { symbol: "diamond-open", size: 9, color: "#555" }));
      var byGp = function (t) { return t.by === "gp" || (!t.by && D.method === "gp"); };
      traces.push(group("guided by TPE", function (t) { return t.status === "completed" && !t.startup && !byGp(t) && t.value !== null; },
        { size: 8, color: STATUS_COLOUR.completed }));
      if (D.method !== "tpe") {
        traces.push(group("guided by the GP", function (t) { return t.status === "completed" && !t.startup && byGp(t) && t.value !== null; },
          { symbol: "square", size: 8, color: "#2a7f62" }));
      }
    } else {
      traces.push(group("completed", function (t) { return t.status === "completed" && t.value !== null; },
        { size: 8, color: STATUS_COLOUR.completed }));
    }
    traces.push(group("pruned", function (t) { return t.status === "pruned" && t.value !== null; },
      { symbol: "x-thin-open", size: 9, color: STATUS_COLOUR.pruned, line: { width: 2 } }));
    traces.push(group("running", function (t) { return (t.status === "running" || t.status === "interrupted" || t.status === "stale") && t.value !== null; },
      { symbol: "circle-open", size: 8, color: STATUS_COLOUR.running }));
    traces.push(group("failed", function (t) { return FAILED[t.status]; },
      { symbol: "triangle-down", size: 9, color: STATUS_COLOUR.failed }, function (t) { return t.value === null ? worstEdge : t.value; }));
    var bx = [], by = [], best = null;
    byNumber.forEach(function (i) {
      var t = D.trials[i];
      if (t.status !== "completed" || t.value === null) return;
      if (best === null || better(t.value, best)) best = t.value;
      bx.push(t.number); by.push(best);
    });
    traces.push({ type: "scatter", mode: "lines", name: "best so far", x: bx, y: by, line: { shape: "hv", color: "#d62728", width: 2 }, hoverinfo: "skip" });
    traces.push({ type: "scatter", mode: "markers", name: "selected", x: [], y: [], showlegend: false, hoverinfo: "skip",
      marker: { size: 18, color: "rgba(0,0,0,0)", line: { color: HIGHLIGHT, width: 3 } } });
    var chart = plot(s, "history", "wide", traces, baseLayout({
      xaxis: { title: { text: "trial number" }, zeroline: false, tickmode: "array", tickvals: D.number_ticks.vals, ticktext: D.number_ticks.text },
      yaxis: { title: { text: D.metric }, zeroline: false }
    }), null);
    chart.highlight = highlightTrace(function () { return chart.div; }, function (i) {
      var t = D.trials[i];
      return { x: [t.number], y: [t.value === null ? worstEdge : t.value] };
    });
  }

  // ---------- several objectives: the Pareto front and the hypervolume ----------
  function pareto() {
    var P = D.pareto;
    if (!P) return;
    var names = P.objectives.map(function (o) { return o[0] + " (" + o[1] + ")"; });
    var note = "Each completed trial's " + names.map(esc).join(" and ") + " at its kept epoch. The front (blue, joined) is the " +
      "trials no other feasible trial beats on every objective; dominated trials are grey" +
      (P.constraints.length ? ", trials that break a constraint (" + P.constraints.map(esc).join(", ") + ") are red crosses" : "") +
      ", pruned trials grey crosses. The star is best/, chosen by " + esc(P.rule) + ".";
    var s = section("Pareto front", note);
    if (!P.points.length) { s.appendChild(el("p", { class: "note", text: "No trial has a value for every objective yet." })); return; }
    // An objective whose values are all positive and span more than 20x reads better on a log axis.
    function objectiveAxis(j) {
      var vs = P.points.map(function (p) { return p.values[j]; });
      var lo = Math.min.apply(null, vs), hi = Math.max.apply(null, vs);
      return { title: { text: names[j] }, zeroline: false, type: lo > 0 && hi / lo > 20 ? "log" : "linear" };
    }
    var bestIndex = P.best === null ? null : D.trials.findIndex(function (t) { return t.id === P.best; });
    // One panel per pair (first objective, k): 2 objectives give one, 3 give two.
    var pairs = [];
    for (var k = 1; k < P.objectives.length && pairs.length < 3; k++) pairs.push([0, k]);
    var box = pairs.length > 1 ? s.appendChild(el("div", { class: "charts" })) : s;
    pairs.forEach(function (pair, n) {
      var a = pair[0], b = pair[1];
      function group(name, pick, marker, mode) {
        var pts = P.points.filter(pick);
        if (mode === "lines+markers") pts.sort(function (p, q) { return p.values[a] - q.values[a]; });
        return {
          type: "scatter", mode: mode || "markers", name: name + " (" + pts.length + ")",
          x: pts.map(function (p) { return p.values[a]; }), y: pts.map(function (p) { return p.values[b]; }),
          customdata: pts.map(function (p) { return p.trial; }), text: pts.map(function (p) { return hover(D.trials[p.trial]); }),
          hovertemplate: "%{text}<extra></extra>", marker: marker, line: { shape: "hv", color: STATUS_COLOUR.completed, width: 1 },
          visible: pts.length ? true : "legendonly"
        };
      }
      var onFront = function (p) { return p.completed && p.feasible && p.rank === 1; };
      // A front is a staircase only with two objectives; with more, a panel shows a projection.
      var traces = [
        group("front", onFront, { size: 9, color: STATUS_COLOUR.completed }, P.objectives.length === 2 ? "lines+markers" : "markers"),
        group("dominated", function (p) { return p.completed && p.feasible && p.rank > 1; }, { size: 7, color: "#b0b0b0" }),
        group("infeasible", function (p) { return p.completed && !p.feasible; }, { symbol: "x", size: 8, color: STATUS_COLOUR.failed }),
        group("pruned", function (p) { return !p.completed; }, { symbol: "x-thin-open", size: 8, color: STATUS_COLOUR.pruned, line: { width: 2 } })
      ];
      var bestPoint = P.points.filter(function (p) { return p.trial === bestIndex; });
      traces.push({
        type: "scatter", mode: "markers", name: "best/",
        x: bestPoint.map(function (p) { return p.values[a]; }), y: bestPoint.map(function (p) { return p.values[b]; }),
        customdata: bestPoint.map(function (p) { return p.trial; }), text: bestPoint.map(function (p) { return hover(D.trials[p.trial]); }),
        hovertemplate: "%{text}<extra></extra>", marker: { symbol: "star", size: 16, color: "#000" }
      });
      traces.push({ type: "scatter", mode: "markers", name: "selected", x: [], y: [], showlegend: false, hoverinfo: "skip",
        marker: { size: 18, color: "rgba(0,0,0,0)", line: { color: HIGHLIGHT, width: 3 } } });
      var chart = plot(box, "pareto" + (n ? "-" + (n + 1) : ""), pairs.length > 1 ? "half" : "wide", traces, baseLayout({
        xaxis: objectiveAxis(a), yaxis: objectiveAxis(b)
      }), null);
      chart.highlight = highlightTrace(function () { return chart.div; }, function (i) {
        var p = P.points.filter(function (q) { return q.trial === i; });
        return { x: p.map(function (q) { return q.values[a]; }), y: p.map(function (q) { return q.values[b]; }) };
      });
    });
    if (!P.hypervolume.length) return;
    var h = section("Hypervolume", "The volume the front dominates, by trial number, as a share of the final front's, against the reference point (" +
      P.reference.map(function (v, j) { return esc(P.objectives[j][0]) + " " + fmt(v); }).join(", ") +
      "): the worst feasible value of each objective, a tenth of its range further. It grows when a trial moves the front.");
    plot(h, "hypervolume", "wide", [{
      type: "scatter", mode: "lines+markers", name: "hypervolume",
      x: P.hypervolume.map(function (p) { return p[0]; }), y: P.hypervolume.map(function (p) { return p[1]; }),
      line: { shape: "hv", color: "#d62728", width: 2 }, marker: { size: 5 },
      hovertemplate: "after trial #%{x}: %{y:.3f}<extra></extra>"
    }], baseLayout({
      xaxis: { title: { text: "trial number" }, zeroline: false, tickmode: "array", tickvals: D.number_ticks.vals, ticktext: D.number_ticks.text },
      yaxis: { title: { text: "hypervolume (share of the final)" }, zeroline: false, rangemode: "tozero" },
      showlegend: false
    }), null);
  }

  // ---------- learning curves ----------
  function curves() {
    var withEpochs = D.trials.filter(function (t) { return t.epochs.length; }).length;
    var s = section("Learning curves", "Pick a metric. The winner is black, the next " + (MAX_COLOURED - 1) +
      " by rank run from purple to yellow, every other trial is grey; dotted lines are pruned trials, which end where they were stopped (×)." +
      (D.rungs.length ? " Dashed verticals are ASHA's rungs." : ""));
    if (!withEpochs || !D.metrics.length) { s.appendChild(el("p", { class: "note", text: "No trial has reported an epoch yet." })); return; }
    var menu = el("select", { id: "curve-metric" });
    D.metrics.forEach(function (m) { menu.appendChild(el("option", { value: m.name, text: m.name })); });
    var logBox = el("input", { type: "checkbox", id: "curve-log" });
    s.appendChild(el("div", { class: "controls" }, el("label", null, "metric ", menu), el("label", null, logBox, " log scale")));
    var order = rankedOrder();
    function metricAxis() { return D.metrics.filter(function (m) { return m.name === menu.value; })[0]; }
    function ys(t) { return t.series[menu.value] || []; }
    function traces() {
      var out = [], coloured = 0;
      var rest = { x: [], y: [], customdata: [], text: [] };
      order.forEach(function (i) {
        var t = D.trials[i];
        var y = ys(t);
        if (!y.some(function (v) { return v !== null; })) return;
        var text = hover(t);
        if (coloured < MAX_COLOURED && t.rank !== null) {
          out.push({
            type: "scatter", mode: "lines", name: "#" + t.rank + " " + trialName(t), x: t.epochs, y: y,
            customdata: t.epochs.map(function () { return i; }), text: t.epochs.map(function () { return text; }),
            hovertemplate: "%{text}<br>epoch %{x}: %{y}<extra></extra>",
            line: { color: rankColour(coloured, Math.min(MAX_COLOURED, order.length)), width: coloured === 0 ? 3 : 1.6, dash: t.status === "pruned" ? "dot" : "solid" }
          });
          coloured++;
        } else {
          t.epochs.forEach(function (e, k) { rest.x.push(e); rest.y.push(y[k]); rest.customdata.push(i); rest.text.push(text); });
          rest.x.push(null); rest.y.push(null); rest.customdata.push(i); rest.text.push("");
        }
      });
      if (rest.x.length) {
        out.push({ type: "scatter", mode: "lines", name: "other trials", x: rest.x, y: rest.y, customdata: rest.customdata, text: rest.text,
          hovertemplate: "%{text}<br>epoch %{x}: %{y}<extra></extra>", line: { color: "rgba(120,120,120,0.35)", width: 1 }, connectgaps: false });
      }
      var stops = D.trials.map(function (t, i) { return i; }).filter(function (i) { return D.trials[i].stop; });
      var sx = [], sy = [], sc = [];
      stops.forEach(function (i) {
        var t = D.trials[i], k = t.epochs.indexOf(t.stop.epoch);
        if (k >= 0 && ys(t)[k] !== null && ys(t)[k] !== undefined) { sx.push(t.stop.epoch); sy.push(ys(t)[k]); sc.push(i); }
      });
      if (sx.length) {
        out.push({ type: "scatter", mode: "markers", name: "stopped by the pruner", x: sx, y: sy, customdata: sc,
          text: sc.map(function (i) { return hover(D.trials[i]) + "<br>" + esc(D.trials[i].stop.reason); }),
          hovertemplate: "%{text}<extra></extra>", marker: { symbol: "x-thin-open", size: 8, color: "#555", line: { width: 2 } } });
      }
      out.push({ type: "scatter", mode: "lines+markers", name: "selected", showlegend: false, x: [], y: [], hoverinfo: "skip",
        line: { color: HIGHLIGHT, width: 4 }, marker: { size: 5, color: HIGHLIGHT } });
      return out;
    }
    function layout() {
      var m = metricAxis();
      var y = { title: { text: m.name }, zeroline: false };
      if (logBox.checked && m.log_ticks) { y.type = "log"; y.tickmode = "array"; y.tickvals = m.log_ticks.vals; y.ticktext = m.log_ticks.text; }
      return baseLayout({
        height: 460, xaxis: epochAxis(), yaxis: y, showlegend: true, legend: { font: { size: 10 } },
        margin: { l: 70, r: 10, t: 30, b: 55 },
        shapes: D.rungs.map(function (r) { return { type: "line", x0: r, x1: r, yref: "paper", y0: 0, y1: 1, line: { dash: "dash", color: "#aaa", width: 1 } }; })
      });
    }
    function points(i) { var t = D.trials[i]; return { x: t.epochs, y: ys(t) }; }
    function setLogDefault() { var m = metricAxis(); logBox.disabled = !m.log_ticks; logBox.checked = !!(m.log_ticks && m.log_first); }
    setLogDefault();
    var chart = plot(s, "curves", "wide", traces(), layout(), null);
    chart.div.setAttribute("data-metric", menu.value);
    chart.highlight = highlightTrace(function () { return chart.div; }, points);
    function redraw() {
      chart.div.setAttribute("data-metric", menu.value);
      lastCurves = Plotly.react(chart.div, traces(), layout(), PLOT_CONFIG).then(function () { if (selected !== null) chart.highlight(selected); });
    }
    menu.addEventListener("change", function () { setLogDefault(); redraw(); });
    logBox.addEventListener("change", redraw);
  }

  // ---------- parallel coordinates ----------
  function parallel() {
    if (!D.columns.length) return;
    var s = section("Parallel coordinates", "Every ranked trial (completed or pruned) as a line through its parameters and its " + esc(D.metric) +
      ", coloured by it. Drag along any axis to brush a range (drag again to add one, click outside it to clear): the leaderboard shows only the trials inside every brushed range.");
    var idx = D.trials.map(function (t, i) { return i; }).filter(function (i) {
      var t = D.trials[i];
      return t.rank !== null && t.value !== null && D.columns.every(function (c, j) { return toNumber(c, t.values[j]) !== null; });
    });
    if (idx.length < 2) { s.appendChild(el("p", { class: "note", text: "Needs two trials with a value." })); return; }
    function dims(order, keep) {
      var out = D.columns.map(function (c, j) {
        var vals = order.map(function (i) { return toNumber(c, D.trials[i].values[j]); });
        var d = { label: c.name, values: vals };
        if (c.kind === "category") {
          d.tickvals = c.categories.map(function (_, k) { return k; }); d.ticktext = c.categories;
          d.range = [-0.2, c.categories.length - 0.8];
        } else if (c.kind === "log") {
          d.values = vals.map(function (v) { return Math.log10(v); });
          d.tickvals = c.ticks.vals.map(Math.log10); d.ticktext = c.ticks.text;
          if (c.range) d.range = [Math.log10(c.range[0]), Math.log10(c.range[1])];
        } else {
          d.tickvals = c.ticks.vals; d.ticktext = c.ticks.text;
          if (c.range) d.range = c.range;
        }
        return d;
      });
      out.push({ label: D.metric, values: order.map(function (i) { return D.trials[i].value; }) });
      if (keep) out.forEach(function (d, k) { if (keep[k]) d.constraintrange = keep[k]; });
      return out;
    }
    function trace(order, keep) {
      var line = { color: order.map(function (i) { return D.trials[i].value; }), colorscale: "Viridis", reversescale: D.mode === "min", showscale: true, colorbar: { title: { text: D.metric } } };
      if (selected !== null && order.indexOf(selected) >= 0) {
        line = { color: order.map(function (i) { return i === selected ? 1 : 0; }), colorscale: [[0, "rgba(150,150,150,0.35)"], [1, HIGHLIGHT]], cmin: 0, cmax: 1, showscale: false };
      }
      return { type: "parcoords", dimensions: dims(order, keep), line: line, labelangle: -20, labelside: "bottom" };
    }
    var order = idx.slice();
    var chart = plot(s, "parallel", "wide", [trace(order)], baseLayout({ height: 460, margin: { l: 80, r: 130, t: 50, b: 70 } }), null);
    function ranges() { return chart.div.data[0].dimensions.map(function (d) { return d.constraintrange || null; }); }
    function applyBrush() {
      var keep = ranges();
      if (!keep.some(Boolean)) { brushed = null; }
      else {
        var data = chart.div.data[0].dimensions;
        brushed = new Set();
        order.forEach(function (i, k) {
          var inside = data.every(function (d, j) {
            var r = keep[j];
            if (!r) return true;
            var list = Array.isArray(r[0]) ? r : [r];
            return list.some(function (x) { return d.values[k] >= x[0] && d.values[k] <= x[1]; });
          });
          if (inside) brushed.add(i);
        });
      }
      table.brush.textContent = brushed ? "brushed: " + brushed.size + " trials" : "";
      renderRows();
    }
    drawing[drawing.length - 1].then(function () { chart.div.on("plotly_restyle", applyBrush); });
    chart.highlight = function (i) {
      var keep = ranges();
      order = idx.filter(function (k) { return k !== i; });
      if (i !== null && idx.indexOf(i) >= 0) order.push(i); // drawn last, on top
      Plotly.react(chart.div, [trace(order, keep)], chart.div.layout, PLOT_CONFIG);
    };
  }

  // ---------- importance ----------
  function importance() {
    if (!D.columns.length) return;
    var s = section("Parameter importance", "PED-ANOVA (Watanabe et al. 2023, Optuna's default): how differently each parameter is distributed among the best 10 % of the " +
      D.completed + " completed trials than among all of them.");
    if (D.importance_note) s.appendChild(el("p", { class: "note", text: D.importance_note }));
    if (!D.importance.length) return;
    var rows = D.importance.slice().reverse();
    plot(s, "importance", "wide", [{
      type: "bar", orientation: "h", x: rows.map(function (r) { return r[1]; }), y: rows.map(function (r) { return r[0]; }),
      text: rows.map(function (r) { return (100 * r[1]).toFixed(1) + " %"; }), textposition: "auto",
      hovertemplate: "%{y}: %{text}<extra></extra>", marker: { color: "#1f77b4" }
    }], baseLayout({ height: Math.max(180, 60 + 34 * rows.length), xaxis: { title: { text: "importance" }, range: [0, 1], tickformat: ".0%" }, yaxis: { automargin: true }, margin: { l: 40, r: 20, t: 20, b: 45 } }), null);
  }

  // ---------- slices ----------
  function slices() {
    var usable = D.columns.map(function (c, j) { return j; }).filter(function (j) {
      var seen = new Set();
      D.trials.forEach(function (t) { if (t.rank !== null && t.value !== null && t.values[j] !== null) seen.add(JSON.stringify(t.values[j])); });
      return seen.size > 1;
    });
    if (!usable.length) return;
    var s = section("Slice plots", esc(D.metric) + " against each searched parameter for the ranked trials, coloured by trial number (light: early, dark: late); pruned trials are crosses.");
    var box = el("div", { class: "charts" });
    s.appendChild(box);
    var numbers = D.trials.map(function (t) { return t.number; });
    var maxNumber = Math.max.apply(null, numbers.concat([1]));
    usable.forEach(function (j) {
      var col = D.columns[j];
      var idx = D.trials.map(function (t, i) { return i; }).filter(function (i) { return D.trials[i].rank !== null && D.trials[i].value !== null && D.trials[i].values[j] !== null; });
      function trace(pick, symbol, showscale) {
        var ids = idx.filter(function (i) { return pick(D.trials[i]); });
        return {
          type: "scatter", mode: "markers", x: ids.map(function (i) { return D.trials[i].values[j]; }), y: ids.map(function (i) { return D.trials[i].value; }),
          customdata: ids, text: ids.map(function (i) { return hover(D.trials[i]); }), hovertemplate: "%{text}<extra></extra>", showlegend: false,
          marker: { symbol: symbol, size: 8, color: ids.map(function (i) { return D.trials[i].number; }), cmin: 0, cmax: maxNumber, colorscale: "Blues",
            line: { width: symbol === "circle" ? 0.5 : 2, color: "#555" }, showscale: showscale, colorbar: { title: { text: "trial" }, thickness: 10, dtick: Math.max(1, Math.ceil(maxNumber / 5)) } }
        };
      }
      var traces = [trace(function (t) { return t.status !== "pruned"; }, "circle", true), trace(function (t) { return t.status === "pruned"; }, "x-thin-open", false),
        { type: "scatter", mode: "markers", x: [], y: [], showlegend: false, hoverinfo: "skip", marker: { size: 16, color: "rgba(0,0,0,0)", line: { color: HIGHLIGHT, width: 3 } } }];
      var chart = plot(box, "slice-" + col.name, "small", traces, baseLayout({
        height: 320, margin: { l: 60, r: 10, t: 20, b: 50 }, xaxis: paramAxis(col), yaxis: { title: { text: D.metric }, zeroline: false }
      }), null);
      chart.highlight = highlightTrace(function () { return chart.div; }, function (i) {
        var t = D.trials[i];
        return t.values[j] === null || t.value === null ? { x: [], y: [] } : { x: [t.values[j]], y: [t.value] };
      });
    });
  }

  // ---------- contour ----------
  function contour() {
    var completed = D.trials.map(function (t, i) { return i; }).filter(function (i) { return D.trials[i].status === "completed" && D.trials[i].value !== null; });
    function distinct(j) {
      var seen = new Set();
      completed.forEach(function (i) { if (D.trials[i].values[j] !== null) seen.add(JSON.stringify(D.trials[i].values[j])); });
      return seen.size;
    }
    var names = D.columns.map(function (c) { return c.name; });
    var byImportance = D.importance.map(function (r) { return names.indexOf(r[0]); }).filter(function (j) { return j >= 0; });
    var candidates = byImportance.concat(names.map(function (_, j) { return j; }).filter(function (j) { return byImportance.indexOf(j) < 0; }))
      .filter(function (j) { return distinct(j) > 1; });
    if (candidates.length < 2) return;
    var a = candidates[0], b = candidates[1], ca = D.columns[a], cb = D.columns[b];
    var s = section("Contour of the two most important parameters", esc(D.metric) + " over <code>" + esc(ca.name) + "</code> and <code>" + esc(cb.name) +
      "</code>, interpolated between the " + completed.length + " completed trials (inverse-distance weighting, as a guide between the points; the points are the trials).");
    var pts = completed.filter(function (i) { return D.trials[i].values[a] !== null && D.trials[i].values[b] !== null; });
    if (pts.length < 3) { s.appendChild(el("p", { class: "note", text: "Needs three completed trials." })); return; }
    function axisUnits(col, v) { var x = toNumber(col, v); return col.kind === "log" ? Math.log10(x) : x; }
    function span(col, us) {
      var lo = Math.min.apply(null, us), hi = Math.max.apply(null, us);
      if (col.range && col.kind !== "category") { var r = col.range.map(function (v) { return col.kind === "log" ? Math.log10(v) : v; }); lo = Math.min(lo, r[0]); hi = Math.max(hi, r[1]); }
      return hi > lo ? [lo, hi] : [lo - 0.5, hi + 0.5];
    }
    var ua = pts.map(function (i) { return axisUnits(ca, D.trials[i].values[a]); });
    var ub = pts.map(function (i) { return axisUnits(cb, D.trials[i].values[b]); });
    var z = pts.map(function (i) { return D.trials[i].value; });
    var ra = span(ca, ua), rb = span(cb, ub), N = 40;
    var gx = [], gy = [], gz = [];
    for (var k = 0; k < N; k++) { gx.push(ra[0] + (ra[1] - ra[0]) * k / (N - 1)); gy.push(rb[0] + (rb[1] - rb[0]) * k / (N - 1)); }
    gy.forEach(function (y) {
      gz.push(gx.map(function (x) {
        var num = 0, den = 0;
        for (var p = 0; p < pts.length; p++) {
          var dx = (x - ua[p]) / (ra[1] - ra[0]), dy = (y - ub[p]) / (rb[1] - rb[0]);
          var d2 = dx * dx + dy * dy;
          if (d2 < 1e-12) return z[p];
          var w = 1 / (d2 * d2);
          num += w * z[p]; den += w;
        }
        return num / den;
      }));
    });
    function toAxis(col, u) { return col.kind === "log" ? Math.pow(10, u) : u; }
    function axis(col) {
      if (col.kind !== "category") return paramAxis(col);
      return { title: { text: col.name }, tickmode: "array", tickvals: col.categories.map(function (_, k) { return k; }), ticktext: col.categories, zeroline: false };
    }
    var traces = [{
      type: "contour", x: gx.map(function (u) { return toAxis(ca, u); }), y: gy.map(function (u) { return toAxis(cb, u); }), z: gz,
      colorscale: "Viridis", reversescale: D.mode === "min", colorbar: { title: { text: D.metric } }, hoverinfo: "skip", contours: { coloring: "heatmap" }, line: { width: 0.5 }
    }, {
      type: "scatter", mode: "markers", x: pts.map(function (i, p) { return toAxis(ca, ua[p]); }), y: pts.map(function (i, p) { return toAxis(cb, ub[p]); }),
      customdata: pts, text: pts.map(function (i) { return hover(D.trials[i]); }), hovertemplate: "%{text}<extra></extra>", showlegend: false,
      marker: { size: 7, color: "white", line: { color: "black", width: 1 } }
    }, { type: "scatter", mode: "markers", x: [], y: [], showlegend: false, hoverinfo: "skip", marker: { size: 16, color: "rgba(0,0,0,0)", line: { color: HIGHLIGHT, width: 3 } } }];
    var chart = plot(s, "contour", "wide", traces, baseLayout({ height: 480, xaxis: axis(ca), yaxis: axis(cb) }), null);
    chart.highlight = highlightTrace(function () { return chart.div; }, function (i) {
      var p = pts.indexOf(i);
      return p < 0 ? { x: [], y: [] } : { x: [toAxis(ca, ua[p])], y: [toAxis(cb, ub[p])] };
    });
  }

  // ---------- confusion matrix ----------
  function confusion() {
    var c = D.confusion;
    if (!c) return;
    var s = section("Best trial " + c.trial + ": confusion matrix", "The best checkpoint on the test set: " + c.accuracy.toFixed(2) + " % (" + c.correct + "/" + c.total +
      "). Rows are true classes, columns predictions; mistakes are shaded by how many there are.");
    var labels = c.matrix.map(function (_, k) { return String(k); });
    var maxOff = 1;
    c.matrix.forEach(function (row, t) { row.forEach(function (v, p) { if (p !== t) maxOff = Math.max(maxOff, v); }); });
    var z = c.matrix.map(function (row, t) { return row.map(function (v, p) { return p === t ? null : Math.sqrt(v / maxOff); }); });
    var diag = c.matrix.map(function (row, t) { return row.map(function (v, p) { return p === t ? 1 : null; }); });
    var annotations = [];
    c.matrix.forEach(function (row, t) { row.forEach(function (v, p) { annotations.push({ x: labels[p], y: labels[t], text: String(v), showarrow: false, font: { size: 11 } }); }); });
    plot(s, "confusion", "", [
      { type: "heatmap", x: labels, y: labels, z: diag, colorscale: [[0, "#dff0d8"], [1, "#dff0d8"]], showscale: false, hoverinfo: "skip" },
      { type: "heatmap", x: labels, y: labels, z: z, zmin: 0, zmax: 1, colorscale: [[0, "#ffffff"], [1, "#d9534f"]], showscale: false,
        customdata: c.matrix, hovertemplate: "true %{y}, predicted %{x}: %{customdata}<extra></extra>" }
    ], baseLayout({ width: 560, height: 520, xaxis: { title: { text: "predicted" }, type: "category", side: "top" }, yaxis: { title: { text: "true" }, type: "category", autorange: "reversed" }, annotations: annotations, margin: { l: 60, r: 20, t: 60, b: 20 } }), null);
  }

  function footer() {
    root.appendChild(el("p", { class: "note", html: "Generated by <code>sweep report</code> at " + esc(D.generated) + "; regenerate at any time with <code>sweep report " + esc(D.dir) + "</code>. Charts: Plotly.js (drag to zoom, double-click to reset)." }));
  }

  function showErrors() {
    var box = document.getElementById("report-errors");
    if (window.reportErrors.length) {
      box.hidden = false;
      box.textContent = "This page hit " + window.reportErrors.length + " script error(s):\n" + window.reportErrors.join("\n");
    }
    document.body.setAttribute("data-errors", String(window.reportErrors.length));
  }

  try {
    header();
    leaderboard();
    history();
    pareto();
    curves();
    parallel();
    importance();
    slices();
    contour();
    confusion();
    footer();
  } catch (e) {
    window.reportErrors.push("drawing the report: " + (e && e.stack ? e.stack : e));
  }
  // A link can open a view: `#trial=ID` selects a trial, `#metric=NAME` picks the learning
  // curves' metric, `#sort=COLUMN` (or `COLUMN:desc`) sorts the leaderboard, joined by `&`.
  function link(key) {
    var m = new RegExp("[#&]" + key + "=([^&]+)").exec(window.location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }
  function applyLink() {
    var waits = [];
    var sort = link("sort");
    if (sort) {
      var parts = sort.split(":");
      var j = D.header.indexOf(parts[0]);
      var th = document.querySelectorAll("#leaderboard thead th")[j];
      if (!th) window.reportErrors.push("no leaderboard column " + parts[0]);
      else {
        th.click();
        if (parts[1] === "desc") th.click();
      }
    }
    var metric = link("metric");
    var menu = document.getElementById("curve-metric");
    if (metric && menu) {
      if (!D.metrics.some(function (m) { return m.name === metric; })) window.reportErrors.push("no metric " + metric);
      else {
        menu.value = metric;
        menu.dispatchEvent(new Event("change"));
        waits.push(curvesRedrawn);
      }
    }
    var id = link("trial");
    if (id) {
      var i = D.trials.findIndex(function (t) { return t.id === id || t.label === id; });
      if (i >= 0) select(i);
      else window.reportErrors.push("no trial " + id + " in this sweep");
    }
    return Promise.all(waits.map(function (w) { return w(); }));
  }
  Promise.all(drawing).then(applyLink).then(function () {
    var drawn = charts.filter(function (c) { return c.div.querySelector(".main-svg"); });
    document.body.setAttribute("data-charts", charts.map(function (c) { return c.name; }).join(" "));
    document.body.setAttribute("data-rendered", String(drawn.length));
    document.body.setAttribute("data-render-ms", String(Math.round(performance.now())));
    showErrors();
  }, function (e) {
    window.reportErrors.push("Plotly: " + e);
    showErrors();
  });
})();
