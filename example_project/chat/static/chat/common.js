// What both pages share: the live list of rooms, avatars, times, the connection pill.
(function (root) {
  "use strict";

  // A colour per name, the same on every page and every reload.
  function hue(name) {
    let hash = 0;
    for (const char of name) {
      hash = (hash * 31 + char.codePointAt(0)) % 360;
    }
    return hash;
  }

  function paintAvatar(element, name) {
    element.style.setProperty("--hue", hue(name));
  }

  function avatar(name) {
    const element = document.createElement("span");
    element.className = "avatar";
    element.dataset.name = name;
    element.textContent = name.charAt(0).toUpperCase();
    paintAvatar(element, name);
    return element;
  }

  // The server renders times in UTC; show them in the reader's time zone.
  function formatTime(element) {
    const when = new Date(element.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) {
      element.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      element.title = when.toLocaleString();
    }
  }

  /**
   * The list of rooms (#rooms), kept in step with the "rooms" stream.
   *
   * Payloads are RoomBinding's {action: "create"|"update"|"delete", pk, data}
   * and, on every (re)connection, {action: "snapshot", rooms: [...]}, which
   * replaces the whole list: changes made while the socket was away are
   * never sent again.
   */
  class RoomList {
    constructor(list, { empty = null, current = null, onCurrent = null } = {}) {
      this.list = list;
      this.empty = empty;
      this.current = current; // the pk of the room this page is about
      this.onCurrent = onCurrent; // called with the current room's data, or null once it is gone
    }

    apply(payload) {
      if (payload.action === "snapshot") {
        const keep = new Set(payload.rooms.map((room) => String(room.pk)));
        for (const item of this.list.querySelectorAll("li[data-pk]")) {
          if (!keep.has(item.dataset.pk)) {
            this.remove(item.dataset.pk);
          }
        }
        payload.rooms.forEach((room) => this.put(room));
      } else if (payload.action === "create" || payload.action === "update") {
        this.put({ pk: payload.pk, ...payload.data });
      } else if (payload.action === "delete") {
        this.remove(payload.pk);
      }
      if (this.empty) {
        this.empty.hidden = this.list.querySelector("li[data-pk]") !== null;
      }
    }

    item(pk) {
      return this.list.querySelector(`li[data-pk="${CSS.escape(String(pk))}"]`);
    }

    put(room) {
      let item = this.item(room.pk);
      if (!item) {
        item = document.createElement("li");
        item.dataset.pk = room.pk;
        item.innerHTML =
          '<a><span class="room-icon">#</span><span class="room-title"></span>' +
          '<span class="room-slug"></span></a>';
        if (String(room.pk) === String(this.current)) {
          item.className = "current";
        }
      }
      item.dataset.slug = room.slug;
      item.querySelector("a").href = `/chat/${encodeURIComponent(room.slug)}/`;
      item.querySelector(".room-title").textContent = room.title;
      item.querySelector(".room-slug").textContent = `/chat/${room.slug}/`;
      // Keep the order the server uses: by title.
      const after = [...this.list.querySelectorAll("li[data-pk]")].find(
        (other) => other !== item && other.querySelector(".room-title").textContent > room.title,
      );
      this.list.insertBefore(item, after || null);
      if (String(room.pk) === String(this.current) && this.onCurrent) {
        this.onCurrent(room);
      }
    }

    remove(pk) {
      const item = this.item(pk);
      if (item) {
        item.remove();
      }
      if (String(pk) === String(this.current) && this.onCurrent) {
        this.onCurrent(null);
      }
    }
  }

  /** Show a bridge's state in the #connection pill and on body[data-connected]. */
  function trackConnection(bridge, pill) {
    const show = (state, text) => {
      pill.dataset.state = state;
      pill.textContent = text;
      document.body.dataset.connected = String(state === "open");
    };
    bridge.on("open", () => show("open", "Live"));
    bridge.on("close", () => show("closed", "Disconnected"));
    bridge.on("reconnecting", (event) => {
      show("reconnecting", `Reconnecting in ${Math.max(1, Math.round(event.detail.delay / 1000))} s…`);
    });
  }

  document.querySelectorAll(".avatar[data-name]").forEach((element) => {
    paintAvatar(element, element.dataset.name);
  });
  document.querySelectorAll("time[datetime]").forEach(formatTime);

  root.chat = { RoomList, avatar, formatTime, trackConnection };
})(window);
