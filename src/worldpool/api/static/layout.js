/* Layouts for the dashboard: the workflow DAG (dagre, bundled under vendor/dagre, no CDN)
   scaled to fit its panel, and map labels placed so dots and names do not overlap. */
"use strict";

const clip = (text, px) => { const s = String(text ?? ""); const n = Math.max(3, Math.floor(px / 6.2)); return s.length > n ? `${s.slice(0, n - 1)}…` : s; };

/* Left to right or top to bottom, whichever needs less shrinking to fit the panel (ties go
   left to right), so the boxes stay legible at any width. */
function dagLayout(status, rankdir, W, H) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir, nodesep: 14, ranksep: rankdir === "TB" ? 26 : 40, marginx: 6, marginy: 6 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const s of status.steps) g.setNode(s.step, { width: W, height: H });
  for (const s of status.steps) for (const a of s.after) if (g.hasNode(a)) g.setEdge(a, s.step);
  dagre.layout(g);
  return g;
}
function dagSvg(status, selected, panelWidth) {
  const W = 170, H = 58;
  const scale = (g) => Math.min(1, panelWidth / g.graph().width);
  const lr = dagLayout(status, "LR", W, H), tb = dagLayout(status, "TB", W, H);
  const g = scale(tb) > scale(lr) + 0.01 ? tb : lr; const vertical = g === tb;
  const { width, height } = g.graph();
  const fill = { succeeded: "#3fb950", running: "#e3b341", failed: "#f85149", cancelled: "#a04040", dispatched: "#58a6ff", retrying: "#bc8cff" };
  /* never wider than its natural size; shrink (keeping proportions) to fit the panel */
  let out = `<svg id="dag" viewBox="0 0 ${width} ${height}" width="100%" style="max-width:${width}px" preserveAspectRatio="xMinYMin meet" data-rankdir="${vertical ? "TB" : "LR"}">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#56636f"/></marker>
    <clipPath id="box-clip"><rect x="0" y="0" width="${W - 12}" height="${H}"/></clipPath></defs>`;
  for (const e of g.edges()) {
    const pts = g.edge(e).points;
    out += `<path class="edge" d="M${pts.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" L")}"/>`;
  }
  for (const s of status.steps) {
    const n = g.node(s.step); const x = n.x - W / 2, y = n.y - H / 2;
    const third = s.worker || s.pending_reason || "";
    out += `<g class="node${selected === s.step ? " selected" : ""}" data-step="${esc(s.step)}" data-status="${esc(s.status)}">
      <title>${esc(s.step)} · ${esc(s.status)}${third ? ` · ${esc(third)}` : ""}</title>
      <rect x="${x}" y="${y}" width="${W}" height="${H}" fill="${fill[s.status] || "#6e7b88"}" fill-opacity="0.25"/>
      <g transform="translate(${x + 8},${y})" clip-path="url(#box-clip)">
      <text y="18" font-weight="600">${esc(clip(s.step, W - 16))}</text>
      <text y="34">${esc(clip(`${s.status}${s.attempts > 1 ? ` · try ${s.attempts}` : ""}`, W - 16))}</text>
      <text y="49" class="dim">${esc(clip(third, W - 16))}</text></g></g>`;
  }
  return out + "</svg>";
}

/* Workers at (almost) the same place are fanned out round their city; each gets a label at
   the first of eight spots round its dot that overlaps no dot or earlier label. */
function placeDots(workers) {
  const groups = [];
  for (const w of workers) {
    const x = WORLD.x(w.lon), y = WORLD.y(w.lat);
    const g = groups.find((o) => Math.hypot(o.x - x, o.y - y) < 12);
    if (g) g.members.push(w); else groups.push({ x, y, members: [w] });
  }
  const dots = [];
  for (const g of groups) {
    const n = g.members.length; const r = n === 1 ? 0 : 7 + 2 * n;
    g.members.forEach((w, i) => { const a = (2 * Math.PI * i) / n - Math.PI / 2; dots.push({ w, x: g.x + r * Math.cos(a), y: g.y + r * Math.sin(a), cx: g.x, cy: g.y }); });
  }
  const boxes = dots.map((d) => ({ x: d.x - 6, y: d.y - 6, w: 12, h: 12 }));
  const hit = (b) => boxes.some((o) => b.x < o.x + o.w && o.x < b.x + b.w && b.y < o.y + o.h && o.y < b.y + b.h);
  for (const d of dots) {
    const tw = d.w.id.length * 5.6 + 2, th = 10;
    const spots = [[8, -4], [-8 - tw, -4], [-tw / 2, -16], [-tw / 2, 8], [8, -16], [8, 8], [-8 - tw, -16], [-8 - tw, 8]];
    let best = null;
    for (let ring = 0; ring < 4 && !best; ring++) for (const [dx, dy] of spots) {
      const b = { x: d.x + dx * (1 + ring * 0.8), y: d.y + dy * (1 + ring * 0.8), w: tw, h: th };
      if (b.x >= 0 && b.x + tw <= WORLD.W && b.y >= 0 && b.y + th <= WORLD.H && !hit(b)) { best = b; break; }
    }
    best ||= { x: Math.min(d.x + 8, WORLD.W - tw), y: d.y - 4, w: tw, h: th };
    boxes.push(best); d.label = best;
  }
  return dots;
}
