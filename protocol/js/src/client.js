// One game session over a WebSocket, kept alive: token, subprotocol, codec, pings,
// reconnect with backoff and resume, inputs with `seq`/`ack`, the server clock, v2
// snapshot decoding and the interpolation buffer.
//
// A `Client` owns its socket. It reports through typed events (`welcome`, `snapshot`,
// every game event by name, `chat`, `pong`, `error`, `close`, `state`) and exposes a
// visible state: `connecting` (no session yet), `open` (welcomed), `resuming` (the
// connection dropped and a new one is on its way: within the server's grace period it
// re-attaches to the same entity, `welcome.resumed`), `closed` (it will not reconnect by
// itself; `state.reason` says why). After a close it decides with closecodes.js whether
// to reconnect.
//
// On `rallypoint.v2.msgpack` the snapshots are v2 frames: a `V2State` (v2.js) built from
// `welcome.schema` applies them, and its rows go into the same interpolation buffer as
// v1's `ents` (named by the welcome's schema). A frame it cannot apply drops the state and
// sends `{"t":"resync"}` (again after `resyncRetryMs` while no keyframe comes); nothing is
// thrown at the application and no row of a broken state reaches it. `stats` counts
// keyframes, deltas, desyncs and bytes by kind.
//
// In a cluster (`match`), every attempt first asks `GET /match` where to play, so a drop,
// a dead node or a 1012 without `moved` finds the room wherever it now lives; a `moved`
// URL is used once, for the reconnect right after it, without asking.
//
// Prediction plugs in through `predictor`: it sees every welcome, game event and input,
// and on every snapshot the server's state with the inputs still unacknowledged, oldest
// first.
//
// Must not touch the DOM or game rules; time comes from the `now` option, so the pure
// parts (clock, inputs, interpolation) can be tested without waiting.

import { DEFAULT_BACKOFF, backoffDelay } from "./backoff.js";
import { ServerClock } from "./clock.js";
import { describeClose } from "./closecodes.js";
import { DEFAULT_PROTOCOLS, V2_MSGPACK, codecFor, vendoredMsgpack } from "./codec.js";
import { Emitter } from "./emitter.js";
import { InputHistory } from "./inputs.js";
import { ARENA_ROWS, SnapshotBuffer } from "./interpolation.js";
import { V2State, describeV2Error, rowSchemaOf } from "./v2.js";

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
 * @typedef {import("../index.js").ClientStats} ClientStats
 * @typedef {import("../index.js").V2Applied} V2Applied
 * @typedef {import("../index.js").Row} Row
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
const GAME_EVENTS = new Set(["player", "leave", "kill", "respawn", "pickup", "map", "round_start", "round_end", "tuning"]);
/** The server's limit on chat text (PROTOCOL.md, Limits). */
const MAX_CHAT_CHARS = 200;
/** Games whose inputs carry `view`, the tick the player was drawing (PROTOCOL.md, "Lag compensation"). */
const VIEW_GAMES = new Set(["arena"]);

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
    /** The `/match` endpoints to ask before each attempt (empty: connect to `url`). */
    this.matchUrls = matchEndpoints(opts.match, opts.url);
    /** The endpoint that answered last: asked first next time. */
    this.matchIndex = 0;
    /** The last `/match` answer, or null. */
    this.matched = /** @type {import("../index.js").MatchAnswer | null} */ (null);
    /** A `moved` URL for the next attempt only. */
    this.movedTo = /** @type {string | null} */ (null);
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
    /** @type {ClientStats} */
    this.stats = emptyStats();
    /** The v2 state of this session (null on v1, or when its schema is unusable). */
    this.v2 = /** @type {V2State | null} */ (null);
    /** Local time the last `resync` was sent; null when none is outstanding. */
    this.resyncAt = /** @type {number | null} */ (null);
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
    const now = this.now();
    const record = this.inputs.push(fields, now);
    this.send({ t: "input", seq: record.seq, ...this.viewField(now), ...fields });
    this.predictor?.input(record);
    return /** @type {import("../index.js").InputRecord<F>} */ (record);
  }

  /**
   * `{view}`: the tick being drawn (`renderTick`, rounded), for games whose shots are
   * judged against what the shooter saw (lag compensation); empty for other games and
   * before the first snapshot. A `view` in the caller's fields wins.
   * @param {number} now
   */
  viewField(now) {
    if (!VIEW_GAMES.has(String(this.welcome?.game)) || !this.snapshots.latest()) return {};
    return { view: Math.min(Math.max(Math.round(this.renderTick(now)), 0), 0xffffffff) };
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
   * The entity rows to draw at `now`: interpolated at `renderTick(now)`. On v2, a render
   * tick past the newest snapshot is dead-reckoned from it (moving kinds carry their
   * velocity), at most `maxExtrapolationMs` ahead.
   * @param {number} [now]
   * @returns {Interpolated | null}
   */
  view(now = this.now()) {
    const t = this.renderTick(now);
    const latest = this.snapshots.latest();
    const v2 = this.v2;
    if (v2 && latest && t > latest.tick && v2.tick === latest.tick) {
      const cap = ((this.opts.maxExtrapolationMs ?? 250) * this.clock.tickRate) / 1000;
      return { tick: t, from: latest.tick, to: latest.tick, alpha: 0, rows: v2.rowsAt(Math.min(t, latest.tick + cap)) };
    }
    return this.snapshots.at(t);
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
    const where = await this.destination(token);
    if (gen !== this.generation || this.stopped) return;
    if ("url" in where) this.open(gen, token, msgpack, where.url);
    else if (where.retry) this.schedule(where.info, where.freshToken, undefined, where.delayMs);
    else this.setState({ state: "closed", reason: where.info, attempt: this.failures, retryInMs: null });
  }

  /**
   * Where this attempt connects: the `moved` URL once, else what `/match` answers (each
   * endpoint in turn, the last one that answered first), else `url`.
   * @param {string | null} token
   * @returns {Promise<{url: string} | {info: CloseInfo, retry: boolean, freshToken: boolean, delayMs?: number}>}
   */
  async destination(token) {
    const moved = this.movedTo;
    this.movedTo = null;
    if (moved !== null) return { url: moved };
    const n = this.matchUrls.length;
    if (n === 0) return { url: this.url };
    const failures = [];
    for (let i = 0; i < n; i++) {
      const at = (this.matchIndex + i) % n;
      const answer = await this.askMatch(this.matchUrls[at], token);
      if ("url" in answer) {
        this.matchIndex = at;
        return answer;
      }
      if (!answer.next) return answer;
      failures.push(answer.info.text);
    }
    return { info: localClose(`No /match endpoint answered: ${failures.join("; ")}`, 0), retry: true, freshToken: false };
  }

  /**
   * One `GET /match`. `next`: this endpoint failed, another may answer.
   * @param {string} endpoint
   * @param {string | null} token
   * @returns {Promise<{url: string} | {info: CloseInfo, retry: boolean, freshToken: boolean, delayMs?: number, next?: boolean}>}
   */
  async askMatch(endpoint, token) {
    const ask = new URL(endpoint);
    if (this.opts.room) ask.searchParams.set("room", this.opts.room);
    const fetchFn = this.opts.fetch ?? globalThis.fetch;
    /** @type {Record<string, string>} */
    const headers = token === null ? {} : { Authorization: "Bearer " + token };
    let r;
    try {
      const signal = AbortSignal.timeout(this.opts.matchTimeoutMs ?? 5000);
      r = await fetchFn(ask.href, { headers, cache: "no-store", signal });
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      return { info: localClose(`${ask.host}: ${why}`, 0), retry: true, freshToken: false, next: true };
    }
    /** @type {any} */
    let body = null;
    try {
      body = await r.json();
    } catch {
      // Not JSON: the status alone says what happened.
    }
    if (r.ok && body && typeof body.url === "string") {
      const url = sameHostKeepsTls(body.url, ask);
      this.matched = { url, room: String(body.room), node: String(body.node), resume: body.resume === true };
      this.emit("matched", this.matched);
      return { url };
    }
    const code = typeof body?.error === "string" ? body.error : `http_${r.status}`;
    const text = `/match answered ${r.status} ${code}${typeof body?.message === "string" ? `: ${body.message}` : ""}`;
    const info = { ...localClose(text, 0), errorCode: code, message: body?.message ?? null };
    // A server without `/match` (an older one) places players at `/play` itself.
    if (r.status === 404) return { url: this.url };
    if (r.status === 401 || r.status === 403) {
      // The token: a source that can refresh is asked for a new one, a fixed one cannot help.
      return { info, retry: typeof this.opts.token === "function", freshToken: true };
    }
    if (r.status === 503 || r.status === 429) {
      const after = Number(r.headers?.get?.("Retry-After"));
      const delayMs = Number.isFinite(after) && after > 0 ? after * 1000 : undefined;
      return { info, retry: true, freshToken: false, delayMs };
    }
    if (r.status >= 500 || r.ok) return { info, retry: true, freshToken: false, next: true };
    return { info, retry: false, freshToken: false };
  }

  /**
   * @param {number} gen
   * @param {string | null} token
   * @param {MsgpackCodec} msgpack
   * @param {string} target the `/play` URL (from `url`, `/match` or `moved`)
   */
  open(gen, token, msgpack, target) {
    const url = new URL(target);
    // A URL from `/match` or `moved` names its room already.
    if (this.opts.room && !url.searchParams.has("room")) url.searchParams.set("room", this.opts.room);
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
    const size = frameSize(data);
    let msg;
    try {
      msg = this.codec?.decode(data);
    } catch {
      msg = undefined;
    }
    if (!isMessage(msg)) {
      this.decodeErrors += 1;
      this.stats.bytes.other += size;
      return;
    }
    this.emit("message", msg);
    const m = /** @type {any} */ (msg);
    if (m.t !== "s") this.stats.bytes.other += size;
    switch (m.t) {
      case "welcome":
        return this.welcomed(m);
      case "snap":
        return this.snapshot(m);
      case "s":
        return this.frame(m, size);
      case "pong":
        return this.pong(m);
      case "event":
        this.predictor?.event?.(m);
        this.emit("event", m);
        if (GAME_EVENTS.has(m.e)) this.emit(m.e, m);
        return;
      case "chat":
        return this.emit("chat", m);
      case "error":
        this.lastError = { code: String(m.code), message: String(m.message) };
        return this.emit("error", this.lastError);
      case "moved":
        // Cluster: the room moved; the close that follows (1012) reconnects there. Without
        // `/match` to ask, later reconnects go there too.
        if (typeof m.url === "string") {
          this.movedTo = m.url;
          if (this.matchUrls.length === 0) this.url = m.url;
        }
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
    this.startV2(w);
    this.clock.reset(w.tick_rate, w.tick, now);
    this.pings.clear();
    this.ping();
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.ping(), this.opts.pingIntervalMs ?? 1000);
    this.setState({ state: "open", reason: null, attempt: 0, retryInMs: null });
    this.predictor?.welcome?.(w);
    this.emit("welcome", w);
  }

  /**
   * A new session's v2 state (none on v1), and the interpolation buffer's schema: the
   * `schema` option, else the welcome's (v2), else the arena's rows.
   * @param {Welcome} w
   */
  startV2(w) {
    this.v2 = null;
    this.resyncAt = null;
    const wire = /** @type {import("../index.js").WireSchema | undefined} */ (w.schema);
    this.snapshots.schema = this.opts.schema ?? (wire ? rowSchemaOf(wire) : ARENA_ROWS);
    if (this.ws?.protocol !== V2_MSGPACK) return;
    try {
      this.v2 = new V2State(/** @type {import("../index.js").WireSchema} */ (wire), w.tick_rate);
    } catch (e) {
      // Nothing this client can do: every snapshot of the session will count as undecodable.
      this.stats.lastDesync = { kind: "schema", message: e instanceof Error ? e.message : String(e), tick: w.tick };
    }
  }

  /** @param {{tick: number, ack: number, ents: unknown}} m */
  snapshot(m) {
    if (!Number.isFinite(m.tick) || !Array.isArray(m.ents)) {
      this.decodeErrors += 1;
      return;
    }
    const ack = Number.isFinite(m.ack) ? m.ack : 0;
    this.accept(m.tick, ack, m.ents.filter((r) => Array.isArray(r) && r.length >= 4), null);
  }

  /**
   * A v2 snapshot frame. A failure drops the state and asks for a keyframe; deltas that
   * arrive meanwhile are ignored (and the request repeated after `resyncRetryMs`).
   * @param {unknown} m
   * @param {number} size bytes of the frame
   */
  frame(m, size) {
    const v2 = this.v2;
    if (v2 === null) {
      this.decodeErrors += 1;
      this.stats.bytes.other += size;
      return;
    }
    const r = v2.apply(m);
    if (!r.ok) {
      this.stats.bytes.other += size;
      if (!r.resync) {
        this.stats.ignored += 1;
        if (this.resyncAt === null || this.now() - this.resyncAt >= (this.opts.resyncRetryMs ?? 1000)) this.resync();
        return;
      }
      this.stats.desyncs += 1;
      const desync = { kind: r.error.kind, message: describeV2Error(r.error), tick: frameTick(m) };
      this.stats.lastDesync = desync;
      this.resync();
      this.emit("desync", desync);
      return;
    }
    this.resyncAt = null;
    const s = this.stats;
    if (r.kind === "keyframe") s.keyframes += 1;
    else s.deltas += 1;
    s.bytes[r.kind] += size;
    if (r.hashChecked) s.hashChecks += 1;
    this.accept(r.tick, r.ack, v2.rowsAt(r.tick), r);
  }

  /** Asks the server for a keyframe. */
  resync() {
    this.resyncAt = this.now();
    this.stats.resyncs += 1;
    this.send({ t: "resync" });
  }

  /**
   * A snapshot's state, from v1's `ents` or v2's reconstructed rows: the clock, acks, the
   * buffer, the predictor, the `snapshot` event.
   * @param {number} tick
   * @param {number} ack
   * @param {Row[]} rows
   * @param {V2Applied | null} frame
   */
  accept(tick, ack, rows, frame) {
    const now = this.now();
    this.stats.snapshots += 1;
    this.clock.snapshot(tick, now);
    this.inputs.acknowledge(ack, now);
    this.snapshots.push(tick, rows);
    /** @type {Snapshot} */
    const snap = { tick, ack, ents: rows, receivedAt: now, frame };
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
    // With `/match` a retry is safe even with a fixed token: `/match` checks the token
    // first and answers 401 in words, where a refused handshake is only a 1006.
    const refreshable = typeof this.opts.token === "function" || this.matchUrls.length > 0;
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
   * @param {number} [atLeastMs] the server's `Retry-After`
   */
  schedule(info, freshToken, firstDelayMs, atLeastMs = 0) {
    const backoff = this.backoff;
    this.failures += 1;
    if (backoff === null || this.failures > backoff.maxAttempts) {
      const gaveUp = { ...info, reconnect: false, gaveUp: true };
      this.setState({ state: "closed", reason: gaveUp, attempt: this.failures - 1, retryInMs: null });
      return;
    }
    const delay = Math.max(backoffDelay(this.failures, backoff, this.random(), firstDelayMs), atLeastMs);
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
 * The `/match` endpoints of the `match` option: `true` is `/match` on `url`'s host.
 * @param {ClientOptions["match"]} match
 * @param {string} url
 * @returns {string[]}
 */
function matchEndpoints(match, url) {
  if (match === undefined || match === false || match === null) return [];
  const list = match === true ? [url] : Array.isArray(match) ? match : [match];
  return list.map((u) => {
    const e = new URL(u);
    if (e.protocol === "ws:") e.protocol = "http:";
    if (e.protocol === "wss:") e.protocol = "https:";
    if (match === true || e.pathname === "/" || e.pathname === "/play") e.pathname = "/match";
    e.search = "";
    return e.href;
  });
}

/**
 * `url` from a `/match` answer, as `wss:` when it names the host `/match` was asked of
 * over `https:`: behind a TLS-terminating proxy a node knows only its plain address, but
 * that host is evidently reached over TLS (and a page served over https may not open
 * `ws:`). Another host keeps the scheme its node gave.
 * @param {string} url
 * @param {URL} ask
 */
function sameHostKeepsTls(url, ask) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return url; // not a URL: opening it fails and says so
  }
  if (u.protocol === "ws:" && ask.protocol === "https:" && u.host === ask.host) u.protocol = "wss:";
  return u.href;
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

/** Counters of a new client. @returns {ClientStats} */
function emptyStats() {
  return {
    snapshots: 0,
    keyframes: 0,
    deltas: 0,
    desyncs: 0,
    resyncs: 0,
    ignored: 0,
    hashChecks: 0,
    lastDesync: null,
    bytes: { keyframe: 0, delta: 0, other: 0 },
  };
}

/** A frame's size in bytes (a text frame's in UTF-16 code units, near enough). */
function frameSize(/** @type {unknown} */ d) {
  if (typeof d === "string") return d.length;
  if (d instanceof ArrayBuffer || ArrayBuffer.isView(d)) return d.byteLength;
  return 0;
}

/** The `n` of a frame that may be malformed, or null. */
function frameTick(/** @type {unknown} */ m) {
  const n = /** @type {{n?: unknown}} */ (m)?.n;
  return typeof n === "number" && Number.isInteger(n) ? n : null;
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
