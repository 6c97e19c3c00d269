// Admin: models and rates. Edits and bulk margins both go through a dry-run preview table
// (PUT /api/admin/rates with dry_run) before they are applied.
import { api, el, fill, fmtTime, showError } from "./lib.js";

const FIELDS = ["input", "output", "cached_input", "per_image"];
let pending = null; // the body the preview showed, applied as is

function input(rate, field) {
  const value = rate[field] ?? "";
  return el("input", { value, "data-field": field, "data-orig": value, inputmode: "decimal",
                       "aria-label": `${field.replace("_", " ")} rate of ${rate.model} (${rate.type})` });
}

async function load() {
  const { data } = await api("/api/admin/rates");
  fill(document.querySelector("#rates tbody"), data.map((r) => el("tr",
    { "data-model": r.model, "data-type": r.type },
    el("td", {}, r.model), el("td", {}, r.type),
    FIELDS.map((f) => el("td", {}, input(r, f))), el("td", {}, fmtTime(r.updated_at)))));
  document.getElementById("no-rates").hidden = data.length > 0;
  document.body.dataset.ready = String(Number(document.body.dataset.ready ?? 0) + 1);
}

const show = (rate) => (rate ? `in ${rate.input} · out ${rate.output}` +
  (rate.cached_input ? ` · cached ${rate.cached_input}` : "") +
  (rate.per_image && rate.per_image !== "0" ? ` · image ${rate.per_image}` : "") : "(none)");

async function preview(body) {
  const res = await api("/api/admin/rates", { method: "PUT", body: { ...body, dry_run: true } });
  pending = body;
  fill(document.querySelector("#preview-table tbody"), res.data.map((c) => el("tr", {},
    el("td", {}, c.model), el("td", {}, c.type), el("td", {}, show(c.old)), el("td", {}, show(c.new)),
    el("td", {}, c.changed ? "yes" : "no"))));
  document.getElementById("preview").hidden = false;
  document.getElementById("apply").focus();
}

document.getElementById("preview-edits").addEventListener("click", () => {
  const rates = [];
  for (const tr of document.querySelectorAll("#rates tbody tr")) {
    const inputs = [...tr.querySelectorAll("input")];
    if (!inputs.some((i) => i.value.trim() !== i.dataset.orig)) continue;
    const rate = { model: tr.dataset.model, type: tr.dataset.type };
    for (const i of inputs) {
      const v = i.value.trim();
      if (v !== "" || i.dataset.field === "input" || i.dataset.field === "output") rate[i.dataset.field] = v;
    }
    rates.push(rate);
  }
  if (!rates.length) { showError("Nothing changed: edit a rate first."); return; }
  preview({ rates }).then(() => showError(null), showError);
});

document.getElementById("margin").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const lines = document.getElementById("m-costs").value.split("\n").map((l) => l.trim()).filter(Boolean);
  const unit_costs = lines.map((l) => {
    const [model, inp, out, cached] = l.split(",").map((x) => x.trim());
    return cached ? { model, input: inp, output: out, cached_input: cached } : { model, input: inp, output: out };
  });
  preview({ unit_costs, margin_percent: document.getElementById("m-margin").value.trim(),
            credit_price: document.getElementById("m-price").value.trim() })
    .then(() => showError(null), showError);
});

document.getElementById("apply").addEventListener("click", async () => {
  if (!pending) return;
  try {
    const res = await api("/api/admin/rates", { method: "PUT", body: { ...pending, dry_run: false } });
    document.getElementById("applied").textContent = `Applied: ${res.data.filter((c) => c.changed).length} rate(s) changed.`;
    pending = null;
    document.getElementById("preview").hidden = true;
    showError(null);
    await load();
  } catch (err) { showError(err); }
});
document.getElementById("cancel").addEventListener("click", () => {
  pending = null; document.getElementById("preview").hidden = true;
});

load().catch(showError);
