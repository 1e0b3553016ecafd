/*!
 * channels-classic WebSocketBridge as an ES module:
 *
 *     import { WebSocketBridge } from "/static/channels/js/websocketbridge.mjs";
 *
 * The code is websocketbridge.js beside this file (a classic script that defines
 * globalThis.channels); importing it runs it once, and this re-exports what it defines.
 */
import "./websocketbridge.js";

const {
  WebSocketBridge,
  ReconnectingSocket,
  backoffDelay,
  restartDelay,
  RESTART_CODES,
  DEFAULT_OPTIONS,
} = globalThis.channels;

export {
  WebSocketBridge,
  ReconnectingSocket,
  backoffDelay,
  restartDelay,
  RESTART_CODES,
  DEFAULT_OPTIONS,
};
