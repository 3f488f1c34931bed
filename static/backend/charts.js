// The dashboard's charts: each <figure data-chart="..." data-src="..."> reads its JSON endpoint
// (backend/api/charts.py, same session) and draws it with uPlot (static/vendor/uplot, pinned in
// package.json). A one-line summary under each chart says the same in words, for screen readers and
// for anyone who cannot read the plot. No inline script or style: the CSP forbids them.
(function () {
  "use strict";

  var COLORS = {
    succeeded: "#22a06b",
    warning: "#d97008",
    failed: "#c9372c",
    line: ["#0c66e4", "#6e5dc6", "#1d7f8c", "#943d73", "#5b7f24"],
  };

  function css(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  function textColor() {
    return css("--text-subtle", getComputedStyle(document.body).color || "#44546f");
  }

  function bytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? Math.round(n) : n.toFixed(1)) + " " + units[i];
  }

  function seconds(n) {
    if (n < 60) return Math.round(n) + " s";
    if (n < 3600) return Math.round(n / 60) + " min";
    return (n / 3600).toFixed(1) + " h";
  }

  function dayEpoch(iso) {
    var parts = iso.split("-");
    return Date.UTC(+parts[0], +parts[1] - 1, +parts[2]) / 1000;
  }

  function width(fig) {
    var plot = fig.querySelector(".plot");
    return Math.max(240, Math.min(plot.clientWidth || fig.clientWidth || 320, 900));
  }

  function axes(yValues) {
    var stroke = textColor();
    var grid = { stroke: css("--border", "#dcdfe4"), width: 1 };
    return [
      { stroke: stroke, grid: grid, ticks: grid },
      { stroke: stroke, grid: grid, ticks: grid, values: yValues, size: 64 },
    ];
  }

  function legend(fig, items) {
    var list = fig.querySelector(".chart-legend");
    if (!list) {
      list = document.createElement("ul");
      list.className = "chart-legend";
      fig.querySelector(".plot").after(list);
    }
    list.textContent = "";
    items.forEach(function (item) {
      var li = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch" + (item.dashed ? " dashed" : "");
      swatch.style.backgroundColor = item.dashed ? "transparent" : item.color;
      swatch.style.borderColor = item.color;
      swatch.setAttribute("aria-hidden", "true");
      li.appendChild(swatch);
      li.appendChild(document.createTextNode(item.label));
      list.appendChild(li);
    });
  }

  function draw(fig, opts, data) {
    var plot = fig.querySelector(".plot");
    plot.textContent = "";
    opts.width = width(fig);
    opts.height = 200;
    opts.legend = { show: false };
    opts.cursor = opts.cursor || { points: { show: false } };
    // eslint-disable-next-line no-undef
    var chart = new uPlot(opts, data, plot);
    fig.dataset.points = String(data[0].length);
    fig.chart = chart;
    return chart;
  }

  function sum(list) { return list.reduce(function (a, b) { return a + b; }, 0); }

  // Stacked bars: each series is drawn as its running total, the widest first, so they read as one stack.
  function backups(fig, d) {
    var x = d.days.map(dayEpoch);
    var ok = d.succeeded;
    var warn = ok.map(function (v, i) { return v + d.warning[i]; });
    var all = warn.map(function (v, i) { return v + d.failed[i]; });
    var bars = uPlot.paths.bars({ size: [0.9, 40] });
    draw(fig, {
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
      axes: axes(function (u, vals) { return vals.map(function (v) { return v % 1 === 0 ? v : ""; }); }),
      series: [
        {},
        { label: "failed", fill: COLORS.failed, stroke: COLORS.failed, paths: bars, points: { show: false } },
        { label: "warning", fill: COLORS.warning, stroke: COLORS.warning, paths: bars, points: { show: false } },
        { label: "succeeded", fill: COLORS.succeeded, stroke: COLORS.succeeded, paths: bars, points: { show: false } },
      ],
    }, [x, all, warn, ok]);
    legend(fig, [
      { label: "succeeded", color: COLORS.succeeded },
      { label: "warning", color: COLORS.warning },
      { label: "failed", color: COLORS.failed },
    ]);
    return sum(d.succeeded) + " succeeded, " + sum(d.warning) + " with warnings, " + sum(d.failed) +
      " failed in the last " + d.days.length + " days.";
  }

  function bytesChart(fig, d) {
    var x = d.days.map(dayEpoch);
    var series = [{}];
    var data = [x];
    var items = [];
    d.storages.forEach(function (s, i) {
      var color = COLORS.line[i % COLORS.line.length];
      series.push({ label: s.storage + " stored", stroke: color, width: 2 });
      data.push(s.stored);
      series.push({ label: s.storage + " new", stroke: color, width: 1.5, dash: [6, 4] });
      data.push(s["new"]);
      items.push({ label: s.storage + ": stored", color: color });
      items.push({ label: s.storage + ": new", color: color, dashed: true });
    });
    if (d.storages.length === 0) {
      series.push({ label: "stored", stroke: COLORS.line[0] });
      data.push(x.map(function () { return 0; }));
    }
    draw(fig, {
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1024, max)]; } } },
      axes: axes(function (u, vals) { return vals.map(bytes); }),
      series: series,
    }, data);
    legend(fig, items);
    if (d.storages.length === 0) return "No snapshot in the catalog yet.";
    return d.storages.map(function (s) {
      return s.storage + ": " + bytes(s.stored[s.stored.length - 1]) + " stored, " + bytes(sum(s["new"])) + " new in " + d.days.length + " days";
    }).join("; ") + ".";
  }

  function durations(fig, d) {
    var items = d.items;
    var x = items.map(function (r) { return Date.parse(r.started) / 1000; });
    var y = items.map(function (r) { return r.seconds; });
    draw(fig, {
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(10, max)]; } } },
      axes: axes(function (u, vals) { return vals.map(seconds); }),
      series: [{}, { label: "duration", stroke: COLORS.line[0], width: 2, points: { show: true, size: 6, fill: COLORS.line[0] } }],
    }, [x, y]);
    legend(fig, [{ label: "duration of a run", color: COLORS.line[0] }]);
    if (!items.length) return "No finished run yet.";
    var longest = Math.max.apply(null, y);
    return items.length + " runs, the longest " + seconds(longest) + ", the latest " + seconds(y[y.length - 1]) + ".";
  }

  function projects(fig, d) {
    var bars = uPlot.paths.bars({ size: [0.5, 80] });
    var labels = ["Protected", "Unprotected"];
    draw(fig, {
      scales: { x: { time: false, range: [-0.5, 1.5] }, y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
      axes: [
        { stroke: textColor(), splits: [0, 1], values: function () { return labels; }, grid: { show: false } },
        { stroke: textColor(), size: 48, values: function (u, vals) { return vals.map(function (v) { return v % 1 === 0 ? v : ""; }); } },
      ],
      series: [
        {},
        { label: "protected", fill: COLORS.succeeded, stroke: COLORS.succeeded, paths: bars, points: { show: false } },
        { label: "unprotected", fill: COLORS.failed, stroke: COLORS.failed, paths: bars, points: { show: false } },
      ],
    }, [[0, 1], [d.protected.length, null], [null, d.unprotected.length]]);
    legend(fig, [
      { label: "protected: " + (d.protected.join(", ") || "none"), color: COLORS.succeeded },
      { label: "unprotected: " + (d.unprotected.join(", ") || "none"), color: COLORS.failed },
    ]);
    return d.protected.length + " protected, " + d.unprotected.length + " unprotected" +
      (d.archived.length ? ", " + d.archived.length + " archived." : ".");
  }

  // One run's traffic: requests a second between samples, and the 429s Jira answered in each interval.
  function traffic(fig, run) {
    var samples = (run.progress && run.progress.samples) || [];
    var x = [], rate = [], throttled = [];
    for (var i = 1; i < samples.length; i++) {
      var dt = Math.max(1, samples[i][0] - samples[i - 1][0]);
      x.push(samples[i][0]);
      rate.push(Math.round(((samples[i][1] - samples[i - 1][1]) / dt) * 10) / 10);
      throttled.push(samples[i][2] - samples[i - 1][2]);
    }
    var bars = uPlot.paths.bars({ size: [0.6, 12] });
    draw(fig, {
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } },
        n: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
      axes: [
        Object.assign(axes()[0], { incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600], values: "{HH}:{mm}:{ss}", space: 70 }),
        { stroke: textColor(), size: 48, scale: "y", label: "req/s" },
        { stroke: textColor(), size: 40, scale: "n", side: 1, grid: { show: false }, label: "429s",
          values: function (u, vals) { return vals.map(function (v) { return v % 1 === 0 ? v : ""; }); } },
      ],
      series: [
        {},
        { label: "requests a second", stroke: COLORS.line[0], width: 2, scale: "y" },
        { label: "429s", stroke: COLORS.failed, fill: COLORS.failed, paths: bars, points: { show: false }, scale: "n" },
      ],
    }, [x, rate, throttled]);
    legend(fig, [
      { label: "requests a second", color: COLORS.line[0] },
      { label: "429 answers (Jira throttling)", color: COLORS.failed },
    ]);
    if (!samples.length) return "No traffic recorded for this run.";
    var last = samples[samples.length - 1];
    return last[1] + " requests, " + last[2] + " answered 429, over " + Math.max(0, last[0] - samples[0][0]) + " s.";
  }

  var KINDS = { backups: backups, bytes: bytesChart, durations: durations, projects: projects, traffic: traffic };

  function load(fig) {
    var summary = fig.querySelector(".chart-summary");
    fetch(fig.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      })
      .then(function (data) {
        if (fig.chart) { fig.chart.destroy(); fig.chart = null; }
        fig.dataset.loaded = "yes";
        summary.textContent = KINDS[fig.dataset.chart](fig, data);
        // a chart of a run in progress reads its endpoint again until the run ends
        if (fig.dataset.refresh && data.state && (data.state === "queued" || data.state === "running")) {
          setTimeout(function () { load(fig); }, +fig.dataset.refresh);
        }
      })
      .catch(function (e) {
        fig.dataset.loaded = "error";
        summary.textContent = "The chart could not be loaded (" + e.message + ").";
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof uPlot === "undefined") return;
    var figures = document.querySelectorAll("figure[data-chart]");
    figures.forEach(load);
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        figures.forEach(function (fig) {
          if (fig.chart) fig.chart.setSize({ width: width(fig), height: 200 });
        });
      }, 150);
    });
  });
})();
