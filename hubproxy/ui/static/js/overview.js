// The overview: balance, success rate, usage charts against the previous period, models.
import { api, el, fill, fmtCredits, fmtInt, fmtPct, fmtMs, change, showError } from "./lib.js";
import { buckets, chartCard } from "./charts.js";

const RANGES = { "24h": [1, true], "7d": [7, false], "30d": [30, false], "90d": [90, false] };
const DAY = 24 * 3600e3;

async function balance() {
  const b = await api("/api/user/balance");
  document.getElementById("balance").textContent = fmtCredits(b.balance);
  document.getElementById("available").textContent = fmtCredits(b.available);
  document.getElementById("held").textContent = fmtCredits(b.held);
}

const usage = (from, to, group_by) =>
  api("/api/user/usage", { params: { from: String(from), to: String(to), group_by } });

/** Request-weighted mean of each bucket's median: the period's typical latency. */
function typical(rows, field) {
  let n = 0, sum = 0;
  for (const r of rows) if (r[field] !== null) { n += r.requests; sum += r[field] * r.requests; }
  return n ? sum / n : null;
}

async function draw() {
  const [days, hourly] = RANGES[document.getElementById("range").value];
  const to = Date.now(), from = to - days * DAY, before = from - days * DAY;
  const group = hourly ? "hour" : "day";
  const [now, prev, models] = await Promise.all([
    usage(from, to, group), usage(before, from, group), usage(from, to, "model"),
  ]);
  const xs = buckets(from, to, hourly);
  const byStart = new Map(now.data.map((r) => [Date.parse(r.start), r]));
  const col = (f) => xs.map((t) => { const r = byStart.get(t); return r ? f(r) : 0; });
  const t = now.totals, p = prev.totals;
  const tokens = (x) => x.prompt_tokens + x.completion_tokens;
  const durNow = typical(now.data, "p50_duration_ms"), durPrev = typical(prev.data, "p50_duration_ms");
  const ttfbNow = typical(now.data, "p50_ttfb_ms"), ttfbPrev = typical(prev.data, "p50_ttfb_ms");
  const charts = document.getElementById("charts");
  charts.replaceChildren();
  const specs = [
    { id: "credits", title: "Credits", value: fmtCredits(t.credits), delta: change(t.credits, p.credits),
      ys: col((r) => r.credits / 1e6),
      format: (n) => n.toLocaleString(undefined, { maximumFractionDigits: 6 }) },
    { id: "requests", title: "Requests", value: fmtInt(t.requests), delta: change(t.requests, p.requests),
      ys: col((r) => r.requests) },
    { id: "tokens", title: "Tokens", value: fmtInt(tokens(t)), delta: change(tokens(t), tokens(p)),
      ys: col(tokens) },
    { id: "duration", title: "Median duration (ms)", value: fmtMs(durNow), delta: change(durNow, durPrev),
      ys: col((r) => r.p50_duration_ms ?? 0) },
    { id: "ttfb", title: "Median TTFB (ms)", value: fmtMs(ttfbNow), delta: change(ttfbNow, ttfbPrev),
      ys: col((r) => r.p50_ttfb_ms ?? 0) },
  ];
  for (const s of specs) chartCard(charts, { ...s, xs });
  document.getElementById("no-usage").hidden = t.requests > 0;
  const ok = t.requests - t.errors;
  document.getElementById("success").textContent = t.requests ? fmtPct(ok / t.requests) : "–";
  document.getElementById("success-help").textContent =
    `${fmtInt(ok)} of ${fmtInt(t.requests)} calls succeeded`;
  const total = models.totals.credits || 1;
  const rows = models.data.sort((a, b) => b.credits - a.credits || b.requests - a.requests);
  fill(document.querySelector("#models tbody"), rows.map((r) => el("tr", {},
    el("td", {}, r.model), el("td", { class: "num" }, fmtInt(r.requests)),
    el("td", { class: "num" }, fmtCredits(r.credits)),
    el("td", {}, el("meter", { min: 0, max: 1, value: r.credits / total,
                                "aria-label": `${r.model} share of credits` })))));
  if (!rows.length) fill(document.querySelector("#models tbody"),
    [el("tr", {}, el("td", { colspan: "4", class: "empty" }, "No models used yet: try the playground."))]);
  document.body.dataset.ready = "1";
}

async function main() {
  try {
    await Promise.all([balance(), draw()]);
  } catch (err) { showError(err); }
}
document.getElementById("range").addEventListener("change", () => draw().catch(showError));
main();
