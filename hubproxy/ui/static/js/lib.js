// Shared by every page: the JSON API with the session and CSRF token, safe DOM building
// (text only, never HTML from data), and number and time formats.

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** Call a JSON API as this session. A lost session (401) goes back to the sign-in page. */
export async function api(path, { method = "GET", body, params } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = CSRF;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(url, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = resp.headers.get("content-type")?.includes("json") ? await resp.json() : null;
  if (resp.status === 401) {
    location.assign("/ui/login");
    throw new ApiError(401, data);
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export const csrfHeader = () => ({ "X-CSRF-Token": CSRF });

/** An element with attributes and children; strings become text nodes, never markup. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

export function fill(tbody, rows) {
  const frag = document.createDocumentFragment();
  for (const r of rows) frag.append(r);
  tbody.replaceChildren(frag);
}

export function showError(err) {
  const box = document.getElementById("page-error");
  if (!box) return;
  box.textContent = err ? String(err.message ?? err) : "";
  box.hidden = !err;
}

const LOCALE = undefined; // the browser's
const INT = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });
const PCT = new Intl.NumberFormat(LOCALE, { style: "percent", maximumFractionDigits: 1 });
const CREDITS = new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 0, maximumFractionDigits: 6 });
const TIME = new Intl.DateTimeFormat(LOCALE, { dateStyle: "medium", timeStyle: "medium" });

export const fmtInt = (n) => (n === null || n === undefined ? "–" : INT.format(n));
export const fmtPct = (x) => (x === null || x === undefined || !isFinite(x) ? "–" : PCT.format(x));
export const fmtTime = (iso) => (iso ? TIME.format(new Date(iso)) : "–");
export const fmtMs = (ms) => (ms === null || ms === undefined ? "–" : `${INT.format(ms)} ms`);

/** Credits from integer micro-credits: grouped digits, at most 6 decimals, exact (no float). */
export function fmtCredits(micro) {
  if (micro === null || micro === undefined) return "–";
  const big = BigInt(micro);
  const neg = big < 0n;
  const abs = neg ? -big : big;
  const whole = abs / 1000000n;
  const frac = (abs % 1000000n).toString().padStart(6, "0").replace(/0+$/, "");
  const sep = CREDITS.formatToParts(1.5).find((p) => p.type === "decimal")?.value ?? ".";
  const grouped = new Intl.NumberFormat(LOCALE).format(whole);
  return (neg ? "−" : "") + grouped + (frac ? sep + frac : "");
}

/** The change of a value against the previous period, as "+12.5%" (or "new", or "–"). */
export function change(now, before) {
  if (!before) return now ? "new" : "–";
  const x = (now - before) / before;
  return (x > 0 ? "+" : "") + PCT.format(x);
}
