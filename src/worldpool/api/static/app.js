/* worldpool dashboard: plain JS, no build step, no CDN. Views are rebuilt from the status
   documents the API pushes over Server-Sent Events (read with fetch, so the bearer token
   travels in a header, never in a URL). */
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const badge = (s) => `<span class="badge s-${esc(s)}">${esc(s)}</span>`;
const secs = (ms) => (ms == null ? "" : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);
const usd = (v) => { const n = Number(v || 0); return `$${n.toFixed(n === 0 || n >= 0.01 ? 4 : 6)}`; };
/* a cost and what it is made of: worker time (compute) and reported token/API cost */
const split = (total, compute, tokens) => `${usd(total)} <span class="dim">(compute ${usd(compute)} + tokens ${usd(tokens)})</span>`;
const when = (t) => (t ? new Date(t * 1000).toLocaleTimeString() : "");
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

const state = { stream: null, view: null, selected: null, status: null };

function token() { return localStorage.getItem("wp-token") || ""; }
function headers(extra = {}) {
  const h = { ...extra };
  if (token()) h.Authorization = `Bearer ${token()}`;
  return h;
}
function toast(msg) {
  const t = $("#toast"); t.textContent = msg; t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
}
async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: headers(opts.headers || {}) });
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new Error(body?.error?.message || `${res.status} ${res.statusText}`);
  return body;
}

/* ---------------------------------------------------------------- SSE over fetch */
class Stream {
  constructor(path, onMessage) {
    this.path = path; this.onMessage = onMessage; this.lastId = null;
    this.ctrl = null; this.closed = false; this.run();
  }
  async run() {
    let delay = 500;
    while (!this.closed) {
      this.ctrl = new AbortController();
      try {
        const res = await fetch(this.path, { signal: this.ctrl.signal,
          headers: headers(this.lastId ? { "Last-Event-ID": this.lastId } : {}) });
        if (!res.ok) throw new Error(`events: ${res.status}`);
        setLive(true); delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
            const block = buf.slice(0, cut); buf = buf.slice(cut).replace(/^\r?\n\r?\n/, "");
            this.dispatch(block);
          }
        }
      } catch (e) { if (this.closed) return; }
      setLive(false);
      await new Promise((r) => setTimeout(r, delay)); delay = Math.min(delay * 2, 10000);
    }
  }
  dispatch(block) {
    let event = "message", data = [], id = null;
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue;
      const i = line.indexOf(":"); const f = i < 0 ? line : line.slice(0, i);
      const v = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (f === "event") event = v; else if (f === "data") data.push(v); else if (f === "id") id = v;
    }
    if (id) this.lastId = id;
    if (data.length) this.onMessage(event, JSON.parse(data.join("\n")));
  }
  close() { this.closed = true; this.ctrl?.abort(); setLive(false); }
}
function setLive(on) { const l = $("#live"); l.className = `live ${on ? "on" : "off"}`; l.textContent = on ? "live" : "offline"; }
function follow(path, fn) { state.stream?.close(); state.stream = new Stream(path, fn); }
function throttle(fn, ms) {
  let timer = null;
  return () => { if (!timer) timer = setTimeout(() => { timer = null; fn(); }, ms); };
}

/* ---------------------------------------------------------------- one workflow */
function timelineSvg(status) {
  const t0 = status.submitted_at; const now = Date.now() / 1000;
  const end = Math.max(now > t0 && !TERMINAL.has(status.status) ? now : 0, status.ended_at || 0,
    ...status.steps.map((s) => s.ended_at || s.started_at || 0), t0 + 1);
  const W = 560, L = 300, row = 24; const sx = (t) => L + ((t - t0) / (end - t0)) * W;
  let out = `<svg id="timeline" viewBox="0 0 ${L + W + 20} ${status.steps.length * row + 24}" width="100%" style="max-width:${L + W + 20}px">`;
  status.steps.forEach((s, i) => {
    const y = 8 + i * row;
    out += `<text x="0" y="${y + 13}">${esc(s.step)}</text><text x="90" y="${y + 13}" class="dim">${esc([s.worker, s.region, s.gpu].filter(Boolean).join(" · "))}</text>`;
    if (s.queued_at && (s.started_at || s.status === "pending" || s.status === "dispatched")) {
      const a = sx(s.queued_at), b = sx(s.started_at || now);
      out += `<rect class="bar bar-wait" x="${a}" y="${y + 3}" width="${Math.max(1, b - a)}" height="14"><title>queue wait ${secs(s.queue_wait_ms)}</title></rect>`;
    }
    if (s.started_at) {
      const a = sx(s.started_at), b = sx(s.ended_at || now);
      const colour = { succeeded: "#3fb950", failed: "#f85149", cancelled: "#a04040" }[s.status] || "#e3b341";
      out += `<rect class="bar" x="${a}" y="${y + 3}" width="${Math.max(2, b - a)}" height="14" fill="${colour}"><title>run ${secs(s.duration_ms)}</title></rect>
        <text x="${Math.min(b + 4, L + W - 40)}" y="${y + 14}" class="dim">${secs(s.duration_ms)}</text>`;
    }
  });
  return out + "</svg>";
}
function mapSvg(workers, runningSteps, hops) {
  let out = `<svg class="map" viewBox="0 0 ${WORLD.W} ${WORLD.H}" width="100%">${WORLD.base()}`;
  for (const h of hops) out += `<line class="hop" x1="${WORLD.x(h[0][1])}" y1="${WORLD.y(h[0][0])}" x2="${WORLD.x(h[1][1])}" y2="${WORLD.y(h[1][0])}"/>`;
  for (const d of placeDots(workers)) {
    const w = d.w;
    const cls = w.status !== "online" ? "offline" : runningSteps.some((s) => s.worker === w.id) || w.running > 0 ? "running" : "idle";
    if (d.x !== d.cx || d.y !== d.cy) out += `<line class="spoke" x1="${d.cx}" y1="${d.cy}" x2="${d.x}" y2="${d.y}"/>`;
    out += `<circle class="dot ${cls}" data-worker="${esc(w.id)}" cx="${d.x}" cy="${d.y}" r="${3 + Math.min(w.running, 4)}"><title>${esc(w.id)} · ${esc(w.region)} · ${w.running}/${w.max_concurrency}</title></circle>
      <text class="map-label" data-label="${esc(w.id)}" x="${d.label.x}" y="${d.label.y + 8}">${esc(w.id)}</text>`;
  }
  return out + "</svg>";
}
async function viewWorkflow(id) {
  state.selected = null; state.status = null;
  let workers = await api("/api/v1/workers");
  const render = (status) => {
    state.status = status;
    const byWorker = Object.fromEntries(workers.map((w) => [w.id, w]));
    const placed = status.steps.filter((s) => s.worker && byWorker[s.worker]);
    const hops = [];
    for (const s of placed) for (const a of s.after) {
      const p = status.steps.find((x) => x.step === a);
      if (p?.worker && byWorker[p.worker] && p.worker !== s.worker) hops.push([[byWorker[p.worker].lat, byWorker[p.worker].lon], [byWorker[s.worker].lat, byWorker[s.worker].lon]]);
    }
    const eta = status.estimated_completion_sec;
    $("#view").innerHTML = `<h1>${esc(status.name)} <span class="dim">${esc(status.id)}</span> <span id="wf-status">${badge(status.status)}</span>
      ${TERMINAL.has(status.status) ? "" : `<button class="secondary" id="cancel">cancel</button>`}
      ${["failed", "cancelled"].includes(status.status) ? `<button class="secondary" id="retry">retry failed steps</button>` : ""}
      <a class="small" href="#/history/${encodeURIComponent(status.id)}">event history</a></h1>
      <div class="cards"><div class="card"><div class="k">steps done</div><div class="v">${status.steps.filter((s) => TERMINAL.has(s.status)).length}/${status.steps.length}</div></div>
      <div class="card"><div class="k">total cost</div><div class="v" id="total-cost">${split(status.total_cost_usd, status.total_compute_cost_usd, status.total_token_cost_usd)}</div></div>
      <div class="card"><div class="k">tokens</div><div class="v">${status.total_tokens}</div></div>
      <div class="card"><div class="k">ETA</div><div class="v" id="eta"></div></div>
      <div class="card"><div class="k">elapsed</div><div class="v" id="elapsed"></div></div></div>
      ${status.error ? `<p class="err">${esc(status.error)}</p>` : ""}
      <div class="grid"><div class="panel" id="dag-panel"></div><div class="panel">${mapSvg(workers, placed.filter((s) => s.status === "running"), hops)}</div></div>
      <h2>Timeline of hops</h2><div class="panel">${timelineSvg(status)}</div>
      <h2>Steps</h2><div class="scroll"><table id="steps"><thead><tr><th>step</th><th>status</th><th>worker</th><th>region</th><th>GPU</th><th>tries</th><th>queue wait</th><th>run time</th><th>tokens</th><th>cost</th><th>why this worker</th></tr></thead><tbody>
      ${status.steps.map((s) => `<tr class="clickable${state.selected === s.step ? " selected" : ""}" data-step="${esc(s.step)}"><td>${esc(s.step)}</td><td class="step-status">${badge(s.status)}</td>
        <td>${esc(s.worker || "")}</td><td>${esc(s.region || "")}</td><td>${esc(s.gpu || "")}</td><td>${s.attempts || ""}</td><td>${secs(s.queue_wait_ms)}</td>
        <td>${secs(s.duration_ms)}</td><td>${s.tokens_used || ""}</td><td class="step-cost" title="compute ${usd(s.compute_cost_usd)} + tokens ${usd(s.token_cost_usd)}${(s.attempt_costs || []).length > 1 ? `; attempts ${s.attempt_costs.map((a) => usd(a.cost_usd)).join(" + ")}` : ""}">${s.cost_usd ? usd(s.cost_usd) : ""}</td>
        <td class="dim">${esc(s.error || s.pending_reason || s.reason || "")}${s.vnc_url && s.status === "running" ? ` <button class="secondary watch" data-watch="${esc(s.task_id)}" data-watch-step="${esc(s.step)}">watch live</button>` : ""}</td></tr>`).join("")}
      </tbody></table></div><div id="detail"></div>`;
    const panel = $("#dag-panel"); panel.innerHTML = dagSvg(status, state.selected, panel.clientWidth - 16);
    state.received = Date.now() / 1000; tickClock();
    for (const el of document.querySelectorAll("[data-step]")) el.addEventListener("click", () => select(el.dataset.step));
    for (const el of document.querySelectorAll("[data-watch]")) el.addEventListener("click", (e) => { e.stopPropagation(); watchLive(el.dataset.watch, el.dataset.watchStep); });
    syncViewer(status);
    $("#cancel")?.addEventListener("click", () => api(`/api/v1/workflows/${encodeURIComponent(id)}/cancel`, { method: "POST" }).catch((e) => toast(e.message)));
    $("#retry")?.addEventListener("click", () => api(`/api/v1/workflows/${encodeURIComponent(id)}/retry`, { method: "POST" })
      .then((r) => toast(`retrying ${r.retried_steps.join(", ") || "nothing"}`)).catch((e) => toast(e.message)));
    if (state.selected) showStep(state.selected);
  };
  state.tick = setInterval(tickClock, 500);
  state.onResize = throttle(() => state.status && render(state.status), 200);
  const select = (step) => { state.selected = step; render(state.status); };
  render(await api(`/api/v1/workflows/${encodeURIComponent(id)}`));
  const refreshWorkers = throttle(async () => { workers = await api("/api/v1/workers"); }, 1000);
  follow(`/api/v1/workflows/${encodeURIComponent(id)}/events`, (kind, body) => {
    if (body.status) render(body.status);
    if (kind.startsWith("task.")) refreshWorkers();
  });
}
/* ETA and elapsed tick between events: the status document's estimate is seconds left at
   the moment it was built, so what is left now is that less the time since it arrived. */
function tickClock() {
  const st = state.status; const eta = $("#eta"), el = $("#elapsed");
  if (!st || !eta || !el) return;
  const now = Date.now() / 1000; const done = TERMINAL.has(st.status);
  el.textContent = `${((st.ended_at || now) - st.submitted_at).toFixed(1)} s`;
  const left = st.estimated_completion_sec == null ? null : st.estimated_completion_sec - (now - state.received);
  eta.textContent = done ? "done" : left == null ? "unknown" : left > 0.5 ? `${Math.ceil(left)} s` : "unknown";
  eta.title = done ? "" : left == null ? "no step has finished yet, so there is nothing to estimate from" : left > 0.5 ? "from the mean run time of finished steps along the remaining critical path" : "running past its estimate";
}
async function showStep(name) {
  const step = state.status?.steps.find((s) => s.step === name);
  const box = $("#detail");
  if (!step || !box) return;
  if (!step.task_id) { box.innerHTML = `<h2>Step ${esc(name)}</h2><p class="dim">not started yet: waits for ${esc(step.after.join(", "))}</p>`; return; }
  const t = await api(`/api/v1/tasks/${encodeURIComponent(step.task_id)}`);
  if (state.selected !== name) return;
  const art = (label, refs) => Object.entries(refs || {}).map(([k, r]) => `<div>${esc(label)} <b>${esc(k)}</b>
     <a href="/api/v1/artifacts/${esc(r.digest)}" data-artifact="${esc(r.digest)}">${esc(r.name)}</a> <span class="dim">${r.size} B · ${esc(r.media_type)}</span>
     ${r.media_type.startsWith("image/") && r.media_type !== "image/svg+xml" ? `<img class="preview" alt="${esc(r.name)}" data-src="/api/v1/artifacts/${esc(r.digest)}">` : ""}</div>`).join("");
  // A dispatched task's record keeps the winner and runner-up only: the full table (every
  // candidate, why each was excluded) is explained on demand against the pool as it is now.
  let d = t.decision;
  if (d && d.explained === false) {
    d = await api(`/api/v1/tasks/${encodeURIComponent(step.task_id)}/explain`).catch(() => t.decision);
    if (state.selected !== name) return;
  }
  const scorers = d ? [...new Set(d.candidates.flatMap((c) => Object.keys(c.scores)))] : [];
  box.innerHTML = `<h2>Step ${esc(name)} · task ${esc(t.spec.id)} · ${esc(t.spec.handler)} ${badge(t.status)}</h2>
    <div class="grid"><div class="panel"><b>inputs</b><pre>${esc(JSON.stringify(t.spec.payload, null, 2))}</pre>${art("input", t.spec.inputs)}
      <b>output</b><pre>${esc(JSON.stringify(t.result, null, 2))}</pre>${art("output", t.outputs)}
      ${t.error ? `<b>error</b><pre class="err">${esc(t.error)}</pre>` : ""}
      ${t.meta?.vnc_url ? `<div>VNC: <a href="${esc(t.meta.vnc_url)}" target="_blank" rel="noopener">${esc(t.meta.vnc_url)}</a></div>` : ""}
      <b>cost</b> <span id="step-cost">${split(step.cost_usd, step.compute_cost_usd, step.token_cost_usd)}</span>
      <b>attempts</b><div class="scroll"><table class="attempts"><tr><th>#</th><th>worker</th><th>region</th><th>status</th><th>dispatched</th><th>started</th><th>ended</th><th>cost</th><th>error</th></tr>
      ${t.attempts.map((a) => { const c = (step.attempt_costs || []).find((x) => x.attempt === a.attempt); return `<tr><td>${a.attempt}</td><td>${esc(a.worker_id)}</td><td>${esc(a.region)}</td><td>${badge(a.status)}</td><td>${when(a.dispatched_at)}</td><td>${when(a.started_at)}</td><td>${when(a.ended_at)}</td><td>${c ? `${usd(c.cost_usd)} <span class="dim">$${c.cost_per_hour}/h × ${secs(c.held_ms)}${c.token_cost_usd ? ` + tokens ${usd(c.token_cost_usd)}` : ""}</span>` : ""}</td><td class="err">${esc(a.error || "")}</td></tr>`; }).join("")}</table></div>
      <b>logs</b> <span class="dim" id="log-state"></span><pre id="step-logs">${esc((t.logs || []).join("\n")) || "–"}</pre>
      ${["failed", "cancelled", "dead_lettered"].includes(t.status) ? `<button class="secondary" id="task-retry">retry this step</button>` : ""}
      ${TERMINAL.has(t.status) ? "" : `<button class="secondary" id="task-cancel">cancel this step</button>`}</div>
    <div class="panel" id="routing"><b>Why ${esc(d?.winner || "no worker")} won</b> <span class="dim">${d ? `${d.feasible_count} of ${d.pool_size} workers feasible · runner-up ${esc(d.runner_up || "–")}` : "no routing decision yet"}</span>
      ${d ? `<table id="routing-table"><tr><th>worker</th><th>region</th><th>total</th>${scorers.map((s) => `<th>${esc(s)}<br><span class="dim">×${d.weights[s] ?? 0}</span></th>`).join("")}</tr>
      ${d.candidates.map((c) => { const why = c.verdicts.filter((v) => !v.ok); const more = extras(c); return `<tr data-candidate="${esc(c.worker_id)}"><td class="${c.worker_id === d.winner ? "win" : ""}">${esc(c.worker_id)}</td><td>${esc(c.region)}</td><td>${c.feasible ? c.total.toFixed(3) : "–"}</td>
        ${scorers.map((s) => `<td>${c.scores[s] == null ? "" : c.scores[s].toFixed(2)}</td>`).join("")}</tr>
        ${why.length || more ? `<tr class="why"><td colspan="${3 + scorers.length}">${why.length ? `<div class="err excluded">excluded because ${why.map((v) => `<b>${esc(v.plugin)}</b>: ${esc(v.reason)}`).join("; ")}</div>` : ""}${more}</td></tr>` : ""}`; }).join("")}</table>
      ${d.reasons?.length ? `<p class="err">${d.reasons.map(esc).join("<br>")}</p>` : ""}${d.suggestion ? `<p>suggestion: ${esc(d.suggestion)}</p>` : ""}` : ""}
      <p class="dim">${esc(step.reason || "")}</p></div></div>`;
  for (const img of box.querySelectorAll("img[data-src]")) loadImage(img);
  const tid = encodeURIComponent(t.spec.id);
  $("#task-retry")?.addEventListener("click", () => api(`/api/v1/tasks/${tid}/retry`, { method: "POST" }).then((r) => toast(`task ${r.task_id}: ${r.status}`)).catch((e) => toast(e.message)));
  $("#task-cancel")?.addEventListener("click", () => api(`/api/v1/tasks/${tid}/cancel`, { method: "POST" }).then(() => toast("cancel sent")).catch((e) => toast(e.message)));
  followLogs(t.spec.id);
}
/* Whatever else a scorer reports about a candidate (its inputs, details), shown as it comes:
   the known fields have columns; any other is listed by name, so new scorer data shows up. */
const KNOWN = new Set(["worker_id", "region", "feasible", "verdicts", "scores", "total"]);
const flat = (v) => (v !== null && typeof v === "object" ? Object.entries(v).map(([k, x]) => `${esc(k)}=${typeof x === "object" && x !== null ? esc(JSON.stringify(x)) : esc(x)}`).join(", ") : esc(v));
function extras(c) {
  const rows = Object.entries(c).filter(([k, v]) => !KNOWN.has(k) && v != null && !(typeof v === "object" && !Object.keys(v).length));
  return rows.length ? `<dl class="scorer-details">${rows.map(([k, v]) => (v && typeof v === "object" && !Array.isArray(v)
    ? Object.entries(v).map(([n, x]) => `<dt>${esc(k)} · ${esc(n)}</dt><dd>${flat(x)}</dd>`).join("")
    : `<dt>${esc(k)}</dt><dd>${flat(v)}</dd>`)).join("")}</dl>` : "";
}

/* ---------------------------------------------------------------- live VNC viewer */
/* The bundled noVNC (vendor/novnc, no CDN) over the API's WebSocket bridge; the bearer
   token buys a one-time ticket, so it never travels in the WebSocket URL. */
async function watchLive(taskId, step) {
  closeViewer();
  const box = $("#vnc");
  box.hidden = false; box.dataset.task = taskId;
  $("#vnc-title").textContent = `live browser · ${step}`;
  $("#vnc-state").textContent = "connecting…";
  $("#vnc-close").onclick = closeViewer;
  try {
    const [{ default: RFB }, t] = await Promise.all([
      import("./vendor/novnc/core/rfb.js"),
      api(`/api/v1/tasks/${encodeURIComponent(taskId)}/vnc-ticket`),
    ]);
    if (box.dataset.task !== taskId) return;
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${t.websocket}`;
    const rfb = new RFB($("#vnc-screen"), url, { wsProtocols: ["binary"] });
    rfb.viewOnly = true; rfb.scaleViewport = true;
    rfb.addEventListener("connect", () => { $("#vnc-state").textContent = "connected"; box.dataset.state = "connected"; });
    rfb.addEventListener("disconnect", () => { $("#vnc-state").textContent = "session ended"; box.dataset.state = "ended"; });
    state.rfb = rfb;
  } catch (e) { $("#vnc-state").textContent = e.message; }
}
function closeViewer() {
  if (state.rfb) { try { state.rfb.disconnect(); } catch (_) { /* already gone */ } state.rfb = null; }
  const box = $("#vnc"); box.hidden = true; delete box.dataset.task; delete box.dataset.state;
  $("#vnc-screen").replaceChildren();
}
function syncViewer(status) {
  /* the step ended (its vnc_url is cleared): say so; the viewer stays until closed */
  const task = $("#vnc").dataset.task;
  if (!task) return;
  const step = status.steps.find((s) => s.task_id === task);
  if (step && !step.vnc_url) $("#vnc-state").textContent = `step ${step.status}`;
}
async function loadImage(img) {
  /* artifacts need the bearer token, so fetch them and show a blob URL */
  const res = await fetch(img.dataset.src, { headers: headers() });
  if (res.ok) img.src = URL.createObjectURL(await res.blob());
}

/* ---------------------------------------------------------------- workers and map */
/* the seed's hardware groups in one line (as `worldpool workers` prints them) */
function hwSummary(hw) {
  const parts = [];
  const on = (pairs) => pairs.filter(([, v]) => v).map(([k]) => k);
  if (hw.models?.length) parts.push(`llm ${hw.models.map((m) => `${m.name} ${Math.floor(m.context_tokens / 1000)}k`).join(", ")}`);
  if (hw.vision_models?.length) parts.push(`vision ${hw.vision_models.map((v) => `${v.name}${v.supports_ocr ? " ocr" : ""}`).join(", ")}`);
  if (hw.code_analysis) parts.push(`code ${hw.code_analysis.tool}`);
  const b = hw.browser_automation;
  if (b) parts.push(`browser ${b.tool}${b.vnc_port ? ` vnc:${b.vnc_port}` : b.headless ? "" : " headful"} ×${b.concurrent_sessions}${b.recording ? " rec" : ""}`);
  const n = hw.network;
  if (n) parts.push(["net", n.bandwidth_mbps ? `${n.bandwidth_mbps}Mbps` : "", ...on([["proxy", n.proxy_support], ["captcha", n.captcha_solving]])].filter(Boolean).join(" "));
  const v = hw.virtualization;
  if (v) parts.push(`${v.platform} ×${v.concurrent_vms}${v.boot_time_ms != null ? ` ${v.boot_time_ms}ms` : ""}${v.snapshot_support ? " snapshots" : ""}`);
  const i = hw.isolation;
  if (i) {
    const l = i.resource_limits;
    const cap = l ? " ≤" + [l.max_memory_mb && `${l.max_memory_mb}MB`, l.max_vcpu && `${l.max_vcpu}vCPU`, l.max_disk_mb && `${l.max_disk_mb}MB disk`].filter(Boolean).join("/") : "";
    parts.push(`isolated ${on([["net", i.network_isolation], ["fs", i.filesystem_isolation]]).join("+")}${cap}`);
  }
  return parts.join("; ");
}
async function viewWorkers() {
  const render = async () => {
    const workers = await api("/api/v1/workers");
    const groups = {};
    for (const w of workers) (groups[`${w.macro_region || "other"} / ${w.region}`] ||= []).push(w);
    $("#view").innerHTML = `<h1>Workers <span class="dim">${workers.length}</span></h1>` + Object.entries(groups).map(([g, ws]) => `<h2>${esc(g)}</h2>
      <table class="workers"><tr><th>worker</th><th>status</th><th>load</th><th>slots</th><th>heartbeat age</th><th>GPU</th><th>handlers</th><th>hardware</th><th>$/h</th><th>city</th></tr>
      ${ws.map((w) => `<tr data-worker="${esc(w.id)}"><td>${esc(w.id)}</td><td>${badge(w.status)}</td><td><span class="load"><i style="width:${Math.round(w.load * 100)}%"></i></span> ${Math.round(w.load * 100)}%</td>
      <td>${w.running}/${w.max_concurrency}</td><td class="${w.heartbeat_age_s > 3 ? "err" : ""}">${w.heartbeat_age_s.toFixed(1)} s</td><td>${esc(w.gpu || "")}</td>
      <td class="dim">${esc([...w.profile.handlers].join(", "))}</td><td class="dim hw">${esc(hwSummary(w.profile.hardware || {}))}</td><td>${w.profile.cost_per_hour}</td><td>${esc(w.city)}</td></tr>`).join("")}</table>`).join("");
  };
  await render();
  const again = throttle(() => render().catch((e) => toast(e.message)), 500);
  follow("/api/v1/events", (kind) => { if (kind.startsWith("worker.") || kind.startsWith("task.")) again(); });
  state.tick = setInterval(again, 3000); /* heartbeat ages grow between events */
}
async function viewMap() {
  const render = async () => {
    const workers = await api("/api/v1/workers");
    const active = (await api("/api/v1/workflows?status=in_progress&limit=20"));
    const docs = await Promise.all(active.map((w) => api(`/api/v1/workflows/${encodeURIComponent(w.id)}`)));
    const running = docs.flatMap((d) => d.steps.filter((s) => s.status === "running").map((s) => ({ ...s, wf: d.id })));
    $("#view").innerHTML = `<h1>Where the pool is</h1><div class="panel">${mapSvg(workers, running, [])}</div>
      <h2>Running now</h2><table><tr><th>workflow</th><th>step</th><th>worker</th><th>region</th></tr>
      ${running.map((s) => `<tr><td><a href="#/wf/${encodeURIComponent(s.wf)}">${esc(s.wf)}</a></td><td>${esc(s.step)}</td><td>${esc(s.worker)}</td><td>${esc(s.region)}</td></tr>`).join("") || `<tr><td colspan="4" class="dim">nothing running</td></tr>`}</table>`;
  };
  await render();
  const again = throttle(() => render().catch((e) => toast(e.message)), 500);
  follow("/api/v1/events", (kind) => { if (kind !== "snapshot") again(); });
}

/* ---------------------------------------------------------------- submit */
/* The demo's own workflow (worldpool demo / serve --demo: src/worldpool/demo/scenario.py),
   so the example runs against the demo's pool as it stands; a test keeps the two in step. */
const gpu = { gpu: true };
const DEMO = { name: "fix-auth-bug", user_location: "Tokyo", steps: [
  { name: "planning", task: { handler: "plan", payload: { request: "Fix the authentication bug in the login flow" }, capabilities: ["planning"], requirements: gpu, heavy: true } },
  { name: "localization", after: ["planning"], task: { handler: "run_tests", payload: { tests: ["tests/test_login.py"] }, capabilities: ["file_operations", "shell_operations"] } },
  { name: "understanding", after: ["localization"], task: { handler: "analyze", capabilities: ["coding", "debugging"], requirements: gpu, interactive: true } },
  { name: "fix", after: ["understanding"], sticky_to: "understanding", task: { handler: "fix", capabilities: ["coding"], requirements: gpu } },
  { name: "verify_tests", after: ["fix"], task: { handler: "run_tests", payload: { tests: ["tests"] }, capabilities: ["testing", "shell_operations"] } },
  { name: "verify_browser", after: ["fix"], task: { handler: "browser_check", capabilities: ["browser_operations"], interactive: true } },
  { name: "review", after: ["verify_tests", "verify_browser"], task: { handler: "review", capabilities: ["reviewing"], requirements: gpu, weights: { cost: 1.0, load: 0.6 } } } ] };
window.DEMO_EXAMPLE = DEMO;
function viewSubmit() {
  state.stream?.close();
  $("#view").innerHTML = `<h1>Submit a workflow</h1><p class="dim">A WorkflowSpec as JSON (needs the admin token when auth is on).</p>
    <textarea id="spec">${esc(JSON.stringify(DEMO, null, 2))}</textarea><p id="fit" class="dim"></p><p><button id="go">Submit</button></p>`;
  /* say up front which handlers of the spec no online worker has, rather than let it wait */
  const check = throttle(async () => {
    if (!$("#spec")) return; /* left the page meanwhile */
    let spec; try { spec = JSON.parse($("#spec").value); } catch (e) { $("#fit").textContent = `not JSON yet: ${e.message}`; return; }
    const workers = await api("/api/v1/workers").catch(() => null); if (!workers || !$("#fit")) return;
    const have = new Set(workers.filter((w) => w.status === "online").flatMap((w) => [...w.profile.handlers]));
    const lack = [...new Set((spec.steps || []).map((s) => s.task?.handler).filter((h) => h && !have.has(h)))];
    $("#fit").className = lack.length ? "err" : "dim";
    $("#fit").textContent = lack.length ? `no online worker has handler ${lack.join(", ")}: those steps would wait` : `every handler is on an online worker (${have.size} handlers in the pool)`;
  }, 300);
  $("#spec").addEventListener("input", check); check();
  $("#go").addEventListener("click", async () => {
    try {
      const record = await api("/api/v1/workflows", { method: "POST", headers: { "Content-Type": "application/json" }, body: $("#spec").value });
      location.hash = `#/wf/${encodeURIComponent(record.spec.id)}`;
    } catch (e) { toast(e.message); }
  });
}

/* ---------------------------------------------------------------- routing */
async function route() {
  clearInterval(state.tick); state.onResize = null; clearTimeout(state.logs?.timer); state.logs = null;
  const hash = location.hash.replace(/^#/, "") || "/";
  const nav = hash.startsWith("/runs") ? "list" : hash.startsWith("/workers") ? "workers" : hash.startsWith("/map") ? "map" : hash.startsWith("/submit") ? "submit" : "list";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === nav);
  try {
    if (hash.startsWith("/wf/")) await viewWorkflow(decodeURIComponent(hash.slice(4)));
    else if (hash.startsWith("/history/")) viewHistory(decodeURIComponent(hash.slice(9)));
    else if (nav === "workers") await viewWorkers();
    else if (nav === "map") await viewMap();
    else if (nav === "submit") viewSubmit();
    else await viewRuns(hash.split("?")[1] || "");
  } catch (e) { toast(e.message); }
}
$("#token").value = token();
$("#token").addEventListener("change", (e) => {
  localStorage.setItem("wp-token", e.target.value.trim());
  if (!location.hash.startsWith("#/submit")) route(); /* keep a half-edited form */
});
window.addEventListener("hashchange", route);
window.addEventListener("resize", () => state.onResize?.());
route();
