// The room list page: one socket on "/", a RoomList demultiplexer with the "rooms" stream.
(function () {
  "use strict";
  const rooms = new chat.RoomList(document.getElementById("rooms"), {
    empty: document.getElementById("no-rooms"),
  });
  const bridge = new channels.WebSocketBridge();
  bridge.demultiplex("rooms", (payload) => rooms.apply(payload));
  chat.trackConnection(bridge, document.getElementById("connection"));
  bridge.connect("/");

  // Leaving the page closes the socket; a page restored from the back/forward
  // cache connects again (and gets the list as it is now).
  window.addEventListener("pagehide", () => bridge.close());
  window.addEventListener("pageshow", (show) => {
    if (show.persisted) {
      bridge.connect("/");
    }
  });
})();
