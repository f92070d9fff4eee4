// The admin pages' only script (the CSP allows scripts from this site alone, none inline):
// on a first visit the time-zone field takes the browser's zone and applies it, and the nav
// marks the page being shown.
(function () {
  "use strict";

  // The server marks the field with data-detect while this browser has chosen no zone.
  var field = document.querySelector("form.prefs input[name=tz][data-detect]");
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (ignored) {
    zone = "";
  }
  if (field && zone && zone !== field.value) {
    var form = field.form;
    field.value = zone;
    // Only the zone is sent: the language stays the one the browser asks for until the admin picks one.
    var language = form.elements.namedItem("lang");
    if (language) {
      language.disabled = true;
    }
    var detected = document.createElement("input");
    detected.type = "hidden";
    detected.name = "detected";
    detected.value = "1";
    form.appendChild(detected);
    form.submit();
    return;
  }

  var here = window.location.pathname;
  var current = null;
  var currentLength = -1;
  document.querySelectorAll("nav > a[href]").forEach(function (link) {
    var path = new URL(link.href).pathname;
    var prefix = path.endsWith("/") ? path : path + "/";
    if ((here === path || here.indexOf(prefix) === 0) && path.length > currentLength) {
      current = link;
      currentLength = path.length;
    }
  });
  if (current) {
    current.setAttribute("aria-current", "page");
  }
})();
