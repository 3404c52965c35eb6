// The client side of `rallypoint.v2.msgpack` (protocol/PROTOCOL.md, "Protocol v2"): the
// state a client holds, snapshot frames applied to it, rows at any tick.
//
// `V2State` holds one record per entity of the client's view, at one tick: quantized
// integers only (positions in steps, every declared field as its integer), so its state
// hash is the server's bit for bit. `apply(msg)` takes a decoded `{"t":"s"}` message: a
// delta must name the held tick as its baseline; removals, full rows and deltas are
// applied with every range check of the Rust decoder (`rallypoint_protocol::v2`), and the
// result is compared with the frame's hash when it carries one. Any failure drops the
// state and is returned, never thrown: the caller sends `{"t":"resync"}` when `resync`
// says so and ignores deltas until the keyframe arrives. `rowsAt(tick)` dead-reckons
// positions with the documented float64 formula, so integer ticks give the Rust
// decoder's rows exactly.
//
// Values reach 2^35 (5-byte varints): decoded with arithmetic, never with 32-bit bit
// operations. Pure state: no sockets, no clock.

/**
 * @typedef {import("../index.js").WireSchema} WireSchema
 * @typedef {import("../index.js").V2Applied} V2Applied
 * @typedef {import("../index.js").V2Failure} V2Failure
 * @typedef {import("../index.js").V2ErrorInfo} V2ErrorInfo
 * @typedef {import("../index.js").Row} Row
 * @typedef {import("../index.js").RowSchema} RowSchema
 */

export const V2_MSGPACK = "rallypoint.v2.msgpack";

/** Wire ids are below this. */
const ID_LIMIT = 65536;
/** Declared fields a kind may have. */
const MAX_FIELDS = 29;
/** Mask bits of a delta: motion, age; plain field `j` is `8 << j`. */
const MOTION = 2;
const AGE = 4;
const PLAIN_SHIFT = 3;
const I32_MIN = -2147483648;
const I32_MAX = 2147483647;
const U32_MAX = 4294967295;
const TAU = 2 * Math.PI;

/** A v2 failure, as a value (`kind` in snake case, the Rust `V2Error` variant's fields). */
class Failure {
  /** @param {V2ErrorInfo} info */
  constructor(info) {
    this.info = info;
  }
}

/**
 * @param {string} kind
 * @param {Record<string, unknown>} [fields]
 * @returns {Failure}
 */
const failure = (kind, fields = {}) => new Failure(/** @type {V2ErrorInfo} */ ({ kind, ...fields }));

/**
 * A readable sentence for a failure (for logs and the SDK's stats).
 * @param {V2ErrorInfo} e
 */
export function describeV2Error(e) {
  const x = /** @type {Record<string, any>} */ (e);
  switch (e.kind) {
    case "malformed":
      return `malformed snapshot frame: ${x.reason}`;
    case "baseline_mismatch":
      return `delta against tick ${x.baseline}, but this client holds tick ${x.held}`;
    case "awaiting_keyframe":
      return "delta while awaiting a keyframe";
    case "hash_mismatch":
      return `state hash ${hex32(x.computed)} differs from the server's ${hex32(x.expected)}`;
    case "unknown_entity":
      return `entity ${x.id} is not held`;
    default: {
      const rest = Object.entries(x).filter(([k]) => k !== "kind").map(([k, v]) => `${k} ${v}`);
      return rest.length ? `${e.kind.replaceAll("_", " ")}: ${rest.join(", ")}` : e.kind.replaceAll("_", " ");
    }
  }
}

/** @param {number} v */
function hex32(v) {
  return "0x" + (v >>> 0).toString(16).padStart(8, "0");
}

// ---------------------------------------------------------------- the schema, compiled

/**
 * One kind, compiled: field types, which two fields are the velocity, the others
 * ("plain") in declared order, and the divisors of dead reckoning.
 * @typedef {{names: string[], types: {type: string, scale?: number, bits?: number}[],
 *   velocity: [number, number] | null, plain: number[], divisor: [number, number]}} KindLayout
 */

/** A kind the schema does not declare: no fields. @type {KindLayout} */
const UNDECLARED = Object.freeze({ names: [], types: [], velocity: null, plain: [], divisor: [1, 1] });

/**
 * `welcome.schema` compiled for a tick rate; throws a `Failure` of kind `schema` when it
 * is unusable (the Rust `RowSchema::check` rules).
 * @param {WireSchema} schema
 * @param {number} tickRate
 */
function compile(schema, tickRate) {
  const bad = (/** @type {string} */ reason) => failure("schema", { reason });
  if (schema === null || typeof schema !== "object" || !Array.isArray(schema.kinds)) throw bad("no kinds");
  const ps = Math.fround(schema.position_scale);
  if (!(Number.isFinite(ps) && ps > 0)) throw bad("position_scale must be a positive number");
  if (!(Number.isInteger(tickRate) && tickRate > 0 && tickRate <= 65535)) throw bad("tick_rate must be positive");
  /** @type {Map<number, KindLayout>} */
  const kinds = new Map();
  for (const k of schema.kinds) {
    if (!Number.isInteger(k?.kind) || k.kind < 0 || k.kind > 255) throw bad("a kind is not 0 to 255");
    if (kinds.has(k.kind)) throw bad(`kind ${k.kind} is declared twice`);
    const fields = Array.isArray(k.fields) ? k.fields : [];
    if (fields.length > MAX_FIELDS) throw bad(`${k.name}: more than ${MAX_FIELDS} fields`);
    const types = fields.map((f) => fieldType(f, `${k.name}.${f?.name}`, bad));
    const velocity = k.velocity ?? null;
    if (velocity !== null) {
      const real = (/** @type {unknown} */ i) => Number.isInteger(i) && types[/** @type {number} */ (i)]?.type === "real";
      if (!Array.isArray(velocity) || !real(velocity[0]) || !real(velocity[1])) {
        throw bad(`${k.name}: velocity must name two real fields`);
      }
    }
    const scale = (/** @type {number} */ i) => /** @type {number} */ (types[i].scale);
    kinds.set(k.kind, {
      names: fields.map((f) => String(f.name)),
      types,
      velocity: velocity && [velocity[0], velocity[1]],
      plain: types.map((_, i) => i).filter((i) => !velocity || !velocity.includes(i)),
      divisor: velocity ? [scale(velocity[0]) * tickRate, scale(velocity[1]) * tickRate] : [1, 1],
    });
  }
  return { positionScale: ps, tickRate, kinds };
}

/**
 * @param {any} f
 * @param {string} name
 * @param {(reason: string) => Failure} bad
 */
function fieldType(f, name, bad) {
  switch (f?.type) {
    case "real": {
      const scale = Math.fround(f.scale);
      if (!(Number.isFinite(scale) && scale > 0)) throw bad(`${name}: scale must be positive`);
      return { type: "real", scale };
    }
    case "angle":
      if (!(Number.isInteger(f.bits) && f.bits >= 1 && f.bits <= 16)) throw bad(`${name}: bits must be 1 to 16`);
      return { type: "angle", bits: f.bits };
    case "int":
    case "uint":
    case "flags":
    case "ref":
      return { type: f.type };
    default:
      throw bad(`${name}: unknown type ${f?.type}`);
  }
}

/** @param {{type: string}} t */
const isSigned = (t) => t.type === "real" || t.type === "int";

/**
 * Whether `q` is a value the field can hold.
 * @param {{type: string, bits?: number}} t
 * @param {number} q
 */
function inRange(t, q) {
  switch (t.type) {
    case "real":
    case "int":
      return q >= I32_MIN && q <= I32_MAX;
    case "angle":
      return q >= 0 && q < 2 ** /** @type {number} */ (t.bits);
    case "uint":
    case "ref":
      return q >= 0 && q <= U32_MAX;
    default:
      return q >= 0 && q <= 255;
  }
}

const positionInRange = (/** @type {number} */ q) => q >= I32_MIN && q <= I32_MAX;

/**
 * The value a quantized field stands for (the Rust `dequantize`).
 * @param {{type: string, scale?: number, bits?: number}} t
 * @param {number} q
 */
function dequantize(t, q) {
  if (t.type === "real") return q / /** @type {number} */ (t.scale);
  if (t.type === "angle") {
    const n = 2 ** /** @type {number} */ (t.bits);
    return ((q >= n / 2 ? q - n : q) * TAU) / n;
  }
  return q;
}

/**
 * The interpolation buffer's view of a wire schema: real fields are linear, angles
 * angular, everything else discrete.
 * @param {WireSchema} schema
 * @returns {RowSchema}
 */
export function rowSchemaOf(schema) {
  /** @type {Record<number, {name: string, columns: [string, "linear" | "angle" | "discrete"][]}>} */
  const out = {};
  for (const k of schema?.kinds ?? []) {
    out[k.kind] = {
      name: String(k.name),
      columns: (k.fields ?? []).map((f) => [
        String(f.name),
        f.type === "real" ? "linear" : f.type === "angle" ? "angle" : "discrete",
      ]),
    };
  }
  return Object.freeze(out);
}

// ---------------------------------------------------------------- the body's values

class Reader {
  /** @param {Uint8Array} buf */
  constructor(buf) {
    this.buf = buf;
    this.pos = 0;
  }

  left() {
    return this.buf.length - this.pos;
  }

  /** An unsigned varint of at most 5 bytes (below 2^35). */
  uvar() {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.buf.length) throw failure("truncated");
      const b = this.buf[this.pos++];
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 128;
    }
    throw failure("varint_too_long");
  }

  /** A zigzag varint: `u` even is `u / 2`, odd is `−(u + 1) / 2`. */
  svar() {
    const u = this.uvar();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  /**
   * A count of items of at least one byte each: never more than the bytes left.
   * @param {string} what
   */
  count(what) {
    const count = this.uvar();
    if (count > this.left()) throw failure("count_too_large", { what, count, bytes: this.left() });
    return count;
  }
}

// ---------------------------------------------------------------- the state

/**
 * One entity as a client holds it.
 * @typedef {{kind: number, ref: number, x: number, y: number, f: number[]}} Rec
 */

export class V2State {
  /**
   * An empty state for a game's schema (`welcome.schema`) at its tick rate. Throws a
   * `V2SchemaError` when the schema is unusable.
   * @param {WireSchema} schema
   * @param {number} tickRate
   */
  constructor(schema, tickRate) {
    try {
      this.layout = compile(schema, tickRate);
    } catch (e) {
      if (e instanceof Failure) throw new V2SchemaError(describeV2Error(e.info));
      throw e;
    }
    /** The tick of the state held; null before the first keyframe and after a failure. */
    this.tick = /** @type {number | null} */ (null);
    /** @type {Map<number, Rec>} */
    this.recs = new Map();
  }

  /** Entities held. */
  get size() {
    return this.recs.size;
  }

  /** @param {number} id */
  has(id) {
    return this.recs.has(id);
  }

  /** Drops the state: deltas are refused until a keyframe. */
  reset() {
    this.tick = null;
    this.recs.clear();
  }

  /**
   * Applies one decoded `{"t":"s"}` message. On a failure the state is dropped and the
   * failure returned: send `{"t":"resync"}` when `resync` is true.
   * @param {unknown} msg
   * @returns {V2Applied | V2Failure}
   */
  apply(msg) {
    try {
      return this.applyFrame(msg);
    } catch (e) {
      this.reset();
      if (!(e instanceof Failure)) throw e;
      return { ok: false, error: e.info, resync: e.info.kind !== "awaiting_keyframe" };
    }
  }

  /** FNV-1a of the records held, ascending by id (PROTOCOL.md, "State hash"). */
  hash() {
    let h = 0x811c9dc5;
    const byte = (/** @type {number} */ b) => {
      h = Math.imul(h ^ b, 0x01000193) >>> 0;
    };
    const u32 = (/** @type {number} */ v) => {
      for (let i = 0; i < 32; i += 8) byte((v >>> i) & 0xff);
    };
    for (const id of this.ids()) {
      const rec = /** @type {Rec} */ (this.recs.get(id));
      u32(id);
      byte(rec.kind);
      u32(rec.x);
      u32(rec.y);
      if (this.kindOf(rec.kind).velocity) u32(rec.ref);
      rec.f.forEach(u32);
    }
    return h;
  }

  /**
   * The rows at `tick`, ascending by id: `[id, kind, x, y, field...]` with every declared
   * field (in declared order, v2-only ones included) dequantized, and positions
   * dead-reckoned to `tick` (any tick, fractional ones too: the formula's rounding keeps
   * them on the 1/position_scale grid).
   * @param {number} tick
   * @returns {Row[]}
   */
  rowsAt(tick) {
    const ps = this.layout.positionScale;
    return this.ids().map((id) => {
      const rec = /** @type {Rec} */ (this.recs.get(id));
      const k = this.kindOf(rec.kind);
      const [x, y] = this.predict(rec, tick);
      return [id, rec.kind, Math.fround(x / ps), Math.fround(y / ps), ...rec.f.map((q, i) => dequantize(k.types[i], q))];
    });
  }

  /** Ids held, ascending. */
  ids() {
    return [...this.recs.keys()].sort((a, b) => a - b);
  }

  /** @param {number} kind @returns {KindLayout} */
  kindOf(kind) {
    return this.layout.kinds.get(kind) ?? UNDECLARED;
  }

  /**
   * Where `rec` puts its entity at tick `t`, in steps: per axis
   * `x + floor(((v * age) * position_scale) / (scale * tick_rate) + 0.5)`.
   * @param {{kind: number, ref: number, x: number, y: number, f: number[]}} rec
   * @param {number} t
   * @returns {[number, number]}
   */
  predict(rec, t) {
    const k = this.kindOf(rec.kind);
    if (!k.velocity) return [rec.x, rec.y];
    const age = t - rec.ref;
    const ps = this.layout.positionScale;
    const axis = (/** @type {number} */ p, /** @type {0 | 1} */ a) =>
      p + Math.floor(((rec.f[/** @type {[number, number]} */ (k.velocity)[a]] * age) * ps) / k.divisor[a] + 0.5);
    return [axis(rec.x, 0), axis(rec.y, 1)];
  }

  /**
   * @param {unknown} msg
   * @returns {V2Applied}
   */
  applyFrame(msg) {
    const h = header(msg);
    /** @type {"keyframe" | "delta"} */
    let kind = "keyframe";
    if (h.baseline !== null) {
      if (this.tick === null) throw failure("awaiting_keyframe");
      if (h.baseline !== this.tick) throw failure("baseline_mismatch", { baseline: h.baseline, held: this.tick });
      kind = "delta";
    }
    if (kind === "keyframe") this.recs.clear();
    /** @type {V2Applied} */
    const applied = {
      ok: true,
      tick: h.tick,
      baseline: h.baseline,
      ack: h.ack,
      kind,
      hashChecked: false,
      removed: 0,
      full: 0,
      deltas: 0,
    };
    this.applyBody(h.tick, kind, h.body, applied);
    this.tick = h.tick;
    if (h.hash !== null) {
      const computed = this.hash();
      if (computed !== h.hash) throw failure("hash_mismatch", { expected: h.hash, computed });
      applied.hashChecked = true;
    }
    return applied;
  }

  /**
   * @param {number} tick
   * @param {"keyframe" | "delta"} kind
   * @param {Uint8Array} body
   * @param {V2Applied} applied
   */
  applyBody(tick, kind, body, applied) {
    const r = new Reader(body);
    const removals = r.count("removals");
    if (removals > 0 && kind === "keyframe") throw failure("removal_in_keyframe");
    let last = -1;
    for (let i = 0; i < removals; i++) {
      const id = readId(r, last);
      last = id;
      if (!this.recs.delete(id)) throw failure("unknown_entity", { id });
    }
    applied.removed = removals;
    const pieces = r.count("pieces");
    last = -1;
    for (let i = 0; i < pieces; i++) {
      const id = readId(r, last);
      last = id;
      const mask = r.uvar();
      if (mask % 2 === 1) {
        this.recs.set(id, this.readFull(r, id, mask, tick));
        applied.full += 1;
      } else {
        const rec = this.recs.get(id);
        if (!rec) throw failure("unknown_entity", { id });
        this.applyDelta(r, id, mask, tick, rec);
        applied.deltas += 1;
      }
    }
    if (r.left() !== 0) throw failure("trailing_bytes", { bytes: r.left() });
  }

  /**
   * A full row: `[varint(age)] zigzag(x) zigzag(y) value(field)...`.
   * @param {Reader} r
   * @param {number} id
   * @param {number} mask
   * @param {number} tick
   * @returns {Rec}
   */
  readFull(r, id, mask, tick) {
    const kind = (mask - 1) / 2;
    if (kind > 255) throw failure("bad_mask", { id, entity_kind: 0, mask });
    const k = this.kindOf(kind);
    let ref = 0;
    if (k.velocity) {
      const age = r.uvar();
      if (age > tick) throw failure("bad_age", { id, age, tick });
      ref = tick - age;
    }
    const x = readPosition(r, id, "x");
    const y = readPosition(r, id, "y");
    const f = k.types.map((t, i) => {
      const q = isSigned(t) ? r.svar() : r.uvar();
      if (!inRange(t, q)) throw failure("out_of_range", { id, field: k.names[i] });
      return q;
    });
    return { kind, ref, x, y, f };
  }

  /**
   * A delta piece after its id and mask.
   * @param {Reader} r
   * @param {number} id
   * @param {number} mask
   * @param {number} tick
   * @param {Rec} rec
   */
  applyDelta(r, id, mask, tick, rec) {
    const k = this.kindOf(rec.kind);
    const limit = 2 ** (PLAIN_SHIFT + k.plain.length);
    const motion = Math.floor(mask / MOTION) % 2 === 1;
    const hasAge = Math.floor(mask / AGE) % 2 === 1;
    if (mask === 0 || mask >= limit || (hasAge && !(motion && k.velocity))) {
      throw failure("bad_mask", { id, entity_kind: rec.kind, mask });
    }
    if (motion) {
      const age = hasAge ? r.uvar() : 0;
      let ref = 0;
      if (k.velocity) {
        if (age > tick || tick - age <= rec.ref) throw failure("bad_age", { id, age, tick });
        ref = tick - age;
      }
      const [px, py] = this.predict(rec, ref);
      const x = px + r.svar();
      if (!positionInRange(x)) throw failure("out_of_range", { id, field: "x" });
      const y = py + r.svar();
      if (!positionInRange(y)) throw failure("out_of_range", { id, field: "y" });
      const vel = k.velocity ? [rec.f[k.velocity[0]], rec.f[k.velocity[1]]] : null;
      if (k.velocity && vel) {
        for (let a = 0; a < 2; a++) {
          const i = k.velocity[a];
          vel[a] += r.svar();
          if (!inRange(k.types[i], vel[a])) throw failure("out_of_range", { id, field: k.names[i] });
        }
      }
      rec.x = x;
      rec.y = y;
      rec.ref = ref;
      if (k.velocity && vel) [rec.f[k.velocity[0]], rec.f[k.velocity[1]]] = vel;
    }
    k.plain.forEach((i, j) => {
      if (Math.floor(mask / 2 ** (PLAIN_SHIFT + j)) % 2 === 1) {
        const t = k.types[i];
        const q = isSigned(t) ? r.svar() : r.uvar();
        if (!inRange(t, q)) throw failure("out_of_range", { id, field: k.names[i] });
        rec.f[i] = q;
      }
    });
  }
}

/** `welcome.schema` cannot be used: this client cannot decode v2 snapshots. */
export class V2SchemaError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "V2SchemaError";
  }
}

/**
 * @param {Reader} r
 * @param {number} id
 * @param {string} name
 */
function readPosition(r, id, name) {
  const q = r.svar();
  if (!positionInRange(q)) throw failure("out_of_range", { id, field: name });
  return q;
}

/**
 * An entity id, strictly above the previous one of its section (`last`, −1 for none).
 * @param {Reader} r
 * @param {number} last
 */
function readId(r, last) {
  const id = r.uvar();
  if (id >= ID_LIMIT) throw failure("id_out_of_range", { id });
  if (id <= last) throw failure("unordered", { id });
  return id;
}

/**
 * The header of a decoded frame: `t` must be "s"; `n`, `b`, `a` and `h` (optional) are
 * u32 integers; `d` is bytes. `b` counts ticks back from `n`; 0 is a keyframe.
 * @param {unknown} msg
 */
function header(msg) {
  const bad = (/** @type {string} */ reason) => failure("malformed", { reason });
  if (msg === null || typeof msg !== "object" || Array.isArray(msg)) throw bad("not a map");
  const m = /** @type {Record<string, unknown>} */ (msg);
  if (m.t !== "s") throw bad('t is not "s"');
  const u32 = (/** @type {string} */ key) => {
    const v = m[key];
    if (v === undefined) return null;
    if (!(Number.isInteger(v) && /** @type {number} */ (v) >= 0 && /** @type {number} */ (v) <= U32_MAX)) {
      throw bad(`${key} is not a u32`);
    }
    return /** @type {number} */ (v);
  };
  const tick = u32("n");
  const since = u32("b");
  const ack = u32("a");
  const hash = u32("h");
  const body = m.d;
  if (body !== undefined && !(body instanceof Uint8Array)) throw bad("d is not bin");
  if (tick === null) throw bad("missing n");
  if (since === null) throw bad("missing b");
  if (since > tick) throw bad("b is larger than n");
  if (ack === null) throw bad("missing a");
  if (body === undefined) throw bad("missing d");
  return { tick, baseline: since === 0 ? null : tick - since, ack, hash, body };
}
