// The page's picture of the room: names, map, round, kill feed and chat, the newest
// snapshot as players/projectiles/pickups, and interpolated rows turned into what the
// renderer draws. The SDK keeps the snapshots, the clock and the interpolation.
//
// Pure state: no DOM, no sockets, no clock (times are parameters).

import { rowObject } from "./sdk/index.js";

export const FLAG_DEAD = 1;
export const FLAG_AWAY = 2;
export const FLAG_AVAILABLE = 1;

/** Kill-feed and chat lines shown, and for how long. */
const FEED_MAX = 6;
const FEED_MS = 6000;

function num(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

/**
 * Entity rows grouped by type, as the renderer and the scoreboard use them; rows of
 * unknown kinds or too short for theirs are left out.
 * @param {number[][]} rows
 * @param {object} [schema] the SDK's row schema (v2: from `welcome`; v1: the arena's)
 */
export function groupRows(rows, schema) {
  const players = new Map();
  const projectiles = [];
  const pickups = [];
  for (const row of rows) {
    const o = rowObject(row, schema);
    if (o === null) continue;
    if (o.type === "player") players.set(o.id, o);
    else if (o.type === "projectile") projectiles.push(o);
    else if (o.type === "pickup") pickups.push(o);
  }
  return { players, projectiles, pickups };
}

export class World {
  constructor() {
    this.welcome({ you: 0, room: "", role: "player", tick_rate: 30, map: "" });
  }

  /** A new connection's `welcome`: everything before it belongs to another session. */
  welcome(msg) {
    this.you = msg.you;
    this.room = String(msg.room);
    this.role = String(msg.role || "player");
    this.tickRate = msg.tick_rate > 0 ? msg.tick_rate : 30;
    /** The map's name from `welcome`, until the `map` event brings its geometry. */
    this.mapName = String(msg.map);
    this.map = null;
    /** Player id → display name, from `player` events. */
    this.names = new Map();
    /** The newest snapshot, grouped: {tick, players: Map, projectiles, pickups}. */
    this.newest = null;
    this.round = null;
    this.roundEnd = null;
    this.feed = [];
    // Older servers did not send these; fall back to the shipped defaults.
    this.playerRadius = msg.player_radius > 0 ? msg.player_radius : 0.5;
    /** Health bar scale: `welcome.max_hp`, or the largest health seen from older servers. */
    this.maxHp = msg.max_hp > 0 ? msg.max_hp : 0;
  }

  /**
   * @param {{tick: number, ents: number[][]}} snap
   * @param {object} [schema] what the rows' columns are
   */
  snapshot(snap, schema) {
    this.newest = { tick: snap.tick, ...groupRows(snap.ents, schema) };
    for (const p of this.newest.players.values()) this.maxHp = Math.max(this.maxHp, num(p.hp));
  }

  event(msg, now) {
    const name = (id) => this.nameOf(id);
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
      case "tuning":
        this.playerRadius = msg.player_radius > 0 ? msg.player_radius : this.playerRadius;
        this.maxHp = msg.max_hp > 0 ? msg.max_hp : this.maxHp;
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

  /**
   * What to draw, from the SDK's interpolated rows.
   * @param {{tick: number, rows: number[][]} | null} interpolated
   * @param {object} [schema] what the rows' columns are
   */
  view(interpolated, schema) {
    if (interpolated === null) return null;
    const g = groupRows(interpolated.rows, schema);
    return { tick: interpolated.tick, players: [...g.players.values()], projectiles: g.projectiles, pickups: g.pickups };
  }
}
