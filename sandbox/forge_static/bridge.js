// The sandbox's Forge hosting, frame side: what Forge puts into a Custom UI page before the app's own
// scripts. @forge/bridge calls globalThis.__bridge.callBridge(method, payload) (see
// node_modules/@forge/bridge/out/bridge.js); each call travels to the product page (the host, see
// host.js) by postMessage and its answer comes back the same way. The host also sends the theme
// (data-color-mode on <html>, which selects the @atlaskit/tokens theme) and hears the page's height.
"use strict";
(function () {
  const HOST = __HOST_ORIGIN__; // the Jira site's origin, filled in by sandbox/forge_host.py
  const pending = new Map();
  let next = 1;

  function applyTheme(theme) {
    if (!theme || (theme.colorMode !== "light" && theme.colorMode !== "dark")) return;
    const html = document.documentElement;
    html.setAttribute("data-color-mode", theme.colorMode);
    html.setAttribute(
      "data-theme",
      "light:light dark:dark spacing:spacing typography:typography-refreshed shape:shape",
    );
  }

  window.addEventListener("message", (ev) => {
    if (ev.source !== window.parent || ev.origin !== HOST) return;
    const m = ev.data;
    if (!m || m.forgeBridge !== 1) return;
    if (m.kind === "theme") applyTheme(m.theme);
    if (m.kind === "reply" && pending.has(m.id)) {
      const { resolve, reject } = pending.get(m.id);
      pending.delete(m.id);
      if (m.ok) resolve(m.result);
      else reject(new Error(m.error || "the host refused the call"));
    }
  });

  function callBridge(method, payload) {
    return new Promise((resolve, reject) => {
      let plain;
      try {
        // Functions (event callbacks) cannot cross postMessage; everything else is plain data.
        plain = payload === undefined ? null : JSON.parse(JSON.stringify(payload));
      } catch (e) {
        reject(new Error("the payload cannot be sent to the host: " + e.message));
        return;
      }
      const id = next++;
      pending.set(id, { resolve, reject });
      window.parent.postMessage({ forgeBridge: 1, kind: "call", id, method, payload: plain }, HOST);
    });
  }

  globalThis.__bridge = { callBridge };

  function sendHeight() {
    const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    window.parent.postMessage({ forgeBridge: 1, kind: "resize", height }, HOST);
  }
  window.addEventListener("DOMContentLoaded", () => {
    new ResizeObserver(sendHeight).observe(document.documentElement);
    sendHeight();
  });
})();
