// Patchward: keyboard shortcuts, and focus after an htmx swap. Everything works without it.
// "/" focuses the search box, "?" lists the shortcuts, "g" then d/s/c/e goes to a page.
(function () {
  "use strict";
  var pending = null;
  var pages = { d: "/", s: "/servers", c: "/cycles", e: "/exceptions", v: "/cves" };
  function typing(t) {
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) { return; }
    if (pending === "g" && pages[ev.key]) { pending = null; window.location.assign(pages[ev.key]); return; }
    pending = null;
    if (ev.key === "/") {
      var q = document.querySelector("input[type=search]");
      if (q) { ev.preventDefault(); q.focus(); }
    } else if (ev.key === "?") {
      var d = document.getElementById("shortcuts");
      if (d && typeof d.showModal === "function") { d.showModal(); }
    } else if (ev.key === "g") {
      pending = "g";
    }
  });
  // After htmx swaps results in, move focus to their heading for screen readers.
  document.addEventListener("htmx:afterSwap", function (ev) {
    var h = ev.target && ev.target.querySelector && ev.target.querySelector("[data-focus]");
    if (h) { h.setAttribute("tabindex", "-1"); h.focus(); }
  });
})();
