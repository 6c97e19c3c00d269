// Admin: providers and their credentials over /api/admin/providers and /api/admin/credentials:
// add, edit, disable and remove them, set weights, test a key. Keys are write-only (the API
// answers them masked); config-file providers are shown read-only.
import { api, el, fill, fmtInt, fmtTime, showError } from "./lib.js";

const $ = (id) => document.getElementById(id);
const path = (kind, id, rest = "") => `/api/admin/${kind}/${encodeURIComponent(id)}${rest}`;
let current = null; // the provider whose credentials are shown
let loads = 0; // tables drawn, for tests to wait on (body data-ready, data-credentials)
let shown = 0;
let listed = 0; // requests made: only the answer to the latest one is drawn
let asked = 0;

const sr = (text) => el("span", { class: "sr" }, ` ${text}`);
const readOnly = (p) => p.source === "config";

function state(c) {
  const until = c.resting_until ? ` until ${fmtTime(c.resting_until)}` : "";
  return `${c.state}${until}`;
}

function weightCell(c, provider) {
  if (readOnly(provider)) return el("td", { class: "num" }, String(c.weight));
  const box = el("input", { value: String(c.weight), inputmode: "numeric", size: 4,
                            "aria-label": `Weight of ${c.label}` });
  const save = () => patchCredential(c, { weight: Number(box.value) });
  return el("td", { class: "inline" }, box, el("button", { type: "button", onclick: save }, "Set", sr(`weight of ${c.label}`)));
}

function credentialRow(c, provider) {
  const actions = [el("button", { type: "button", onclick: () => test(c) }, "Test", sr(c.label))];
  if (!readOnly(provider)) {
    actions.push(
      el("button", { type: "button", onclick: () => patchCredential(c, { enabled: !c.enabled }) },
         c.enabled ? "Disable" : "Enable", sr(c.label)),
      el("button", { type: "button", onclick: () => removeCredential(c) }, "Delete", sr(c.label)));
  }
  return el("tr", { "data-credential": c.label },
    el("td", {}, c.label), el("td", {}, el("code", { class: "masked" }, c.key)),
    weightCell(c, provider), el("td", { class: "state" }, state(c)),
    el("td", { class: "last-error" }, c.last_error ?? "–"), el("td", {}, fmtTime(c.last_used_at)),
    el("td", { class: "num" }, fmtInt(c.successes_last_hour)),
    el("td", { class: "num" }, fmtInt(c.failures_last_hour)),
    el("td", {}, actions));
}

async function credentials(provider) {
  current = provider;
  const turn = ++asked;
  const { data } = await api(path("providers", provider.id, "/credentials"));
  if (turn !== asked) return; // a later view was asked for meanwhile: this one may be stale
  $("credentials").hidden = false;
  $("cred-h").textContent = `Credentials of ${provider.name}`;
  $("cred-readonly").hidden = !readOnly(provider);
  $("credential").hidden = readOnly(provider);
  fill(document.querySelector("#cred-table tbody"), data.map((c) => credentialRow(c, provider)));
  $("no-credentials").hidden = data.length > 0;
  document.body.dataset.credentials = String(++shown);
}

async function refresh() {
  if (current) await credentials(current);
}

async function test(c) {
  const result = $("test-result");
  const model = $("t-model").value.trim();
  try {
    const res = await api(path("credentials", c.id, "/test"), { method: "POST", body: model ? { model } : {} });
    const how = `HTTP ${res.status ?? "none"} in ${fmtInt(res.latency_ms)} ms with model ${res.model}`;
    result.textContent = res.ok ? `${c.label}: OK (${how}).` : `${c.label}: failed (${how}): ${res.error ?? "no detail"}`;
    result.dataset.ok = String(res.ok);
    result.hidden = false;
    showError(null);
  } catch (err) { showError(err); }
  await refresh();
}

async function patchCredential(c, body) {
  try {
    await api(path("credentials", c.id), { method: "PATCH", body });
    showError(null);
  } catch (err) { showError(err); }
  await refresh();
}

async function removeCredential(c) {
  if (!confirm(`Delete credential ${c.label}? Its key is gone for good.`)) return;
  try {
    await api(path("credentials", c.id), { method: "DELETE" });
    showError(null);
  } catch (err) { showError(err); }
  await refresh();
}

async function toggleProvider(p) {
  try {
    await api(path("providers", p.id), { method: "PATCH", body: { enabled: !p.enabled } });
    showError(null);
  } catch (err) { showError(err); }
  await load();
}

async function removeProvider(p) {
  if (!confirm(`Delete provider ${p.name} and its credentials?`)) return;
  try {
    await api(path("providers", p.id), { method: "DELETE" });
    if (current?.id === p.id) { current = null; $("credentials").hidden = true; }
    showError(null);
  } catch (err) { showError(err); }
  await load();
}

function resetForm() {
  $("provider").reset();
  $("p-id").value = "";
  $("p-name").disabled = false;
  $("provider-h").textContent = "Add a provider";
  $("p-save").textContent = "Add provider";
  $("p-cancel").hidden = true;
}

function edit(p) {
  $("provider-h").textContent = `Edit ${p.name}`;
  $("p-save").textContent = "Save provider";
  $("p-cancel").hidden = false;
  $("p-id").value = p.id;
  $("p-name").value = p.name;
  $("p-name").disabled = true; // a name cannot change: models and aliases refer to it
  $("p-type").value = p.type;
  $("p-url").value = p.base_url ?? "";
  $("p-version").value = p.api_version ?? "";
  $("p-headers").value = JSON.stringify(p.headers ?? {});
  $("p-connect").value = p.connect_timeout_s;
  $("p-idle").value = p.idle_timeout_s;
  $("p-enabled").checked = p.enabled;
  $("p-type").focus();
}

function providerRow(p) {
  const actions = [el("button", { type: "button", onclick: () => credentials(p).catch(showError) },
                      "Credentials", sr(`of ${p.name}`))];
  if (!readOnly(p)) {
    actions.push(
      el("button", { type: "button", onclick: () => edit(p) }, "Edit", sr(p.name)),
      el("button", { type: "button", onclick: () => toggleProvider(p) }, p.enabled ? "Disable" : "Enable", sr(p.name)),
      el("button", { type: "button", onclick: () => removeProvider(p) }, "Delete", sr(p.name)));
  }
  return el("tr", { "data-provider": p.name },
    el("td", {}, p.name), el("td", {}, p.type), el("td", {}, p.base_url || "–"),
    el("td", { class: "source" }, readOnly(p) ? "config file (read-only)" : "database"),
    el("td", {}, p.enabled ? "enabled" : "disabled"), el("td", {}, actions));
}

async function load() {
  const turn = ++listed;
  const { data } = await api("/api/admin/providers");
  if (turn !== listed) return;
  fill(document.querySelector("#providers tbody"), data.map(providerRow));
  $("no-providers").hidden = data.length > 0;
  if (current) current = data.find((p) => p.id === current.id) ?? current;
  document.body.dataset.ready = String(++loads);
}

function headers() {
  const text = $("p-headers").value.trim() || "{}";
  try { return JSON.parse(text); }
  catch { throw new Error("Extra headers must be a JSON object, e.g. {\"X-Org\": \"acme\"}."); }
}

$("provider").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = $("p-id").value;
  try {
    const body = {
      type: $("p-type").value, base_url: $("p-url").value.trim(), api_version: $("p-version").value.trim(),
      headers: headers(), connect_timeout_s: Number($("p-connect").value),
      idle_timeout_s: Number($("p-idle").value), enabled: $("p-enabled").checked,
    };
    if (!id) body.name = $("p-name").value.trim();
    const saved = await api(id ? path("providers", id) : "/api/admin/providers", { method: id ? "PATCH" : "POST", body });
    resetForm();
    showError(null);
    await load();
    if (!id) await credentials(saved);
  } catch (err) { showError(err); }
});
$("p-cancel").addEventListener("click", resetForm);

$("credential").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!current) return;
  try {
    await api(path("providers", current.id, "/credentials"), { method: "POST", body: {
      label: $("k-label").value.trim(), key: $("k-key").value, weight: Number($("k-weight").value || 1),
    } });
    $("credential").reset(); // the key leaves the page once it is saved
    showError(null);
  } catch (err) { showError(err); }
  await refresh();
});

load().catch(showError);
