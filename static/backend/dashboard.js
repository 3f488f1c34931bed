// Keep the run table current: re-render it from the API every two seconds while a run is active.
(function () {
  const root = document.getElementById("dashboard");
  if (!root) return;
  const org = root.dataset.org;
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  async function refresh() {
    const res = await fetch(`/api/v1/organisations/${encodeURIComponent(org)}/runs?limit=20`, { credentials: "same-origin" });
    if (!res.ok) return;
    const body = await res.json();
    const rows = body.items.map((run) => {
      const total = run.progress.projects_total || 0, done = run.progress.projects_done || 0;
      const projects = run.projects.map((p) => `<span class="project status-${esc(p.status)}" title="${esc(p.errors.concat(p.warnings).join("; "))}">${esc(p.project)}: ${esc(p.status)}${p.counts.issues !== undefined ? ` (${p.counts.issues} issues)` : ""}</span>`).join(" ");
      return `<tr class="state-${esc(run.state)}"><td>#${run.id}</td><td>${esc(run.trigger)}</td><td><span class="badge">${esc(run.state)}</span></td><td><progress max="${total || 1}" value="${done}"></progress> ${done}/${total}</td><td>${projects}</td><td>${esc(run.finished ? run.finished.replace("T", " ").slice(0, 16) + " UTC" : "")}</td></tr>`;
    });
    document.getElementById("runs").innerHTML = rows.join("") || '<tr><td colspan="6" class="muted">No runs yet.</td></tr>';
  }
  setInterval(refresh, 2000);
})();
