/*!
 * channels-classic WebSocketBridge: the Channels 1.x JavaScript client.
 *
 * A classic script: include it with a <script> tag and use
 * `channels.WebSocketBridge`, as in Channels 1.x. No build step. The ES module
 * `websocketbridge.mjs` beside it imports this same file and re-exports what it
 * defines, so the code exists once.
 *
 * Why a socket of our own: a bridge must survive server restarts. This one
 * reconnects with capped exponential backoff *and jitter* (so that a thousand
 * pages do not reconnect in the same millisecond after a deploy), spreads the
 * pages a restarting server sends away (close code 1012 or 1001) over a window
 * of its own, can send a heartbeat to notice dead connections, and queues
 * frames sent while it is disconnected (bounded; see `queueOverflow`).
 */
(function (root) {
  "use strict";

  /** WebSocket readyState values, as on a browser WebSocket. */
  const CONNECTING = 0;
  const OPEN = 1;
  const CLOSING = 2;
  const CLOSED = 3;

  /** The state machine of a ReconnectingSocket, and the readyState each state shows. */
  const READY_STATES = Object.freeze({
    connecting: CONNECTING, // a handshake is under way
    open: OPEN,
    reconnecting: CONNECTING, // waiting for the backoff delay before the next handshake
    closing: CLOSING, // close() was called; waiting for the close handshake
    closed: CLOSED, // closed on purpose, or given up (maxRetries, shouldReconnect)
  });

  /**
   * Default options. The first five are reconnecting-websocket 3.x's (what Channels 1.x
   * used), with its defaults, so options a 1.x page passed to connect() keep working.
   */
  const DEFAULT_OPTIONS = Object.freeze({
    minReconnectionDelay: 1500, // ms; the first retry waits at most this long
    maxReconnectionDelay: 10000, // ms; the cap of the exponential backoff
    reconnectionDelayGrowFactor: 1.3,
    connectionTimeout: 4000, // ms for a handshake; then it counts as failed
    maxRetries: Infinity, // failed attempts in a row before giving up
    jitter: 0.5, // 0..1: each delay is cut by up to this fraction, at random
    minRestartDelay: 500, // ms; after a 1012/1001 close the first retry waits at least this
    maxRestartDelay: 3000, // ms; ...and at most this, drawn at random in between
    minUptime: 5000, // ms open before the retry count starts again from zero
    heartbeatInterval: 0, // ms between heartbeats; 0 turns them off
    heartbeatTimeout: null, // ms to wait for any frame after a heartbeat; null: the interval
    heartbeatMessage: '{"type":"heartbeat"}', // the text frame sent as a heartbeat
    maxQueuedFrames: 100, // frames kept while disconnected
    queueOverflow: "drop-oldest", // or "drop-newest" or "error"
    shouldReconnect: null, // function(closeEvent) -> boolean; null: always
    WebSocket: null, // the WebSocket class; null: the global one
    debug: false, // log the socket's life to console.debug
  });

  const OVERFLOW_POLICIES = ["drop-oldest", "drop-newest", "error"];
  /** Past delays kept on `socket.reconnectDelays`, newest last. */
  const KEPT_DELAYS = 100;
  /** The close code reported when the bridge gives up on a connection itself. */
  const ABNORMAL_CLOSURE = 1006;
  /**
   * Close codes of a server that stops on purpose: 1012 "service restart" (what a
   * draining channels-classic server sends) and 1001 "going away". The first retry
   * after one waits restartDelay(), not the backoff.
   */
  const RESTART_CODES = Object.freeze([1001, 1012]);

  function fail(message) {
    throw new TypeError("WebSocketBridge: " + message);
  }

  function checkNumber(options, name, minimum) {
    const value = options[name];
    if (typeof value !== "number" || Number.isNaN(value) || value < minimum) {
      fail(`option ${name} must be a number >= ${minimum}, not ${String(value)}`);
    }
  }

  /** Merge *options* over the defaults and check them, naming the option that is wrong. */
  function normalizeOptions(options) {
    const given = Object.assign({}, options);
    // reconnecting-websocket 3.x called its WebSocket class option "constructor".
    if (Object.prototype.hasOwnProperty.call(given, "constructor")) {
      if (given.WebSocket == null) given.WebSocket = given.constructor;
      delete given.constructor;
    }
    for (const name of Object.keys(given)) {
      if (!(name in DEFAULT_OPTIONS)) {
        // Not an error: 1.x passed options through to reconnecting-websocket, which
        // ignored the ones it did not know, and pages may still pass them.
        console.warn(
          `WebSocketBridge: unknown option ${name} ignored; the options are: ` +
            Object.keys(DEFAULT_OPTIONS).join(", "),
        );
        delete given[name];
      }
    }
    const merged = Object.assign({}, DEFAULT_OPTIONS, given);
    checkNumber(merged, "minReconnectionDelay", 0);
    checkNumber(merged, "maxReconnectionDelay", merged.minReconnectionDelay);
    checkNumber(merged, "reconnectionDelayGrowFactor", 1);
    checkNumber(merged, "connectionTimeout", 0);
    checkNumber(merged, "maxRetries", 0);
    checkNumber(merged, "minUptime", 0);
    checkNumber(merged, "minRestartDelay", 0);
    checkNumber(merged, "maxRestartDelay", merged.minRestartDelay);
    checkNumber(merged, "heartbeatInterval", 0);
    checkNumber(merged, "maxQueuedFrames", 0);
    if (merged.heartbeatTimeout === null) merged.heartbeatTimeout = merged.heartbeatInterval;
    checkNumber(merged, "heartbeatTimeout", 0);
    if (typeof merged.jitter !== "number" || !(merged.jitter >= 0 && merged.jitter <= 1)) {
      fail(`option jitter must be a number from 0 to 1, not ${String(merged.jitter)}`);
    }
    if (typeof merged.heartbeatMessage !== "string") {
      fail("option heartbeatMessage must be a string (the text frame to send)");
    }
    if (OVERFLOW_POLICIES.indexOf(merged.queueOverflow) === -1) {
      fail(`option queueOverflow must be one of ${OVERFLOW_POLICIES.join(", ")}`);
    }
    if (merged.shouldReconnect !== null && typeof merged.shouldReconnect !== "function") {
      fail("option shouldReconnect must be a function(closeEvent) returning true or false");
    }
    return Object.freeze(merged);
  }

  /**
   * Return the delay in ms before reconnection attempt *attempt* (0 for the first).
   *
   * The ceiling grows from minReconnectionDelay by reconnectionDelayGrowFactor per
   * attempt, up to maxReconnectionDelay; jitter then takes a random part of up to
   * `jitter` of it away, so clients dropped together come back spread out.
   * *random* (default Math.random) returns a number in [0, 1).
   */
  function backoffDelay(attempt, options, random) {
    const o = Object.assign({}, DEFAULT_OPTIONS, options);
    const ceiling = Math.min(
      o.maxReconnectionDelay,
      o.minReconnectionDelay * Math.pow(o.reconnectionDelayGrowFactor, attempt),
    );
    const draw = (random || Math.random)();
    // Not rounded: two clients drawing the same delay should be as unlikely as can be.
    return ceiling * (1 - o.jitter * draw);
  }

  /**
   * Return the delay in ms before reconnecting to a server that closed with 1012 or 1001.
   *
   * Drawn evenly from minRestartDelay to maxRestartDelay: every page of a server that
   * drains is closed in the same instant, and should come back spread over the window,
   * not in a herd at its start. *random* (default Math.random) returns a number in [0, 1).
   */
  function restartDelay(options, random) {
    const o = Object.assign({}, DEFAULT_OPTIONS, options);
    const draw = (random || Math.random)();
    return o.minRestartDelay + (o.maxRestartDelay - o.minRestartDelay) * draw;
  }

  /** Return *text* as JSON.stringify writes it (no spaces), or *text* if it is not JSON. */
  function canonicalJson(text) {
    try {
      return JSON.stringify(JSON.parse(text));
    } catch (error) {
      return text;
    }
  }

  /** Run an `on<event>` handler; report (not throw) its error, as dispatchEvent does. */
  function callHandler(target, handler, event) {
    try {
      handler.call(target, event);
    } catch (error) {
      if (typeof root.reportError === "function") {
        root.reportError(error);
      } else {
        setTimeout(() => {
          throw error;
        });
      }
    }
  }

  /**
   * A WebSocket that reconnects by itself; what `bridge.socket` is.
   *
   * It looks like a browser WebSocket (send, close, readyState, protocol, onopen/
   * onmessage/onclose/onerror and addEventListener), so 1.x code that used the
   * ReconnectingWebSocket there keeps working. Listeners stay attached across
   * reconnections. Extra events: "reconnecting" (detail: attempt, delay, code,
   * reason) before each wait, and "dropped" (detail: data, reason) for each frame
   * the full queue lets go.
   */
  class ReconnectingSocket extends EventTarget {
    constructor(url, protocols, options) {
      super();
      this.url = url;
      this.protocols = protocols;
      this.options = normalizeOptions(options);
      /** One of READY_STATES' keys. */
      this.state = "connecting";
      /** Failed attempts since the last connection that stayed up minUptime ms. */
      this.retries = 0;
      /** The backoff delays computed so far (newest last, at most KEPT_DELAYS). */
      this.reconnectDelays = [];
      /** Frames sent while disconnected, sent in order on the next open. */
      this.queue = [];
      this.binaryType = "blob";
      this.onopen = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      this.onreconnecting = null;
      this._ws = null;
      this._timers = {};
      this._reopen = false;
      this._open(); // a bad URL throws here, at connect(), where the mistake is
    }

    get readyState() {
      return READY_STATES[this.state];
    }

    get protocol() {
      return this._ws ? this._ws.protocol : "";
    }

    get extensions() {
      return this._ws ? this._ws.extensions : "";
    }

    get bufferedAmount() {
      return this._ws ? this._ws.bufferedAmount : 0;
    }

    /** Send *data* now if the socket is open, else queue it for the next open. */
    send(data) {
      if (this.state === "closing" || this.state === "closed") {
        throw new Error(
          "WebSocketBridge: the socket is closed (close() was called, or it gave up " +
            "reconnecting); call bridge.connect() again to open a new one",
        );
      }
      if (this.state === "open" && this._ws.readyState === OPEN) {
        this._ws.send(data);
      } else {
        this._enqueue(data);
      }
    }

    /**
     * Close on purpose: no reconnection, and queued frames are discarded.
     *
     * `close(code, reason, {keepClosed: false})` (reconnecting-websocket 3.x's way)
     * closes this connection and reconnects instead.
     */
    close(code, reason, options) {
      if (this.state === "closing" || this.state === "closed") return;
      const reopen = Boolean(options && options.keepClosed === false);
      if (this._ws) {
        // First, so an invalid code throws before anything changes.
        this._ws.close(code === undefined ? 1000 : code, reason);
        this._clearTimers();
        if (!reopen) this.queue.length = 0;
        this._reopen = reopen;
        this.state = "closing";
        return;
      }
      this._clearTimers();
      if (reopen) {
        this._open();
      } else {
        this.queue.length = 0;
        this.state = "closed";
      }
    }

    _log(...args) {
      if (this.options.debug) console.debug("WebSocketBridge:", ...args);
    }

    _emit(type, event) {
      const handler = this["on" + type];
      if (typeof handler === "function") callHandler(this, handler, event);
      this.dispatchEvent(event);
    }

    _timer(name, delay, callback) {
      clearTimeout(this._timers[name]);
      this._timers[name] = setTimeout(() => {
        delete this._timers[name];
        callback();
      }, delay);
    }

    _clearTimers() {
      for (const name of Object.keys(this._timers)) {
        clearTimeout(this._timers[name]);
        clearInterval(this._timers[name]);
      }
      this._timers = {};
    }

    _open() {
      const WebSocketClass = this.options.WebSocket || root.WebSocket;
      const ws =
        this.protocols === undefined
          ? new WebSocketClass(this.url)
          : new WebSocketClass(this.url, this.protocols);
      ws.binaryType = this.binaryType;
      this._ws = ws;
      this.state = "connecting";
      this._log("connecting to", this.url);
      ws.onopen = () => this._opened(ws);
      ws.onmessage = (event) => this._received(ws, event);
      ws.onerror = () => {
        if (ws === this._ws) this._emit("error", new Event("error"));
      };
      ws.onclose = (event) => this._closed(ws, event.code, event.reason, event.wasClean);
      if (this.options.connectionTimeout > 0) {
        this._timer("handshake", this.options.connectionTimeout, () =>
          this._abandon(ws, "the handshake timed out"),
        );
      }
    }

    _opened(ws) {
      if (ws !== this._ws) return;
      clearTimeout(this._timers.handshake);
      this.state = "open";
      this._log("open");
      this._timer("uptime", this.options.minUptime, () => {
        this.retries = 0;
      });
      this._startHeartbeat(ws);
      // Before "open" listeners run, so frames keep the order the page sent them in.
      while (this.queue.length && ws.readyState === OPEN) ws.send(this.queue.shift());
      this._emit("open", new Event("open"));
    }

    _received(ws, event) {
      if (ws !== this._ws) return;
      clearTimeout(this._timers.heartbeatReply);
      delete this._timers.heartbeatReply;
      if (this._isHeartbeat(event.data)) return; // the answer to a heartbeat is ours
      this._emit(
        "message",
        new MessageEvent("message", {
          data: event.data,
          origin: event.origin,
          lastEventId: event.lastEventId,
        }),
      );
    }

    /** Whether *data* is the heartbeat frame, as sent or re-encoded by a JSON consumer. */
    _isHeartbeat(data) {
      if (!(this.options.heartbeatInterval > 0) || typeof data !== "string") return false;
      if (data === this.options.heartbeatMessage) return true;
      if (data.length > 2 * this.options.heartbeatMessage.length + 16) return false;
      return canonicalJson(data) === canonicalJson(this.options.heartbeatMessage);
    }

    _startHeartbeat(ws) {
      const interval = this.options.heartbeatInterval;
      if (!(interval > 0)) return;
      this._timers.heartbeat = setInterval(() => {
        if (ws !== this._ws || ws.readyState !== OPEN) return;
        ws.send(this.options.heartbeatMessage);
        if (!this._timers.heartbeatReply) {
          this._timer("heartbeatReply", this.options.heartbeatTimeout, () =>
            this._abandon(ws, "no frame came back after a heartbeat"),
          );
        }
      }, interval);
    }

    /** Give up on a connection that does not answer; the browser may take minutes to. */
    _abandon(ws, reason) {
      if (ws !== this._ws) return;
      this._log("abandoning the connection:", reason);
      this._closed(ws, ABNORMAL_CLOSURE, reason, false);
      ws.close();
    }

    _closed(ws, code, reason, wasClean) {
      if (ws !== this._ws) return;
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      this._ws = null;
      this._clearTimers();
      const event = new CloseEvent("close", { code, reason, wasClean });
      const asked = this.state === "closing"; // close() was called
      const reopen = asked && this._reopen;
      this._reopen = false;
      const allowed = this.options.shouldReconnect ? this.options.shouldReconnect(event) : true;
      const retry = reopen || (!asked && allowed && this.retries < this.options.maxRetries);
      this.state = retry ? "reconnecting" : "closed";
      this._log("closed", code, reason, retry ? "(will reconnect)" : "");
      this._emit("close", event);
      // A "close" listener may have called close(): then it stays closed.
      if (this.state === "reconnecting") this._scheduleReconnect(code, reason);
    }

    _scheduleReconnect(code, reason) {
      let delay = backoffDelay(this.retries, this.options);
      if (RESTART_CODES.indexOf(code) !== -1) {
        // A restart, not a failure: spread out. A server that keeps restarting on
        // us (before minUptime) still gets the backoff, if it is longer.
        const spread = restartDelay(this.options);
        delay = this.retries === 0 ? spread : Math.max(spread, delay);
      }
      this.retries += 1;
      this.reconnectDelays.push(delay);
      if (this.reconnectDelays.length > KEPT_DELAYS) this.reconnectDelays.shift();
      this._timer("reconnect", delay, () => {
        if (this.state === "reconnecting") this._open();
      });
      this._emit(
        "reconnecting",
        new CustomEvent("reconnecting", {
          detail: { attempt: this.retries, delay, code, reason },
        }),
      );
    }

    _enqueue(data) {
      const max = this.options.maxQueuedFrames;
      if (this.queue.length >= max) {
        const policy = this.options.queueOverflow;
        if (policy === "error") {
          throw new Error(
            `WebSocketBridge: ${max} frames are already queued while disconnected ` +
              "(maxQueuedFrames); wait for the 'open' event, or raise maxQueuedFrames",
          );
        }
        let dropped = data;
        if (policy === "drop-oldest" && this.queue.length > 0) {
          dropped = this.queue.shift();
          this.queue.push(data);
        }
        this._emit(
          "dropped",
          new CustomEvent("dropped", { detail: { data: dropped, reason: "queue full" } }),
        );
        return;
      }
      this.queue.push(data);
    }
  }

  /** Events a bridge's on() accepts: the socket's, forwarded. */
  const BRIDGE_EVENTS = ["open", "close", "reconnecting", "message", "error", "dropped"];

  /**
   * Return the absolute ws:// or wss:// URL for what was passed to connect().
   *
   * No URL is the page's host at "/", as in 1.x. Paths and relative URLs resolve
   * against the page; http(s) becomes ws(s), so the scheme follows the page's.
   */
  function resolveUrl(url) {
    const page = root.location;
    if (url === undefined || url === null || url === "") {
      return (page.protocol === "https:" ? "wss://" : "ws://") + page.host + "/";
    }
    if (typeof url !== "string" && !(root.URL && url instanceof root.URL)) {
      fail(`connect() takes a URL or a path like "/ws/", not ${typeof url}`);
    }
    const resolved = new URL(String(url), page.href);
    if (resolved.protocol === "http:") resolved.protocol = "ws:";
    else if (resolved.protocol === "https:") resolved.protocol = "wss:";
    else if (resolved.protocol !== "ws:" && resolved.protocol !== "wss:") {
      fail(`connect() needs a ws://, wss:// or http(s):// URL or a path, not ${String(url)}`);
    }
    return resolved.href;
  }

  /**
   * The bridge between a Channels server and the page's JavaScript (the 1.x API).
   *
   * Frames are JSON. listen() gets frames without a "stream"; demultiplex() gets the
   * payloads of one stream of a WebsocketDemultiplexer. Options given here are the
   * defaults of every connect(); connect()'s own options win.
   */
  class WebSocketBridge {
    constructor(options) {
      /** The ReconnectingSocket of the last connect(); null before it. */
      this.socket = null;
      this.streams = Object.create(null);
      this.default_cb = null;
      this.options = Object.assign({}, options);
      this._listeners = Object.create(null);
      for (const type of BRIDGE_EVENTS) this._listeners[type] = [];
    }

    /**
     * Connect to *url* (default: "/" on the page's host), reconnecting when dropped.
     *
     * A second connect() closes the first socket and replaces it; listen(),
     * demultiplex() and on() callbacks stay.
     */
    connect(url, protocols, options) {
      // Both checked before the old socket goes, so a mistake leaves it alone.
      const resolved = resolveUrl(url);
      const checked = normalizeOptions(Object.assign({}, this.options, options));
      if (this.socket) this.socket.close();
      const socket = new ReconnectingSocket(resolved, protocols, checked);
      this.socket = socket;
      socket.addEventListener("message", (event) => this._dispatch(event));
      for (const type of BRIDGE_EVENTS) {
        socket.addEventListener(type, (event) => {
          if (this.socket !== socket) return;
          for (const callback of this._listeners[type].slice()) callHandler(this, callback, event);
        });
      }
    }

    /** Call *callback(action, stream)* with each frame that has no "stream" (stream is null). */
    listen(callback) {
      if (callback !== undefined && callback !== null && typeof callback !== "function") {
        // 1.x's docs show listen('/ws/'); that never worked, so say what to do, but go on.
        console.warn(
          `WebSocketBridge: listen() takes a callback, not ${JSON.stringify(callback)}; ` +
            "ignored. To connect to a path, pass it to connect().",
        );
        callback = null;
      }
      this.default_cb = callback || null;
    }

    /** Call *callback(action, stream)* with the payload of each frame on *stream*. */
    demultiplex(stream, callback) {
      if (typeof stream !== "string") fail("demultiplex() takes a stream name (a string) first");
      if (typeof callback !== "function") {
        fail(`demultiplex(${JSON.stringify(stream)}, callback) needs a callback function`);
      }
      this.streams[stream] = callback;
    }

    /** Send *message* as JSON; queued while disconnected. */
    send(message) {
      this._socket("send").send(JSON.stringify(message));
    }

    /** Return an object whose send(payload) sends {"stream": name, "payload": payload}. */
    stream(name) {
      if (typeof name !== "string") fail("stream() takes a stream name (a string)");
      return {
        send: (payload) => {
          this._socket("stream().send").send(JSON.stringify({ stream: name, payload }));
        },
      };
    }

    /** Close on purpose: the bridge does not reconnect (connect() opens it again). */
    close(code, reason) {
      if (this.socket) this.socket.close(code, reason);
    }

    /** Call *callback(event)* on the socket's *type* events; return a function that stops it. */
    on(type, callback) {
      if (!(type in this._listeners)) {
        const known = BRIDGE_EVENTS.join(", ");
        fail(`there is no ${JSON.stringify(type)} event; the events are: ${known}`);
      }
      if (typeof callback !== "function") {
        fail(`on(${JSON.stringify(type)}, callback) needs a function`);
      }
      this._listeners[type].push(callback);
      return () => this.off(type, callback);
    }

    /** Stop calling *callback* on *type* events. */
    off(type, callback) {
      const listeners = this._listeners[type];
      if (!listeners) return;
      const index = listeners.indexOf(callback);
      if (index !== -1) listeners.splice(index, 1);
    }

    _socket(what) {
      if (!this.socket) fail(`${what}() needs a socket: call connect() first`);
      return this.socket;
    }

    _dispatch(event) {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        console.error(
          "WebSocketBridge: a frame that is not JSON was ignored; listen() and " +
            "demultiplex() get JSON frames only (see bridge.socket for others):",
          event.data,
        );
        return;
      }
      if (message !== null && typeof message === "object" && message.stream !== undefined) {
        const callback = this.streams[message.stream];
        if (callback) callback(message.payload, message.stream);
      } else if (this.default_cb) {
        this.default_cb(message, null);
      }
    }
  }

  const api = {
    WebSocketBridge,
    ReconnectingSocket,
    backoffDelay,
    restartDelay,
    RESTART_CODES,
    DEFAULT_OPTIONS,
  };
  root.channels = Object.assign(root.channels || {}, api);
})(globalThis);
