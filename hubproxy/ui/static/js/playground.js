// The playground: chat with any model, streamed token by token from /v1/chat/completions
// (fetch + ReadableStream), with the usage and credits of each answer.
import { api, csrfHeader, el, fmtCredits, fmtInt, fmtMs, showError } from "./lib.js";

const log = document.getElementById("log");
const select = document.getElementById("model");
let history = [];
let controller = null;

async function models() {
  const { data } = await api("/v1/models");
  document.getElementById("models").replaceChildren(...data.map((m) => el("option", { value: m.id })));
  if (!select.value && data.length) select.value = data[0].id;
  document.getElementById("no-models").hidden = data.length > 0;
}

/** Each `data:` payload of a server-sent event stream, as it arrives. */
async function* events(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      for (const line of block.split("\n")) if (line.startsWith("data:")) yield line.slice(5).trim();
    }
  }
}

async function creditsOf(requestId) {
  // The call is recorded when the stream ends; its row says what it cost.
  for (let i = 0; i < 5; i++) {
    const { data } = await api("/api/user/calls", { params: { limit: "20" } });
    const call = data.find((c) => c.request_id === requestId);
    if (call && call.status !== "processing") return call;
    await new Promise((r) => setTimeout(r, 200));
  }
  return null;
}

async function send(text) {
  const model = select.value.trim();
  history.push({ role: "user", content: text });
  log.append(el("div", { class: "msg user" }, el("strong", {}, "You"), el("p", {}, text)));
  const answer = el("p", { class: "answer" });
  const meta = el("p", { class: "help meta" }, "…");
  log.append(el("div", { class: "msg assistant" }, el("strong", {}, model), answer, meta));
  controller = new AbortController();
  const started = performance.now();
  const resp = await fetch("/v1/chat/completions", {
    method: "POST", credentials: "same-origin", signal: controller.signal,
    headers: { "Content-Type": "application/json", ...csrfHeader() },
    body: JSON.stringify({ model, messages: history, stream: true,
                           stream_options: { include_usage: true } }),
  });
  if (!resp.ok) {
    const body = await resp.json().catch(() => null);
    if (resp.status === 401) location.assign("/ui/login");
    throw new Error(body?.error?.message ?? `HTTP ${resp.status}`);
  }
  let usage = null, firstMs = null;
  for await (const data of events(resp.body)) {
    if (data === "[DONE]") break;
    const chunk = JSON.parse(data);
    if (chunk.error) throw new Error(chunk.error.message);
    const delta = chunk.choices?.[0]?.delta?.content;
    if (delta) {
      firstMs ??= performance.now() - started;
      answer.textContent += delta;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  history.push({ role: "assistant", content: answer.textContent });
  const call = await creditsOf(resp.headers.get("X-Request-Id"));
  const parts = [];
  if (usage) parts.push(`${fmtInt(usage.prompt_tokens)} prompt + ${fmtInt(usage.completion_tokens)} completion tokens`);
  if (call) parts.push(`${fmtCredits(call.credits)} credits`);
  if (firstMs !== null) parts.push(`first token after ${fmtMs(Math.round(firstMs))}`);
  meta.textContent = parts.join(" · ");
  meta.classList.add("done");
}

document.getElementById("chat").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const prompt = document.getElementById("prompt");
  const text = prompt.value.trim();
  if (!text) return;
  prompt.value = "";
  const sendBtn = document.getElementById("send"), stop = document.getElementById("stop");
  sendBtn.disabled = true; stop.disabled = false;
  try { await send(text); showError(null); }
  catch (err) { if (err.name !== "AbortError") showError(err); }
  finally { sendBtn.disabled = false; stop.disabled = true; controller = null; prompt.focus(); }
});
document.getElementById("stop").addEventListener("click", () => controller?.abort());
document.getElementById("reset").addEventListener("click", () => { history = []; log.replaceChildren(); });
document.getElementById("prompt").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) document.getElementById("chat").requestSubmit();
});

models().then(() => { document.body.dataset.ready = "1"; }).catch(showError);
