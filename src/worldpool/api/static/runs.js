/* Run list (search, filters, paging), live step logs, a workflow's event history. */
"use strict";

/* Live step logs: poll /tasks/{id}/logs?after=next while not done. The lines are kept per
   task, so a re-render of the step (every status event) does not lose or refetch them. */
function followLogs(taskId) {
  const showLines = () => {
    const pre = $("#step-logs"); const st = $("#log-state");
    if (!pre || state.logs?.task !== taskId) return;
    if (state.logs.lines.length) pre.textContent = state.logs.lines.map((l) => `${l.stream === "stderr" ? "! " : ""}${l.text}`).join("\n");
    if (st) st.textContent = state.logs.missing ? "" : state.logs.done ? "(complete)" : "(live)";
  };
  if (state.logs?.task === taskId) { showLines(); return; }
  clearTimeout(state.logs?.timer);
  const logs = state.logs = { task: taskId, lines: [], next: 0, done: false, missing: false, timer: null };
  const poll = async () => {
    if (state.logs !== logs) return;
    try {
      const r = await api(`/api/v1/tasks/${encodeURIComponent(taskId)}/logs?after=${logs.next}`);
      logs.lines.push(...r.lines); logs.next = r.next; logs.done = r.done;
    } catch (e) { logs.missing = true; return; } /* no log endpoint on this server: the task's stored logs stay shown */
    showLines();
    if (!logs.done) logs.timer = setTimeout(poll, 1000);
  };
  poll();
}

const FILTERS = ["kind", "status", "handler", "worker", "region", "since", "until", "q"];
/* /api/v1/runs when the server has it; else the workflow list, filtered and paged here */
async function fetchRuns(f, limit, offset) {
  const qs = new URLSearchParams({ limit, offset });
  for (const k of FILTERS) if (f[k]) qs.set(k, k === "since" || k === "until" ? String(Date.parse(f[k]) / 1000) : f[k]);
  try { return { ...(await api(`/api/v1/runs?${qs}`)), source: "runs" }; } catch (e) { if (!/^404/.test(e.message) && !/not found/i.test(e.message)) throw e; }
  const all = (await api(`/api/v1/workflows?limit=500${f.status ? `&status=${encodeURIComponent(f.status)}` : ""}`)).map((w) => ({
    kind: "workflow", id: w.id, status: w.status, handler: "", worker: "", region: "", workflow_id: w.id, name: w.name,
    created_at: w.submitted_at, updated_at: w.ended_at || w.submitted_at, error: w.error }));
  const since = f.since ? Date.parse(f.since) / 1000 : null, until = f.until ? Date.parse(f.until) / 1000 : null;
  const q = (f.q || "").toLowerCase();
  const rows = all.filter((r) => (f.kind !== "task") && (!q || `${r.id} ${r.name}`.toLowerCase().includes(q))
    && (since == null || r.created_at >= since) && (until == null || r.created_at <= until) && !f.handler && !f.worker && !f.region);
  return { runs: rows.slice(offset, offset + limit), total: rows.length, source: "workflows" };
}
async function viewRuns(query) {
  const f = Object.fromEntries(new URLSearchParams(query)); const limit = 50; const offset = Number(f.offset || 0);
  const render = async () => {
    const r = await fetchRuns(f, limit, offset);
    const sel = (k, opts) => `<select name="${k}"><option value="">${k}: any</option>${opts.map((o) => `<option${f[k] === o ? " selected" : ""}>${o}</option>`).join("")}</select>`;
    const inp = (k, type = "text", ph = k) => `<input name="${k}" type="${type}" placeholder="${ph}" value="${esc(f[k] || "")}">`;
    $("#view").innerHTML = `<h1>Runs <span class="dim" id="runs-total">${r.total}</span></h1>
      <form id="filters" class="filters">${inp("q", "search", "search id or name")}${sel("kind", ["workflow", "task"])}
        ${sel("status", ["pending", "in_progress", "running", "succeeded", "failed", "cancelled"])}${inp("handler")}${inp("worker")}${inp("region")}
        <label class="dim">since ${inp("since", "datetime-local")}</label><label class="dim">until ${inp("until", "datetime-local")}</label><button>filter</button></form>
      ${r.source === "workflows" ? `<p class="dim" id="runs-fallback">This server has no /api/v1/runs: showing workflows only; task, handler, worker and region filters need it.</p>` : ""}
      <div class="scroll"><table id="workflows"><thead><tr><th>id</th><th>kind</th><th>status</th><th>handler</th><th>worker</th><th>region</th><th>created</th><th>updated</th></tr></thead>
      <tbody>${r.runs.map((w) => { const href = `#/wf/${encodeURIComponent(w.workflow_id || w.id)}`; return `<tr data-id="${esc(w.id)}" data-kind="${esc(w.kind)}"><td><a href="${href}">${esc(w.id)}</a>${w.name ? ` <span class="dim">${esc(w.name)}</span>` : ""}</td>
        <td>${esc(w.kind)}</td><td>${badge(w.status)}</td><td>${esc(w.handler)}</td><td>${esc(w.worker)}</td><td>${esc(w.region)}</td><td>${when(w.created_at)}</td><td>${when(w.updated_at)}</td></tr>`; }).join("")
        || `<tr><td colspan="8" class="dim">no runs match — <a href="#/submit">submit one</a></td></tr>`}</tbody></table></div>
      <p class="pager">${offset > 0 ? `<a id="prev" href="${page(f, Math.max(0, offset - limit))}">← newer</a>` : ""}
        <span class="dim">${r.total ? `${offset + 1}–${Math.min(offset + limit, r.total)} of ${r.total}` : ""}</span>
        ${offset + limit < r.total ? `<a id="next" href="${page(f, offset + limit)}">older →</a>` : ""}</p>`;
    $("#filters").addEventListener("submit", (e) => {
      e.preventDefault();
      const qs = new URLSearchParams([...new FormData(e.target)].filter(([, v]) => v));
      location.hash = `#/runs?${qs}`;
    });
  };
  await render();
  const again = throttle(() => render().catch((e) => toast(e.message)), 500);
  follow("/api/v1/events", (kind) => { if (kind.startsWith("workflow.") || kind.startsWith("task.")) { if (!document.activeElement?.closest?.("#filters")) again(); } });
}
function page(f, offset) { const qs = new URLSearchParams(Object.entries({ ...f, offset }).filter(([, v]) => v !== "" && v != null)); return `#/runs?${qs}`; }

/* A workflow's events, oldest first, as the SSE stream replays and then follows them. */
function viewHistory(id) {
  const rows = [];
  $("#view").innerHTML = `<h1>Event history <a href="#/wf/${encodeURIComponent(id)}">${esc(id)}</a> <span class="dim" id="history-count">0</span></h1>
    <div class="scroll"><table id="history"><thead><tr><th>time</th><th>event</th><th>step</th><th>worker</th><th>detail</th></tr></thead><tbody></tbody></table></div>`;
  follow(`/api/v1/workflows/${encodeURIComponent(id)}/events?after=0`, (kind, body) => {
    if (kind === "snapshot") return;
    const e = body.event || body; const data = e.data || {};
    rows.push(e);
    const detail = Object.entries(data).filter(([k]) => !["status"].includes(k)).map(([k, v]) => `${esc(k)}=${esc(typeof v === "object" ? JSON.stringify(v) : v)}`).join(" ");
    $("#history tbody")?.insertAdjacentHTML("beforeend", `<tr data-kind="${esc(e.kind || kind)}"><td>${when(e.at || e.ts)}</td><td>${esc(e.kind || kind)}</td>
      <td>${esc(e.step || data.step || "")}</td><td>${esc(e.worker_id || data.worker_id || "")}</td><td class="dim wrap">${detail}</td></tr>`);
    const c = $("#history-count"); if (c) c.textContent = rows.length;
  });
}
