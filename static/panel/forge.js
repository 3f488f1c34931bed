// The Forge Custom UI entry (bundled by connector/customui.py with esbuild): the panel of panel.js over
// @forge/bridge. Every call goes to the connector (the Forge Remote of manifest/manifest.yml) with
// invokeRemote; Forge adds the Forge Invocation Token. More features asks the connector for a one-time
// URL and opens it with router.open: a Custom UI frame may not open windows itself.
import { invokeRemote, router, view } from "@forge/bridge";
import "./panel.js";

async function call(method, action, body) {
  const input = { path: "/forge/panel/" + action, method };
  if (body !== undefined) {
    input.headers = { "Content-Type": "application/json" };
    input.body = body;
  }
  try {
    const r = await invokeRemote(input);
    const status = Number(r && r.status) || 0;
    const data = r && r.body && typeof r.body === "object" ? r.body : {};
    return { ok: status >= 200 && status < 300, status, data };
  } catch (e) {
    return { ok: false, status: 0, data: {} };
  }
}

async function more(target) {
  const r = await call("POST", "more", target ? { target } : {});
  if (!r.ok || !r.data.url) return r.ok ? { ok: false, status: 0, data: {} } : r;
  await router.open(r.data.url);
  return null;
}

view.theme.enable().catch(() => {});
view
  .getContext()
  .then((context) => {
    const site = document.getElementById("site_url");
    if (site && context && context.siteUrl) site.textContent = context.siteUrl;
  })
  .catch(() => {});
globalThis.keepstonePanel.start({ call, more });
