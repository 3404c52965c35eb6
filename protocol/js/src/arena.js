// The arena's client-side rules: its player movement, and prediction with reconciliation
// for the own player.
//
// Movement is the server's (server/src/arena/sim/{motion,geom,step}.rs), in the same
// float64 operations in the same order, with float32 where the server stores float32
// (`Math.fround`): the input clamped to length 1, the velocity steered towards
// `max_speed` times the input by at most `acceleration · dt`, the circle of
// `player_radius` settled out of walls, then moved x then y in sub-steps of at most half
// a radius, stopping `CONTACT_SKIN` short of walls and bounds and sliding along them; a
// blocked axis loses its velocity. The tuning comes from `welcome` and `tuning` events,
// the walls from `map` events, `dt` from `welcome.tick_rate`. `test/arena.test.js`
// replays vectors the Rust simulation wrote.
//
// `ArenaPredictor` plugs into the client's `predictor` seam: each input sent moves the
// own player one step at once; each snapshot rewinds to the server's position (and
// velocity: v2 rows carry it; on v1 the velocity predicted for the acknowledged input,
// or, first after a respawn, that of one step of it from rest at the `respawn` event's
// point, which is what the server does) and replays the inputs not yet acknowledged. A
// correction is smoothed away over `smoothingMs` unless it is longer than `snapDistance`
// (a respawn). The player does not move while dead or between rounds, as on the server.
//
// Must not touch sockets or the DOM; times are parameters (the client's `now`).

/**
 * @typedef {import("../index.js").ArenaMap} ArenaMap
 * @typedef {import("../index.js").ArenaTuning} ArenaTuning
 * @typedef {import("../index.js").Body} Body
 * @typedef {import("../index.js").InputRecord<Record<string, unknown>>} InputRecord
 * @typedef {import("../index.js").Snapshot} Snapshot
 * @typedef {import("../index.js").Welcome} Welcome
 */

/** Gap left between a stopped circle and what stopped it (geom.rs). */
const CONTACT_SKIN = 1e-3;
/** Most sub-steps of one move (motion.rs). */
const MAX_SUB_STEPS = 64;
/** The longest step the simulation takes (step.rs). */
const MAX_STEP_S = 1;
/** Inputs remembered while not predicting: three seconds at 30 Hz and some. */
export const MAX_UNSEEN = 128;
const FLAG_DEAD = 1;
const FLAG_AWAY = 2;

const f32 = Math.fround;

/** `sqrt(a² + b²)`, as Rust's `f64::hypot` for the magnitudes of movement. */
const hypot = (/** @type {number} */ a, /** @type {number} */ b) => Math.sqrt(a * a + b * b);

/**
 * The move an input asks for, as the server reads it: float32 values clamped to length 1
 * in float32 (`Input::clamped_move`), non-finite as 0, then clamped again in float64
 * (`Control::sanitized`).
 * @param {number} mx
 * @param {number} my
 * @returns {[number, number]}
 */
export function clampMove(mx, my) {
  let x = Number.isFinite(mx) ? f32(mx) : 0;
  let y = Number.isFinite(my) ? f32(my) : 0;
  const len2 = f32(f32(x * x) + f32(y * y));
  if (len2 > 1) {
    const len = f32(Math.sqrt(len2));
    x = f32(x / len);
    y = f32(y / len);
  }
  const length = hypot(x, y);
  return length > 1 ? [x / length, y / length] : [x, y];
}

/**
 * The velocity moved towards `desired` by at most `maxChange` (motion.rs `steer`).
 * @param {number} vx
 * @param {number} vy
 * @param {number} dx desired x
 * @param {number} dy desired y
 * @param {number} maxChange
 * @returns {[number, number]}
 */
function steer(vx, vy, dx, dy, maxChange) {
  const gx = dx - vx;
  const gy = dy - vy;
  const gap = hypot(gx, gy);
  if (gap <= maxChange) return [dx, dy];
  const k = maxChange / gap;
  return [vx + gx * k, vy + gy * k];
}

/** `v` limited to `[lo, hi]`, never throwing (geom.rs `clamp_lenient`). */
const clamp = (/** @type {number} */ v, /** @type {number} */ lo, /** @type {number} */ hi) => Math.min(Math.max(v, lo), hi);

/** Distance from `v` to `[lo, hi]` (0 inside). */
const gap = (/** @type {number} */ v, /** @type {number} */ lo, /** @type {number} */ hi) => (v < lo ? lo - v : v > hi ? v - hi : 0);

/**
 * A map's space for circles of one radius: walls as float64 boxes, bounds.
 */
export class ArenaSpace {
  /**
   * @param {ArenaMap} map `w`, `h` and `walls` as `[x, y, w, h]` (the `map` event's)
   * @param {number} radius
   */
  constructor(map, radius) {
    this.width = f32(map.w);
    this.height = f32(map.h);
    this.radius = f32(radius);
    this.walls = map.walls.map(([x, y, w, h]) => {
      const [x0, y0] = [f32(x), f32(y)];
      return { minX: x0, minY: y0, maxX: x0 + f32(w), maxY: y0 + f32(h) };
    });
  }

  /** Lowest and highest centre coordinate that keeps the circle inside `extent`. */
  bounds(/** @type {number} */ extent) {
    const margin = this.radius + CONTACT_SKIN;
    return extent < 2 * margin ? [extent / 2, extent / 2] : [margin, extent - margin];
  }

  /**
   * A circle overlapping walls or sticking out of the map, put back in a legal place
   * (motion.rs `settle`).
   * @param {number} x
   * @param {number} y
   * @returns {[number, number]}
   */
  settle(x, y) {
    for (const wall of this.walls) {
      const out = pushOut(x, y, this.radius, wall);
      if (out) [x, y] = out;
    }
    const [loX, hiX] = this.bounds(this.width);
    const [loY, hiY] = this.bounds(this.height);
    return [clamp(x, loX, hiX), clamp(y, loY, hiY)];
  }

  /**
   * Moves the circle by `(dx, dy)`, x then y in sub-steps, stopping at walls and bounds
   * and sliding along them (motion.rs `slide`).
   * @param {number} x
   * @param {number} y
   * @param {number} dx
   * @param {number} dy
   */
  slide(x, y, dx, dy) {
    const out = { x, y, blockedX: false, blockedY: false };
    const distance = hypot(dx, dy);
    if (distance === 0 || !Number.isFinite(distance)) return out;
    const maxSubStep = Math.max(this.radius * 0.5, 1e-3);
    const subSteps = clamp(Math.ceil(distance / maxSubStep), 1, MAX_SUB_STEPS);
    const stepX = dx / subSteps;
    const stepY = dy / subSteps;
    const [loX, hiX] = this.bounds(this.width);
    const [loY, hiY] = this.bounds(this.height);
    for (let i = 0; i < subSteps; i++) {
      if (!out.blockedX) {
        const allowed = this.limit(true, out.x, out.y, stepX);
        const target = clamp(out.x + allowed, loX, hiX);
        out.blockedX = allowed !== stepX || target !== out.x + allowed;
        out.x = target;
      }
      if (!out.blockedY) {
        const allowed = this.limit(false, out.x, out.y, stepY);
        const target = clamp(out.y + allowed, loY, hiY);
        out.blockedY = allowed !== stepY || target !== out.y + allowed;
        out.y = target;
      }
      if (out.blockedX && out.blockedY) break;
    }
    return out;
  }

  /** How much of `delta` the circle may travel along an axis before a wall. */
  limit(/** @type {boolean} */ alongX, /** @type {number} */ x, /** @type {number} */ y, /** @type {number} */ delta) {
    if (delta === 0) return 0;
    let allowed = delta;
    for (const wall of this.walls) allowed = limitAxisMove(alongX, x, y, allowed, this.radius, wall);
    return allowed;
  }
}

/**
 * geom.rs `limit_axis_move`: exact for any distance, so fast movers cannot tunnel.
 * @param {boolean} alongX
 * @param {number} x
 * @param {number} y
 * @param {number} delta
 * @param {number} radius
 * @param {{minX: number, minY: number, maxX: number, maxY: number}} w
 */
function limitAxisMove(alongX, x, y, delta, radius, w) {
  const [along, across, lo, hi, acrossLo, acrossHi] = alongX
    ? [x, y, w.minX, w.maxX, w.minY, w.maxY]
    : [y, x, w.minY, w.maxY, w.minX, w.maxX];
  const acrossGap = gap(across, acrossLo, acrossHi);
  if (acrossGap >= radius) return delta;
  const reach = Math.sqrt(radius * radius - acrossGap * acrossGap);
  const blockedLo = lo - reach;
  const blockedHi = hi + reach;
  if (delta > 0 && along <= blockedLo) return Math.min(delta, Math.max(blockedLo - CONTACT_SKIN - along, 0));
  if (delta < 0 && along >= blockedHi) return Math.max(delta, Math.min(blockedHi + CONTACT_SKIN - along, 0));
  return delta;
}

/**
 * geom.rs `push_out`: where a circle overlapping `w` touches it instead, or null.
 * @param {number} x
 * @param {number} y
 * @param {number} radius
 * @param {{minX: number, minY: number, maxX: number, maxY: number}} w
 * @returns {[number, number] | null}
 */
function pushOut(x, y, radius, w) {
  const dx = gap(x, w.minX, w.maxX);
  const dy = gap(y, w.minY, w.maxY);
  const distSq = dx * dx + dy * dy;
  if (distSq >= radius * radius) return null;
  const clear = radius + CONTACT_SKIN;
  if (distSq > 0) {
    const cx = clamp(x, w.minX, w.maxX);
    const cy = clamp(y, w.minY, w.maxY);
    const scale = clear / Math.sqrt(distSq);
    return [cx + (x - cx) * scale, cy + (y - cy) * scale];
  }
  const exits = [
    [x - w.minX, w.minX - clear, y],
    [w.maxX - x, w.maxX + clear, y],
    [y - w.minY, x, w.minY - clear],
    [w.maxY - y, x, w.maxY + clear],
  ];
  let best = exits[0];
  for (const e of exits.slice(1)) if (e[0] < best[0]) best = e;
  return [best[1], best[2]];
}

/**
 * One step of the own player's movement (step.rs `move_players`), returning the new body.
 * @param {Body} body position and velocity (float32 values)
 * @param {[number, number]} move the input's move, already `clampMove`d
 * @param {ArenaTuning} tuning
 * @param {ArenaSpace} space for `tuning.player_radius`
 * @param {number} dt the room's step (`Math.fround(1 / tick_rate)`)
 * @returns {Body}
 */
export function stepBody(body, move, tuning, space, dt) {
  const step = Number.isFinite(dt) && dt > 0 ? Math.min(dt, MAX_STEP_S) : 0;
  const maxSpeed = f32(tuning.max_speed);
  const [vx, vy] = steer(body.vx, body.vy, move[0] * maxSpeed, move[1] * maxSpeed, f32(tuning.acceleration) * step);
  const [x, y] = space.settle(body.x, body.y);
  const moved = space.slide(x, y, vx * step, vy * step);
  return {
    x: f32(moved.x),
    y: f32(moved.y),
    vx: moved.blockedX ? 0 : f32(vx),
    vy: moved.blockedY ? 0 : f32(vy),
  };
}

/**
 * The own player's predicted position: see the module header.
 */
export class ArenaPredictor {
  /**
   * @param {{smoothingMs?: number, snapDistance?: number}} [opts] `smoothingMs`: time
   *   constant of the correction's decay (default 100); `snapDistance`: corrections longer
   *   than this (world units, default 2) are not smoothed
   */
  constructor(opts = {}) {
    this.smoothingMs = opts.smoothingMs ?? 100;
    this.snapDistance = opts.snapDistance ?? 2;
    this.you = 0;
    this.dt = f32(1 / 30);
    this.tickMs = 1000 / 30;
    /** @type {ArenaTuning | null} */
    this.tuning = null;
    /** @type {ArenaMap | null} */
    this.map = null;
    /** @type {ArenaSpace | null} */
    this.space = null;
    /** Row index of the player's `vx` (v2 rows carry it), or -1. */
    this.vxColumn = -1;
    this.frozen = false;
    /** The predicted state after the last input sent, or null when not predicting. */
    this.body = /** @type {Body | null} */ (null);
    /** The body one step earlier, and when the last step was taken (for drawing between). */
    this.before = /** @type {Body | null} */ (null);
    this.steppedAt = 0;
    /** `seq` → the body after that input, for the inputs not yet acknowledged. */
    this.history = /** @type {Map<number, Body>} */ (new Map());
    /** What is still to be smoothed away: offset at `offsetAt`. */
    this.offset = { x: 0, y: 0 };
    this.offsetAt = 0;
    /** Where the own player last respawned, until a snapshot shows it alive. */
    this.spawn = /** @type {{x: number, y: number} | null} */ (null);
    /** `seq` → fields of the inputs sent while not predicting (at most `MAX_UNSEEN`). */
    this.unseen = /** @type {Map<number, Record<string, unknown>>} */ (new Map());
    /** The last correction (world units) and how many snapped. */
    this.lastCorrection = 0;
    this.snaps = 0;
  }

  /** Whether it has what it needs to predict. */
  get ready() {
    return this.you > 0 && this.tuning !== null && this.space !== null;
  }

  /** @param {Welcome} w */
  welcome(w) {
    this.you = w.role === "spectator" ? 0 : w.you;
    const rate = w.tick_rate > 0 ? w.tick_rate : 30;
    this.dt = f32(1 / rate);
    this.tickMs = 1000 / rate;
    this.tuning = tuningOf(w);
    this.vxColumn = velocityColumn(w);
    this.frozen = false;
    this.spawn = null;
    this.unseen.clear();
    this.reset();
    this.rebuild();
  }

  /** @param {{e?: unknown} & Record<string, unknown>} e a game event */
  event(e) {
    switch (e.e) {
      case "map":
        this.map = {
          w: Number(e.w),
          h: Number(e.h),
          walls: Array.isArray(e.walls) ? e.walls.filter((w) => Array.isArray(w) && w.length >= 4) : [],
        };
        return this.rebuild();
      case "tuning":
        this.tuning = tuningOf(e) ?? this.tuning;
        return this.rebuild();
      case "round_end":
        this.frozen = true;
        return;
      case "round_start":
        this.frozen = false;
        return;
      case "respawn":
        if (Number(e.id) !== this.you) return;
        this.reset();
        this.spawn = { x: Number(e.x), y: Number(e.y) };
        return;
      default:
    }
  }

  /** @param {InputRecord} record */
  input(record) {
    if (!this.ready || this.body === null) {
      this.unseen.set(record.seq, record.fields);
      if (this.unseen.size > MAX_UNSEEN) this.unseen.delete(/** @type {number} */ (this.unseen.keys().next().value));
      return;
    }
    const next = this.step(this.body, record.fields);
    this.before = this.body;
    this.body = next;
    this.steppedAt = record.sentAt;
    this.history.set(record.seq, next);
  }

  /**
   * @param {Snapshot} snap
   * @param {readonly InputRecord[]} pending
   */
  reconcile(snap, pending) {
    const row = snap.ents.find((r) => r[0] === this.you && r[1] === 0);
    if (!this.ready || !row || (row[7] & (FLAG_DEAD | FLAG_AWAY)) !== 0) {
      this.reset();
      return;
    }
    const known = this.history.get(snap.ack) ?? this.respawnStep(row, snap.ack);
    this.spawn = null;
    this.unseen.clear();
    const hasV = this.vxColumn >= 0 && row.length > this.vxColumn + 1;
    /** @type {Body} */
    let body = {
      x: row[2],
      y: row[3],
      vx: hasV ? f32(row[this.vxColumn]) : known?.vx ?? 0,
      vy: hasV ? f32(row[this.vxColumn + 1]) : known?.vy ?? 0,
    };
    const history = new Map();
    let before = body;
    for (const p of pending) {
      before = body;
      body = this.step(body, p.fields);
      history.set(p.seq, body);
    }
    const old = this.body;
    this.history = history;
    this.body = body;
    this.before = pending.length > 0 ? before : body;
    if (old === null) return;
    const ex = old.x - body.x;
    const ey = old.y - body.y;
    this.lastCorrection = Math.hypot(ex, ey);
    const now = snap.receivedAt;
    const carried = this.decay(now);
    const next = { x: carried.x + ex, y: carried.y + ey };
    if (Math.hypot(next.x, next.y) > this.snapDistance) {
      this.snaps += 1;
      this.offset = { x: 0, y: 0 };
    } else {
      this.offset = next;
    }
    this.offsetAt = now;
  }

  /**
   * Where to draw the own player at `now`: between the last two predicted steps, plus
   * what is left of the last corrections. Null when not predicting.
   * @param {number} now
   * @returns {{x: number, y: number} | null}
   */
  position(now) {
    const b = this.body;
    if (b === null) return null;
    const a = this.before ?? b;
    const t = clamp((now - this.steppedAt) / this.tickMs, 0, 1);
    const o = this.decay(now);
    return { x: a.x + (b.x - a.x) * t + o.x, y: a.y + (b.y - a.y) * t + o.y };
  }

  /** The correction offset left at `now`. */
  decay(/** @type {number} */ now) {
    const k = this.smoothingMs > 0 ? Math.exp(-Math.max(0, now - this.offsetAt) / this.smoothingMs) : 0;
    return { x: this.offset.x * k, y: this.offset.y * k };
  }

  /**
   * The server puts a respawned player at rest and moves it one step by its latest input
   * in the same tick: that step from the spawn point, when it is where `row` shows the
   * player (otherwise more happened since, and the velocity is not known).
   * @param {readonly number[]} row
   * @param {number} ack
   * @returns {Body | undefined}
   */
  respawnStep(row, ack) {
    const fields = this.unseen.get(ack);
    if (this.spawn === null || fields === undefined) return undefined;
    const body = this.step({ ...this.spawn, vx: 0, vy: 0 }, fields);
    return Math.hypot(body.x - row[2], body.y - row[3]) < 1e-4 ? body : undefined;
  }

  /** Stops predicting until the next snapshot shows the player alive. */
  reset() {
    this.body = null;
    this.before = null;
    this.history.clear();
    this.offset = { x: 0, y: 0 };
  }

  rebuild() {
    this.space = this.map && this.tuning ? new ArenaSpace(this.map, this.tuning.player_radius) : null;
  }

  /**
   * @param {Body} body
   * @param {Record<string, unknown>} fields an input's fields (`mx`, `my`)
   */
  step(body, fields) {
    if (this.frozen) return body;
    const move = clampMove(Number(fields.mx), Number(fields.my));
    return stepBody(body, move, /** @type {ArenaTuning} */ (this.tuning), /** @type {ArenaSpace} */ (this.space), this.dt);
  }
}

/**
 * The movement tuning in a `welcome` or `tuning` event, or null when it lacks it (an
 * older server, another game).
 * @param {Record<string, unknown>} m
 * @returns {ArenaTuning | null}
 */
function tuningOf(m) {
  const [r, s, a] = [m.player_radius, m.max_speed, m.acceleration].map(Number);
  if (!(r > 0 && s > 0 && a > 0)) return null;
  return { player_radius: f32(r), max_speed: f32(s), acceleration: f32(a) };
}

/**
 * The row index of the player kind's `vx` when the welcome's schema declares `vx, vy`
 * (v2), else -1.
 * @param {Welcome} w
 */
function velocityColumn(w) {
  const kinds = /** @type {import("../index.js").WireSchema | undefined} */ (w.schema)?.kinds ?? [];
  const player = kinds.find((k) => k.kind === 0);
  const names = (player?.fields ?? []).map((f) => f.name);
  const i = names.indexOf("vx");
  return i >= 0 && names[i + 1] === "vy" ? 4 + i : -1;
}
