// One game connection at a time: token, WebSocket, codec, pings, and reconnection.
//
// A `Connection` owns the socket. It decodes every frame, answers nothing by itself
// except pings it sent, and reports through callbacks: `message` for every server message,
// `status` for what to tell the player, `close` for each close. After a close it decides,
// with closecodes.js, whether to reconnect; reconnecting with the same token within the
// server's grace period resumes the same character (`welcome.resumed`).
//
// Must not touch the DOM or the game state: app.js wires it to those.

import { describeClose } from "./closecodes.js";
import { TokenError } from "./token.js";

const PING_INTERVAL_MS = 1000;
/** Consecutive failed attempts before giving up: about a minute, past the resume grace. */
const MAX_RETRIES = 12;
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 8000;
/**
 * Inputs are skipped while more than this is waiting in the socket: on a stalled link
 * old inputs are worthless, and piling them up would only delay the fresh ones.
 */
const MAX_BUFFERED_BYTES = 8 * 1024;

/** Encoders and decoders for the subprotocols this client speaks. */
export const CODECS = {
  "rallypoint.v1.msgpack": {
    encode: (msg) => globalThis.MessagePack.encode(msg),
    decode: (data) => {
      if (typeof data === "string") throw new Error("text frame on msgpack");
      return globalThis.MessagePack.decode(new Uint8Array(data));
    },
  },
  "rallypoint.v1.json": {
    encode: (msg) => JSON.stringify(msg),
    decode: (data) => {
      if (typeof data !== "string") throw new Error("binary frame on json");
      return JSON.parse(data);
    },
  },
};

export class Connection {
  /**
   * @param {object} opts
   * @param {string} opts.url the `/play` URL (`ws:` or `wss:`)
   * @param {string} opts.subprotocol a key of CODECS
   * @param {{refreshable: boolean, get: (o: {fresh: boolean}) => Promise<string>}} opts.tokens
   * @param {{message: Function, status: Function, close: Function}} opts.on
   */
  constructor({ url, subprotocol, tokens, on }) {
    this.url = url;
    this.subprotocol = subprotocol;
    this.codec = CODECS[subprotocol];
    this.tokens = tokens;
    this.on = on;
    this.ws = null;
    /** Bumped by every attempt, so late callbacks of an abandoned attempt are ignored. */
    this.generation = 0;
    this.stopped = true;
    this.opened = false;
    this.welcomed = false;
    this.failures = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pingId = 0;
    /** Ping id → send time; bounded, a lost pong is forgotten. */
    this.pings = new Map();
    this.rtt = null;
    this.seq = 0;
    this.lastError = null;
    this.lastClose = null;
    this.decodeErrors = 0;
    this.attempts = 0;
    // Back online: do not wait out the backoff.
    addEventListener("online", () => {
      if (this.retryTimer !== null) this.connect(true);
    });
  }

  /** Whether the server has welcomed this connection and it is still open. */
  get connected() {
    return this.welcomed && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** The subprotocol the server picked, once open. */
  get protocol() {
    return this.opened && this.ws ? this.ws.protocol : null;
  }

  start() {
    this.stopped = false;
    this.failures = 0;
    this.connect(false);
  }

  /** The player asked to reconnect: start over, with a fresh token when one can be had. */
  reconnectNow() {
    this.stopped = false;
    this.failures = 0;
    this.connect(true);
  }

  /** Leaves the game: a normal close, after which the server removes the player. */
  stop() {
    this.stopped = true;
    this.clearRetry();
    if (this.ws) this.ws.close(1000, "bye");
  }

  /** Sends an input with the next `seq`; false when not sent. */
  sendInput(mx, my, aim, fire) {
    if (!this.connected || this.ws.bufferedAmount > MAX_BUFFERED_BYTES) return false;
    this.seq += 1;
    this.send({ t: "input", seq: this.seq, mx, my, aim, fire });
    return true;
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(this.codec.encode(msg));
  }

  clearRetry() {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  abandonSocket() {
    const ws = this.ws;
    this.ws = null;
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) {
        ws.close(1000, "reconnecting");
      }
    }
  }

  async connect(freshToken) {
    this.clearRetry();
    this.abandonSocket();
    const gen = ++this.generation;
    this.attempts += 1;
    this.on.status("Connecting…", "connecting");
    let token;
    try {
      token = await this.tokens.get({ fresh: freshToken });
    } catch (e) {
      if (gen !== this.generation || this.stopped) return;
      const retry = e instanceof TokenError ? e.retry : true;
      if (retry) this.schedule(e.message, true, BACKOFF_FIRST_MS);
      else this.on.status(e.message, "stopped");
      return;
    }
    if (gen !== this.generation || this.stopped) return;
    let ws;
    try {
      ws = new WebSocket(this.url, [this.subprotocol, "bearer." + token]);
    } catch {
      // SyntaxError: the token has characters a subprotocol name cannot carry.
      this.on.status("The token is not a valid JWT.", "stopped");
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.opened = false;
    this.welcomed = false;
    this.lastError = null;
    this.seq = 0;
    this.pings.clear();
    ws.onopen = () => {
      this.opened = true;
      this.ping();
      this.pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS);
    };
    ws.onmessage = (ev) => this.received(ev.data);
    ws.onclose = (ev) => this.closed(ev);
    // An error is always followed by a close, which carries what can be known.
    ws.onerror = () => {};
  }

  ping() {
    this.pingId = (this.pingId + 1) >>> 0;
    this.pings.set(this.pingId, performance.now());
    if (this.pings.size > 8) this.pings.delete(this.pings.keys().next().value);
    this.send({ t: "ping", id: this.pingId });
  }

  received(data) {
    let msg;
    try {
      msg = this.codec.decode(data);
    } catch {
      this.decodeErrors += 1;
      return;
    }
    if (msg === null || typeof msg !== "object" || typeof msg.t !== "string") return;
    if (msg.t === "welcome") {
      this.welcomed = true;
      this.failures = 0;
    } else if (msg.t === "pong") {
      const sent = this.pings.get(msg.id);
      if (sent !== undefined) {
        this.pings.delete(msg.id);
        this.rtt = performance.now() - sent;
      }
    } else if (msg.t === "error") {
      this.lastError = msg;
    }
    this.on.message(msg);
  }

  closed(ev) {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    const errorCode = this.lastError ? String(this.lastError.code) : null;
    const d = describeClose(ev.code, errorCode, {
      opened: this.opened,
      canRefreshToken: this.tokens.refreshable,
    });
    this.lastClose = {
      code: ev.code,
      reason: ev.reason,
      errorCode,
      message: d.text,
      reconnect: d.reconnect && !this.stopped,
    };
    this.ws = null;
    this.welcomed = false;
    this.on.close(this.lastClose);
    if (this.stopped) {
      this.on.status("You left the game.", "stopped");
    } else if (d.reconnect) {
      this.schedule(d.text, d.freshToken, ev.code === 1001 ? 1000 : BACKOFF_FIRST_MS);
    } else {
      this.on.status(d.text, "stopped");
    }
  }

  schedule(why, freshToken, firstDelayMs) {
    this.failures += 1;
    if (this.failures > MAX_RETRIES) {
      this.on.status(`${why} Gave up after ${MAX_RETRIES} attempts.`, "stopped");
      return;
    }
    // Exponential backoff with jitter, so a restarted server is not hit by every client
    // in the same millisecond.
    const base = Math.min(BACKOFF_MAX_MS, firstDelayMs * 2 ** (this.failures - 1));
    const delay = base * (0.8 + 0.4 * Math.random());
    this.on.status(
      `${why} Reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${this.failures} of ${MAX_RETRIES})…`,
      "retrying",
    );
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect(freshToken);
    }, delay);
  }
}
