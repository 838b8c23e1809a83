/* Steward's web console: the only script, served by Steward itself (no third-party code).
 * - [data-poll] sections refresh from their URL every 2 s, so new approval requests appear
 *   without a reload (the server renders the HTML; this only swaps it in). Never under the
 *   owner's pointer or focus: a card decided elsewhere would move the next one's Approve under
 *   a finger about to press (review 63); the new list comes once the pointer leaves, and a form
 *   sent within a moment of a swap (a tap on a touch screen) is not sent.
 * - A form's buttons are disabled once it is sent, so a double tap decides nothing twice.
 * - The sign-in page drops the login token from the address bar and the history.
 */
(function () {
  "use strict";
  if (window.location.pathname === "/login" && window.location.search) {
    window.history.replaceState(null, "", "/login");
  }
  var EVERY_MS = 2000;
  var SETTLE_MS = 700;  /* a press this soon after the list changed was aimed at the old one */

  function poll(section) {
    var url = section.getAttribute("data-poll");
    var last = section.innerHTML;
    var busy = false;
    var pointer = false;
    var waiting = null;  /* a newer list, held while the owner is pointing at this one */

    function engaged() {
      var focused = document.activeElement;
      /* a button focused by a tap is not someone reading: only a keyboard's focus holds */
      var keyboard = focused && section.contains(focused) && focused.matches(":focus-visible");
      return pointer || keyboard;
    }
    function swap(html) {
      section.innerHTML = html;
      section.setAttribute("data-swapped", String(Date.now()));
    }
    function release() {
      if (waiting !== null && !engaged()) { swap(waiting); waiting = null; }
    }
    /* a mouse or pen hovering; a touch has no "leave" until the next tap elsewhere, so it
       never holds the list (the press guard below covers a tap) */
    section.addEventListener("pointerenter", function (event) {
      if (event.pointerType !== "touch") { pointer = true; }
    });
    section.addEventListener("pointerleave", function () { pointer = false; release(); });
    section.addEventListener("focusout", function () { window.setTimeout(release, 0); });
    window.setInterval(function () {
      if (busy || document.hidden) { return; }
      busy = true;
      window.fetch(url, { credentials: "same-origin", cache: "no-store",
                          headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== last) {
            last = html;
            if (engaged()) { waiting = html; } else { waiting = null; swap(html); }
          }
        })
        .catch(function () { /* offline for a moment: try again next time */ })
        .then(function () { busy = false; });
    }, EVERY_MS);
  }

  function ready() {
    var sections = document.querySelectorAll("[data-poll]");
    for (var i = 0; i < sections.length; i++) { poll(sections[i]); }
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (form.method.toLowerCase() !== "post") { return; }
      var polled = form.closest("[data-poll]");
      var swapped = polled ? Number(polled.getAttribute("data-swapped") || 0) : 0;
      if (Date.now() - swapped < SETTLE_MS) { event.preventDefault(); return; }
      var buttons = form.querySelectorAll("button");
      window.setTimeout(function () {  /* after the form data (the pressed button) is taken */
        for (var j = 0; j < buttons.length; j++) { buttons[j].disabled = true; }
      }, 0);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
}());
