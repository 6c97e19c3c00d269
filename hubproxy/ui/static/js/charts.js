// Usage charts over the vendored uPlot: one small line chart a metric, time in the browser's zone.
import uPlot from "../vendor/uplot-1.6.32/uPlot.esm.js";
import { el } from "./lib.js";

const fmtNum = (n) => n.toLocaleString(undefined, { maximumFractionDigits: 2 });

const HOUR = 3600e3, DAY = 24 * HOUR;

/** Every bucket start from `from` to `to` (ms), so that a quiet hour or day shows as zero. */
export function buckets(fromMs, toMs, hourly) {
  const step = hourly ? HOUR : DAY;
  const out = [];
  for (let t = fromMs - (fromMs % step); t < toMs && out.length < 5000; t += step) out.push(t);
  return out;
}

/** A chart card: title, the period's value and its change, and the line. */
export function chartCard(container, { id, title, value, delta, xs, ys, format = fmtNum }) {
  const box = el("div", { class: "chart-box", id: `chart-${id}` });
  const card = el("figure", { class: "card chart" },
    el("figcaption", {}, el("span", { class: "title" }, title),
      el("span", { class: "value" }, value), el("span", { class: "delta" }, delta)),
    box);
  container.append(card);
  const width = Math.max(240, box.clientWidth || 320);
  const opts = {
    width, height: 160, legend: { show: false }, cursor: { y: false },
    scales: { x: { time: true } },
    axes: [{ size: 30 }, { size: 70, values: (u, v) => v.map((n) => format(n)) }],
    series: [{}, { label: title, stroke: "#2563eb", fill: "rgba(37,99,235,0.12)", width: 2,
                   points: { show: xs.length < 40 } }],
  };
  const plot = new uPlot(opts, [xs.map((t) => t / 1000), ys], box);
  new ResizeObserver(() => plot.setSize({ width: Math.max(240, box.clientWidth), height: 160 }))
    .observe(box);
  return plot;
}
