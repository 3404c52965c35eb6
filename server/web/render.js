// Draws the arena on the canvas: floor, walls, pickups, projectiles, players with their
// name and health. The whole map is fitted to the canvas (maps are small), so there is
// no camera to follow. Reads the world's view; changes nothing else.
//
// Names come from tokens: they are drawn with fillText only, never put into HTML.

import { FLAG_AVAILABLE, FLAG_AWAY, FLAG_DEAD } from "./world.js";

/** Drawn player radius in world units when the server did not say (game.toml default). */
const DEFAULT_PLAYER_RADIUS = 0.5;
const PROJECTILE_RADIUS = 0.15;
const PICKUP_RADIUS = 0.6;

/** A stable, distinct colour per player id. */
export function playerColour(id) {
  return `hsl(${(id * 137.508) % 360} 75% 60%)`;
}

export class Renderer {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    /** World → CSS pixels: `px = ox + x * scale`. */
    this.transform = null;
  }

  /** World units → canvas CSS pixels, or null before a map is drawn. */
  toScreen(p) {
    const t = this.transform;
    return t ? { x: t.ox + p.x * t.scale, y: t.oy + p.y * t.scale } : null;
  }

  /** Canvas CSS pixels → world units, or null before a map is drawn. */
  toWorld(p) {
    const t = this.transform;
    return t ? { x: (p.x - t.ox) / t.scale, y: (p.y - t.oy) / t.scale } : null;
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    const pw = Math.max(1, Math.round(w * dpr));
    const ph = Math.max(1, Math.round(h * dpr));
    if (this.canvas.width !== pw || this.canvas.height !== ph) {
      this.canvas.width = pw;
      this.canvas.height = ph;
    }
    return { w, h, dpr };
  }

  /**
   * @param {import("./world.js").World} world
   * @param {object|null} view world.view(now)
   * @param {number} localAim the player's own aim, drawn without network delay
   */
  draw(world, view, localAim) {
    const radius = world.playerRadius || DEFAULT_PLAYER_RADIUS;
    const { w, h, dpr } = this.resize();
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#0d1117";
    ctx.fillRect(0, 0, w, h);
    const map = world.map;
    if (!map || map.w <= 0 || map.h <= 0) {
      this.transform = null;
      return;
    }
    // Room above and below for the round line and the status bar.
    const top = 44;
    const bottom = 40;
    const side = 16;
    const scale = Math.min((w - 2 * side) / map.w, (h - top - bottom) / map.h);
    const ox = (w - map.w * scale) / 2;
    const oy = top + (h - top - bottom - map.h * scale) / 2;
    this.transform = { scale, ox, oy };
    ctx.setTransform(dpr * scale, 0, 0, dpr * scale, dpr * ox, dpr * oy);

    // Floor with a faint grid, one line per 2 units.
    ctx.fillStyle = "#161d29";
    ctx.fillRect(0, 0, map.w, map.h);
    ctx.strokeStyle = "rgba(255,255,255,0.05)";
    ctx.lineWidth = 1 / scale;
    ctx.beginPath();
    for (let x = 2; x < map.w; x += 2) {
      ctx.moveTo(x, 0);
      ctx.lineTo(x, map.h);
    }
    for (let y = 2; y < map.h; y += 2) {
      ctx.moveTo(0, y);
      ctx.lineTo(map.w, y);
    }
    ctx.stroke();

    ctx.fillStyle = "#4a5874";
    ctx.strokeStyle = "#6d7fa3";
    ctx.lineWidth = 2 / scale;
    for (const [x, y, ww, hh] of map.walls) {
      ctx.fillRect(x, y, ww, hh);
      ctx.strokeRect(x, y, ww, hh);
    }
    if (!view) return;

    for (const p of view.pickups) {
      ctx.beginPath();
      ctx.arc(p.x, p.y, PICKUP_RADIUS, 0, 2 * Math.PI);
      if (p.flags & FLAG_AVAILABLE) {
        ctx.fillStyle = "#2ea043";
        ctx.fill();
        ctx.fillStyle = "#e6ffec";
        const a = PICKUP_RADIUS * 0.6;
        const b = PICKUP_RADIUS * 0.18;
        ctx.fillRect(p.x - a, p.y - b, 2 * a, 2 * b);
        ctx.fillRect(p.x - b, p.y - a, 2 * b, 2 * a);
      } else {
        ctx.strokeStyle = "rgba(46,160,67,0.35)";
        ctx.lineWidth = 1.5 / scale;
        ctx.stroke();
      }
    }

    for (const s of view.projectiles) {
      const colour = playerColour(s.owner);
      const speed = Math.hypot(s.vx, s.vy) || 1;
      // A tracer behind it, in the shooter's colour, so direction and owner read at a glance.
      const r = Math.max(PROJECTILE_RADIUS, 3 / scale);
      ctx.strokeStyle = colour;
      ctx.globalAlpha = 0.75;
      ctx.lineCap = "round";
      ctx.lineWidth = r * 1.4;
      ctx.beginPath();
      ctx.moveTo(s.x, s.y);
      ctx.lineTo(s.x - (s.vx / speed) * 1.2, s.y - (s.vy / speed) * 1.2);
      ctx.stroke();
      ctx.globalAlpha = 1;
      ctx.fillStyle = "#fff";
      ctx.beginPath();
      ctx.arc(s.x, s.y, r, 0, 2 * Math.PI);
      ctx.fill();
    }

    for (const p of view.players) {
      const mine = p.id === world.you;
      const dead = (p.flags & FLAG_DEAD) !== 0;
      const away = (p.flags & FLAG_AWAY) !== 0;
      if (dead) continue; // waiting to respawn: nothing on the floor
      ctx.globalAlpha = away ? 0.4 : 1;
      const colour = playerColour(p.id);
      const aim = mine && world.role === "player" ? localAim : p.aim;
      ctx.strokeStyle = colour;
      ctx.lineWidth = 0.18;
      ctx.beginPath();
      ctx.moveTo(p.x, p.y);
      ctx.lineTo(p.x + Math.cos(aim) * radius * 1.8, p.y + Math.sin(aim) * radius * 1.8);
      ctx.stroke();
      ctx.fillStyle = colour;
      ctx.beginPath();
      ctx.arc(p.x, p.y, radius, 0, 2 * Math.PI);
      ctx.fill();
      if (mine) {
        ctx.strokeStyle = "#ffffff";
        ctx.lineWidth = 0.12;
        ctx.stroke();
      }
      // Health bar.
      const maxHp = world.maxHp || 100;
      const bw = 1.4;
      const bh = 0.16;
      const bx = p.x - bw / 2;
      const by = p.y - radius - 0.45;
      ctx.fillStyle = "rgba(0,0,0,0.6)";
      ctx.fillRect(bx, by, bw, bh);
      const frac = Math.max(0, Math.min(1, p.hp / maxHp));
      ctx.fillStyle = frac > 0.5 ? "#3fb950" : frac > 0.25 ? "#d29922" : "#f85149";
      ctx.fillRect(bx, by, bw * frac, bh);
      ctx.globalAlpha = 1;
    }

    // Names in screen pixels, so they stay readable at any map scale.
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.font = "600 12px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    for (const p of view.players) {
      if (p.flags & FLAG_DEAD) continue;
      const label = world.nameOf(p.id) + (p.flags & FLAG_AWAY ? " (away)" : "");
      const sx = ox + p.x * scale;
      const sy = oy + (p.y - radius - 0.55) * scale;
      ctx.fillStyle = "rgba(0,0,0,0.7)";
      ctx.fillText(label, sx + 1, sy + 1);
      ctx.fillStyle = p.id === world.you ? "#ffffff" : "#c9d1d9";
      ctx.fillText(label, sx, sy);
    }
  }
}
