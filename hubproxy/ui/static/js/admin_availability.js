// Admin: each model's success rate and latency over the last 24 hours (usage rollups), next
// to its passive health over the last 100 calls (the catalogue's `availability`).
import { api, el, fill, fmtInt, fmtMs, fmtPct, showError } from "./lib.js";

const NONE = { calls: 0, success_rate: null, p50_latency_ms: null, last_error: null };

async function load() {
  const to = Date.now();
  const [usage, models] = await Promise.all([
    api("/api/admin/usage", { params: { from: String(to - 24 * 3600e3), to: String(to), group_by: "model" } }),
    api("/api/admin/models"),
  ]);
  const rows = new Map();
  for (const r of usage.data) rows.set(r.model, { model: r.model, day: r, recent: NONE });
  for (const m of models.data) {
    rows.set(m.model, { model: m.model, day: rows.get(m.model)?.day ?? null, recent: m.availability });
  }
  const data = [...rows.values()].sort((a, b) => a.model.localeCompare(b.model));
  fill(document.querySelector("#availability tbody"), data.map(({ model, day, recent }) => el("tr", { "data-model": model },
    el("td", {}, model), el("td", { class: "num" }, fmtInt(day?.requests ?? 0)),
    el("td", { class: "num" }, fmtPct(day?.requests ? (day.requests - day.errors) / day.requests : null)),
    el("td", { class: "num" }, fmtMs(day?.p50_duration_ms)), el("td", { class: "num" }, fmtMs(day?.p95_duration_ms)),
    el("td", { class: "num" }, fmtMs(day?.p50_ttfb_ms)),
    el("td", { class: "num" }, fmtInt(recent.calls)), el("td", { class: "num" }, fmtPct(recent.success_rate)),
    el("td", { class: "num" }, fmtMs(recent.p50_latency_ms)), el("td", {}, recent.last_error ?? "–"))));
  document.getElementById("no-data").hidden = data.length > 0;
  document.body.dataset.ready = "1";
}
load().catch(showError);
