// The sandbox's Forge hosting, product side: the Jira page that frames a Custom UI answers the calls
// of @forge/bridge that reach it through bridge.js. Resolver calls (invokeRemote) go to this site's
// /_forge/invoke, which mints the Forge Invocation Token and calls the app's remote, as Forge does.
"use strict";
(function () {
  const frame = document.getElementById("app-frame");
  const extension = JSON.parse(document.getElementById("forge-extension").textContent);
  const scheme = window.matchMedia("(prefers-color-scheme: dark)");
  let theming = false;

  const theme = () => ({ colorMode: scheme.matches ? "dark" : "light" });
  const send = (message) => frame.contentWindow.postMessage({ forgeBridge: 1, ...message }, "*");
  scheme.addEventListener("change", () => { if (theming) send({ kind: "theme", theme: theme() }); });

  async function invoke(payload) {
    if (payload.invokeType !== "ui-remote-fetch") {
      throw new Error("this module's resolver is a remote endpoint: call it with invokeRemote");
    }
    const resp = await fetch("/_forge/invoke", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        installationId: extension.installationId,
        moduleKey: extension.moduleKey,
        localId: extension.context.localId,
        path: payload.path,
        method: payload.method,
        headers: payload.headers || {},
        body: payload.body,
      }),
    });
    if (!resp.ok) throw new Error("Forge could not call the app's remote (" + resp.status + ")");
    return resp.json(); // {success, payload | error}: @forge/bridge unwraps it
  }

  function navigate(payload) {
    const url = new URL(String(payload.url || ""), window.location.href);
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error("not a web address");
    if (payload.type === "new-tab") window.open(url.href, "_blank", "noopener,noreferrer");
    else window.location.assign(url.href);
  }

  const HANDLERS = {
    getContext: () => ({ ...extension.context, theme: theme() }),
    invoke,
    navigate,
    enableTheming: () => {
      theming = true;
      send({ kind: "theme", theme: theme() });
    },
    emit: () => undefined,
    on: () => undefined,
    getFrameId: () => extension.context.localId,
  };

  window.addEventListener("message", async (ev) => {
    if (ev.source !== frame.contentWindow) return; // the sandboxed frame's origin is opaque ("null")
    const m = ev.data;
    if (!m || m.forgeBridge !== 1) return;
    if (m.kind === "resize" && Number.isFinite(m.height)) {
      frame.style.height = Math.max(320, Math.min(m.height, 20000)) + "px";
      return;
    }
    if (m.kind !== "call") return;
    const handler = HANDLERS[m.method];
    try {
      if (!handler) throw new Error(m.method + " is not supported by the sandbox's Forge host");
      const result = await handler(m.payload || {});
      send({ kind: "reply", id: m.id, ok: true, result });
    } catch (e) {
      send({ kind: "reply", id: m.id, ok: false, error: String((e && e.message) || e) });
    }
  });
})();
