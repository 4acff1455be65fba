// The pod timeline: one row per completion index (every attempt a bar in it, so retries
// show) or per pod, bars from start to finish coloured by outcome. Virtualised: only the
// rows in view are in the DOM, so a 10,000-pod Job costs what 40 rows cost.

const ROW = 18;
const INDEX_KEY = "batch.kubernetes.io/job-completion-index";

const ms = (t) => (t ? Date.parse(t) : NaN);

// The row the server's timeline endpoint sends, from a live pod object.
export function podRow(pod) {
  const md = pod.metadata || {};
  const st = pod.status || {};
  const cs = (st.containerStatuses || [])[0] || {};
  const state = cs.state || {};
  const term = state.terminated || (cs.lastState || {}).terminated || {};
  const idx = (md.annotations || {})[INDEX_KEY];
  return {
    name: md.name, uid: md.uid, index: idx === undefined ? null : Number(idx), node: (pod.spec || {}).nodeName,
    phase: st.phase || "Pending", createdAt: md.creationTimestamp,
    startedAt: term.startedAt || (state.running || {}).startedAt || st.startTime || null,
    finishedAt: term.finishedAt || null, exitCode: term.exitCode ?? null, reason: term.reason || st.reason || null,
    restarts: cs.restartCount || 0, deleted: false,
  };
}

export function fmtDuration(seconds) {
  if (!isFinite(seconds)) return "-";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export class Timeline {
  constructor(root, { onSelect } = {}) {
    this.root = root;
    this.onSelect = onSelect || (() => {});
    this.pods = new Map(); // uid -> row
    this.groups = [];
    this.dirty = true;
    root.innerHTML = `<div class="timeline"><div class="spacer"></div></div><div class="axis"></div>`;
    this.box = root.querySelector(".timeline");
    this.spacer = root.querySelector(".spacer");
    this.axis = root.querySelector(".axis");
    this.box.addEventListener("scroll", () => this.schedule());
    this.box.addEventListener("click", (e) => {
      const uid = e.target.dataset.uid;
      if (uid && this.pods.has(uid)) this.onSelect(this.pods.get(uid));
    });
  }

  setRows(rows) {
    this.pods = new Map(rows.map((r) => [r.uid, r]));
    this.dirty = true;
    this.schedule();
  }

  upsert(row) {
    this.pods.set(row.uid, row);
    this.dirty = true;
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => { this.pending = 0; this.render(); });
  }

  regroup() {
    const byKey = new Map();
    for (const r of this.pods.values()) {
      const key = r.index !== null && r.index !== undefined ? `i${r.index}` : `p${r.uid}`;
      if (!byKey.has(key)) byKey.set(key, []);
      byKey.get(key).push(r);
    }
    const groups = [...byKey.values()];
    for (const g of groups) g.sort((a, b) => (a.createdAt || "").localeCompare(b.createdAt || ""));
    groups.sort((a, b) => (a[0].index ?? -1) - (b[0].index ?? -1)
                          || (a[0].createdAt || "").localeCompare(b[0].createdAt || ""));
    this.groups = groups;
    let t0 = Infinity, t1 = -Infinity, running = false;
    for (const r of this.pods.values()) {
      const s = ms(r.startedAt) || ms(r.createdAt);
      if (s < t0) t0 = s;
      const e = ms(r.finishedAt);
      if (e > t1) t1 = e;
      if (!r.finishedAt) running = true;
    }
    this.t0 = t0;
    this.t1 = running ? Math.max(t1, Date.now()) : t1;
    if (!(this.t1 > this.t0)) this.t1 = this.t0 + 1000;
    this.spacer.style.height = `${this.groups.length * ROW}px`;
    this.dirty = false;
  }

  render() {
    if (this.dirty) this.regroup();
    const top = this.box.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW) - 5);
    const last = Math.min(this.groups.length, Math.ceil((top + this.box.clientHeight) / ROW) + 5);
    const span = this.t1 - this.t0;
    const now = Date.now();
    const html = [];
    for (let i = first; i < last; i++) {
      const g = this.groups[i];
      const head = g[0];
      const label = head.index !== null && head.index !== undefined ? `${head.index}` : head.name;
      const retries = g.length > 1 ? ` ×${g.length}` : "";
      const bars = g.map((r) => {
        const s = ms(r.startedAt) || ms(r.createdAt);
        const e = ms(r.finishedAt) || (r.phase === "Running" ? now : s);
        const left = ((s - this.t0) / span) * 100;
        const width = Math.max(0.2, ((e - s) / span) * 100);
        const tip = `${r.name} ${r.phase}${r.exitCode !== null && r.exitCode !== undefined ? ` exit ${r.exitCode}` : ""}` +
                    `${r.reason ? ` (${r.reason})` : ""} on ${r.node || "-"}, ${fmtDuration((e - s) / 1000)}`;
        return `<div class="tbar ${r.phase}" data-uid="${r.uid}" title="${escapeAttr(tip)}" ` +
               `style="left:${left.toFixed(3)}%;width:${width.toFixed(3)}%"></div>`;
      }).join("");
      html.push(`<div class="trow" style="top:${i * ROW}px"><div class="lbl" data-uid="${g[g.length - 1].uid}">` +
                `${escapeAttr(label)}${retries}</div><div class="lane">${bars}</div></div>`);
    }
    this.spacer.innerHTML = html.join("");
    this.axis.innerHTML = [0, 0.25, 0.5, 0.75, 1].map((f) => `<span>${fmtDuration((span * f) / 1000)}</span>`).join("");
    this.root.dataset.rows = String(this.groups.length);
    if (this.groups.length && !window.__jpFirstRender) window.__jpFirstRender = performance.now(); // bench/
  }
}

export function escapeAttr(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
