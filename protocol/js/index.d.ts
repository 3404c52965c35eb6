// Types of @rallypoint/client. Hand-written; `npm run typecheck` checks that the
// implementation in src/ matches them (test/api-types.js).

// ---------------------------------------------------------------- messages (PROTOCOL.md)

/** `welcome`: always the first message of a session. */
export interface Welcome {
  t: "welcome";
  /** Your entity id (0 for spectators, who have none). */
  you: number;
  room: string;
  /** The room's tick when the session started. */
  tick: number;
  tick_rate: number;
  map: string;
  /** The subprotocol in use. */
  protocol: string;
  snap_rate: number;
  role: "player" | "spectator";
  /** True when this connection re-attached to an existing entity (resume, replacement). */
  resumed: boolean;
  /** The game the room plays (`arena`); its own keys follow. */
  game: string;
  /** The arena's: a player's radius in world units. */
  player_radius?: number;
  /** The arena's: full health. */
  max_hp?: number;
  /** The arena's: a player's top speed, units/s (for prediction). */
  max_speed?: number;
  /** The arena's: acceleration towards the input direction, units/s² (for prediction). */
  acceleration?: number;
  /** v2 only: what the fields of each entity kind are. */
  schema?: WireSchema;
  [extra: string]: unknown;
}

/** A declared field of `welcome.schema` (v2). */
export type WireField = { name: string; v1?: boolean } & (
  | { type: "real"; scale: number }
  | { type: "angle"; bits: number }
  | { type: "int" | "uint" | "flags" | "ref" }
);

/** `welcome.schema` (v2): per kind, the fields after `id, kind, x, y`. */
export interface WireSchema {
  /** Steps per unit of `x` and `y`. */
  position_scale: number;
  kinds: {
    kind: number;
    name: string;
    fields: WireField[];
    /** Indices into `fields` of the x and y velocity: this kind is dead-reckoned. */
    velocity?: [number, number];
  }[];
}

/** An entity row: `[id, kind, x, y, ...]`; the columns after `y` depend on `kind`. */
export type Row = number[];

/** A snapshot as the client keeps it. */
export interface Snapshot {
  tick: number;
  /** The last input `seq` of yours the simulation applied (0 before any). */
  ack: number;
  ents: Row[];
  /** Local time it arrived (ms, the client's `now`). */
  receivedAt: number;
  /** v2: what applying the frame did (null on v1). */
  frame: V2Applied | null;
}

export interface PlayerEvent { t: "event"; e: "player"; id: number; name: string }
export interface LeaveEvent { t: "event"; e: "leave"; id: number }
export interface KillEvent { t: "event"; e: "kill"; killer: number; victim: number }
export interface RespawnEvent { t: "event"; e: "respawn"; id: number; x: number; y: number }
export interface PickupEvent { t: "event"; e: "pickup"; id: number; by: number }
export interface MapEvent {
  t: "event"; e: "map"; name: string; w: number; h: number;
  /** `[x, y, w, h]`: top-left corner and size. */
  walls: [number, number, number, number][];
}
export interface RoundStartEvent {
  t: "event"; e: "round_start"; round: number; map: string; end_tick: number; score_limit: number;
}
/** The arena's tuning changed (hot reload): the same keys as its `welcome`. */
export interface TuningEvent {
  t: "event"; e: "tuning"; player_radius: number; max_hp: number; max_speed: number; acceleration: number;
}
export interface RoundEndEvent {
  t: "event"; e: "round_end"; round: number;
  /** Absent on a draw. */
  winner?: number;
  /** `[id, score]`, best first. */
  scores: [number, number][];
  next_tick: number;
}
/** Every game event of PROTOCOL.md. */
export type GameEvent =
  | PlayerEvent | LeaveEvent | KillEvent | RespawnEvent | PickupEvent
  | MapEvent | RoundStartEvent | RoundEndEvent | TuningEvent;

export interface ChatMessage { t: "chat"; from: number; name: string; text: string }
/** The server's `error`, sent right before a close that has a reason. */
export interface ServerError { code: string; message: string }
export interface Pong { id: number; tick: number; /** ms */ rtt: number }

/** The arena's input fields. */
export interface ArenaInput {
  /** Desired move direction; the server clamps (mx, my) to length 1. */
  mx: number;
  my: number;
  /** Radians, 0 = +x, growing towards +y. */
  aim: number;
  fire: boolean;
  /** The tick being drawn, for lag compensation: `sendInput` fills it in for the arena. */
  view?: number;
  [extra: string]: unknown;
}

// ---------------------------------------------------------------- close codes

/** A row of the close-code table (`CLOSE_CODES`). */
export interface CloseCode {
  code: number;
  /** The server's `error.code` before this close; null when there is none. */
  error: string | null;
  /** "fresh_token": reconnect only when a new token can be had without the player. */
  retry: "yes" | "no" | "fresh_token";
  /** The close means this client sent something it must not: retrying would repeat it. */
  clientBug: boolean;
  /** What happened, for a person. */
  text: string;
}

/** What `describeClose` says about one close. */
export interface CloseMeaning {
  code: number;
  errorCode: string | null;
  text: string;
  clientBug: boolean;
  /** Whether to reconnect by itself. */
  reconnect: boolean;
  /** Whether to ask the token source for a new token before reconnecting. */
  freshToken: boolean;
  /** False for a code or reason the table does not know (never retried). */
  known: boolean;
}

/** A close, as the client saw it. */
export interface CloseInfo {
  /** The WebSocket close code; 0 when no connection was made (token, URL). */
  code: number;
  /** The close frame's reason text. */
  reason: string;
  /** `error.code` of the server's message before the close. */
  errorCode: string | null;
  /** `error.message` of that message, else what the transport said (`ws` only). */
  message: string | null;
  /** What happened, for a person (`CLOSE_CODES`). */
  text: string;
  clientBug: boolean;
  /** Whether the socket had opened (false: the handshake failed). */
  opened: boolean;
  /** Whether the client reconnects by itself. */
  reconnect: boolean;
  /** Set when reconnecting stopped after `maxAttempts` failures. */
  gaveUp?: boolean;
}

export declare const CLOSE_CODES: readonly CloseCode[];
export declare function describeClose(
  code: number,
  errorCode: string | null,
  ctx: { opened: boolean; canRefreshToken: boolean },
): CloseMeaning;

// ---------------------------------------------------------------- backoff

export interface BackoffOptions {
  /** First retry after about this long (ms). Default 250. */
  firstDelayMs?: number;
  /** Doubling stops here (ms). Default 8000. */
  maxDelayMs?: number;
  /** ± this fraction of random spread. Default 0.2. */
  jitter?: number;
  /** Consecutive failed attempts before giving up (`closed`, `gaveUp`). Default 12. */
  maxAttempts?: number;
}
export declare const DEFAULT_BACKOFF: Readonly<Required<BackoffOptions>>;
export declare function backoffDelay(
  attempt: number,
  opts: Required<BackoffOptions>,
  random: number,
  firstDelayMs?: number,
): number;

// ---------------------------------------------------------------- inputs

/** An input sent, kept until acknowledged. */
export interface InputRecord<F extends Record<string, unknown> = ArenaInput> {
  seq: number;
  fields: F;
  /** Local time it was sent (ms). */
  sentAt: number;
}

export declare class InputHistory<F extends Record<string, unknown> = ArenaInput> {
  constructor(capacity?: number);
  readonly capacity: number;
  /** The last `seq` handed out on this connection. */
  seq: number;
  /** The last `seq` the server acknowledged on this connection. */
  ack: number;
  /** Inputs dropped unacknowledged because more than `capacity` were in flight. */
  overflowed: number;
  /** Time from sending an input to the snapshot that acknowledged it (ms), last one. */
  lastAckLatencyMs: number | null;
  reset(): void;
  push(fields: F, sentAt: number): InputRecord<F>;
  /** Forgets every input up to `ack`; returns how many it settled. */
  acknowledge(ack: number, now: number): number;
  /** Sent but not acknowledged, oldest first. */
  pending(): readonly InputRecord<F>[];
}

// ---------------------------------------------------------------- clock

export declare class ServerClock {
  constructor(tickRate?: number);
  tickRate: number;
  /** Round-trip time of the last pong (ms). */
  rtt: number | null;
  /** Smallest round trip among the recent pongs (ms). */
  readonly minRtt: number | null;
  reset(tickRate: number, tick: number, now: number): void;
  /** Records a pong; returns its round-trip time (ms). */
  pong(sentAt: number, receivedAt: number, tick: number): number;
  /** The server's tick at `now` (fractional), from the least-delayed pong. */
  serverTick(now: number): number;
  /** Records a snapshot's arrival. */
  snapshot(tick: number, now: number): void;
  /** The tick of the snapshot arriving at `now` (fractional). */
  streamTick(now: number): number;
}

// ---------------------------------------------------------------- interpolation

/** How a column after `y` is interpolated. */
export type ColumnMode = "linear" | "angle" | "discrete";
/** Per entity kind: its name and the columns after `y`, in order. */
export type RowSchema = Readonly<Record<number, { name: string; columns: readonly (readonly [string, ColumnMode])[] }>>;

/** Rows at a render time. */
export interface Interpolated {
  /** The render tick asked for. */
  tick: number;
  /** The ticks of the two snapshots used (equal outside the buffer). */
  from: number;
  to: number;
  /** 0 = `from`, 1 = `to`. */
  alpha: number;
  rows: Row[];
}

export declare const ARENA_ROWS: RowSchema;
export declare function lerp(a: number, b: number, t: number): number;
export declare function lerpAngle(a: number, b: number, t: number): number;
export declare function rowObject(
  row: Row,
  schema?: RowSchema,
): (Record<string, unknown> & { id: number; kind: number; type: string; x: number; y: number }) | null;

export declare class SnapshotBuffer {
  constructor(opts?: { schema?: RowSchema; capacity?: number; teleportDistance?: number });
  schema: RowSchema;
  capacity: number;
  teleportDistance: number;
  clear(): void;
  /** False when not newer than the newest (ignored). */
  push(tick: number, rows: Row[]): boolean;
  latest(): { tick: number; rows: Row[] } | null;
  at(tick: number): Interpolated | null;
}

// ---------------------------------------------------------------- codecs

export interface MsgpackCodec {
  encode(value: unknown): Uint8Array;
  decode(data: Uint8Array): unknown;
}
export declare const V2_MSGPACK: "rallypoint.v2.msgpack";
export declare const V1_MSGPACK: "rallypoint.v1.msgpack";
export declare const V1_JSON: "rallypoint.v1.json";
export declare const DEFAULT_PROTOCOLS: readonly string[];
export declare function vendoredMsgpack(): Promise<MsgpackCodec>;
export declare function codecFor(
  protocol: string,
  msgpack: MsgpackCodec,
): { binary: boolean; encode(m: object): Uint8Array | string; decode(d: unknown): unknown };

// ---------------------------------------------------------------- v2

/** What applying a v2 frame did. */
export interface V2Applied {
  ok: true;
  /** The tick the client now holds. */
  tick: number;
  /** The frame's baseline tick (null for a keyframe). */
  baseline: number | null;
  /** The last input `seq` of this player the simulation applied. */
  ack: number;
  kind: "keyframe" | "delta";
  /** The frame carried a state hash and the state matched it. */
  hashChecked: boolean;
  removed: number;
  /** Full rows applied (new entities, or replaced ones). */
  full: number;
  /** Deltas applied. */
  deltas: number;
}

/**
 * Why a frame could not be applied: `kind` and the fields of the Rust decoder's
 * `V2Error` variant of the same name.
 */
export type V2ErrorInfo =
  | { kind: "malformed"; reason: string }
  | { kind: "truncated" | "varint_too_long" | "awaiting_keyframe" | "removal_in_keyframe" }
  | { kind: "trailing_bytes"; bytes: number }
  | { kind: "count_too_large"; what: string; count: number; bytes: number }
  | { kind: "id_out_of_range" | "unordered" | "unknown_entity"; id: number }
  | { kind: "baseline_mismatch"; baseline: number; held: number }
  | { kind: "bad_mask"; id: number; entity_kind: number; mask: number }
  | { kind: "bad_age"; id: number; age: number; tick: number }
  | { kind: "out_of_range"; id: number; field: string }
  | { kind: "hash_mismatch"; expected: number; computed: number };

/** A frame that was not applied; the state was dropped. */
export interface V2Failure {
  ok: false;
  error: V2ErrorInfo;
  /** Send `{"t":"resync"}` (false only while already awaiting the keyframe). */
  resync: boolean;
}

/** The state a v2 client holds: one record per entity of its view, at one tick. */
export declare class V2State {
  /** Throws `V2SchemaError` when the schema is unusable. */
  constructor(schema: WireSchema, tickRate: number);
  /** The tick held; null before the first keyframe and after a failure. */
  tick: number | null;
  /** Records by id: quantized integers (`x`, `y` in steps, `ref` tick, fields `f`). */
  recs: Map<number, { kind: number; ref: number; x: number; y: number; f: number[] }>;
  readonly size: number;
  has(id: number): boolean;
  /** Ids held, ascending. */
  ids(): number[];
  reset(): void;
  /** Applies a decoded `{"t":"s"}` message; never throws for anything the server sends. */
  apply(msg: unknown): V2Applied | V2Failure;
  /** FNV-1a of the records, as the server's `h`. */
  hash(): number;
  /** Rows at `tick` (any, fractional too), positions dead-reckoned, ascending by id. */
  rowsAt(tick: number): Row[];
}
export declare class V2SchemaError extends Error {
  constructor(message: string);
}
export declare function describeV2Error(e: V2ErrorInfo): string;
/** The interpolation schema of a wire schema: reals linear, angles angular, the rest discrete. */
export declare function rowSchemaOf(schema: WireSchema): RowSchema;

// ---------------------------------------------------------------- arena

/** The arena's movement tuning (from `welcome` and `tuning` events). */
export interface ArenaTuning {
  player_radius: number;
  max_speed: number;
  acceleration: number;
}
/** A map's geometry as the `map` event gives it. */
export interface ArenaMap {
  w: number;
  h: number;
  walls: number[][];
}
/** A player's position and velocity. */
export interface Body {
  x: number;
  y: number;
  vx: number;
  vy: number;
}
/** The move of an input as the server reads it (float32, clamped to length 1). */
export declare function clampMove(mx: number, my: number): [number, number];
/** A map's space for circles of one radius. */
export declare class ArenaSpace {
  constructor(map: ArenaMap, radius: number);
  width: number;
  height: number;
  radius: number;
  /** Walls as float64 boxes. */
  walls: { minX: number; minY: number; maxX: number; maxY: number }[];
  /** Lowest and highest centre coordinate that keeps the circle inside `extent`. */
  bounds(extent: number): number[];
  /** How much of `delta` the circle may travel along x (or y) before a wall. */
  limit(alongX: boolean, x: number, y: number, delta: number): number;
  settle(x: number, y: number): [number, number];
  slide(x: number, y: number, dx: number, dy: number): { x: number; y: number; blockedX: boolean; blockedY: boolean };
}
/** One step of the arena's movement rules. */
export declare function stepBody(
  body: Body,
  move: [number, number],
  tuning: ArenaTuning,
  space: ArenaSpace,
  dt: number,
): Body;
/** Prediction and reconciliation of the own player (a `Predictor` for the arena). */
export declare class ArenaPredictor implements Predictor {
  constructor(opts?: { smoothingMs?: number; snapDistance?: number });
  smoothingMs: number;
  snapDistance: number;
  /** Whether it has the welcome, the tuning and the map it needs. */
  readonly ready: boolean;
  /** The predicted state after the last input sent (null when not predicting). */
  body: Body | null;
  /** The last correction, world units. */
  lastCorrection: number;
  /** Corrections too large to smooth. */
  snaps: number;
  welcome(w: Welcome): void;
  event(e: { e?: unknown; [key: string]: unknown }): void;
  input(record: InputRecord<Record<string, unknown>>): void;
  reconcile(snapshot: Snapshot, pending: readonly InputRecord<Record<string, unknown>>[]): void;
  /** Where to draw the own player at `now` (null when not predicting). */
  position(now: number): { x: number; y: number } | null;
  reset(): void;
}

// ---------------------------------------------------------------- client

/** The part of a WebSocket the client uses: browsers', Node's, and the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  readonly bufferedAmount: number;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
}

/** Where the token travels. */
export type TokenCarriage = "auto" | "subprotocol" | "header" | "query";

/**
 * Where client-side prediction plugs in: it sees every welcome, game event, input sent
 * and snapshot.
 */
export interface Predictor<F extends Record<string, unknown> = Record<string, unknown>> {
  /** A session started. */
  welcome?(w: Welcome): void;
  /** A game event arrived (before its listeners). */
  event?(e: { e?: unknown; [key: string]: unknown }): void;
  /** An input was just sent. */
  input(record: InputRecord<F>): void;
  /** A snapshot arrived; `pending` are the inputs it has not applied yet, oldest first. */
  reconcile(snapshot: Snapshot, pending: readonly InputRecord<F>[]): void;
}

export interface ClientOptions {
  /** The `/play` URL, `ws://` or `wss://`. */
  url: string;
  /** Join (or create) this room (`?room=`; with `match`, `/match?room=`). */
  room?: string;
  /**
   * Cluster: ask `GET /match` where to play before every connection attempt, so a
   * reconnect after a drop, a dead node or a 1012 without `moved` finds the room wherever
   * it now lives. `true`: `/match` on `url`'s host; or the URLs of one or more nodes
   * (`http(s)://host[:port]`, `/match` implied), asked in turn when one does not answer.
   * In browsers the endpoint must be same-origin (the token travels in `Authorization`).
   * An answer naming the host asked over `https:` is played over `wss:`.
   */
  match?: boolean | string | readonly string[];
  /** How long one `/match` request may take (ms). Default 5000. */
  matchTimeoutMs?: number;
  /** A `fetch` for `/match`. Default `globalThis.fetch`. */
  fetch?: (url: string, init: { headers: Record<string, string>; cache: "no-store"; signal: AbortSignal }) => Promise<MatchResponse>;
  /**
   * The JWT, or a function called before every connection attempt (`fresh` is true when
   * the last token may have been the problem: after 4001 or a refused handshake). Throw a
   * `TokenError` with `retry: false` to stop. Without a token the server answers 401.
   */
  token?: string | null | ((ctx: { fresh: boolean }) => string | Promise<string>);
  /**
   * "subprotocol": a `bearer.<jwt>` entry (browsers); "header": `Authorization: Bearer`
   * (needs the `ws` package); "query": `access_token=` (last resort: proxies log query
   * strings). "auto" (default): "header" with `ws`, else "subprotocol".
   */
  tokenIn?: TokenCarriage;
  /** Subprotocols in preference order. Default `DEFAULT_PROTOCOLS`. */
  protocols?: readonly string[];
  /** A WebSocket class: default `globalThis.WebSocket`; in Node 20 pass `ws`'s. */
  WebSocket?: new (url: string, protocols?: string[], options?: any) => WebSocketLike;
  /** Backoff for reconnecting, or false to never reconnect by itself. */
  reconnect?: BackoffOptions | false;
  /** Default 1000. */
  pingIntervalMs?: number;
  /** Render delay behind the snapshot stream (ms). Default 100. */
  interpolationDelayMs?: number;
  /** The render delay is at least this many snapshot intervals. Default 2. */
  minSnapshotIntervals?: number;
  /** The game's rows. Default: the welcome's schema on v2, else `ARENA_ROWS`. */
  schema?: RowSchema;
  /** v2: how far past the newest snapshot `view()` dead-reckons (ms). Default 250. */
  maxExtrapolationMs?: number;
  /** v2: a `resync` unanswered this long (ms) is sent again. Default 1000. */
  resyncRetryMs?: number;
  /** A move longer than this between two snapshots is not glided. Default 3 units. */
  teleportDistance?: number;
  /** Unacknowledged inputs kept. Default 128. */
  inputCapacity?: number;
  /** Inputs are skipped while more than this waits in the socket. Default 8192. */
  maxBufferedBytes?: number;
  /** Your own MessagePack codec; default the vendored @msgpack/msgpack. */
  msgpack?: MsgpackCodec;
  /** Local clock in ms. Default `performance.now`. */
  now?: () => number;
  /** Random source in [0, 1) for the backoff jitter. Default `Math.random`. */
  random?: () => number;
  predictor?: Predictor;
}

/** What `fetch` must give for `/match`: the status, its `Retry-After`, the JSON body. */
export interface MatchResponse {
  ok: boolean;
  status: number;
  headers?: { get(name: string): string | null };
  json(): Promise<unknown>;
}

/** A `/match` answer (PROTOCOL.md, "GET /match"). */
export interface MatchAnswer {
  /** The `/play` URL to connect to, naming the room. */
  url: string;
  room: string;
  /** The node that owns (or will open) the room. */
  node: string;
  /** The account still has a seat there: the connection resumes it. */
  resume: boolean;
}

/** The visible connection state. */
export interface ConnectionState {
  /**
   * "connecting": no session yet; "open": welcomed; "resuming": the connection dropped,
   * a new one is on its way and will re-attach within the server's grace period;
   * "closed": it will not reconnect by itself.
   */
  state: "connecting" | "open" | "resuming" | "closed";
  /** The close (or failure) that led here; null when none did. */
  reason: CloseInfo | null;
  /** Consecutive failed attempts so far. */
  attempt: number;
  /** While waiting to retry: how long (ms). */
  retryInMs: number | null;
}

/** What the client has received, counted since it was made. */
export interface ClientStats {
  /** Snapshots taken (v1 `snap`s and v2 frames applied). */
  snapshots: number;
  /** v2 keyframes and deltas applied. */
  keyframes: number;
  deltas: number;
  /** v2 frames that could not be applied (each sent a `resync`). */
  desyncs: number;
  /** `resync` requests sent. */
  resyncs: number;
  /** v2 deltas ignored while awaiting the keyframe. */
  ignored: number;
  /** v2 frames whose state hash was checked (and matched). */
  hashChecks: number;
  /** The last desync: the error's kind, a sentence, the frame's tick. */
  lastDesync: { kind: string; message: string; tick: number | null } | null;
  /** Bytes received: v2 keyframes, v2 deltas, everything else. */
  bytes: { keyframe: number; delta: number; other: number };
}

/** Listener arguments per event name. */
export interface ClientEvents {
  [key: string]: unknown[];
  state: [ConnectionState];
  welcome: [Welcome];
  /** `pending`: inputs the snapshot has not applied yet, oldest first. */
  snapshot: [Snapshot, readonly InputRecord<Record<string, unknown>>[]];
  event: [GameEvent];
  player: [PlayerEvent];
  leave: [LeaveEvent];
  kill: [KillEvent];
  respawn: [RespawnEvent];
  pickup: [PickupEvent];
  map: [MapEvent];
  round_start: [RoundStartEvent];
  round_end: [RoundEndEvent];
  tuning: [TuningEvent];
  /** v2: a frame could not be applied; the state was dropped and a keyframe asked for. */
  desync: [{ kind: string; message: string; tick: number | null }];
  chat: [ChatMessage];
  pong: [Pong];
  error: [ServerError];
  /** Cluster: the room moved; the client reconnects there. */
  moved: [{ url: string }];
  /** `/match` said where to play (before each attempt, with the `match` option). */
  matched: [MatchAnswer];
  close: [CloseInfo];
  /** Every decoded message, before its own event. */
  message: [{ t: string; [key: string]: unknown }];
}

export declare class Emitter<Events extends Record<string, unknown[]>> {
  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(type: K, listener: (...args: Events[K]) => void): () => void;
  off<K extends keyof Events>(type: K, listener: (...args: Events[K]) => void): void;
  emit<K extends keyof Events>(type: K, ...args: Events[K]): void;
}

/** A token source failed; `retry` says whether trying again later may help. */
export declare class TokenError extends Error {
  constructor(message: string, retry: boolean);
  retry: boolean;
}

export declare class Client extends Emitter<ClientEvents> {
  constructor(opts: ClientOptions);
  /** The `/play` URL (a `moved` message changes it when there is no `match`). */
  url: string;
  /** The last `/match` answer, or null. */
  readonly matched: MatchAnswer | null;
  readonly state: ConnectionState;
  /** The current session's `welcome`. */
  readonly welcome: Welcome | null;
  readonly lastClose: CloseInfo | null;
  /** The subprotocol the server picked, while open. */
  readonly protocol: string | null;
  /** Welcomed and open. */
  readonly connected: boolean;
  /** Round-trip time of the last pong (ms). */
  readonly rtt: number | null;
  readonly clock: ServerClock;
  readonly inputs: InputHistory<Record<string, unknown>>;
  readonly snapshots: SnapshotBuffer;
  /** Frames that could not be decoded, or were not messages. */
  readonly decodeErrors: number;
  /** Counters: snapshots, v2 keyframes, deltas, desyncs, bytes by kind. */
  readonly stats: ClientStats;
  /** This session's v2 state (null on v1). */
  readonly v2: V2State | null;
  /** Connection attempts made. */
  readonly attempts: number;
  /** Where the token travels (after resolving "auto"). */
  readonly tokenIn: Exclude<TokenCarriage, "auto">;
  connect(): void;
  /** Reconnects now, skipping any backoff; asks for a fresh token unless told otherwise. */
  reconnectNow(opts?: { freshToken?: boolean }): void;
  /** Leaves with a normal close; no reconnect. */
  close(code?: number, reason?: string): void;
  /**
   * Sends an input with the next `seq`; null when not sent. Throws on NaN or infinity.
   * For the arena (lag compensation) the message also carries `view`, `renderTick()`
   * rounded, once a snapshot has arrived; a `view` among `fields` wins.
   */
  sendInput<F extends Record<string, unknown> = ArenaInput>(fields: F): InputRecord<F> | null;
  /** Sends a chat line (at most 200 characters, else throws); false when not open. */
  sendChat(text: string): boolean;
  /** The server's tick now (fractional), from pongs. */
  serverTick(now?: number): number;
  /** The tick of the snapshot arriving now (fractional). */
  streamTick(now?: number): number;
  /** The render delay in ticks. */
  interpolationDelayTicks(): number;
  /** Stream time − the render delay, in ticks. */
  renderTick(now?: number): number;
  /** Entity rows interpolated at `renderTick(now)`. */
  view(now?: number): Interpolated | null;
}
