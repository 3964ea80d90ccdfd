/*
 * gogo position tool (window.gogo.positionTool): a transparent overlay on the candle plot area of a
 * Plotly chart that places a position (click the entry, then the exit) and edits it (drag the entry
 * or exit handle, or the box to move both). Pixel <-> (ms, USD) through Plotly's own axis maps.
 *
 * opts: draft() -> {entry_time, entry_price, exit_time, exit_price} | null (changed in place),
 *       placing() -> bool, snapPrice(p) -> p, onPlaced(which: "entry" | "exit"), onChange(),
 *       onHover(t, p) while placing.
 */
window.gogo = window.gogo || {};
window.gogo.positionTool = function (plot, overlay, opts) {
  "use strict";

  var drag = null;  // {handle: "entry" | "exit" | "body", from: point, orig: draft copy}

  function axes() {
    var fl = plot._fullLayout;
    return fl && fl.xaxis && fl.yaxis ? { xa: fl.xaxis, ya: fl.yaxis } : null;
  }

  /** Show the overlay over the plot area while placing or editing, with the handles on the draft. */
  function place() {
    var ax = axes(), d = opts.draft(), placing = opts.placing();
    overlay.hidden = !ax || !d || !(placing || d.exit_time !== null);
    overlay.classList.toggle("tool-overlay--placing", placing);
    if (overlay.hidden) return;
    overlay.style.left = ax.xa._offset + "px"; overlay.style.top = ax.ya._offset + "px";
    overlay.style.width = ax.xa._length + "px"; overlay.style.height = ax.ya._length + "px";
    [["entry", d.entry_time, d.entry_price], ["exit", d.exit_time, d.exit_price]].forEach(function (h) {
      var el = overlay.querySelector("[data-handle=" + h[0] + "]");
      el.hidden = h[1] === null;
      if (h[1] === null) return;
      el.style.left = ax.xa.l2p(h[1]) + "px"; el.style.top = ax.ya.l2p(h[2]) + "px";
    });
  }

  // A point snapped to the whole second and the instrument's tick.
  function pointAt(e) {
    var ax = axes(), rect = overlay.getBoundingClientRect();
    var t = ax.xa.p2l(e.clientX - rect.left), p = ax.ya.p2l(e.clientY - rect.top);
    return { t: Math.round(t / 1000) * 1000, p: opts.snapPrice(p) };
  }

  function insideBox(d, pt) {
    var lo = Math.min(d.entry_price, d.exit_price), hi = Math.max(d.entry_price, d.exit_price);
    return pt.t >= Math.min(d.entry_time, d.exit_time) && pt.t <= Math.max(d.entry_time, d.exit_time) &&
      pt.p >= lo && pt.p <= hi;
  }

  overlay.addEventListener("pointerdown", function (e) {
    var d = opts.draft();
    if (!d || !axes()) return;
    e.preventDefault();
    var pt = pointAt(e), handle = e.target.dataset && e.target.dataset.handle;
    if (opts.placing()) {
      var which = d.entry_time === null ? "entry" : "exit";
      d[which + "_time"] = pt.t; d[which + "_price"] = pt.p;
      opts.onPlaced(which);
      return;
    }
    if (handle) drag = { handle: handle };
    else if (insideBox(d, pt)) drag = { handle: "body", from: pt, orig: Object.assign({}, d) };
    if (drag) overlay.setPointerCapture(e.pointerId);
  });

  overlay.addEventListener("pointermove", function (e) {
    var d = opts.draft();
    if (!d || !axes()) return;
    var pt = pointAt(e);
    if (opts.placing()) { opts.onHover(pt.t, pt.p); return; }
    if (!drag) return;
    if (drag.handle === "entry" || drag.handle === "exit") {
      d[drag.handle + "_time"] = pt.t; d[drag.handle + "_price"] = pt.p;
    } else {
      var dt = pt.t - drag.from.t, dp = pt.p - drag.from.p;
      d.entry_time = drag.orig.entry_time + dt; d.exit_time = drag.orig.exit_time + dt;
      d.entry_price = opts.snapPrice(drag.orig.entry_price + dp); d.exit_price = opts.snapPrice(drag.orig.exit_price + dp);
    }
    opts.onChange();
  });
  overlay.addEventListener("pointerup", function () { drag = null; });
  overlay.addEventListener("pointercancel", function () { drag = null; });

  return { place: place };
};
