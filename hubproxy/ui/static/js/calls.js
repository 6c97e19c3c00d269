// The call log: filters, cursor paging (newer/older), a call's detail, CSV export.
import { api, el, fill, fmtCredits, fmtInt, fmtMs, fmtTime, showError } from "./lib.js";

const form = document.getElementById("filters");
const tbody = document.querySelector("#calls tbody");
const cursors = [null]; // the cursor of each page seen so far; the last is the current page
let pageRows = [];

function filters() {
  const f = new FormData(form);
  const out = {};
  for (const name of ["status", "model", "from", "to"]) {
    const v = String(f.get(name) ?? "").trim();
    if (v) out[name] = v;
  }
  return out;
}

function detail(call) {
  const dl = document.getElementById("detail-fields");
  const fields = [
    ["Id", call.id], ["Request id", call.request_id], ["Time", fmtTime(call.created_at)],
    ["Model", call.model], ["Type", call.type], ["Stream", call.stream ? "yes" : "no"],
    ["Status", call.status], ["Prompt tokens", fmtInt(call.prompt_tokens)],
    ["Completion tokens", fmtInt(call.completion_tokens)],
    ["Estimated usage", call.usage_estimated ? "yes" : "no"],
    ["Credits", fmtCredits(call.credits)], ["Duration", fmtMs(call.duration_ms)],
    ["Time to first byte", fmtMs(call.ttfb_ms)], ["Upstream status", call.upstream_status ?? "–"],
    ["Error", call.error ?? "–"],
  ];
  dl.replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  document.getElementById("detail").showModal();
}

/** The table rows of a page of calls (exported: the page must render 1,000 in < 300 ms). */
export function render(rows) {
  pageRows = rows;
  fill(tbody, rows.map((c, i) => el("tr", { class: c.status },
    el("td", {}, fmtTime(c.created_at)), el("td", {}, c.model),
    el("td", {}, c.status), el("td", { class: "num" }, fmtInt(c.total_tokens)),
    el("td", { class: "num" }, fmtCredits(c.credits)), el("td", { class: "num" }, fmtMs(c.duration_ms)),
    el("td", {}, el("button", { type: "button", "data-i": String(i), class: "link" }, "Details")))));
  document.getElementById("no-calls").hidden = rows.length > 0;
}

tbody.addEventListener("click", (ev) => {
  const i = ev.target.closest("button[data-i]")?.dataset.i;
  if (i !== undefined) detail(pageRows[Number(i)]);
});

async function load() {
  const params = { ...filters(), limit: new FormData(form).get("limit"), cursor: cursors.at(-1) };
  try {
    const page = await api("/api/user/calls", { params });
    showError(null);
    render(page.data);
    const next = document.getElementById("next");
    next.disabled = !page.next_cursor;
    next.dataset.cursor = page.next_cursor ?? "";
    document.getElementById("prev").disabled = cursors.length < 2;
    document.getElementById("page-no").textContent = `Page ${cursors.length}`;
    const csv = new URLSearchParams({ ...filters(), format: "csv" });
    document.getElementById("csv").href = `/api/user/calls?${csv}`;
    document.body.dataset.ready = String(cursors.length);
  } catch (err) { showError(err); }
}

form.addEventListener("submit", (ev) => { ev.preventDefault(); cursors.splice(1); load(); });
document.getElementById("next").addEventListener("click", (ev) => {
  cursors.push(ev.currentTarget.dataset.cursor); load();
});
document.getElementById("prev").addEventListener("click", () => {
  if (cursors.length > 1) { cursors.pop(); load(); }
});
load();
