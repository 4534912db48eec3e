// Stacked bar charts over time with Chart.js (vendored, loaded as a classic
// script before the modules: `window.Chart`). Each chart also gets a text
// summary for screen readers, since a canvas says nothing by itself.

import { el } from "./ui.js";

const PALETTE = [
  "#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed",
  "#0891b2", "#db2777", "#65a30d", "#6b7280",
];

const charts = new Map();

/**
 * A stacked bar chart: `labels` are the time buckets, `series` is
 * `[{name, values}]` (one value per bucket). Appended to `parent` before it
 * is drawn, so Chart.js measures its real size. Replaces the chart `id` had.
 */
export function stackedBars(parent, id, title, labels, series, format) {
  charts.get(id)?.destroy();
  const canvas = el("canvas", {
    id,
    role: "img",
    "aria-label": `${title}: ${series.map((s) => `${s.name} ${format(sum(s.values))}`).join(", ") || "no data"}`,
  });
  const box = el("figure", { class: "chart" }, el("figcaption", {}, title), el("div", { class: "canvas-box" }, canvas));
  parent.append(box);
  const chart = new window.Chart(canvas, {
    type: "bar",
    data: {
      labels,
      datasets: series.map((s, i) => ({
        label: s.name,
        data: s.values,
        backgroundColor: PALETTE[i % PALETTE.length],
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true } },
        y: { stacked: true, beginAtZero: true, ticks: { callback: (v) => format(v) } },
      },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12 } },
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${format(c.parsed.y)}` } },
      },
    },
  });
  charts.set(id, chart);
}

function sum(values) {
  return values.reduce((a, b) => a + b, 0);
}

/**
 * A line chart: `labels` are the readings' times, `series` is
 * `[{name, values}]`. Replaces the chart `id` had.
 */
export function lines(parent, id, title, labels, series, format) {
  charts.get(id)?.destroy();
  const latest = series.map((s) => `${s.name} ${format(s.values.at(-1) ?? 0)}`).join(", ");
  const canvas = el("canvas", { id, role: "img", "aria-label": `${title}: ${latest || "no data"}` });
  const box = el("figure", { class: "chart" }, el("figcaption", {}, title), el("div", { class: "canvas-box" }, canvas));
  parent.append(box);
  const chart = new window.Chart(canvas, {
    type: "line",
    data: {
      labels,
      datasets: series.map((s, i) => ({
        label: s.name,
        data: s.values,
        borderColor: PALETTE[i % PALETTE.length],
        backgroundColor: PALETTE[i % PALETTE.length],
        pointRadius: 0,
        tension: 0.2,
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { ticks: { maxRotation: 0, autoSkip: true } },
        y: { beginAtZero: true, ticks: { callback: (v) => format(v) } },
      },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12 } },
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${format(c.parsed.y)}` } },
      },
    },
  });
  charts.set(id, chart);
}
