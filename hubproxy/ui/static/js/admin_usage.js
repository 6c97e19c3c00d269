// Admin: everyone's usage, with a drill-down per user (by key and by model).
import { api, el, fill, fmtCredits, fmtInt, showError } from "./lib.js";
import { buckets, chartCard } from "./charts.js";

const DAY = 24 * 3600e3;
let users = new Map();

function period() {
  const days = Number(document.getElementById("range").value);
  const to = Date.now();
  return { from: String(to - days * DAY), to: String(to), hourly: days === 1 };
}

const usage = (params) => api("/api/admin/usage", { params });
const row = (name, r, extra = []) => el("tr", {}, el("td", {}, name),
  el("td", { class: "num" }, fmtInt(r.requests)), el("td", { class: "num" }, fmtInt(r.errors)),
  el("td", { class: "num" }, fmtInt(r.prompt_tokens + r.completion_tokens)),
  el("td", { class: "num" }, fmtCredits(r.credits)), ...extra);

async function drill(name) {
  const { from, to } = period();
  const [byKey, byModel, keys] = await Promise.all([
    usage({ from, to, user: name, group_by: "key" }), usage({ from, to, user: name, group_by: "model" }),
    api(`/api/admin/users/${encodeURIComponent(name)}/keys`),
  ]);
  const label = new Map(keys.data.map((k) => [k.id, `${k.label || "(no label)"} · ${k.prefix}…`]));
  document.getElementById("drill").hidden = false;
  document.getElementById("drill-h").textContent = `Usage of ${name}`;
  fill(document.querySelector("#by-key tbody"), byKey.data.map((r) => row(label.get(r.key_id) ?? `key ${r.key_id}`, r)));
  fill(document.querySelector("#by-model tbody"), byModel.data.map((r) => row(r.model, r)));
  document.getElementById("drill-csv").href =
    `/api/admin/calls?${new URLSearchParams({ user: name, from, to, format: "csv" })}`;
}

async function load() {
  const { from, to, hourly } = period();
  const [all, byUser, list] = await Promise.all([
    usage({ from, to, group_by: hourly ? "hour" : "day" }), usage({ from, to, group_by: "user" }),
    api("/api/admin/users"),
  ]);
  users = new Map(list.data.map((u) => [u.id, u.name]));
  const xs = buckets(Number(from), Number(to), hourly);
  const byStart = new Map(all.data.map((r) => [Date.parse(r.start), r]));
  const col = (f) => xs.map((t) => { const r = byStart.get(t); return r ? f(r) : 0; });
  const charts = document.getElementById("charts");
  charts.replaceChildren();
  chartCard(charts, { id: "requests", title: "Requests", value: fmtInt(all.totals.requests), delta: "", xs,
                      ys: col((r) => r.requests) });
  chartCard(charts, { id: "credits", title: "Credits", value: fmtCredits(all.totals.credits), delta: "", xs,
                      ys: col((r) => r.credits / 1e6),
                      format: (n) => n.toLocaleString(undefined, { maximumFractionDigits: 6 }) });
  document.getElementById("no-usage").hidden = all.totals.requests > 0;
  const rows = byUser.data.sort((a, b) => b.credits - a.credits);
  fill(document.querySelector("#by-user tbody"), rows.map((r) => {
    const name = users.get(r.user_id) ?? `user ${r.user_id}`;
    return row(name, r, [el("td", {}, el("button", { type: "button",
      onclick: () => drill(name).catch(showError) }, "Drill down", el("span", { class: "sr" }, ` into ${name}`)))]);
  }));
  document.body.dataset.ready = "1";
}

document.getElementById("range").addEventListener("change", () => load().catch(showError));
load().catch(showError);
