// The dashboard: hash routes, one page at a time; each page's list+watch streams stop
// (AbortController) when the page changes.

import { getJSON, informer, followLog, redeem, session, request, Unauthorized } from "./api.js";
import { Timeline, podRow, fmtDuration, escapeAttr as esc } from "./timeline.js";
import { toYAML } from "./yaml.js";

const main = document.getElementById("main");
const nsSelect = document.getElementById("ns");
let page = new AbortController();

const state = { ns: localStorage.getItem("jobplane-ns") || "default" };

// ---------------------------------------------------------------------------- helpers
const age = (t) => (t ? fmtDuration((Date.now() - Date.parse(t)) / 1000) : "-");
const cond = (obj, type) => ((obj.status || {}).conditions || []).find((c) => c.type === type && c.status === "True");

export function jobState(job) {
  if (cond(job, "Complete")) return "Complete";
  if (cond(job, "Failed")) return "Failed";
  if ((job.spec || {}).suspend) return "Suspended";
  return (job.status || {}).active ? "Running" : "Pending";
}

function progressBar(job) {
  const st = job.status || {};
  const total = (job.spec || {}).completions ?? Math.max(1, (st.succeeded || 0) + (st.active || 0));
  const pct = (n) => `${Math.min(100, (100 * (n || 0)) / Math.max(total, 1)).toFixed(2)}%`;
  return `<div class="bar" title="${st.succeeded || 0} succeeded, ${st.failed || 0} failed, ${st.active || 0} active">` +
         `<span class="ok" style="width:${pct(st.succeeded)}"></span><span class="run" style="width:${pct(st.active)}"></span>` +
         `<span class="fail" style="width:${pct(Math.min(st.failed || 0, total))}"></span></div>`;
}

function jobDuration(job) {
  const st = job.status || {};
  if (!st.startTime) return "-";
  const end = st.completionTime || (cond(job, "Failed") || {}).lastTransitionTime;
  return fmtDuration(((end ? Date.parse(end) : Date.now()) - Date.parse(st.startTime)) / 1000);
}

function throttle(fn) {
  let queued = false;
  return () => { if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; fn(); }); } };
}

// A live map of objects fed by an informer.
function liveMap(path, query, onChange) {
  const items = new Map();
  const key = (o) => `${o.metadata.namespace || ""}/${o.metadata.name}`;
  informer(path, query, {
    signal: page.signal,
    onSync(list) { items.clear(); for (const o of list) items.set(key(o), o); onChange(items); },
    onEvent(type, o) { type === "DELETED" ? items.delete(key(o)) : items.set(key(o), o); onChange(items); },
  });
  return items;
}

// ---------------------------------------------------------------------------- pages
function jobsPage() {
  const ns = state.ns;
  main.innerHTML = `<h1>Jobs <span class="muted">in ${esc(ns)}</span></h1><div id="jobs"></div>
    <h2>CronJobs</h2><div id="cronjobs"></div>`;
  const jobsBox = main.querySelector("#jobs");
  const cronBox = main.querySelector("#cronjobs");
  let nextRuns = {};
  const drawJobs = throttle(() => {
    const jobs = [...jobItems.values()].sort((a, b) => (b.metadata.creationTimestamp || "").localeCompare(a.metadata.creationTimestamp || ""));
    jobsBox.innerHTML = !jobs.length ? `<p class="muted">No jobs in ${esc(ns)}.</p>` :
      `<table><tr><th>Name</th><th>Status</th><th>Progress</th><th>Completions</th><th>Failed</th><th>Active</th><th>Duration</th><th>Age</th></tr>` +
      jobs.map((j) => {
        const st = j.status || {};
        const s = jobState(j);
        return `<tr data-job="${esc(j.metadata.name)}"><td><a href="#/ns/${esc(ns)}/jobs/${esc(j.metadata.name)}">${esc(j.metadata.name)}</a></td>` +
          `<td><span class="badge ${s}">${s}</span></td><td class="grow">${progressBar(j)}</td>` +
          `<td class="completions">${st.succeeded || 0}/${(j.spec || {}).completions ?? "-"}</td><td>${st.failed || 0}</td>` +
          `<td>${st.active || 0}</td><td>${jobDuration(j)}</td><td>${age(j.metadata.creationTimestamp)}</td></tr>`;
      }).join("") + `</table>`;
  });
  const drawCron = throttle(() => {
    const cjs = [...cronItems.values()];
    cronBox.innerHTML = !cjs.length ? `<p class="muted">No cronjobs in ${esc(ns)}.</p>` :
      `<table><tr><th>Name</th><th>Schedule</th><th>Suspend</th><th>Active</th><th>Last schedule</th><th>Next run</th><th>Age</th></tr>` +
      cjs.map((c) => `<tr><td><a href="#/ns/${esc(ns)}/cronjobs/${esc(c.metadata.name)}">${esc(c.metadata.name)}</a></td>` +
        `<td><code>${esc(c.spec.schedule)}</code></td><td>${c.spec.suspend ? "True" : "False"}</td>` +
        `<td>${((c.status || {}).active || []).length}</td><td>${age((c.status || {}).lastScheduleTime)} ago</td>` +
        `<td>${esc(nextRuns[c.metadata.name] ? new Date(nextRuns[c.metadata.name]).toLocaleString() : "-")}</td>` +
        `<td>${age(c.metadata.creationTimestamp)}</td></tr>`).join("") + `</table>`;
  });
  const refreshNext = async () => {
    try { nextRuns = (await getJSON(`/ui/api/cronjobs/${ns}`, { signal: page.signal })).nextRuns; } catch { /* page left */ }
    drawCron();
  };
  const jobItems = liveMap(`/apis/batch/v1/namespaces/${ns}/jobs`, {}, drawJobs);
  const cronItems = liveMap(`/apis/batch/v1/namespaces/${ns}/cronjobs`, {}, () => { drawCron(); refreshNext(); });
  const tick = setInterval(drawJobs, 1000); // ages and durations move on their own
  page.signal.addEventListener("abort", () => clearInterval(tick));
}

function jobPage(ns, name) {
  main.innerHTML = `<h1>Job ${esc(name)} <span id="state"></span></h1>
    <div class="cards" id="cards"></div><div id="progress"></div>
    <h2>Pod timeline <span class="legend muted"><span><i style="background:var(--ok)"></i>Succeeded</span><span><i style="background:var(--fail)"></i>Failed</span><span><i style="background:var(--run)"></i>Running</span><span><i style="background:var(--pend)"></i>Pending</span></span></h2>
    <div id="timeline"></div>
    <h2>Logs <select id="logpod"></select> <span class="muted" id="logstate"></span></h2><pre class="log" id="log"></pre>
    <h2>Conditions</h2><div id="conditions"></div>
    <h2>Events</h2><div id="events"></div>
    <h2>YAML</h2><pre class="yaml" id="yaml"></pre>`;
  const $ = (id) => main.querySelector(`#${id}`);
  let job = null;
  let logCtl = null;
  let logPod = null;
  const tl = new Timeline($("timeline"), { onSelect: (row) => showLog(row.name) });
  const podSelect = $("logpod");
  podSelect.addEventListener("change", () => showLog(podSelect.value));

  function showLog(pod) {
    if (!pod || pod === logPod) return;
    logPod = pod;
    podSelect.value = pod;
    if (logCtl) logCtl.abort();
    logCtl = new AbortController();
    page.signal.addEventListener("abort", () => logCtl.abort());
    const out = $("log");
    out.textContent = "";
    $("logstate").textContent = "following";
    const container = (((job || {}).spec || {}).template || {}).spec?.containers?.[0]?.name || "";
    let lines = 0;
    followLog(ns, pod, container, (line) => {
      const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
      out.append(line + "\n");
      if (++lines > 5000) out.textContent = out.textContent.slice(out.textContent.indexOf("\n", 2000) + 1);
      if (atEnd) out.scrollTop = out.scrollHeight;
    }, logCtl.signal).then(() => { $("logstate").textContent = "ended"; },
                           (e) => { if (!logCtl.signal.aborted) $("logstate").textContent = e.message; });
  }

  const drawJob = throttle(() => {
    if (!job) return;
    const st = job.status || {};
    const s = jobState(job);
    $("state").innerHTML = `<span class="badge ${s}">${s}</span>`;
    $("cards").innerHTML = [["Succeeded", st.succeeded || 0], ["Failed", st.failed || 0], ["Active", st.active || 0],
      ["Completions", (job.spec || {}).completions ?? "-"], ["Parallelism", (job.spec || {}).parallelism ?? 1],
      ["Duration", jobDuration(job)]].map(([k, v]) => `<div class="card" data-card="${k}">${k}<b>${v}</b></div>`).join("");
    $("progress").innerHTML = progressBar(job);
    $("conditions").innerHTML = `<table><tr><th>Type</th><th>Status</th><th>Reason</th><th>Message</th><th>Last transition</th></tr>` +
      (st.conditions || []).map((c) => `<tr><td>${esc(c.type)}</td><td><span class="badge ${esc(c.status)}">${esc(c.status)}</span></td>` +
        `<td>${esc(c.reason || "")}</td><td>${esc(c.message || "")}</td><td>${esc(c.lastTransitionTime || "")}</td></tr>`).join("") + `</table>`;
    $("yaml").textContent = toYAML(job);
  });

  const drawPods = throttle(() => {
    const rows = [...tl.pods.values()].sort((a, b) => (a.index ?? -1) - (b.index ?? -1) || (a.createdAt || "").localeCompare(b.createdAt || ""));
    const opts = rows.slice(-500).map((r) => `<option value="${esc(r.name)}">${esc(r.index ?? "")} ${esc(r.name)} (${esc(r.phase)})</option>`);
    podSelect.innerHTML = opts.join("");
    if (logPod) podSelect.value = logPod;
    if (!logPod) {
      const pick = rows.find((r) => r.phase === "Running") || rows.find((r) => r.startedAt);
      if (pick) showLog(pick.name);
    }
  });

  (async () => {
    let data;
    try {
      data = await getJSON(`/ui/api/timeline/${ns}/jobs/${name}`, { signal: page.signal });
    } catch (e) {
      if (e instanceof Unauthorized) return logout();
      main.innerHTML = `<h1>Job ${esc(name)}</h1><p class="error">${esc(e.message)}</p>
        <p><a href="#/ns/${esc(ns)}/history/${esc(name)}">Look for it in the history</a></p>`;
      return;
    }
    job = data.job;
    drawJob();
    tl.setRows(data.pods);
    drawPods();
    main.dataset.ready = "1";
    const uid = job.metadata.uid;
    informer(`/apis/batch/v1/namespaces/${ns}/jobs`, { fieldSelector: `metadata.name=${name}` }, {
      signal: page.signal,
      onSync(items) { if (items[0]) { job = items[0]; drawJob(); } },
      onEvent(type, o) { if (type !== "DELETED" && o.metadata.uid === uid) { job = o; drawJob(); } },
    });
    // Live from where the server's aggregation left off: no second list of every pod.
    informer(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `batch.kubernetes.io/controller-uid=${uid}` }, {
      signal: page.signal, from: data.podsResourceVersion,
      onSync(items) { tl.setRows(items.map(podRow)); drawPods(); },
      onEvent(type, p) {
        const row = podRow(p);
        if (type === "DELETED") row.deleted = true;
        tl.upsert(row);
        drawPods();
      },
    });
    const events = new Map();
    const drawEvents = throttle(() => {
      const evs = [...events.values()].filter((e) => (e.involvedObject || {}).uid === uid)
        .sort((a, b) => (b.lastTimestamp || b.eventTime || "").localeCompare(a.lastTimestamp || a.eventTime || ""));
      $("events").innerHTML = `<table><tr><th>Type</th><th>Reason</th><th>Age</th><th>From</th><th>Message</th></tr>` +
        evs.map((e) => `<tr><td>${esc(e.type)}</td><td>${esc(e.reason)}</td><td>${age(e.lastTimestamp || e.eventTime)}</td>` +
          `<td>${esc((e.source || {}).component || e.reportingComponent || "")}</td><td>${esc(e.message)}${e.count > 1 ? ` (x${e.count})` : ""}</td></tr>`).join("") + `</table>`;
    });
    informer(`/api/v1/namespaces/${ns}/events`, { fieldSelector: `involvedObject.name=${name}` }, {
      signal: page.signal,
      onSync(items) { events.clear(); for (const e of items) events.set(e.metadata.name, e); drawEvents(); },
      onEvent(type, e) { type === "DELETED" ? events.delete(e.metadata.name) : events.set(e.metadata.name, e); drawEvents(); },
    });
    const tick = setInterval(() => { tl.schedule(); tl.dirty = true; drawJob(); }, 1000);
    page.signal.addEventListener("abort", () => clearInterval(tick));
  })();
}

function cronJobPage(ns, name) {
  main.innerHTML = `<h1>CronJob ${esc(name)}</h1><div class="cards" id="cards"></div>
    <h2>Jobs</h2><div id="jobs"></div><h2>Finished and deleted (history)</h2><div id="hist"></div>
    <h2>YAML</h2><pre class="yaml" id="yaml"></pre>`;
  const $ = (id) => main.querySelector(`#${id}`);
  let cj = null;
  let nextRun = null;
  const draw = throttle(() => {
    if (!cj) return;
    const st = cj.status || {};
    $("cards").innerHTML = [["Schedule", cj.spec.schedule], ["Next run", nextRun ? new Date(nextRun).toLocaleString() : "-"],
      ["Last schedule", st.lastScheduleTime ? `${age(st.lastScheduleTime)} ago` : "-"], ["Active", (st.active || []).length],
      ["Suspend", cj.spec.suspend ? "True" : "False"]].map(([k, v]) => `<div class="card">${k}<b>${esc(v)}</b></div>`).join("");
    $("yaml").textContent = toYAML(cj);
    const owned = [...jobs.values()].filter((j) => (j.metadata.ownerReferences || []).some((r) => r.uid === cj.metadata.uid))
      .sort((a, b) => (b.metadata.creationTimestamp || "").localeCompare(a.metadata.creationTimestamp || ""));
    $("jobs").innerHTML = `<table><tr><th>Name</th><th>Status</th><th>Progress</th><th>Duration</th><th>Age</th></tr>` +
      owned.map((j) => `<tr><td><a href="#/ns/${esc(ns)}/jobs/${esc(j.metadata.name)}">${esc(j.metadata.name)}</a></td>` +
        `<td><span class="badge ${jobState(j)}">${jobState(j)}</span></td><td class="grow">${progressBar(j)}</td>` +
        `<td>${jobDuration(j)}</td><td>${age(j.metadata.creationTimestamp)}</td></tr>`).join("") + `</table>`;
  });
  const jobs = liveMap(`/apis/batch/v1/namespaces/${ns}/jobs`, {}, draw);
  informer(`/apis/batch/v1/namespaces/${ns}/cronjobs`, { fieldSelector: `metadata.name=${name}` }, {
    signal: page.signal,
    onSync(items) { cj = items[0] || null; refresh(); },
    onEvent(type, o) { cj = type === "DELETED" ? null : o; refresh(); },
  });
  async function refresh() {
    try { nextRun = (await getJSON(`/ui/api/cronjobs/${ns}`, { signal: page.signal })).nextRuns[name] || null; } catch { /* left */ }
    draw();
  }
  getJSON(`/jobplane/v1/history?namespace=${encodeURIComponent(ns)}`, { signal: page.signal }).then((h) => {
    const mine = h.items.filter((s) => s.cronjob === name);
    $("hist").innerHTML = historyTable(ns, mine);
  }, () => {});
}

function historyTable(ns, items) {
  if (!items.length) return `<p class="muted">Nothing archived yet.</p>`;
  return `<table><tr><th>Name</th><th>State</th><th>Reason</th><th>Succeeded</th><th>Failed</th><th>Pods</th><th>End</th><th>Elapsed</th><th>Exit</th></tr>` +
    items.slice().reverse().map((s) => `<tr><td><a href="#/ns/${esc(s.namespace || ns)}/history/${esc(s.name)}">${esc(s.name)}</a></td>` +
      `<td><span class="badge ${esc(s.outcome)}">${esc(s.outcome)}</span></td><td>${esc(s.reason || "")}</td><td>${s.succeeded}</td>` +
      `<td>${s.failed}</td><td>${s.pods}</td><td>${esc(s.end || "-")}</td><td>${fmtDuration(s.elapsedSeconds)}</td><td>${s.exitCode ?? "-"}</td></tr>`).join("") + `</table>`;
}

function historyPage() {
  main.innerHTML = `<h1>History <span class="muted">in ${esc(state.ns)}</span></h1><div id="hist"><p class="muted">Loading…</p></div>`;
  getJSON(`/jobplane/v1/history?namespace=${encodeURIComponent(state.ns)}`, { signal: page.signal })
    .then((h) => { main.querySelector("#hist").innerHTML = historyTable(state.ns, h.items); }, () => {});
}

function archivedJobPage(ns, name) {
  main.innerHTML = `<h1>Job ${esc(name)} <span class="muted">(archived)</span> <span id="state"></span></h1>
    <div class="cards" id="cards"></div><h2>Pod timeline</h2><div id="timeline"></div>
    <h2>Logs <select id="logpod"><option value="">all pods</option></select></h2><pre class="log" id="log"></pre>
    <h2>Record</h2><pre class="yaml" id="yaml"></pre>`;
  const $ = (id) => main.querySelector(`#${id}`);
  getJSON(`/jobplane/v1/history/${ns}/${name}`, { signal: page.signal }).then(async (res) => {
    const rec = res.items[res.items.length - 1];
    $("state").innerHTML = `<span class="badge ${esc(rec.outcome)}">${esc(rec.outcome)}</span>`;
    const st = rec.job.status || {};
    $("cards").innerHTML = [["Succeeded", st.succeeded || 0], ["Failed", st.failed || 0], ["Pods", rec.pods.length],
      ["Archived", rec.archivedAt]].map(([k, v]) => `<div class="card">${k}<b>${esc(v)}</b></div>`).join("");
    const tl = new Timeline($("timeline"), { onSelect: (r) => { $("logpod").value = r.index ?? ""; load(); } });
    tl.setRows(rec.pods.map((r) => ({ ...r, createdAt: r.startedAt })));
    $("logpod").innerHTML += rec.pods.filter((r) => r.index !== null).map((r) => `<option value="${r.index}">index ${r.index}</option>`).join("");
    $("yaml").textContent = toYAML(rec);
    async function load() {
      const i = $("logpod").value;
      const resp = await request(`/jobplane/v1/history/${ns}/${name}/log${i !== "" ? `?index=${i}` : ""}`, { accept: "text/plain" });
      $("log").textContent = await resp.text();
    }
    $("logpod").addEventListener("change", load);
    load();
  }, (e) => { main.innerHTML = `<p class="error">${esc(e.message)}</p>`; });
}

function nodesPage() {
  main.innerHTML = `<h1>Nodes</h1><div id="nodes"><p class="muted">Loading…</p></div>`;
  const box = main.querySelector("#nodes");
  const fmt = (k, v) => (k === "memory" ? `${(Number(v) / 2 ** 30).toFixed(1)}Gi` : k === "cpu" ? `${Number(v).toFixed(2)}` : `${v}`);
  const refresh = async () => {
    const data = await getJSON("/ui/api/nodes", { signal: page.signal });
    box.innerHTML = `<table><tr><th>Name</th><th>Ready</th><th>CPU (requested / allocatable)</th><th>Memory (requested / allocatable)</th><th>GPUs</th><th>Running pods</th></tr>` +
      data.items.map((n) => `<tr><td>${esc(n.name)}${n.unschedulable ? " (cordoned)" : ""}</td><td><span class="badge ${esc(n.ready)}">${esc(n.ready)}</span></td>` +
        `<td>${fmt("cpu", n.allocated.cpu || 0)} / ${esc(n.allocatable.cpu || "-")}</td>` +
        `<td>${fmt("memory", n.allocated.memory || 0)} / ${esc(n.allocatable.memory || "-")}</td>` +
        `<td>${esc(n.allocatable["nvidia.com/gpu"] || "0")}</td><td title="${esc(n.podNames.join("\n"))}">${n.pods}</td></tr>`).join("") + `</table>`;
  };
  // Node status changes (heartbeats, conditions) drive a refresh of the aggregation.
  liveMap("/api/v1/nodes", {}, throttle(() => refresh().catch(() => {})));
}

// ---------------------------------------------------------------------------- login + routing
function loginPage(message = "") {
  document.getElementById("nav").style.visibility = "hidden";
  main.innerHTML = `<div class="login"><h1>Log in to jobplane</h1>
    <p>Paste a bearer token (<code>DIR/pki/token</code>), or open the one-time link that <code>jobplane dashboard</code> prints.</p>
    <form id="login"><textarea name="token" placeholder="token" autofocus></textarea>
    <div class="row"><button type="submit">Log in</button><span class="error">${esc(message)}</span></div></form></div>`;
  main.querySelector("#login").addEventListener("submit", async (e) => {
    e.preventDefault();
    session.token = e.target.token.value.trim();
    try { await request("/apis/batch/v1"); } catch (err) { session.token = null; return loginPage(err.message); }
    start();
  });
}

function logout() { session.token = null; page.abort(); loginPage(); }
window.addEventListener("jobplane-logout", logout);
document.getElementById("logout").addEventListener("click", logout);

function route() {
  page.abort();
  page = new AbortController();
  delete main.dataset.ready;
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "ns" && parts.length === 4) {
    if (parts[1] !== state.ns) setNamespace(parts[1], false);
    if (parts[2] === "jobs") return jobPage(parts[1], parts[3]);
    if (parts[2] === "cronjobs") return cronJobPage(parts[1], parts[3]);
    if (parts[2] === "history") return archivedJobPage(parts[1], parts[3]);
  }
  if (parts[0] === "nodes") return nodesPage();
  if (parts[0] === "history") return historyPage();
  return jobsPage();
}

function setNamespace(ns, reroute = true) {
  state.ns = ns;
  localStorage.setItem("jobplane-ns", ns);
  if (![...nsSelect.options].some((o) => o.value === ns)) nsSelect.add(new Option(ns, ns));
  nsSelect.value = ns;
  if (reroute) { location.hash = "#/"; route(); }
}

async function start() {
  document.getElementById("nav").style.visibility = "visible";
  try {
    const list = await getJSON("/api/v1/namespaces");
    nsSelect.innerHTML = list.items.map((n) => `<option>${esc(n.metadata.name)}</option>`).join("");
  } catch (e) {
    if (e instanceof Unauthorized) return logout();
  }
  setNamespace(state.ns, false);
  nsSelect.onchange = () => setNamespace(nsSelect.value);
  window.onhashchange = route;
  route();
}

(async () => {
  const m = location.hash.match(/[#&]code=([\w-]+)/);
  if (m) {
    try { session.token = await redeem(m[1]); } catch (e) { history.replaceState(null, "", "/ui/"); return loginPage(e.message); }
    history.replaceState(null, "", "/ui/#/");
  }
  if (!session.token) return loginPage();
  start();
})();
