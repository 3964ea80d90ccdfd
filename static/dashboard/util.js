/* gogo: small formatting and DOM helpers shared by the dashboard scripts (window.gogo.util). */
window.gogo = window.gogo || {};
window.gogo.util = (function () {
  "use strict";

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "class") node.className = attrs[k];
        else if (k === "style") node.setAttribute("style", attrs[k]);
        else node.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function replaceChildren(node, children) {
    while (node.firstChild) node.removeChild(node.firstChild);
    children.forEach(function (c) { node.appendChild(c); });
  }

  function isNum(x) { return typeof x === "number" && isFinite(x); }

  var formatters = {};  // Intl.NumberFormat is costly to build: one per precision
  function fmt(x, digits) {
    if (!isNum(x)) return "—";
    var f = formatters[digits] || (formatters[digits] = new Intl.NumberFormat("en-US",
      { minimumFractionDigits: digits, maximumFractionDigits: digits }));
    return f.format(x);
  }

  function fmtUsd(x) {
    if (!isNum(x)) return "—";
    return (x < 0 ? "−" : x > 0 ? "+" : "") + "$" + fmt(Math.abs(x), 2);
  }

  function fmtPct(x) { return isNum(x) ? (x * 100).toFixed(1) + "%" : "—"; }

  function fmtTime(ms) {
    if (!isNum(ms)) return "—";
    var iso = new Date(ms).toISOString();
    return iso.slice(0, 10) + " " + iso.slice(11, 19) + " UTC";
  }

  function signClass(x) { return !isNum(x) || x === 0 ? "" : x > 0 ? "pos" : "neg"; }

  return {
    h: h, replaceChildren: replaceChildren, isNum: isNum, fmt: fmt, fmtUsd: fmtUsd, fmtPct: fmtPct,
    fmtTime: fmtTime, signClass: signClass,
  };
})();
