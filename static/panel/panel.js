// Keepstone panel: status cards, Edit schedule, Backup now with progress, Settings, More features.
// The same code runs in both hosts; only the transport differs:
// - Connect: fetch("/panel/api/...") with the context token (started here when the page carries one);
// - Forge: @forge/bridge invokeRemote to the connector (static/panel/forge.js starts it).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const FINAL = ["succeeded", "warning", "partial", "failed", "cancelled"];
  const RUN_WORDS = {
    queued: "queued",
    running: "running",
    succeeded: "succeeded",
    warning: "finished with warnings",
    partial: "partly done",
    failed: "failed",
    cancelled: "cancelled",
  };
  const cap = (text) => (text ? text.charAt(0).toUpperCase() + text.slice(1) : "–");
  const WORDS = { failed: "Backup failed", cancelled: "Backup cancelled" };
  // How a state reads: green only for a clean success, the warning colour for warnings and partial runs.
  const TONE = { succeeded: "good", warning: "warn", partial: "warn", failed: "bad", cancelled: "bad" };
  const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");

  function connectTransport(token) {
    return {
      async call(method, action, body) {
        const opts = { method, headers: { Authorization: "JWT " + token, Accept: "application/json" } };
        if (body !== undefined) {
          opts.headers["Content-Type"] = "application/json";
          opts.body = JSON.stringify(body);
        }
        let resp;
        try {
          resp = await fetch("/panel/api/" + action, opts);
        } catch (e) {
          return { ok: false, status: 0, data: {} };
        }
        let data = {};
        try { data = await resp.json(); } catch (e) { /* empty answer */ }
        return { ok: resp.ok, status: resp.status, data };
      },
      more: null, // the More features form posts the token itself (target _blank)
    };
  }

  function when(value) {
    if (!value) return "Never";
    const d = new Date(value);
    return isNaN(d) ? String(value) : d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
  }

  function say(el, text, good) {
    el.textContent = text;
    el.className = good ? "good" : "bad";
  }

  function errorText(r) {
    const e = (r.data && r.data.error) || {};
    if (e.message) return e.message;
    return r.status ? "Request failed (" + r.status + ")." : "Keepstone could not be reached. Try again.";
  }

  function percent(run) {
    const p = run.progress;
    if (FINAL.includes(run.state) && run.state !== "failed" && run.state !== "cancelled") return 100;
    if (typeof p === "number") return p;
    if (!p || typeof p !== "object") return 0;
    if (p.percent != null) return Number(p.percent);
    if (p.projects_total) {
      const part = p.issues_total ? Math.min(1, (p.issues_done || 0) / p.issues_total) : 0;
      return Math.min(100, (100 * ((p.projects_done || 0) + part)) / p.projects_total);
    }
    return 0;
  }

  function start(transport) {
    const call = transport.call;
    let schedule = null;
    let watching = null;
    let review = ""; // the page "Review in Keepstone" opens: the last backup's run

    function showState(state) {
      $("state").textContent = cap(RUN_WORDS[state] || state);
      $("state").className = TONE[state] || "";
    }

    function showStatus(s) {
      $("first_step").hidden = s.first_step !== "set_token";
      $("protected_projects").textContent = s.protected_projects ?? "–";
      $("service_region").textContent = s.service_region || "–";
      $("storage_region").textContent = s.storage_region || "–";
      showState(s.state);
      $("last_backup_at").textContent = when(s.last_backup_at);
      $("last_backup_plan").textContent = s.last_backup ? s.last_backup.plan : "";
      $("next_backup_at").textContent = s.next_backup_at ? when(s.next_backup_at) : "Not scheduled";
      $("next_backup_plan").textContent = s.next_backup_plan ? s.next_backup_plan.name : "";
      const attempt = s.last_attempt;
      $("last_attempt").hidden = !attempt || s.state === "running";
      if (attempt) {
        $("last_attempt").textContent = "Last attempt (" + attempt.plan + ", " + when(attempt.at) + ") " +
          (RUN_WORDS[attempt.state] || attempt.state) + (attempt.reason ? ": " + attempt.reason : ".");
        $("last_attempt").className = TONE[attempt.state] || "bad";
      }
      $("warnings").hidden = !(s.warnings > 0);
      review = s.last_backup ? "/runs/" + s.last_backup.id : "";
      $("review").value = review; // Connect: the submit button's value goes with the More features form
      $("warnings_text").textContent = plural(s.warnings || 0, "warning") + " in the last backup.";
      schedule = s.schedule || null;
      if (s.current_run && s.current_run.id) watchRun(s.current_run.id);
    }

    async function refresh() {
      const r = await call("GET", "status");
      if (r.ok) showStatus(r.data); else say($("message"), errorText(r), false);
      return r.ok ? r.data : null;
    }

    function showRun(run) {
      $("run").hidden = false;
      $("run_state").textContent = RUN_WORDS[run.state] || run.state || "";
      $("run_state").className = TONE[run.state] || "";
      if (!FINAL.includes(run.state)) {
        showState("running");
        $("last_attempt").hidden = true;
      }
      const pct = Number(percent(run)) || 0;
      $("run_bar").value = pct;
      $("run_progress").textContent = "· " + Math.round(pct) + "%";
    }

    function watchRun(id) {
      if (watching === id) return;
      watching = id;
      const tick = async () => {
        const r = await call("GET", "runs/" + encodeURIComponent(id));
        if (!r.ok) { watching = null; return; }
        if (FINAL.includes(r.data.state)) {
          watching = null;
          // The cards first, then the run line: "succeeded" never shows beside a stale "Last backup".
          const s = await refresh();
          showRun(r.data);
          // The run line says how it ended; the message speaks up only when it did not go well, with why.
          const bad = r.data.state === "failed" || r.data.state === "cancelled";
          const reason = (s && s.last_attempt && s.last_attempt.reason) || r.data.error || "";
          say($("message"), bad ? WORDS[r.data.state] + (reason ? ": " + reason : ".") : "", !bad);
          if (bad) {
            // Said once, in the message (announced): the progress line and the last-attempt line would repeat it.
            $("run").hidden = true;
            $("last_attempt").hidden = true;
          }
        } else {
          showRun(r.data);
          setTimeout(tick, 700);
        }
      };
      tick();
    }

    $("backup_now").addEventListener("click", async () => {
      $("backup_now").disabled = true;
      const r = await call("POST", "backup", {});
      $("backup_now").disabled = false;
      if (!r.ok) return say($("message"), errorText(r), false);
      say($("message"), "Backup started.", true);
      const run = r.data.run || r.data;
      showRun(run);
      watchRun(run.id);
    });

    $("edit").addEventListener("click", () => {
      const form = $("schedule_form");
      const days = (schedule && schedule.days) || [];
      form.querySelectorAll("input[name=days]").forEach((box) => { box.checked = days.includes(box.value); });
      $("hour").value = String(schedule && schedule.hour != null ? schedule.hour : 2);
      form.hidden = false;
    });
    $("cancel_schedule").addEventListener("click", () => { $("schedule_form").hidden = true; });
    $("schedule_form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const days = [...document.querySelectorAll("input[name=days]:checked")].map((b) => b.value);
      const r = await call("PUT", "schedule", { days, hour: Number($("hour").value) });
      if (!r.ok) return say($("message"), errorText(r), false);
      $("schedule_form").hidden = true;
      say($("message"), "Schedule saved.", true);
      showStatus(r.data);
    });

    $("go_settings").addEventListener("click", () => document.querySelector(".tab[data-tab=settings]").click());

    document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
      document.querySelectorAll(".tab").forEach((t) => {
        t.classList.toggle("active", t === tab);
        t.setAttribute("aria-pressed", String(t === tab));
      });
      document.querySelectorAll(".pane").forEach((p) => { p.hidden = p.id !== tab.dataset.tab; });
      if (tab.dataset.tab === "settings") loadAccount();
    }));

    async function loadAccount() {
      const r = await call("GET", "account");
      $("account_current").textContent =
        r.ok && r.data.email ? "Current account: " + r.data.email : "No API token set yet.";
    }
    $("account_form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("save_token").disabled = true;
      const r = await call("PUT", "account", { email: $("email").value, api_token: $("api_token").value });
      $("save_token").disabled = false;
      $("api_token").value = "";
      if (!r.ok) return say($("account_message"), errorText(r), false);
      say($("account_message"), "Token checked and saved.", true);
      loadAccount();
      refresh(); // the first-step notice goes once the token is there
    });

    if (transport.more) {
      for (const id of ["more", "review"]) {
        $(id).addEventListener("click", async () => {
          $(id).disabled = true;
          try {
            const failure = await transport.more(id === "review" ? review : "");
            if (failure) say($("message"), errorText(failure), false);
          } finally {
            $(id).disabled = false;
          }
        });
      }
    }

    refresh();
  }

  globalThis.keepstonePanel = { start };
  const root = $("panel");
  if (root && root.dataset.token) start(connectTransport(root.dataset.token));
})();
