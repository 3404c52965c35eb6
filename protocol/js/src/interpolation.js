// Snapshots in, entity rows at any render time out.
//
// A renderer draws the world slightly in the past (render time = stream time − a delay,
// see clock.js), between the two snapshots around that moment, so 20–30 Hz updates move
// smoothly at any frame rate. Each entity row is `[id, kind, x, y, ...]`; what the
// columns after `y` are is the game's (a `RowSchema`, the arena's is `ARENA_ROWS`):
// "linear" columns are interpolated, "angle" columns the short way round, "discrete"
// columns (and columns the schema does not name) come from the older snapshot. `x` and
// `y` are always linear, except across a jump longer than `teleportDistance` (a respawn),
// which is not glided: the entity stays as the older snapshot has it until render time
// reaches the newer one. An entity only in the older snapshot is shown as it was until
// then; one only in the newer appears when render time reaches it.
//
// Pure state: no sockets, no clock (render times are parameters, in ticks).

/**
 * @typedef {import("../index.js").Row} Row
 * @typedef {import("../index.js").RowSchema} RowSchema
 * @typedef {import("../index.js").Interpolated} Interpolated
 */

/** The arena's rows (protocol/PROTOCOL.md, "Entity rows"). @type {RowSchema} */
export const ARENA_ROWS = Object.freeze({
  0: { name: "player", columns: [["aim", "angle"], ["hp", "discrete"], ["score", "discrete"], ["flags", "discrete"]] },
  1: { name: "projectile", columns: [["vx", "linear"], ["vy", "linear"], ["owner", "discrete"]] },
  2: { name: "pickup", columns: [["flags", "discrete"]] },
});

/**
 * @param {number} a
 * @param {number} b
 * @param {number} t
 */
export function lerp(a, b, t) {
  return a + (b - a) * t;
}

/**
 * Interpolates between two angles (radians) the short way round.
 * @param {number} a
 * @param {number} b
 * @param {number} t
 */
export function lerpAngle(a, b, t) {
  const turn = 2 * Math.PI;
  let d = (b - a) % turn;
  if (d > Math.PI) d -= turn;
  if (d < -Math.PI) d += turn;
  return a + d * t;
}

/**
 * A row as an object named by the schema: `{id, kind, type, x, y, ...columns}`, or null
 * for a row too short for its kind or of a kind the schema does not know.
 * @param {Row} row
 * @param {RowSchema} [schema]
 * @returns {Record<string, unknown> & {id: number, kind: number, type: string, x: number, y: number} | null}
 */
export function rowObject(row, schema = ARENA_ROWS) {
  const spec = schema[row[1]];
  if (!spec || row.length < 4 + spec.columns.length) return null;
  /** @type {Record<string, unknown> & {id: number, kind: number, type: string, x: number, y: number}} */
  const out = { id: row[0], kind: row[1], type: spec.name, x: row[2], y: row[3] };
  spec.columns.forEach(([name], i) => {
    out[name] = row[4 + i];
  });
  return out;
}

/**
 * Keeps `ents[]` of recent snapshots, in tick order, and interpolates between them.
 */
export class SnapshotBuffer {
  /**
   * @param {{schema?: RowSchema, capacity?: number, teleportDistance?: number}} [opts]
   *   `capacity`: snapshots kept (64 is two seconds at 30 Hz); `teleportDistance`: world
   *   units (3: more than a player moves between two snapshots at full speed)
   */
  constructor(opts = {}) {
    this.schema = opts.schema ?? ARENA_ROWS;
    this.capacity = opts.capacity ?? 64;
    this.teleportDistance = opts.teleportDistance ?? 3;
    /** @type {{tick: number, rows: Row[]}[]} */
    this.snaps = [];
  }

  clear() {
    this.snaps.length = 0;
  }

  /**
   * Adds a snapshot; one not newer than the newest is ignored (out of order, repeated).
   * @param {number} tick
   * @param {Row[]} rows
   * @returns {boolean} whether it was kept
   */
  push(tick, rows) {
    const last = this.snaps[this.snaps.length - 1];
    if (last && tick <= last.tick) return false;
    this.snaps.push({ tick, rows });
    if (this.snaps.length > this.capacity) this.snaps.shift();
    return true;
  }

  /** The newest snapshot, or null. */
  latest() {
    return this.snaps.length ? this.snaps[this.snaps.length - 1] : null;
  }

  /**
   * The entity rows at render tick `t` (fractional), or null before any snapshot. Before
   * the oldest snapshot kept, that one; after the newest, the newest (no extrapolation).
   * @param {number} t
   * @returns {Interpolated | null}
   */
  at(t) {
    const n = this.snaps.length;
    if (n === 0) return null;
    let i = n - 1;
    while (i > 0 && this.snaps[i - 1].tick > t) i -= 1;
    // snaps[i - 1].tick <= t < snaps[i].tick, or t is outside the buffer.
    if (i === 0 || t >= this.snaps[n - 1].tick) {
      const s = t >= this.snaps[n - 1].tick ? this.snaps[n - 1] : this.snaps[0];
      return { tick: t, from: s.tick, to: s.tick, alpha: 0, rows: s.rows };
    }
    const a = this.snaps[i - 1];
    const b = this.snaps[i];
    const alpha = (t - a.tick) / (b.tick - a.tick);
    return { tick: t, from: a.tick, to: b.tick, alpha, rows: this.blend(a.rows, b.rows, alpha) };
  }

  /**
   * @param {Row[]} older
   * @param {Row[]} newer
   * @param {number} alpha 0 = older, 1 = newer
   * @returns {Row[]}
   */
  blend(older, newer, alpha) {
    /** @type {Map<unknown, Row>} */
    const next = new Map();
    for (const row of newer) next.set(row[0], row);
    return older.map((ra) => {
      const rb = next.get(ra[0]);
      if (!rb || rb[1] !== ra[1] || !numeric(ra, rb, 2) || !numeric(ra, rb, 3)) return ra;
      if (Math.hypot(rb[2] - ra[2], rb[3] - ra[3]) > this.teleportDistance) return ra;
      const out = ra.slice();
      out[2] = lerp(ra[2], rb[2], alpha);
      out[3] = lerp(ra[3], rb[3], alpha);
      const columns = this.schema[ra[1]]?.columns ?? [];
      columns.forEach(([, mode], c) => {
        const k = 4 + c;
        if (mode === "discrete" || !numeric(ra, rb, k)) return;
        out[k] = mode === "angle" ? lerpAngle(ra[k], rb[k], alpha) : lerp(ra[k], rb[k], alpha);
      });
      return out;
    });
  }
}

/**
 * Whether column `k` is a finite number in both rows.
 * @param {Row} a
 * @param {Row} b
 * @param {number} k
 */
function numeric(a, b, k) {
  return Number.isFinite(a[k]) && Number.isFinite(b[k]);
}
