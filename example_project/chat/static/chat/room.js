// The room page: one WebSocket on the room's own URL, JSON events both ways.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const list = document.getElementById("messages");
  const form = document.getElementById("send-form");
  const input = document.getElementById("message-input");
  const connection = document.getElementById("connection");
  let lastId = config.lastId;
  let presenceVersion = 0;
  let socket = null;
  let retry = 500;
  let leaving = false;

  function showMessage(event) {
    if (list.querySelector(`[data-id="${event.id}"]`)) {
      return; // already shown (history, or the catch-up after a reconnect)
    }
    lastId = Math.max(lastId, event.id);
    const item = document.createElement("li");
    item.dataset.id = event.id;
    const name = document.createElement("strong");
    name.textContent = event.user;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = event.text;
    item.append(name, ": ", text);
    list.append(item);
    item.scrollIntoView({ block: "nearest" });
  }

  function showPresence(event) {
    // Workers broadcast these concurrently: only a newer version counts.
    if (event.version <= presenceVersion) {
      return;
    }
    presenceVersion = event.version;
    document.getElementById("online-count").textContent = event.count;
    document.getElementById("online-users").textContent = `(${event.users.join(", ")})`;
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${window.location.host}/chat/${config.room}/?after=${lastId}`;
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      connection.textContent = "Connected";
      document.body.dataset.connected = "true";
      retry = 500;
    });
    socket.addEventListener("message", (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "message") {
        showMessage(event);
      } else if (event.type === "presence") {
        showPresence(event);
      }
    });
    socket.addEventListener("close", () => {
      if (leaving) {
        return;
      }
      connection.textContent = "Disconnected, reconnecting…";
      document.body.dataset.connected = "false";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    });
  }

  form.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const text = input.value.trim();
    if (text && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ text: text }));
      input.value = "";
    }
  });

  // Leaving the page closes the socket, so the room's count goes down at once
  // (a page kept in the back/forward cache would otherwise stay "online").
  window.addEventListener("pagehide", () => {
    leaving = true;
    socket.close();
  });
  window.addEventListener("pageshow", (show) => {
    if (show.persisted) {
      leaving = false;
      connect();
    }
  });

  connect();
})();
