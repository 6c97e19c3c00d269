// Admin: providers and their credentials (add, edit, test, disable; keys write-only, shown
// masked), over /api/admin/providers. A server without that API (404) gets a clear notice.
import { api, ApiError, el, fill, showError } from "./lib.js";

let current = null; // the provider whose credentials are shown
const list = (body) => (Array.isArray(body) ? body : body?.data ?? []);
const masked = (c) => c.key_masked ?? c.masked_key ?? c.key ?? "••••";

async function credentials(provider) {
  current = provider;
  const data = list(await api(`/api/admin/providers/${provider.id}/credentials`));
  document.getElementById("credentials").hidden = false;
  document.getElementById("cred-h").textContent = `Credentials of ${provider.name}`;
  fill(document.querySelector("#cred-table tbody"), data.map((c) => el("tr", { "data-credential": String(c.id) },
    el("td", {}, c.label ?? ""), el("td", {}, el("code", { class: "masked" }, masked(c))),
    el("td", { class: "num" }, String(c.weight ?? 1)),
    el("td", {}, c.state ?? (c.enabled === false ? "disabled" : "enabled")),
    el("td", {}, c.last_error ?? "–"),
    el("td", {},
      el("button", { type: "button", onclick: () => test(c) }, "Test", el("span", { class: "sr" }, ` ${c.label}`)),
      el("button", { type: "button", onclick: () => toggleCredential(c) },
         c.enabled === false ? "Enable" : "Disable", el("span", { class: "sr" }, ` ${c.label}`))))));
  document.getElementById("no-credentials").hidden = data.length > 0;
}

async function test(c) {
  try {
    const res = await api(`/api/admin/credentials/${c.id}/test`, { method: "POST", body: {} });
    showError(res?.ok === false ? `Test failed: ${res.error ?? "no detail"}` : null);
  } catch (err) { showError(err); }
  await credentials(current);
}

async function toggleCredential(c) {
  try { await api(`/api/admin/credentials/${c.id}`, { method: "PATCH", body: { enabled: c.enabled === false } }); }
  catch (err) { showError(err); }
  await credentials(current);
}

async function toggleProvider(p) {
  try { await api(`/api/admin/providers/${p.id}`, { method: "PATCH", body: { enabled: p.enabled === false } }); }
  catch (err) { showError(err); }
  await load();
}

function edit(p) {
  document.getElementById("provider-h").textContent = `Edit ${p.name}`;
  document.getElementById("p-id").value = p.id;
  document.getElementById("p-name").value = p.name;
  document.getElementById("p-type").value = p.type;
  document.getElementById("p-url").value = p.base_url ?? "";
  document.getElementById("p-headers").value = JSON.stringify(p.headers ?? {});
  document.getElementById("p-connect").value = p.connect_timeout_s ?? 10;
  document.getElementById("p-idle").value = p.idle_timeout_s ?? 120;
  document.getElementById("p-enabled").checked = p.enabled !== false;
  document.getElementById("p-name").focus();
}

async function load() {
  let data;
  try {
    data = list(await api("/api/admin/providers"));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      document.getElementById("unavailable").hidden = false;
      document.body.dataset.ready = "unavailable";
      return;
    }
    throw err;
  }
  document.getElementById("manage").hidden = false;
  fill(document.querySelector("#providers tbody"), data.map((p) => el("tr", { "data-provider": p.name },
    el("td", {}, p.name), el("td", {}, p.type), el("td", {}, p.base_url ?? ""),
    el("td", {}, p.enabled === false ? "disabled" : "enabled"),
    el("td", {},
      el("button", { type: "button", onclick: () => edit(p) }, "Edit", el("span", { class: "sr" }, ` ${p.name}`)),
      el("button", { type: "button", onclick: () => credentials(p).catch(showError) }, "Credentials",
         el("span", { class: "sr" }, ` of ${p.name}`)),
      el("button", { type: "button", onclick: () => toggleProvider(p) }, p.enabled === false ? "Enable" : "Disable",
         el("span", { class: "sr" }, ` ${p.name}`))))));
  document.getElementById("no-providers").hidden = data.length > 0;
  document.body.dataset.ready = "1";
}

document.getElementById("provider").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = document.getElementById("p-id").value;
  try {
    const body = {
      name: document.getElementById("p-name").value.trim(), type: document.getElementById("p-type").value,
      base_url: document.getElementById("p-url").value.trim() || null,
      headers: JSON.parse(document.getElementById("p-headers").value || "{}"),
      connect_timeout_s: Number(document.getElementById("p-connect").value),
      idle_timeout_s: Number(document.getElementById("p-idle").value),
      enabled: document.getElementById("p-enabled").checked,
    };
    await api(id ? `/api/admin/providers/${id}` : "/api/admin/providers", { method: id ? "PATCH" : "POST", body });
    document.getElementById("p-id").value = "";
    document.getElementById("provider-h").textContent = "Add a provider";
    showError(null);
    await load();
  } catch (err) { showError(err); }
});

document.getElementById("credential").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!current) return;
  const key = document.getElementById("k-key");
  try {
    await api(`/api/admin/providers/${current.id}/credentials`, { method: "POST", body: {
      label: document.getElementById("k-label").value.trim(), key: key.value,
      weight: Number(document.getElementById("k-weight").value || 1),
    } });
    key.value = "";
    document.getElementById("k-label").value = "";
    showError(null);
    await credentials(current);
  } catch (err) { showError(err); }
});

load().catch(showError);
