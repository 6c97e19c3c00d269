// The caller's keys: create (shown once, with a copy button), label, revoke.
import { api, el, fill, fmtTime, showError } from "./lib.js";

const tbody = document.querySelector("#keys tbody");

async function revoke(key) {
  const warn = key.current ? " You are signed in with this key: revoking it signs you out." : "";
  if (!confirm(`Revoke the key "${key.label || key.prefix}"?${warn}`)) return;
  try {
    await api(`/api/user/keys/${key.id}`, { method: "DELETE" });
    if (key.current) { location.assign("/ui/login"); return; }
    await load();
  } catch (err) { showError(err); }
}

async function load() {
  const { data } = await api("/api/user/keys");
  fill(tbody, data.map((k) => el("tr", { "data-key-id": String(k.id) },
    el("td", {}, k.label || "(no label)"), el("td", {}, el("code", {}, `${k.prefix}…`)),
    el("td", {}, fmtTime(k.created_at)),
    el("td", {}, k.active ? (k.current ? "active (this session)" : "active") : `revoked ${fmtTime(k.revoked_at)}`),
    el("td", {}, k.active ? el("button", { type: "button", onclick: () => revoke(k) },
                               "Revoke", el("span", { class: "sr" }, ` ${k.label || k.prefix}`)) : ""))));
  document.getElementById("no-keys").hidden = data.length > 0;
  document.body.dataset.ready = "1";
}

document.getElementById("create").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const made = await api("/api/user/keys", {
      method: "POST", body: { label: document.getElementById("label").value },
    });
    document.getElementById("new-key").value = made.key;
    document.getElementById("created").hidden = false;
    document.getElementById("copied").textContent = "";
    document.getElementById("label").value = "";
    showError(null);
    await load();
    document.getElementById("new-key").select();
  } catch (err) { showError(err); }
});

document.getElementById("copy").addEventListener("click", async () => {
  const input = document.getElementById("new-key");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand("copy");
  }
  document.getElementById("copied").textContent = "Copied.";
});

load().catch(showError);
