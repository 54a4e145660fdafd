// Confine's dashboard: plain JavaScript, no dependency. Every value from the API is inserted as
// text nodes, never parsed as markup; the token lives in this tab's sessionStorage only and
// travels in the Authorization header; output is tailed with fetch() reading text/event-stream
// (EventSource cannot send a header), resumed with Last-Event-ID after a dropped connection.
"use strict";

const TOKEN_KEY = "confine.token";
const ROLES = ["viewer", "submitter", "operator", "admin"];
const STATUSES = ["PENDING", "RUNNING", "SUCCESS", "FAILED", "TIMED_OUT", "CANCELLED"];
const VERDICTS = ["exited", "signaled", "wall_timeout", "cpu_timeout", "memory_limit", "output_limit", "setup_failed", "cancelled", "interrupted"];
const LIMITS = ["wall_time", "cpu_time", "memory", "processes", "stdout", "stderr", "open_files", "file_size", "stack", "cpu_quota", "cpu_weight"];

const state = { who: null, cleanup: [] };

// ---------- DOM, always as text ----------

/** An element: attributes (on* never), then children; strings become text nodes. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function view() { return document.getElementById("view"); }

function show(...nodes) {
  for (const stop of state.cleanup.splice(0)) stop();
  const main = view();
  main.replaceChildren(...nodes);
  const heading = main.querySelector("h1");
  if (heading) document.title = heading.textContent + " — Confine";
}

function say(message) { document.getElementById("status").textContent = message || ""; }
/** A message for the next page (said once it is shown). */
function flash(message) { state.flash = message; }

/** A status as a word and a symbol, never by colour alone. */
function statusBadge(status) {
  const kinds = { SUCCESS: ["ok", "✓"], FAILED: ["bad", "✗"], TIMED_OUT: ["bad", "⏱"], CANCELLED: ["idle", "⊘"], RUNNING: ["live", "▶"], PENDING: ["idle", "…"] };
  const [kind, symbol] = kinds[status] || ["idle", "?"];
  return h("span", { class: "badge " + kind }, h("span", { "aria-hidden": "true" }, symbol + " "), status || "-");
}

function time(text) {
  if (!text) return "-";
  const date = new Date(text);
  return h("time", { datetime: text, title: text }, isNaN(date) ? text : date.toLocaleString());
}

function ms(value) { return value === null || value === undefined ? "-" : value < 10000 ? value + " ms" : (value / 1000).toFixed(1) + " s"; }
function bytes(value) {
  if (value === null || value === undefined) return "-";
  if (value < 1024) return value + " B";
  if (value < 1 << 20) return (value / 1024).toFixed(1) + " KiB";
  return (value / (1 << 20)).toFixed(1) + " MiB";
}

function roleAtLeast(role) { return !!state.who && ROLES.indexOf(state.who.role) >= ROLES.indexOf(role); }

// ---------- the API ----------

class ApiError extends Error {
  constructor(status, detail, field) { super(detail); this.status = status; this.detail = detail; this.field = field; }
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function call(method, path, body, extra) {
  const headers = Object.assign({ Accept: "application/json" }, (extra && extra.headers) || {});
  const t = token();
  if (t) headers.Authorization = "Bearer " + t;
  const init = { method, headers, cache: "no-store", signal: extra && extra.signal };
  if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  let response;
  try { response = await fetch(path, init); } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "the server cannot be reached (" + e.message + ")", null);
  }
  if (response.status === 401 && path !== "/whoami") { signOut("Your token was refused: sign in again."); }
  if (!response.ok) {
    let detail = response.status + " " + response.statusText, field = null;
    try { const problem = await response.json(); detail = problem.detail || detail; field = problem.field || null; } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, detail, field);
  }
  return response;
}

async function getJSON(path) { return (await call("GET", path)).json(); }
async function sendJSON(method, path, body) {
  const response = await call(method, path, body);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

function query(params) {
  const parts = [];
  for (const [key, value] of Object.entries(params)) {
    for (const item of [].concat(value)) if (item !== "" && item !== null && item !== undefined) parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(item));
  }
  return parts.length ? "?" + parts.join("&") : "";
}

/** Saves a response body as a file (the download needs the Authorization header). */
async function download(path, name) {
  try {
    const blob = await (await call("GET", path)).blob();
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) { say("Download failed: " + e.message); }
}

// ---------- forms: each problem next to the field it names ----------

/** Clears the errors of a form, then shows `error` next to its field (or at the top). */
function showProblem(form, error) {
  for (const old of form.querySelectorAll(".error")) old.remove();
  for (const field of form.querySelectorAll("[aria-invalid]")) { field.removeAttribute("aria-invalid"); field.removeAttribute("aria-describedby"); }
  if (!error) return;
  const detail = error.detail || error.message;
  let input = null;
  if (error.field) {
    // `limits.memory` → the limits field; `files[2].path` → files; the longest match wins.
    const names = [...form.querySelectorAll("[data-field]")].map((el) => el.dataset.field);
    const match = names.filter((name) => error.field === name || error.field.startsWith(name + ".") || error.field.startsWith(name + "["))
      .sort((a, b) => b.length - a.length)[0];
    if (match) input = form.querySelector(`[data-field="${CSS.escape(match)}"]`);
  }
  const id = "error-" + Math.random().toString(36).slice(2);
  const message = h("p", { class: "error", id, role: "alert" }, detail);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
    input.closest(".field").append(message);
    input.focus();
  } else {
    form.prepend(message);
  }
}

/** A labelled field from a spec: {name, label, kind, options, hint, value, required}. */
function field(spec) {
  const id = "f-" + spec.name.replace(/[^a-z0-9]/gi, "-");
  const common = { id, name: spec.name, dataset: { field: spec.field || spec.name }, required: !!spec.required };
  let input;
  if (spec.kind === "textarea" || spec.kind === "lines" || spec.kind === "pairs") {
    input = h("textarea", Object.assign(common, { rows: spec.rows || 4, spellcheck: "false" }));
    input.value = spec.value === undefined || spec.value === null ? "" : spec.value;
  } else if (spec.kind === "select") {
    input = h("select", common, ...spec.options.map((o) => h("option", { value: o }, o === "" ? spec.empty || "(default)" : o)));
    input.value = spec.value === undefined || spec.value === null ? "" : spec.value;
  } else if (spec.kind === "checkbox") {
    input = h("input", Object.assign(common, { type: "checkbox" }));
    input.checked = !!spec.value;
  } else {
    input = h("input", Object.assign(common, { type: spec.kind || "text", autocomplete: "off" }));
    if (spec.value !== undefined && spec.value !== null) input.value = spec.value;
  }
  return h("div", { class: "field" }, h("label", { for: id }, spec.label, spec.hint ? h("span", { class: "hint" }, " — " + spec.hint) : null), input);
}

/** `NAME=VALUE` lines as an object; `lines` as a list. */
function pairs(text) {
  const out = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf("=");
    if (at < 1) throw new ApiError(422, `"${line}" is not NAME=VALUE`, null);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}
function lines(text) { return text.split("\n").map((l) => l.trim()).filter(Boolean); }
function pairsText(object) { return Object.entries(object || {}).map(([k, v]) => k + "=" + v).join("\n"); }

/** A form's values read by its specs (`read` maps the text to the API's value; "" is absent). */
function readForm(form, specs) {
  const body = {};
  for (const spec of specs) {
    const el = form.elements[spec.name];
    if (!el) continue;
    if (spec.kind === "checkbox") { body[spec.name] = el.checked; continue; }
    const text = el.value.trim();
    if (text === "" && !spec.keepEmpty) continue;
    try {
      body[spec.name] = spec.kind === "pairs" ? pairs(el.value) : spec.kind === "lines" ? lines(el.value)
        : spec.kind === "number" ? Number(text) : spec.kind === "textarea" ? el.value : text;
    } catch (e) { e.field = spec.field || spec.name; throw e; }
  }
  return body;
}

// ---------- sign-in ----------

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.who = null;
  renderChrome();
  if (message) flash(message);
  location.hash = "#/signin";
}

async function loadWho() {
  if (!token()) { state.who = null; return; }
  try { state.who = await getJSON("/whoami"); } catch (e) {
    if (e.status === 401) { sessionStorage.removeItem(TOKEN_KEY); state.who = null; return; }
    throw e;
  }
}

function renderChrome() {
  const nav = document.getElementById("nav"), who = document.getElementById("who"), out = document.getElementById("signout");
  nav.hidden = !state.who;
  out.hidden = !state.who;
  who.textContent = state.who ? `${state.who.name} · ${state.who.role} · tenant ${state.who.tenant}` : "";
  for (const link of nav.querySelectorAll("a")) {
    link.hidden = !!link.dataset.role && !roleAtLeast(link.dataset.role);
    const here = location.hash.startsWith(link.getAttribute("href"));
    if (here) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
}

function signInView() {
  const form = h("form", { class: "signin", novalidate: true },
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste an API token. It is kept in this tab only (session storage) and sent as a bearer header. ",
      "The first admin token is in admin.token beside the server's database."),
    field({ name: "token", label: "Token", kind: "password", required: true }),
    h("button", { class: "primary", type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = form.elements.token.value.trim();
    if (!value) { showProblem(form, { field: "token", detail: "paste a token" }); return; }
    sessionStorage.setItem(TOKEN_KEY, value);
    try {
      await loadWho();
      if (!state.who) { showProblem(form, { field: "token", detail: "the server refused this token" }); return; }
      renderChrome();
      location.hash = "#/executions";
    } catch (e) { sessionStorage.removeItem(TOKEN_KEY); showProblem(form, e); }
  });
  show(form);
  form.elements.token.focus();
}

// ---------- executions ----------

async function executionsView(params) {
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter executions" },
    field({ name: "job_id", label: "Job id", kind: "number", value: params.get("job_id") }),
    field({ name: "status", label: "Status", kind: "select", options: [""].concat(STATUSES), empty: "(any)", value: params.get("status") }),
    field({ name: "verdict", label: "Verdict", kind: "select", options: [""].concat(VERDICTS), empty: "(any)", value: params.get("verdict") }),
    field({ name: "created_after", label: "Created after", kind: "datetime-local", value: params.get("created_after") }),
    field({ name: "created_before", label: "Created before", kind: "datetime-local", value: params.get("created_before") }),
    h("div", { class: "field" }, h("button", { type: "submit" }, "Filter")));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = {};
    for (const name of ["job_id", "status", "verdict", "created_after", "created_before"]) next[name] = filters.elements[name].value;
    location.hash = "#/executions" + query(next);
  });
  const body = h("tbody");
  const table = h("table", {}, h("caption", { class: "muted" }, "Newest first; updated live"),
    h("thead", {}, h("tr", {}, ...["Id", "Job", "Status", "Verdict", "Exit", "Created", "Wall", ""].map((t) => h("th", { scope: "col" }, t)))), body);
  const more = h("button", { type: "button", hidden: true }, "Older executions");
  show(h("h1", {}, "Executions"), filters, table, h("p", {}, more));

  const apiQuery = {};
  for (const name of ["job_id", "status", "verdict"]) if (params.get(name)) apiQuery[name] = params.get(name);
  for (const name of ["created_after", "created_before"]) if (params.get(name)) apiQuery[name] = new Date(params.get(name)).toISOString().replace("Z", "+00:00");
  const pages = [];  // cursors of the pages shown: [null, c1, …]
  let next = null;

  async function load(cursor) {
    const page = await getJSON("/executions" + query(Object.assign({ limit: 25, cursor }, apiQuery)));
    return page;
  }
  function row(e) {
    const cancel = ["PENDING", "RUNNING"].includes(e.status) && roleAtLeast("submitter")
      ? h("button", { type: "button", class: "danger", "aria-label": "Cancel execution " + e.id, onclick: () => cancelExecution(e.id) }, "Cancel") : "";
    return h("tr", { dataset: { id: String(e.id), status: e.status } },
      h("td", { class: "num" }, h("a", { href: "#/executions/" + e.id }, "#" + e.id)),
      h("td", {}, e.job_id ? h("a", { href: "#/jobs/" + e.job_id }, "job " + e.job_id) : "ad-hoc"),
      h("td", {}, statusBadge(e.status)), h("td", {}, e.verdict || "-"),
      h("td", { class: "num" }, e.exit_code ?? e.signal_name ?? "-"), h("td", {}, time(e.created_at)),
      h("td", { class: "num" }, ms(e.usage && e.usage.wall_ms)), h("td", {}, cancel));
  }
  async function refresh() {
    // Every page shown so far, again: statuses change while people watch.
    const items = [];
    let cursor = null;
    for (let i = 0; i < Math.max(1, pages.length); i++) {
      const page = await load(cursor);
      items.push(...page.executions);
      cursor = page.next_cursor;
      next = cursor;
      if (!cursor) break;
    }
    body.replaceChildren(...(items.length ? items.map(row) : [h("tr", {}, h("td", { colspan: 8 }, "No executions match."))]));
    more.hidden = !next;
  }
  more.addEventListener("click", async () => { pages.push(next); await refresh(); });
  pages.push(null);
  try { await refresh(); } catch (e) { showProblem(filters, e); return; }
  poll(refresh, 2000);
}

/** Runs `task` every `interval` ms while this view is shown. */
function poll(task, interval) {
  let stopped = false, timer = null;
  const tick = async () => {
    if (stopped) return;
    try { await task(); } catch (e) { if (e.name !== "AbortError") say(e.message); }
    if (!stopped) timer = setTimeout(tick, interval);
  };
  timer = setTimeout(tick, interval);
  state.cleanup.push(() => { stopped = true; clearTimeout(timer); });
}

async function cancelExecution(id) {
  try {
    const e = await sendJSON("POST", `/executions/${id}/cancel`);
    say(`Execution ${id}: ${e.status}${e.cancel_requested && e.status === "RUNNING" ? " (cancel requested)" : ""}`);
  } catch (e) { say(`Cancel of execution ${id}: ${e.message}`); }
}

async function executionView(id) {
  let e;
  try { e = await getJSON(`/executions/${id}`); } catch (error) { show(h("h1", {}, "Execution " + id), h("p", { class: "error" }, error.message)); return; }
  const facts = h("dl", { class: "facts" });
  const stdout = h("pre", { id: "stdout", tabindex: "0", "aria-label": "stdout" });
  const stderr = h("pre", { id: "stderr", class: "stderr", tabindex: "0", "aria-label": "stderr" });
  const live = h("p", { class: "muted", role: "status" });
  const cancel = h("button", { type: "button", class: "danger", onclick: () => cancelExecution(id) }, "Cancel");
  const files = h("div");
  show(h("h1", {}, `Execution #${id}`), h("div", { class: "row" }, cancel), facts,
    h("h2", {}, "stdout"), stdout, h("p", {}, h("button", { type: "button", onclick: () => download(`/executions/${id}/output?stream=stdout`, `execution-${id}.stdout`) }, "Download stdout")),
    h("h2", {}, "stderr"), stderr, h("p", {}, h("button", { type: "button", onclick: () => download(`/executions/${id}/output?stream=stderr`, `execution-${id}.stderr`) }, "Download stderr")),
    live, h("h2", {}, "Output files"), files);

  function render(x) {
    const items = [["Status", statusBadge(x.status)], ["Verdict", x.verdict || "-"], ["Exit code", x.exit_code ?? "-"],
      ["Signal", x.signal_name || x.signal || "-"], ["Reason", x.reason || "-"],
      ["Job", x.job_id ? h("a", { href: "#/jobs/" + x.job_id }, "job " + x.job_id) : "ad-hoc"],
      ["Trigger", x.submitted_by ? "token " + x.submitted_by : "-"], ["Policy", x.policy || "-"], ["Priority", x.priority ?? "-"],
      ["Created", time(x.created_at)], ["Started", time(x.started_at)], ["Finished", time(x.finished_at)],
      ["Wall", ms(x.usage && x.usage.wall_ms)], ["CPU", ms(x.usage && x.usage.cpu_ms)], ["Peak memory", bytes(x.usage && x.usage.memory_peak_bytes)],
      ["stdout bytes", (x.stdout_bytes ?? "-") + (x.stdout_truncated ? " (truncated)" : "")],
      ["stderr bytes", (x.stderr_bytes ?? "-") + (x.stderr_truncated ? " (truncated)" : "")],
      ["Weaker isolation", (x.weaker_isolation || []).join(", ") || "none"]];
    facts.replaceChildren(...items.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    cancel.hidden = !(["PENDING", "RUNNING"].includes(x.status) && roleAtLeast("submitter"));
  }
  render(e);
  loadFiles(id, files);
  // Status and usage while it runs (the output comes through the stream below).
  let final = !["PENDING", "RUNNING"].includes(e.status);
  poll(async () => {
    if (final) return;
    const x = await getJSON(`/executions/${id}`);
    final = !["PENDING", "RUNNING"].includes(x.status);
    render(x);
  }, 2000);

  // Tail both streams live; on an `end` event, the final execution.
  const controller = new AbortController();
  state.cleanup.push(() => controller.abort());
  follow(id, controller.signal, {
    output(event) { (event.stream === "stderr" ? stderr : stdout).append(document.createTextNode(decode(event))); },
    capped(event) { (event.stream === "stderr" ? stderr : stdout).append(document.createTextNode(`\n[${event.stream} reached its capture limit; later bytes are counted, not kept]\n`)); },
    end(x) { final = true; render(x); live.textContent = "Finished: " + x.status + (x.verdict ? " (" + x.verdict + ")" : ""); loadFiles(id, files); },
    deleted() { live.textContent = "This execution was deleted."; },
    status(text) { live.textContent = text; },
  });
}

function decode(event) {
  if (event.encoding !== "base64") return event.data;
  const raw = atob(event.data);
  const array = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: false }).decode(array);
}

/** Reads /executions/{id}/output?follow=true as Server-Sent Events through fetch(), resuming
 *  after a dropped connection from the last event's id (Last-Event-ID). */
async function follow(id, signal, handlers) {
  let lastId = null, retry = 1000;
  while (!signal.aborted) {
    try {
      handlers.status(lastId ? "Reconnected; resuming the output…" : "Following the output live…");
      const response = await call("GET", `/executions/${id}/output?follow=true`, undefined,
        { signal, headers: Object.assign({ Accept: "text/event-stream" }, lastId ? { "Last-Event-ID": lastId } : {}) });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "", finished = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = { type: "message", data: [], id: null };
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const at = line.indexOf(":");
            const name = at < 0 ? line : line.slice(0, at);
            const text = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
            if (name === "event") event.type = text;
            else if (name === "data") event.data.push(text);
            else if (name === "id") event.id = text;
            else if (name === "retry" && /^\d+$/.test(text)) retry = Number(text);
          }
          if (event.id !== null) lastId = event.id;
          if (!event.data.length) continue;
          const data = JSON.parse(event.data.join("\n"));
          if (event.type === "output") handlers.output(data);
          else if (event.type === "capped") handlers.capped(data);
          else if (event.type === "end") { handlers.end(data); finished = true; }
          else if (event.type === "deleted") { handlers.deleted(data); finished = true; }
        }
      }
      if (finished) return;
    } catch (e) {
      if (signal.aborted || e.name === "AbortError") return;
      if (e.status && e.status !== 0 && e.status < 500) { handlers.status("Output unavailable: " + e.message); return; }
    }
    handlers.status("Connection lost; reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, retry));
  }
}

async function loadFiles(id, into) {
  try {
    const list = await getJSON(`/executions/${id}/files`);
    if (!list.files.length && !list.skipped.length) { into.replaceChildren(h("p", { class: "muted" }, "None collected.")); return; }
    into.replaceChildren(h("ul", {},
      ...list.files.map((f) => h("li", {}, h("button", { type: "button", onclick: () => download(`/executions/${id}/files/${f.path.split("/").map(encodeURIComponent).join("/")}`, f.path.split("/").pop()) }, "Download " + f.path), ` ${bytes(f.size)}, sha256 ${f.sha256.slice(0, 12)}…`)),
      ...list.skipped.map((f) => h("li", {}, f.path + " skipped: " + f.reason))));
  } catch (e) { into.replaceChildren(h("p", { class: "muted" }, e.message)); }
}

// ---------- jobs ----------

async function jobsView(params) {
  const search = h("form", { class: "filters", role: "search", "aria-label": "Search jobs" },
    field({ name: "q", label: "Name contains", value: params.get("q") }), h("div", { class: "field" }, h("button", { type: "submit" }, "Search")));
  search.addEventListener("submit", (event) => { event.preventDefault(); location.hash = "#/jobs" + query({ q: search.elements.q.value }); });
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "More jobs");
  show(h("h1", {}, "Jobs"), roleAtLeast("submitter") ? h("p", {}, h("a", { href: "#/jobs/new" }, "New job")) : null, search,
    h("table", {}, h("thead", {}, h("tr", {}, ...["Id", "Name", "Type", "Policy", "Concurrency", "Updated"].map((t) => h("th", { scope: "col" }, t)))), body), h("p", {}, more));
  const needle = (params.get("q") || "").toLowerCase();
  let cursor = null;
  async function load() {
    const response = await call("GET", "/jobs" + query({ limit: 100, cursor }));
    const jobs = await response.json();
    cursor = response.headers.get("X-Next-Cursor");
    for (const job of jobs.filter((j) => j.name.toLowerCase().includes(needle))) {
      body.append(h("tr", {}, h("td", { class: "num" }, job.id), h("td", {}, h("a", { href: "#/jobs/" + job.id }, job.name)),
        h("td", {}, job.script_type), h("td", {}, job.policy), h("td", {}, job.concurrency), h("td", {}, time(job.updated_at))));
    }
    more.hidden = !cursor;
    if (!body.children.length && !cursor) body.append(h("tr", {}, h("td", { colspan: 6 }, "No jobs match.")));
  }
  more.addEventListener("click", () => load().catch((e) => say(e.message)));
  try { await load(); } catch (e) { say(e.message); }
}

/** The members a job body may have, from the server's own document (open by default). */
let jobMembers = new Set();
async function loadJobMembers() {
  if (jobMembers.size) return;
  try {
    const doc = await getJSON("/openapi.json");
    jobMembers = new Set(Object.keys(doc.components.schemas.JobCreate.properties || {}));
  } catch (_) { /* closed by private_routes: the fields every server has */ }
}

/** The job form's fields, in order. A field the API gains (a schedule, a retry rule) is one
 *  entry here: `name` is the body's key, `kind` how it is edited and read, `from` how a stored
 *  job's value is shown. */
function jobFields(runtimes, policies, job) {
  const specs = [
    { name: "name", label: "Name", required: true },
    { name: "script_type", label: "Script type", kind: "select", options: runtimes },
    { name: "script_content", label: "Script", kind: "textarea", rows: 8, required: true },
    policies ? { name: "policy", label: "Policy", kind: "select", options: [""].concat(policies) } : { name: "policy", label: "Policy", hint: "default if empty" },
    { name: "limits", label: "Limits", kind: "pairs", hint: "NAME=VALUE lines, tighter than the policy: " + LIMITS.slice(0, 4).join(", ") + ", …", from: pairsText },
    { name: "concurrency", label: "Concurrency", kind: "select", options: ["forbid", "queue", "allow"], hint: "while another execution of the job is pending or running" },
    { name: "arguments", label: "Arguments", kind: "lines", hint: "one per line", from: (v) => (v || []).join("\n") },
    { name: "environment", label: "Environment", kind: "pairs", hint: "NAME=VALUE lines the policy allows", from: pairsText },
    { name: "outputs", label: "Output files", kind: "lines", hint: "glob patterns collected after each run, one per line", from: (v) => (v || []).join("\n") },
  ];
  // Fields of newer servers, shown when the server's document lists them in JobCreate.
  const optional = [
    { name: "schedule", label: "Schedule", hint: "when it runs by itself, e.g. */5 * * * *", json: "auto" },
    { name: "retry", label: "Retry rule", kind: "textarea", rows: 3, hint: "JSON, e.g. {\"max_attempts\": 3}", json: true },
  ];
  for (const spec of optional) if (jobMembers.has(spec.name)) specs.push(spec);
  return specs.map((spec) => Object.assign({}, spec, { value: job && spec.name in job ? (spec.from ? spec.from(job[spec.name]) : spec.json && typeof job[spec.name] === "object" && job[spec.name] !== null ? JSON.stringify(job[spec.name]) : job[spec.name]) : spec.value }));
}

async function jobView(id) {
  const isNew = id === "new";
  let job = null;
  const [runtimes, policies] = await Promise.all([
    getJSON("/runtimes").then((list) => list.map((r) => r.script_type)).catch(() => ["python", "bash"]),
    roleAtLeast("operator") ? getJSON("/policies").then((list) => list.map((p) => p.name)).catch(() => null) : Promise.resolve(null),
  ]);
  if (!isNew) {
    try { job = await getJSON(`/jobs/${id}`); } catch (e) { show(h("h1", {}, "Job " + id), h("p", { class: "error" }, e.message)); return; }
  }
  await loadJobMembers();
  const specs = jobFields(runtimes, policies, isNew ? undefined : job);
  const canEdit = roleAtLeast("submitter");
  const form = h("form", { novalidate: true, "aria-label": isNew ? "New job" : "Edit job" },
    ...specs.map(field), canEdit ? h("button", { class: "primary", type: "submit" }, isNew ? "Create job" : "Save job") : null);
  if (!canEdit) for (const el of form.elements) el.disabled = true;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const body = readForm(form, specs);
      for (const spec of specs) if (spec.json && typeof body[spec.name] === "string") {
        // `auto`: JSON when it parses (an object), else the text itself (a cron line).
        try { body[spec.name] = JSON.parse(body[spec.name]); } catch (_) {
          if (spec.json !== "auto") throw new ApiError(422, `${spec.label} is not valid JSON`, spec.name);
        }
      }
      if (!isNew) for (const spec of specs) if (!(spec.name in body) && ["limits", "environment"].includes(spec.name)) body[spec.name] = {};
      if (!isNew) for (const spec of specs) if (!(spec.name in body) && ["arguments", "outputs"].includes(spec.name)) body[spec.name] = [];
      const saved = await sendJSON(isNew ? "POST" : "PATCH", isNew ? "/jobs" : `/jobs/${id}`, body);
      showProblem(form, null);
      if (isNew) { flash(`Job ${saved.name} created.`); location.hash = "#/jobs/" + saved.id; } else say(`Job ${saved.name} saved.`);
    } catch (e) { showProblem(form, e); }
  });
  const parts = [h("h1", {}, isNew ? "New job" : `Job ${job.name}`)];
  if (!isNew) {
    parts.push(h("p", { class: "muted" }, `id ${job.id} · tenant ${job.tenant ?? "-"} · created `, time(job.created_at), " · updated ", time(job.updated_at)));
    if (canEdit) parts.push(runForm(job));
    parts.push(h("h2", {}, "Executions"), h("p", {}, h("a", { href: "#/executions" + query({ job_id: job.id }) }, "All executions of this job")));
    const recent = h("ul");
    parts.push(recent);
    getJSON("/executions" + query({ job_id: job.id, limit: 10 })).then((page) => {
      recent.replaceChildren(...page.executions.map((e) => h("li", {}, h("a", { href: "#/executions/" + e.id }, "#" + e.id), " ", statusBadge(e.status), " ", time(e.created_at))));
      if (!page.executions.length) recent.append(h("li", { class: "muted" }, "Not run yet."));
    }).catch((e) => say(e.message));
    parts.push(h("h2", {}, "Definition"));
  }
  parts.push(form);
  if (!isNew && roleAtLeast("submitter")) {
    parts.push(h("p", {}, h("button", { type: "button", class: "danger", onclick: async () => {
      if (!confirm(`Delete job ${job.name} and its finished executions?`)) return;
      try { await sendJSON("DELETE", `/jobs/${id}`); flash(`Job ${job.name} deleted.`); location.hash = "#/jobs"; } catch (e) { say(e.message); }
    } }, "Delete job")));
  }
  show(...parts);
}

/** Run with options: stdin, arguments, environment, limits, priority. */
function runForm(job) {
  const specs = [
    { name: "stdin", label: "stdin", kind: "textarea", rows: 3 },
    { name: "arguments", label: "Arguments", kind: "lines", hint: "one per line, replacing the job's" },
    { name: "environment", label: "Environment", kind: "pairs", hint: "NAME=VALUE lines, added to the job's" },
    { name: "limits", label: "Limits", kind: "pairs", hint: "NAME=VALUE lines, tighter for this run" },
    { name: "priority", label: "Priority", kind: "number", hint: "-100 to 100" },
  ];
  const form = h("form", { class: "panel", novalidate: true, "aria-label": "Run job" }, h("h2", {}, "Run"), ...specs.map(field),
    h("button", { class: "primary", type: "submit" }, "Run now"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const body = readForm(form, specs);
      const accepted = await sendJSON("POST", `/executions/${job.id}/run`, body);
      showProblem(form, null);
      location.hash = "#/executions/" + accepted.execution_id;
    } catch (e) { showProblem(form, e); }
  });
  return form;
}

// ---------- policies, tokens, audit ----------

async function policiesView() {
  show(h("h1", {}, "Policies"), h("p", { class: "muted" }, "Loading…"));
  let list;
  try { list = await getJSON("/policies"); } catch (e) { show(h("h1", {}, "Policies"), h("p", { class: "error" }, e.message)); return; }
  show(h("h1", {}, "Policies"), h("p", { class: "muted" }, "The effective policies, read only. Reload them with SIGHUP or POST /policies/reload."),
    ...list.map((p) => h("section", { class: "panel", "aria-label": "Policy " + p.name }, h("h2", {}, p.name), p.description ? h("p", {}, p.description) : null,
      h("dl", { class: "facts" }, ...Object.entries(p.limits || {}).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "none")])),
      h("details", {}, h("summary", {}, "YAML"), h("pre", {}, p.yaml)))));
}

async function tokensView() {
  const specs = [
    { name: "name", label: "Name", required: true },
    { name: "role", label: "Role", kind: "select", options: ROLES },
    { name: "tenant", label: "Tenant", hint: "default: the name" },
    { name: "expires_in", label: "Expires in", hint: "e.g. 90d, 12h; empty: never" },
    { name: "max_active", label: "Max active executions", kind: "number" },
  ];
  const made = h("div", { role: "status" });
  const form = h("form", { class: "panel", novalidate: true, "aria-label": "New token" }, h("h2", {}, "New token"), ...specs.map(field),
    h("button", { class: "primary", type: "submit" }, "Create token"), made);
  const body = h("tbody");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const token = await sendJSON("POST", "/tokens", readForm(form, specs));
      showProblem(form, null);
      made.replaceChildren(h("p", {}, "Token ", token.name, " made. Copy it now: it is never shown again."), h("pre", {}, token.token));
      await load();
    } catch (e) { showProblem(form, e); }
  });
  async function load() {
    const tokens = await getJSON("/tokens");
    body.replaceChildren(...tokens.map((t) => h("tr", {}, h("td", { class: "num" }, t.id), h("td", {}, t.name), h("td", {}, t.role), h("td", {}, t.tenant),
      h("td", {}, time(t.created_at)), h("td", {}, time(t.expires_at)), h("td", {}, t.revoked_at ? h("span", {}, "revoked ", time(t.revoked_at)) : "active"),
      h("td", {}, t.revoked_at ? "" : h("button", { type: "button", class: "danger", "aria-label": "Revoke token " + t.name, onclick: async () => {
        if (!confirm(`Revoke token ${t.name}?`)) return;
        try { await sendJSON("DELETE", `/tokens/${t.id}`); await load(); } catch (e) { say(e.message); }
      } }, "Revoke")))));
  }
  show(h("h1", {}, "Tokens"), form,
    h("table", {}, h("thead", {}, h("tr", {}, ...["Id", "Name", "Role", "Tenant", "Created", "Expires", "State", ""].map((t) => h("th", { scope: "col" }, t)))), body));
  try { await load(); } catch (e) { say(e.message); }
}

async function auditView() {
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "Older entries");
  show(h("h1", {}, "Audit"), h("table", {}, h("thead", {}, h("tr", {}, ...["At", "Token", "Role", "Action", "Target", "Address", "Detail"].map((t) => h("th", { scope: "col" }, t)))), body), h("p", {}, more));
  let cursor = null;
  async function load() {
    const page = await getJSON("/audit" + query({ limit: 50, cursor }));
    for (const a of page.entries) {
      body.append(h("tr", {}, h("td", {}, time(a.at)), h("td", {}, a.token_name ?? "-"), h("td", {}, a.role ?? "-"), h("td", {}, a.action),
        h("td", {}, a.target_type + (a.target_id ? " " + a.target_id : "")), h("td", {}, a.address ?? "-"), h("td", {}, a.detail ?? "")));
    }
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  more.addEventListener("click", () => load().catch((e) => say(e.message)));
  try { await load(); } catch (e) { say(e.message); }
}

// ---------- routing ----------

async function route() {
  say(state.flash || "");
  state.flash = null;
  const hash = location.hash || "#/executions";
  const [path, search] = hash.slice(1).split("?");
  const params = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean);
  if (!state.who && parts[0] !== "signin") { location.hash = "#/signin"; return; }
  renderChrome();
  try {
    if (parts[0] === "signin") signInView();
    else if (parts[0] === "executions" && parts[1]) await executionView(Number(parts[1]));
    else if (parts[0] === "executions") await executionsView(params);
    else if (parts[0] === "jobs" && parts[1]) await jobView(parts[1]);
    else if (parts[0] === "jobs") await jobsView(params);
    else if (parts[0] === "policies") await policiesView();
    else if (parts[0] === "tokens") await tokensView();
    else if (parts[0] === "audit") await auditView();
    else show(h("h1", {}, "Not found"), h("p", {}, "No page " + hash + ". ", h("a", { href: "#/executions" }, "Executions")));
  } catch (e) { say(e.message); }
  const heading = view().querySelector("h1");
  if (heading && parts[0] !== "signin") { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
}

document.getElementById("signout").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", route);
loadWho().catch((e) => say(e.message)).finally(route);
