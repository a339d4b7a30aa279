// The console's only other script: keeps an incident page current while it is open.
// The server sends `changed` (server-sent events) when the incident moves; the page then
// fetches itself and swaps the incident section, so the plan, its digest and the buttons are
// always the ones the server holds now.
"use strict";

(function () {
  function follow(section) {
    const url = section.dataset.live;
    if (!url || !window.EventSource) return;
    const status = () => document.querySelector("[data-testid=live-status]");
    const source = new EventSource(url);
    source.addEventListener("changed", async (ev) => {
      let info = {};
      try { info = JSON.parse(ev.data); } catch (_) { /* keep going */ }
      try {
        const res = await fetch(window.location.pathname, { credentials: "same-origin" });
        if (!res.ok) throw new Error("HTTP " + res.status);
        const doc = new DOMParser().parseFromString(await res.text(), "text/html");
        const fresh = doc.getElementById("incident");
        const current = document.getElementById("incident");
        if (fresh && current) {
          current.replaceWith(document.adoptNode(fresh));
        }
        const s = status();
        if (s) s.textContent = "Live: updated " + new Date().toLocaleTimeString() + (info.state ? " (now " + info.state + ")" : "");
      } catch (e) {
        const s = status();
        if (s) s.textContent = "Live: could not refresh (" + e.message + "); reload the page.";
      }
    });
    source.onerror = () => {
      const s = status();
      if (s) s.textContent = "Live: reconnecting…";
    };
  }

  function start() {
    const section = document.getElementById("incident");
    if (section) follow(section);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
