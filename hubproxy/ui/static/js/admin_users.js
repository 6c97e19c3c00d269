// Admin: users (list, create, role), credit grants with a note, and the grant history.
import { api, el, fill, fmtCredits, fmtInt, fmtTime, showError } from "./lib.js";

const ROLES = ["member", "admin", "owner"];

async function setRole(name, role) {
  try { await api(`/api/admin/users/${encodeURIComponent(name)}`, { method: "PATCH", body: { role } }); showError(null); }
  catch (err) { showError(err); }
  await load();
}

async function history(name) {
  const { data } = await api(`/api/admin/users/${encodeURIComponent(name)}/grants`);
  document.getElementById("history").hidden = false;
  document.getElementById("history-h").textContent = `Grant history of ${name}`;
  fill(document.querySelector("#grants tbody"), data.map((g) => el("tr", {},
    el("td", {}, fmtTime(g.created_at)), el("td", {}, g.kind),
    el("td", { class: "num" }, fmtCredits(g.amount)), el("td", {}, g.note))));
  document.getElementById("no-grants").hidden = data.length > 0;
}

async function load() {
  const { data } = await api("/api/admin/users");
  fill(document.querySelector("#users tbody"), data.map((u) => {
    const role = el("select", { "aria-label": `Role of ${u.name}`,
                                onchange: (ev) => setRole(u.name, ev.target.value) },
      ROLES.map((r) => el("option", { value: r, selected: r === u.role }, r)));
    return el("tr", { "data-user": u.name },
      el("td", {}, u.name), el("td", {}, role),
      el("td", { class: "num balance" }, fmtCredits(u.balance)), el("td", { class: "num" }, fmtInt(u.keys)),
      el("td", {}, fmtTime(u.created_at)),
      el("td", {}, el("button", { type: "button", onclick: () => history(u.name).catch(showError) },
                      "History", el("span", { class: "sr" }, ` of ${u.name}`))));
  }));
  const pick = document.getElementById("g-user");
  const chosen = pick.value;
  pick.replaceChildren(...data.map((u) => el("option", { value: u.name, selected: u.name === chosen }, u.name)));
  document.body.dataset.ready = String(Number(document.body.dataset.ready ?? 0) + 1);
}

document.getElementById("grant").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const user = document.getElementById("g-user").value;
  try {
    const done = await api("/api/admin/credits", { method: "POST", body: {
      user, kind: document.getElementById("g-kind").value,
      amount: document.getElementById("g-amount").value.trim(),
      note: document.getElementById("g-note").value,
    } });
    document.getElementById("grant-result").textContent =
      `${fmtCredits(done.amount)} credits to ${done.user}: balance now ${fmtCredits(done.balance)}.`;
    document.getElementById("g-amount").value = "";
    document.getElementById("g-note").value = "";
    showError(null);
    await load();
    await history(user);
  } catch (err) { showError(err); }
});

document.getElementById("create").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const made = await api("/api/admin/users", { method: "POST", body: {
      name: document.getElementById("c-name").value.trim(), role: document.getElementById("c-role").value,
    } });
    document.getElementById("c-key").value = made.key;
    document.getElementById("c-result").hidden = false;
    document.getElementById("c-name").value = "";
    showError(null);
    await load();
  } catch (err) { showError(err); }
});

load().catch(showError);
