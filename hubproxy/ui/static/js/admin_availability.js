// Admin: each model's success rate and latency over the last 24 hours (usage rollups).
import { api, el, fill, fmtInt, fmtMs, fmtPct, showError } from "./lib.js";

async function load() {
  const to = Date.now();
  const { data } = await api("/api/admin/usage", { params: { from: String(to - 24 * 3600e3), to: String(to), group_by: "model" } });
  data.sort((a, b) => a.model.localeCompare(b.model));
  fill(document.querySelector("#availability tbody"), data.map((r) => el("tr", {},
    el("td", {}, r.model), el("td", { class: "num" }, fmtInt(r.requests)),
    el("td", { class: "num" }, fmtPct(r.requests ? (r.requests - r.errors) / r.requests : null)),
    el("td", { class: "num" }, fmtMs(r.p50_duration_ms)), el("td", { class: "num" }, fmtMs(r.p95_duration_ms)),
    el("td", { class: "num" }, fmtMs(r.p50_ttfb_ms)))));
  document.getElementById("no-data").hidden = data.length > 0;
  document.body.dataset.ready = "1";
}
load().catch(showError);
