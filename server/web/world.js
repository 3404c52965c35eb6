// The client's picture of the room: what the server said, and what to draw now.
//
// Snapshots are kept for about a second. Drawing happens about 100 ms in the past
// (`renderDelayTicks`), between the two snapshots around that moment, so 20–30 Hz updates
// move smoothly whatever the frame rate. The server's tick is estimated from snapshot
// arrival times: the estimate follows the earliest arrivals (the least delayed) and
// drifts slowly otherwise, so network jitter does not shake the picture.
//
// Pure state: no DOM, no sockets, no clock (times are parameters).

export const KIND_PLAYER = 0;
export const KIND_PROJECTILE = 1;
export const KIND_PICKUP = 2;
export const FLAG_DEAD = 1;
export const FLAG_AWAY = 2;
export const FLAG_AVAILABLE = 1;

/** Snapshots kept; at 30 Hz, a little over a second. */
const MAX_SNAPS = 40;
/** A move longer than this between two snapshots is a respawn: jump, do not glide. */
const TELEPORT_UNITS = 3;
/** Kill-feed and chat lines shown, and for how long. */
const FEED_MAX = 6;
const FEED_MS = 6000;

function num(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

/** Parses a snapshot's rows; rows of unknown kinds and extra columns are ignored. */
export function parseEntities(rows) {
  const players = new Map();
  const projectiles = [];
  const pickups = [];
  for (const row of Array.isArray(rows) ? rows : []) {
    if (!Array.isArray(row) || row.length < 4) continue;
    const [id, kind, x, y] = row;
    if (kind === KIND_PLAYER && row.length >= 8) {
      players.set(id, {
        id,
        x: num(x),
        y: num(y),
        aim: num(row[4]),
        hp: num(row[5]),
        score: num(row[6]),
        flags: num(row[7]),
      });
    } else if (kind === KIND_PROJECTILE && row.length >= 7) {
      projectiles.push({ id, x: num(x), y: num(y), vx: num(row[4]), vy: num(row[5]), owner: row[6] });
    } else if (kind === KIND_PICKUP && row.length >= 5) {
      pickups.push({ id, x: num(x), y: num(y), flags: num(row[4]) });
    }
  }
  return { players, projectiles, pickups };
}

function lerp(a, b, t) {
  return a + (b - a) * t;
}

function lerpAngle(a, b, t) {
  let d = (b - a) % (2 * Math.PI);
  if (d > Math.PI) d -= 2 * Math.PI;
  if (d < -Math.PI) d += 2 * Math.PI;
  return a + d * t;
}

export class World {
  constructor() {
    this.reset();
  }

  reset() {
    this.you = 0;
    this.room = "";
    this.role = "player";
    this.tickRate = 30;
    this.snapRate = 30;
    /** The map's name from `welcome`, until the `map` event brings its geometry. */
    this.mapName = "";
    this.map = null;
    /** Player id → display name, from `player` events. */
    this.names = new Map();
    this.snaps = [];
    this.round = null;
    this.roundEnd = null;
    this.feed = [];
    this.ack = 0;
    /** Health bar scale: `welcome.max_hp`, or the largest health seen from older servers. */
    this.maxHp = 0;
    /** Server tick estimate: `base` at local time `at` (ms). */
    this.clock = null;
  }

  /** A new connection's `welcome`: everything before it belongs to another session. */
  welcome(msg, now) {
    this.reset();
    this.you = msg.you;
    this.room = String(msg.room);
    this.role = String(msg.role || "player");
    this.tickRate = msg.tick_rate > 0 ? msg.tick_rate : 30;
    this.snapRate = msg.snap_rate > 0 ? msg.snap_rate : this.tickRate;
    this.mapName = String(msg.map);
    this.clock = { base: num(msg.tick), at: now };
    // Older servers did not send these; fall back to the shipped defaults.
    this.playerRadius = msg.player_radius > 0 ? msg.player_radius : 0.5;
    this.welcomeMaxHp = msg.max_hp > 0 ? msg.max_hp : 0;
  }

  snap(msg, now) {
    const snap = { tick: num(msg.tick), ...parseEntities(msg.ents) };
    const last = this.snaps[this.snaps.length - 1];
    if (last && snap.tick <= last.tick) return; // out of order or repeated
    this.snaps.push(snap);
    if (this.snaps.length > MAX_SNAPS) this.snaps.shift();
    this.ack = num(msg.ack);
    this.maxHp = Math.max(this.maxHp, this.welcomeMaxHp || 0);
    for (const p of snap.players.values()) this.maxHp = Math.max(this.maxHp, p.hp);
    const predicted = this.serverTick(now);
    if (this.clock === null || snap.tick > predicted || snap.tick < predicted - this.tickRate) {
      // Ahead of the estimate (less delayed than before), or far behind (the tab slept):
      // take this arrival as the new reference.
      this.clock = { base: snap.tick, at: now };
    } else {
      this.clock.base += (snap.tick - predicted) * 0.02;
    }
  }

  event(msg, now) {
    const name = (id) => this.names.get(id) ?? `#${id}`;
    switch (msg.e) {
      case "player":
        this.names.set(msg.id, String(msg.name));
        break;
      case "leave":
        this.names.delete(msg.id);
        break;
      case "kill":
        this.pushFeed(`${name(msg.killer)} ✕ ${name(msg.victim)}`, now);
        break;
      case "map":
        this.map = {
          name: String(msg.name),
          w: num(msg.w),
          h: num(msg.h),
          walls: (Array.isArray(msg.walls) ? msg.walls : []).filter((w) => Array.isArray(w) && w.length >= 4),
        };
        break;
      case "round_start":
        this.round = { round: msg.round, map: msg.map, endTick: num(msg.end_tick), scoreLimit: msg.score_limit };
        this.roundEnd = null;
        break;
      case "round_end":
        this.roundEnd = {
          round: msg.round,
          winner: msg.winner,
          scores: Array.isArray(msg.scores) ? msg.scores : [],
          nextTick: num(msg.next_tick),
        };
        break;
      default:
        break; // respawn, pickup and future events: snapshots show their effect
    }
  }

  chat(msg, now) {
    this.pushFeed(`${String(msg.name)}: ${String(msg.text)}`, now);
  }

  pushFeed(text, now) {
    this.feed.push({ text, at: now });
    if (this.feed.length > FEED_MAX) this.feed.shift();
  }

  /** Feed lines still worth showing. */
  recentFeed(now) {
    return this.feed.filter((f) => now - f.at < FEED_MS);
  }

  nameOf(id) {
    return this.names.get(id) ?? `#${id}`;
  }

  /** The estimated server tick now (fractional). */
  serverTick(now) {
    if (this.clock === null) return 0;
    return this.clock.base + ((now - this.clock.at) * this.tickRate) / 1000;
  }

  /** How far in the past to draw: about 100 ms, and at least two snapshot intervals. */
  renderDelayTicks() {
    return Math.max(0.1 * this.tickRate, (2 * this.tickRate) / this.snapRate);
  }

  latest() {
    return this.snaps.length ? this.snaps[this.snaps.length - 1] : null;
  }

  /**
   * What to draw at local time `now`: entities between the two snapshots around
   * `serverTick(now) - renderDelayTicks()`.
   */
  view(now) {
    const n = this.snaps.length;
    if (n === 0) return null;
    const t = this.serverTick(now) - this.renderDelayTicks();
    let a = this.snaps[0];
    let b = a;
    if (t >= this.snaps[n - 1].tick) {
      a = b = this.snaps[n - 1];
    } else {
      for (let i = n - 1; i > 0; i--) {
        if (this.snaps[i - 1].tick <= t) {
          a = this.snaps[i - 1];
          b = this.snaps[i];
          break;
        }
      }
    }
    const alpha = b.tick > a.tick ? Math.min(1, Math.max(0, (t - a.tick) / (b.tick - a.tick))) : 0;
    const players = [];
    for (const pa of a.players.values()) {
      const pb = b.players.get(pa.id);
      if (!pb || Math.hypot(pb.x - pa.x, pb.y - pa.y) > TELEPORT_UNITS) {
        players.push(alpha < 0.5 || !pb ? pa : pb);
        continue;
      }
      players.push({
        ...pb,
        x: lerp(pa.x, pb.x, alpha),
        y: lerp(pa.y, pb.y, alpha),
        aim: lerpAngle(pa.aim, pb.aim, alpha),
      });
    }
    const after = new Map(b.projectiles.map((p) => [p.id, p]));
    const projectiles = [];
    for (const pa of a.projectiles) {
      const pb = after.get(pa.id);
      projectiles.push(pb ? { ...pb, x: lerp(pa.x, pb.x, alpha), y: lerp(pa.y, pb.y, alpha) } : pa);
    }
    return { tick: t, players, projectiles, pickups: b.pickups };
  }
}
