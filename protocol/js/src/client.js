// One game session over a WebSocket, kept alive: token, subprotocol, codec, pings,
// reconnect with backoff and resume, inputs with `seq`/`ack`, the server clock and the
// interpolation buffer.
//
// A `Client` owns its socket. It reports through typed events (`welcome`, `snapshot`,
// every game event by name, `chat`, `pong`, `error`, `close`, `state`) and exposes a
// visible state: `connecting` (no session yet), `open` (welcomed), `resuming` (the
// connection dropped and a new one is on its way: within the server's grace period it
// re-attaches to the same entity, `welcome.resumed`), `closed` (it will not reconnect by
// itself; `state.reason` says why). After a close it decides with closecodes.js whether
// to reconnect.
//
// Prediction plugs in through `predictor`: it sees every input sent and, on every
// snapshot, the server's state with the inputs still unacknowledged, oldest first.
//
// Must not touch the DOM or game rules; time comes from the `now` option, so the pure
// parts (clock, inputs, interpolation) can be tested without waiting.

import { DEFAULT_BACKOFF, backoffDelay } from "./backoff.js";
import { ServerClock } from "./clock.js";
import { describeClose } from "./closecodes.js";
import { DEFAULT_PROTOCOLS, codecFor, vendoredMsgpack } from "./codec.js";
import { Emitter } from "./emitter.js";
import { InputHistory } from "./inputs.js";
import { SnapshotBuffer } from "./interpolation.js";

/**
 * @typedef {import("../index.js").ClientOptions} ClientOptions
 * @typedef {import("../index.js").ClientEvents} ClientEvents
 * @typedef {import("../index.js").ConnectionState} ConnectionState
 * @typedef {import("../index.js").CloseInfo} CloseInfo
 * @typedef {import("../index.js").Welcome} Welcome
 * @typedef {import("../index.js").Snapshot} Snapshot
 * @typedef {import("../index.js").InputRecord<Record<string, unknown>>} InputRecord
 * @typedef {import("../index.js").Interpolated} Interpolated
 * @typedef {import("../index.js").MsgpackCodec} MsgpackCodec
 * @typedef {import("../index.js").WebSocketLike} WebSocketLike
 * @typedef {import("../index.js").Predictor} Predictor
 */

/** A token source failed; `retry` says whether trying again later may help. */
export class TokenError extends Error {
  /**
   * @param {string} message
   * @param {boolean} retry
   */
  constructor(message, retry) {
    super(message);
    this.name = "TokenError";
    this.retry = retry;
  }
}

const OPEN = 1;
const CONNECTING = 0;
/** Ping ids waiting for a pong; an older one is forgotten (its pong was lost). */
const MAX_PINGS_IN_FLIGHT = 8;
/** The event types of PROTOCOL.md, each also emitted under its own name. */
const GAME_EVENTS = new Set(["player", "leave", "kill", "respawn", "pickup", "map", "round_start", "round_end"]);
/** The server's limit on chat text (PROTOCOL.md, Limits). */
const MAX_CHAT_CHARS = 200;

/** @extends {Emitter<ClientEvents>} */
export class Client extends Emitter {
  /** @param {ClientOptions} opts */
  constructor(opts) {
    super();
    const WS = opts.WebSocket ?? /** @type {any} */ (globalThis).WebSocket;
    if (typeof WS !== "function") {
      throw new TypeError(
        "no WebSocket: pass the `ws` package as {WebSocket} (Node 20 has no global WebSocket " +
          "without --experimental-websocket)",
      );
    }
    this.opts = opts;
    /** @type {new (url: string, protocols?: string[], options?: object) => WebSocketLike} */
    this.WebSocket = WS;
    this.url = opts.url;
    this.protocols = [...(opts.protocols ?? DEFAULT_PROTOCOLS)];
    this.tokenIn = opts.tokenIn && opts.tokenIn !== "auto" ? opts.tokenIn : autoCarriage(WS);
    this.backoff = opts.reconnect === false ? null : { ...DEFAULT_BACKOFF, ...opts.reconnect };
    this.now = opts.now ?? (() => performance.now());
    this.random = opts.random ?? Math.random;
    this.predictor = opts.predictor ?? null;
    this.clock = new ServerClock();
    /** @type {InputHistory<Record<string, unknown>>} */
    this.inputs = new InputHistory(opts.inputCapacity);
    this.snapshots = new SnapshotBuffer({ schema: opts.schema, teleportDistance: opts.teleportDistance });
    /** @type {ConnectionState} */
    this.state = { state: "closed", reason: null, attempt: 0, retryInMs: null };
    /** The current session's `welcome`, or null. */
    this.welcome = /** @type {Welcome | null} */ (null);
    /** The last close, or null. */
    this.lastClose = /** @type {CloseInfo | null} */ (null);
    /** Frames that could not be decoded or were not messages. */
    this.decodeErrors = 0;
    /** Connection attempts made, in total. */
    this.attempts = 0;
    /** @type {WebSocketLike | null} */
    this.ws = null;
    this.codec = /** @type {ReturnType<typeof codecFor> | null} */ (null);
    this.generation = 0;
    this.stopped = true;
    this.opened = false;
    this.sessionSeen = false;
    this.failures = 0;
    this.lastError = /** @type {{code: string, message: string} | null} */ (null);
    this.transportError = /** @type {string | null} */ (null);
    this.retryTimer = /** @type {ReturnType<typeof setTimeout> | null} */ (null);
    this.pingTimer = /** @type {ReturnType<typeof setInterval> | null} */ (null);
    this.pingId = 0;
    /** @type {Map<number, number>} */
    this.pings = new Map();
    this.onOnline = () => {
      if (this.retryTimer !== null) this.attempt(false);
    };
  }

  /** The subprotocol the server picked, while open. */
  get protocol() {
    return this.opened && this.ws ? this.ws.protocol : null;
  }

  /** Welcomed and still open. */
  get connected() {
    return this.state.state === "open";
  }

  /** Round-trip time of the last pong (ms), or null. */
  get rtt() {
    return this.clock.rtt;
  }

  /** Starts connecting; after a `closed` state, starts over. */
  connect() {
    this.start();
    this.attempt(false);
  }

  /**
   * Reconnects now, skipping any backoff (a player's Reconnect button).
   * @param {{freshToken?: boolean}} [opts] ask the token source for a new token
   */
  reconnectNow(opts = {}) {
    this.start();
    this.attempt(opts.freshToken ?? true);
  }

  /** Leaves `closed` (a fresh start: `connecting`, no reason yet), or keeps retrying. */
  start() {
    if (this.state.state === "closed") {
      this.sessionSeen = false;
      this.state = { state: "closed", reason: null, attempt: 0, retryInMs: null };
    }
    this.stopped = false;
    this.failures = 0;
    globalThis.addEventListener?.("online", this.onOnline);
  }

  /**
   * Leaves: a normal close, after which the server removes the player. No reconnect.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = "bye") {
    this.stopped = true;
    this.clearRetry();
    globalThis.removeEventListener?.("online", this.onOnline);
    this.stopPings();
    const ws = this.ws;
    if (ws === null) this.generation += 1; // a token request in flight is abandoned
    else if (ws.readyState === OPEN || ws.readyState === CONNECTING) ws.close(code, reason);
    const info = localClose("Closed by this client.", code);
    this.setState({ state: "closed", reason: info, attempt: 0, retryInMs: null });
  }

  /**
   * Sends an input with the next `seq`, and keeps it until a snapshot acknowledges it.
   * Not sent (null) when not open, for a spectator, or while more than
   * `maxBufferedBytes` wait in the socket (old inputs are worthless on a stalled link).
   * @template {Record<string, unknown>} F
   * @param {F} fields the game's input fields (the arena's: mx, my, aim, fire)
   * @returns {import("../index.js").InputRecord<F> | null}
   */
  sendInput(fields) {
    const ws = this.ws;
    if (!ws || !this.connected || this.welcome?.role === "spectator") return null;
    if (ws.bufferedAmount > (this.opts.maxBufferedBytes ?? 8192)) return null;
    for (const [k, v] of Object.entries(fields)) {
      // The server closes with 1007 on NaN or infinity: refuse here, where the bug is.
      if (typeof v === "number" && !Number.isFinite(v)) throw new RangeError(`input.${k} is ${v}`);
    }
    const record = this.inputs.push(fields, this.now());
    this.send({ t: "input", seq: record.seq, ...fields });
    this.predictor?.input(record);
    return /** @type {import("../index.js").InputRecord<F>} */ (record);
  }

  /**
   * Sends a chat line to the room. Throws on text the server would close the session for.
   * @param {string} text at most 200 characters
   * @returns {boolean} whether it was sent
   */
  sendChat(text) {
    if ([...text].length > MAX_CHAT_CHARS) throw new RangeError(`chat text over ${MAX_CHAT_CHARS} characters`);
    if (!this.connected) return false;
    this.send({ t: "chat", text });
    return true;
  }

  /** The server's tick now (fractional), from pongs. @param {number} [now] */
  serverTick(now = this.now()) {
    return this.clock.serverTick(now);
  }

  /** The tick of the snapshot arriving now (fractional). @param {number} [now] */
  streamTick(now = this.now()) {
    return this.clock.streamTick(now);
  }

  /**
   * How far behind the stream renders are drawn, in ticks: `interpolationDelayMs`
   * (default 100), and at least `minSnapshotIntervals` (default 2) snapshot intervals so
   * there is always a newer snapshot to move towards.
   */
  interpolationDelayTicks() {
    const rate = this.clock.tickRate;
    const snapRate = this.welcome && this.welcome.snap_rate > 0 ? this.welcome.snap_rate : rate;
    const ms = this.opts.interpolationDelayMs ?? 100;
    const intervals = this.opts.minSnapshotIntervals ?? 2;
    return Math.max((ms * rate) / 1000, (intervals * rate) / snapRate);
  }

  /** Render time in ticks: stream time − the interpolation delay. @param {number} [now] */
  renderTick(now = this.now()) {
    return this.streamTick(now) - this.interpolationDelayTicks();
  }

  /**
   * The entity rows to draw at `now`: interpolated at `renderTick(now)`.
   * @param {number} [now]
   * @returns {Interpolated | null}
   */
  view(now = this.now()) {
    return this.snapshots.at(this.renderTick(now));
  }

  // ---- connection attempts ----

  /** @param {boolean} freshToken */
  async attempt(freshToken) {
    this.clearRetry();
    this.abandonSocket();
    const gen = ++this.generation;
    this.attempts += 1;
    this.setState({ ...this.state, state: this.sessionSeen ? "resuming" : "connecting", retryInMs: null });
    let token;
    let msgpack;
    try {
      token = await this.token(freshToken);
      msgpack = this.opts.msgpack ?? (await vendoredMsgpack());
    } catch (e) {
      if (gen !== this.generation || this.stopped) return;
      const retry = e instanceof TokenError ? e.retry : true;
      const info = localClose(e instanceof Error ? e.message : String(e), 0);
      if (retry) this.schedule(info, true);
      else this.setState({ state: "closed", reason: info, attempt: this.failures, retryInMs: null });
      return;
    }
    if (gen !== this.generation || this.stopped) return;
    this.open(gen, token, msgpack);
  }

  /**
   * @param {number} gen
   * @param {string | null} token
   * @param {MsgpackCodec} msgpack
   */
  open(gen, token, msgpack) {
    const url = new URL(this.url);
    if (this.opts.room) url.searchParams.set("room", this.opts.room);
    const protocols = [...this.protocols];
    /** @type {object | undefined} */
    let options;
    if (token !== null && this.tokenIn === "subprotocol") protocols.push("bearer." + token);
    if (token !== null && this.tokenIn === "query") url.searchParams.set("access_token", token);
    if (token !== null && this.tokenIn === "header") options = { headers: { Authorization: "Bearer " + token } };
    let ws;
    try {
      ws = options ? new this.WebSocket(url.href, protocols, options) : new this.WebSocket(url.href, protocols);
    } catch (e) {
      // SyntaxError: a bad URL, or a token with characters a subprotocol cannot carry.
      const info = localClose(`Cannot open the connection: ${e instanceof Error ? e.message : e}`, 0);
      this.setState({ state: "closed", reason: info, attempt: this.failures, retryInMs: null });
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.opened = false;
    this.lastError = null;
    this.transportError = null;
    ws.onopen = () => {
      if (gen !== this.generation) return;
      this.opened = true;
      try {
        this.codec = codecFor(ws.protocol, msgpack);
      } catch {
        ws.close(1000, "unsupported subprotocol"); // the server echoed one we did not offer
      }
    };
    ws.onmessage = (ev) => gen === this.generation && this.received(ev.data);
    ws.onclose = (ev) => gen === this.generation && this.closed(ev.code, ev.reason);
    // An error is always followed by a close; `ws` says what happened, browsers do not.
    ws.onerror = (ev) => {
      if (gen === this.generation) this.transportError = errorText(ev);
    };
  }

  /** @param {boolean} fresh @returns {Promise<string | null>} */
  async token(fresh) {
    const t = this.opts.token;
    if (t === undefined || t === null) return null;
    const value = typeof t === "function" ? await t({ fresh }) : t;
    if (typeof value !== "string" || value === "") throw new TokenError("The token source gave no token.", false);
    return value;
  }

  // ---- incoming ----

  /** @param {unknown} data */
  received(data) {
    let msg;
    try {
      msg = this.codec?.decode(data);
    } catch {
      msg = undefined;
    }
    if (!isMessage(msg)) {
      this.decodeErrors += 1;
      return;
    }
    this.emit("message", msg);
    const m = /** @type {any} */ (msg);
    switch (m.t) {
      case "welcome":
        return this.welcomed(m);
      case "snap":
        return this.snapshot(m);
      case "pong":
        return this.pong(m);
      case "event":
        this.emit("event", m);
        if (GAME_EVENTS.has(m.e)) this.emit(m.e, m);
        return;
      case "chat":
        return this.emit("chat", m);
      case "error":
        this.lastError = { code: String(m.code), message: String(m.message) };
        return this.emit("error", this.lastError);
      case "moved":
        // Cluster: the room moved; the close that follows (1012) reconnects there.
        if (typeof m.url === "string") this.url = m.url;
        return this.emit("moved", { url: m.url });
      default:
        return;
    }
  }

  /** @param {Welcome} w */
  welcomed(w) {
    const now = this.now();
    this.welcome = w;
    this.failures = 0;
    this.sessionSeen = true;
    this.inputs.reset();
    this.snapshots.clear();
    this.clock.reset(w.tick_rate, w.tick, now);
    this.pings.clear();
    this.ping();
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.ping(), this.opts.pingIntervalMs ?? 1000);
    this.setState({ state: "open", reason: null, attempt: 0, retryInMs: null });
    this.emit("welcome", w);
  }

  /** @param {{tick: number, ack: number, ents: unknown}} m */
  snapshot(m) {
    if (!Number.isFinite(m.tick) || !Array.isArray(m.ents)) {
      this.decodeErrors += 1;
      return;
    }
    const now = this.now();
    const ack = Number.isFinite(m.ack) ? m.ack : 0;
    this.clock.snapshot(m.tick, now);
    this.inputs.acknowledge(ack, now);
    const rows = m.ents.filter((r) => Array.isArray(r) && r.length >= 4);
    this.snapshots.push(m.tick, rows);
    /** @type {Snapshot} */
    const snap = { tick: m.tick, ack, ents: rows, receivedAt: now };
    const pending = this.inputs.pending();
    this.predictor?.reconcile(snap, pending);
    this.emit("snapshot", snap, pending);
  }

  /** @param {{id: number, tick: number}} m */
  pong(m) {
    const sent = this.pings.get(m.id);
    if (sent === undefined) return;
    this.pings.delete(m.id);
    const rtt = this.clock.pong(sent, this.now(), m.tick);
    this.emit("pong", { id: m.id, tick: m.tick, rtt });
  }

  ping() {
    this.pingId = (this.pingId + 1) >>> 0;
    this.pings.set(this.pingId, this.now());
    const oldest = this.pings.keys().next().value;
    if (this.pings.size > MAX_PINGS_IN_FLIGHT && oldest !== undefined) this.pings.delete(oldest);
    this.send({ t: "ping", id: this.pingId });
  }

  /** @param {object} msg */
  send(msg) {
    if (this.ws && this.codec && this.ws.readyState === OPEN) this.ws.send(this.codec.encode(msg));
  }

  // ---- closes and retries ----

  /**
   * @param {number} code
   * @param {string} reason
   */
  closed(code, reason) {
    this.stopPings();
    const errorCode = this.lastError?.code ?? null;
    const refreshable = typeof this.opts.token === "function";
    const meaning = describeClose(code, errorCode, { opened: this.opened, canRefreshToken: refreshable });
    /** @type {CloseInfo} */
    const info = {
      code,
      reason,
      errorCode,
      message: this.lastError?.message ?? this.transportError,
      text: this.stopped ? "Closed by this client." : meaning.text,
      clientBug: meaning.clientBug,
      opened: this.opened,
      reconnect: meaning.reconnect && !this.stopped && this.backoff !== null,
    };
    this.ws = null;
    this.codec = null;
    this.lastClose = info;
    this.emit("close", info);
    if (this.stopped) return; // close() already said so
    if (info.reconnect) this.schedule(info, meaning.freshToken, code === 1001 ? 1000 : undefined);
    else this.setState({ state: "closed", reason: info, attempt: this.failures, retryInMs: null });
  }

  /**
   * @param {CloseInfo} info why
   * @param {boolean} freshToken
   * @param {number} [firstDelayMs]
   */
  schedule(info, freshToken, firstDelayMs) {
    const backoff = this.backoff;
    this.failures += 1;
    if (backoff === null || this.failures > backoff.maxAttempts) {
      const gaveUp = { ...info, reconnect: false, gaveUp: true };
      this.setState({ state: "closed", reason: gaveUp, attempt: this.failures - 1, retryInMs: null });
      return;
    }
    const delay = backoffDelay(this.failures, backoff, this.random(), firstDelayMs);
    const state = this.sessionSeen ? "resuming" : "connecting";
    this.setState({ state, reason: info, attempt: this.failures, retryInMs: delay });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.attempt(freshToken);
    }, delay);
  }

  /** @param {ConnectionState} s */
  setState(s) {
    this.state = s;
    this.emit("state", s);
  }

  clearRetry() {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  stopPings() {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  abandonSocket() {
    const ws = this.ws;
    this.ws = null;
    this.codec = null;
    this.stopPings();
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    // Not null: `ws` reports aborting a handshake as an error, unhandled without a listener.
    ws.onerror = () => {};
    if (ws.readyState === CONNECTING || ws.readyState === OPEN) ws.close(1000, "reconnecting");
  }
}

/**
 * "header" for the `ws` package (its WebSocket is a Node EventEmitter and takes
 * `{headers}`), else "subprotocol" (browsers and Node's own WebSocket cannot set headers).
 * @param {Function} WS
 * @returns {"header" | "subprotocol"}
 */
function autoCarriage(WS) {
  return typeof WS.prototype?.on === "function" && typeof WS.prototype?.terminate === "function"
    ? "header"
    : "subprotocol";
}

/**
 * A close this client decided (it left, or no connection could be made).
 * @param {string} text
 * @param {number} code
 * @returns {CloseInfo}
 */
function localClose(text, code) {
  return { code, reason: "", errorCode: null, message: null, text, clientBug: false, opened: false, reconnect: false };
}

/** @param {unknown} m */
function isMessage(m) {
  return m !== null && typeof m === "object" && typeof (/** @type {any} */ (m).t) === "string";
}

/** @param {unknown} ev @returns {string | null} */
function errorText(ev) {
  const e = /** @type {{message?: unknown, error?: {message?: unknown}}} */ (ev);
  const text = e?.message ?? e?.error?.message;
  return typeof text === "string" && text ? text : null;
}
