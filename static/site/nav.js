/* gogo site chrome: the phone menu toggle and the user menu (closes on outside click / Escape). */
(function () {
  "use strict";

  var header = document.getElementById("topnav");
  if (!header) return;
  header.classList.add("topnav--js");  // without JS the menu simply stays open
  var toggle = header.querySelector(".topnav__toggle");
  var menu = document.getElementById("topnav-menu");
  var user = header.querySelector(".usermenu");

  function setOpen(open) {
    header.classList.toggle("topnav--open", open);
    if (toggle) toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }

  if (toggle && menu) {
    toggle.addEventListener("click", function () { setOpen(!header.classList.contains("topnav--open")); });
  }

  document.addEventListener("click", function (e) {
    if (user && user.open && !user.contains(e.target)) user.open = false;
  });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    if (user && user.open) user.open = false;
    if (header.classList.contains("topnav--open")) { setOpen(false); if (toggle) toggle.focus(); }
  });
})();
