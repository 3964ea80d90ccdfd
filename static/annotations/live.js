/*
 * gogo: a websocket that reconnects with backoff (window.gogo.liveSocket), for the annotation page.
 * opts: url() -> ws URL (read again at each reconnect), onMessage(data), onStatus("connecting" | "down"),
 * onRefused() when the server closes with 4401 (signed out): then it stops reconnecting.
 */
window.gogo = window.gogo || {};
window.gogo.liveSocket = function (opts) {
  "use strict";

  var socket = null, retry = 0;

  function open() {
    socket = new WebSocket(opts.url());
    opts.onStatus("connecting");
    socket.onopen = function () { retry = 0; };
    socket.onmessage = function (msg) { opts.onMessage(JSON.parse(msg.data)); };
    socket.onclose = function (e) {
      opts.onStatus("down");
      if (e.code === 4401) { opts.onRefused(); return; }
      retry = Math.min(retry + 1, 6);
      window.setTimeout(open, 500 * Math.pow(2, retry));
    };
  }

  open();
  return {
    send: function (obj) {
      if (!socket || socket.readyState !== 1) return false;
      socket.send(JSON.stringify(obj));
      return true;
    },
  };
};
