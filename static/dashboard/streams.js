/*
 * gogo dashboard: the market streams panel. Initial rows come from the page (#streams-data), then
 * from the "streams" updates pushed on the dashboard websocket (dashboard.js re-dispatches each
 * update as a "gogo:update" DOM event). Staff users start and stop an instrument's stream with
 * POST /dashboard/streams/ {"instrument": id, "action": "start"|"stop"}.
 */
(function () {
  "use strict";

  var card = document.getElementById("streams-card");
  if (!card) return;
  var util = window.gogo.util, h = util.h;
  var body = document.getElementById("streams"), message = document.getElementById("streams-message");
  var staff = card.dataset.staff === "true";
  var KIND = { live: "ok", connecting: "warn", reconnecting: "warn", stale: "bad", failed: "bad", stopped: "", idle: "" };

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function render(streams) {
    if (!streams || !streams.length) return;
    util.replaceChildren(body, streams.map(function (s) {
      var wanted = s.desired === "running";
      var label = wanted && (s.status === "idle" || s.status === "stopped") ? "starting" : s.status;
      var badge = h("span", { class: "badge badge--" + (KIND[label] || "warn"), text: label,
        title: (s.error ? s.error + " · " : "") + (s.last_message_at ? "last message " + s.last_message_at : "") });
      var action = null;
      if (staff) {
        action = h("button", { type: "button", class: "button button--small", "data-instrument": String(s.instrument),
          "data-action": wanted ? "stop" : "start", text: wanted ? "Stop" : "Start" });
      }
      return h("tr", { "data-symbol": s.symbol }, [
        h("td", { text: s.symbol + " · " + s.venue }), h("td", null, [badge]),
        h("td", { class: "num", text: String(s.messages) }), h("td", { class: "num", text: String(s.reconnects) }),
        h("td", { class: "num", text: String(s.rejected) }), h("td", null, [action]),
      ]);
    }));
  }

  function say(text, isError) {
    message.textContent = text || "";
    message.classList.toggle("is-error", !!isError);
  }

  body.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) return;
    button.disabled = true;
    say("…", false);
    fetch(card.dataset.url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: JSON.stringify({ instrument: parseInt(button.dataset.instrument, 10), action: button.dataset.action }),
    }).then(function (response) {
      return response.json().catch(function () { return { error: "HTTP " + response.status }; }).then(function (data) {
        if (!response.ok) { say(data.error || "HTTP " + response.status, true); button.disabled = false; return; }
        say(button.dataset.action === "start" ? "Stream starting…" : "Stop requested.", false);
        render(data.streams);
      });
    }).catch(function (err) { say("Network error: " + err.message, true); button.disabled = false; });
  });

  document.addEventListener("gogo:update", function (event) {
    if (event.detail && event.detail.type === "streams") render(event.detail.streams);
  });
  var initial = document.getElementById("streams-data");
  if (initial) { try { render(JSON.parse(initial.textContent)); } catch (e) { /* page data is ours */ } }
})();
