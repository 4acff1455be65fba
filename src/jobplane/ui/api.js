// Talking to the Kubernetes API as the logged-in user: bearer token in sessionStorage,
// list + watch streams read with fetch (no polling).

const KEY = "jobplane-token";

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set token(value) { value ? sessionStorage.setItem(KEY, value) : sessionStorage.removeItem(KEY); },
};

export class Unauthorized extends Error {}

function headers(extra = {}) {
  return { Authorization: `Bearer ${session.token}`, Accept: "application/json", ...extra };
}

export async function request(path, { method = "GET", body, signal, accept } = {}) {
  const resp = await fetch(path, {
    method, signal, body: body === undefined ? undefined : JSON.stringify(body),
    headers: headers({ ...(body === undefined ? {} : { "Content-Type": "application/json" }),
                       ...(accept ? { Accept: accept } : {}) }),
  });
  if (resp.status === 401) throw new Unauthorized("unauthorized");
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`;
    try { message = (await resp.json()).message || message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return resp;
}

export async function getJSON(path, opts) { return (await request(path, opts)).json(); }

export async function redeem(code) {
  const resp = await fetch("/ui/api/redeem", { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify({ code }) });
  if (!resp.ok) throw new Error("this login link is invalid or was already used");
  return (await resp.json()).token;
}

// Yield complete lines of a streamed response body.
export async function* lines(resp) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, nl);
      pending = pending.slice(nl + 1);
    }
  }
  if (pending) yield pending;
}

// An informer: list, then watch from the list's resourceVersion, relisting on 410 Gone.
// onSync(items) after each list, onEvent(type, object) for each change.
// With ``from`` (a resourceVersion the caller already listed at), the first list is skipped.
export function informer(path, query, { onSync, onEvent, signal, from }) {
  const qs = (extra) => new URLSearchParams({ ...query, ...extra }).toString();
  (async () => {
    while (!signal.aborted) {
      try {
        let rv = from;
        from = undefined;
        if (!rv) {
          const list = await getJSON(`${path}?${qs({})}`, { signal });
          onSync(list.items || [], list);
          rv = list.metadata.resourceVersion;
        }
        for (;;) {
          const resp = await request(`${path}?${qs({ watch: "1", resourceVersion: rv, allowWatchBookmarks: "true",
                                                     timeoutSeconds: "300" })}`, { signal });
          let gone = false;
          for await (const line of lines(resp)) {
            if (!line) continue;
            const ev = JSON.parse(line);
            if (ev.type === "ERROR") { gone = true; break; }
            rv = ev.object.metadata.resourceVersion || rv;
            if (ev.type !== "BOOKMARK") onEvent(ev.type, ev.object);
          }
          if (gone) break;
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof Unauthorized) { window.dispatchEvent(new Event("jobplane-logout")); return; }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();
}

// Follow a pod's log; onLine(text) per line. Ends when the stream ends or on abort.
export async function followLog(ns, pod, container, onLine, signal, follow = true) {
  const q = new URLSearchParams({ follow: String(follow), container });
  const resp = await request(`/api/v1/namespaces/${ns}/pods/${pod}/log?${q}`, { signal, accept: "text/plain" });
  for await (const line of lines(resp)) onLine(line);
}
