// Progressive enhancement for the management pages: every page works without this file.
// - sections that apply to one choice only ([data-when="name=value ..."]) follow the radios;
// - the project picker filters as you type; the organisation switcher submits on change;
// - pages with a run in progress ([data-live="on"]) re-read themselves every two seconds and swap the
//   live part in place (its role="status" line is announced by screen readers).
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function applyWhen() {
    document.querySelectorAll("[data-when]").forEach(function (el) {
      var shown = el.dataset.when.trim().split(/\s+/).some(function (token) {
        var parts = token.split("=");
        var checked = document.querySelector('input[type=radio][name="' + parts[0] + '"]:checked');
        return checked !== null && checked.value === parts[1];
      });
      el.classList.toggle("shown", shown);
    });
  }

  function filterPicker(input) {
    var items = document.querySelectorAll(input.dataset.filter);
    var words = input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    var visible = 0;
    items.forEach(function (li) {
      var hit = words.every(function (w) { return li.dataset.text.indexOf(w) !== -1; });
      li.hidden = !hit;
      if (hit) visible += 1;
    });
    var count = document.getElementById(input.id + "-count");
    if (count) count.textContent = visible + " of " + items.length + " projects shown.";
  }

  function live() {
    var el = document.querySelector("[data-live]");
    if (!el || el.dataset.live !== "on") return;
    var timer = setInterval(function () {
      fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (res) { return res.ok ? res.text() : null; })
        .then(function (html) {
          if (html === null) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(el.id);
          if (!fresh) return;
          var current = document.getElementById(el.id);
          var status = current.querySelector("[role=status]");
          var freshStatus = fresh.querySelector("[role=status]");
          // keep the live region itself, so assistive technology announces the new text
          Array.prototype.forEach.call(fresh.children, function (child, i) {
            if (child === freshStatus) return;
            var old = current.children[i];
            if (old && old !== status && !old.hasAttribute("data-keep")) old.replaceWith(child.cloneNode(true)); // data-keep: a form being filled in
            else if (!old) current.appendChild(child.cloneNode(true)); // a finished page shows more
          });
          if (status && freshStatus) {
            status.className = freshStatus.className;
            if (status.textContent !== freshStatus.textContent) status.textContent = freshStatus.textContent;
          }
          current.dataset.live = fresh.dataset.live;
          if (fresh.dataset.live !== "on") clearInterval(timer);
        })
        .catch(function () { /* the next tick tries again */ });
    }, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    applyWhen();
    document.addEventListener("change", function (e) {
      if (e.target.matches("input[type=radio][data-controls]")) applyWhen();
      if (e.target.matches("select[data-autosubmit]")) e.target.form.submit();
    });
    document.querySelectorAll("[data-hide-with-js]").forEach(function (el) { el.hidden = true; });
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      input.addEventListener("input", function () { filterPicker(input); });
      input.addEventListener("keydown", function (e) { if (e.key === "Enter") e.preventDefault(); });
    });
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
    live();
  });
})();
