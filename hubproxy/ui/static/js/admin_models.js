// Admin: the model catalogue (with each model's passive availability) and the aliases, over
// /api/admin/models and /api/admin/aliases (the alias document is replaced whole).
import { api, el, fill, fmtInt, fmtMs, fmtPct, showError } from "./lib.js";

const $ = (id) => document.getElementById(id);
const sr = (text) => el("span", { class: "sr" }, ` ${text}`);
let loads = 0;
let asked = 0;

async function change(m, init) {
  try {
    await api(`/api/admin/models/${encodeURIComponent(m.id)}`, init);
    showError(null);
  } catch (err) { showError(err); }
  await load();
}

function modelRow(m) {
  const a = m.availability;
  const actions = m.source === "config" ? [] : [
    el("button", { type: "button", onclick: () => change(m, { method: "PATCH", body: { enabled: !m.enabled } }) },
       m.enabled ? "Disable" : "Enable", sr(m.model)),
    el("button", { type: "button", onclick: () => confirm(`Remove ${m.model} from the catalogue?`) && change(m, { method: "DELETE" }) },
       "Delete", sr(m.model)),
  ];
  return el("tr", { "data-model": m.model },
    el("td", {}, m.model), el("td", {}, m.display_name || "–"), el("td", {}, m.type),
    el("td", { class: "num" }, fmtInt(m.context_window)),
    el("td", {}, m.source === "config" ? "config file (read-only)" : "database"),
    el("td", {}, m.enabled ? "enabled" : "disabled"),
    el("td", { class: "num" }, fmtInt(a.calls)), el("td", { class: "num" }, fmtPct(a.success_rate)),
    el("td", { class: "num" }, fmtMs(a.p50_latency_ms)), el("td", {}, a.last_error ?? "–"),
    el("td", {}, actions));
}

const line = (name, targets) => `${name} = ${targets.join(", ")}`;

function parseAliases(text) {
  const doc = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const l = raw.trim();
    if (!l) continue;
    const at = l.indexOf("=");
    if (at < 1) throw new Error(`Line ${i + 1}: write name = provider/model[, provider/model …].`);
    doc[l.slice(0, at).trim()] = l.slice(at + 1).split(",").map((t) => t.trim()).filter(Boolean);
  }
  return doc;
}

function showAliases({ aliases, resolved }) {
  const names = Object.keys(aliases).sort();
  fill(document.querySelector("#aliases tbody"), names.map((n) => el("tr", { "data-alias": n },
    el("td", {}, n), el("td", {}, (resolved[n] ?? aliases[n]).join(" → ")))));
  $("no-aliases").hidden = names.length > 0;
  $("a-doc").value = names.map((n) => line(n, aliases[n])).join("\n");
}

async function load() {
  const turn = ++asked;
  const [{ data }, aliases] = await Promise.all([api("/api/admin/models"), api("/api/admin/aliases")]);
  if (turn !== asked) return; // a later load was started meanwhile: this answer may be stale
  data.sort((a, b) => a.model.localeCompare(b.model));
  fill(document.querySelector("#models tbody"), data.map(modelRow));
  $("no-models").hidden = data.length > 0;
  showAliases(aliases);
  document.body.dataset.ready = String(++loads);
}

$("model").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const context = $("m-context").value.trim();
  try {
    await api("/api/admin/models", { method: "POST", body: {
      model: $("m-model").value.trim(), type: $("m-type").value, display_name: $("m-display").value,
      context_window: context ? Number(context) : null,
    } });
    $("model").reset();
    showError(null);
    await load();
  } catch (err) { showError(err); }
});

$("alias-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    showAliases(await api("/api/admin/aliases", { method: "PUT", body: { aliases: parseAliases($("a-doc").value) } }));
    showError(null);
  } catch (err) { showError(err); }
});

load().catch(showError);
