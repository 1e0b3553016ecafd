// The room page: one socket on the room's own URL, through channels.WebSocketBridge.
//
// Frames without a "stream" are chat events (message, online) and the room's
// presence diffs; frames on the "rooms" stream are RoomBinding's changes to the
// rooms in the sidebar.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const list = document.getElementById("messages");
  const noMessages = document.getElementById("no-messages");
  const form = document.getElementById("send-form");
  const input = document.getElementById("message-input");
  const button = document.getElementById("send-button");
  const path = `/chat/${encodeURIComponent(config.room)}/`;
  let lastId = config.lastId;
  // Who is online: {username: [meta of each of their sockets]}. Each time the
  // socket opens, the server sends the whole list ("online"); the room's
  // presence diffs ({presence, joins, leaves}) then keep it up to date.
  let online = {};
  // Diffs that came before this connection's list (null once it has come):
  // they may be newer than the list, so they are applied after it.
  let early = null;
  let connected = false;
  let roomGone = false;

  function updateComposer() {
    button.disabled = !connected || roomGone;
  }

  function atBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function showMessage(event) {
    if (list.querySelector(`[data-id="${event.id}"]`)) {
      return; // already shown (history, or caught up again after a reconnection)
    }
    lastId = Math.max(lastId, event.id);
    const follow = atBottom() || event.user === config.user;
    const item = document.createElement("li");
    item.dataset.id = event.id;
    item.className = event.user === config.user ? "message mine" : "message";
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    const meta = document.createElement("div");
    meta.className = "meta";
    const name = document.createElement("strong");
    name.className = "user";
    name.textContent = event.user;
    const time = document.createElement("time");
    time.setAttribute("datetime", event.created);
    chat.formatTime(time);
    meta.append(name, " ", time);
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = event.text;
    bubble.append(meta, text);
    item.append(chat.avatar(event.user), bubble);
    // Keep the order of ids: what a reconnection catches up on can arrive
    // after newer messages broadcast to the room meanwhile.
    const later = [...list.querySelectorAll("li[data-id]")].find(
      (other) => Number(other.dataset.id) > event.id,
    );
    list.insertBefore(item, later || null);
    noMessages.hidden = true;
    if (follow) {
      list.scrollTop = list.scrollHeight;
    }
  }

  function showOnline() {
    const users = Object.keys(online).sort();
    document.getElementById("online-count").textContent = users.length;
    const people = document.getElementById("online-users");
    people.replaceChildren(
      ...users.map((user) => {
        const item = document.createElement("li");
        const name = document.createElement("span");
        const shown = online[user][0].name;
        name.textContent = user === config.user ? `${shown} (you)` : shown;
        item.append(chat.avatar(user), name);
        return item;
      }),
    );
  }

  function applyDiff(diff) {
    for (const user of Object.keys(diff.leaves)) {
      delete online[user];
    }
    Object.assign(online, diff.joins);
  }

  function showRoom(room) {
    if (room === null || room.slug !== config.room) {
      // Deleted, or its URL changed: this page's socket has nothing left to say.
      roomGone = true;
      document.getElementById("room-gone").hidden = false;
      document.body.classList.add("gone");
      bridge.close();
    } else {
      document.getElementById("room-title").textContent = room.title;
      document.title = document.title.replace(/^[^·]*·/, `${room.title} ·`);
      input.placeholder = `Message #${room.title}`;
    }
    updateComposer();
  }

  const rooms = new chat.RoomList(document.getElementById("rooms"), {
    current: config.roomPk,
    onCurrent: showRoom,
  });
  const bridge = new channels.WebSocketBridge();
  bridge.listen((event) => {
    if (event.type === "message") {
      showMessage(event);
    } else if (event.type === "online") {
      online = event.users;
      (early || []).forEach(applyDiff);
      early = null;
      showOnline();
    } else if (event.presence !== undefined) {
      if (early) {
        early.push(event);
      } else {
        applyDiff(event);
        showOnline();
      }
    }
  });
  bridge.demultiplex("rooms", (payload) => rooms.apply(payload));
  chat.trackConnection(bridge, document.getElementById("connection"));
  bridge.on("open", () => {
    connected = true;
    early = [];
    updateComposer();
    // The first time and after every reconnection: what did we miss?
    bridge.send({ type: "sync", after: lastId });
  });
  bridge.on("close", () => {
    connected = false;
    updateComposer();
  });

  form.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const text = input.value.trim();
    if (text && connected && !roomGone) {
      bridge.send({ text: text });
      input.value = "";
    }
  });

  // Leaving the page closes the socket, so the others see us leave a few seconds
  // later (a page kept in the back/forward cache would otherwise stay "online").
  window.addEventListener("pagehide", () => bridge.close());
  window.addEventListener("pageshow", (show) => {
    if (show.persisted && !roomGone) {
      bridge.connect(path);
    }
  });

  list.scrollTop = list.scrollHeight;
  bridge.connect(path);
})();
