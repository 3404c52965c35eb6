// The text around the arena: round and timer, scoreboard, kill feed, network line, and
// the banner that explains a disconnection.
//
// DOM, text only (`textContent`): names come from tokens and must never become markup.
// Each element is rewritten only when its text changes, so a 60 fps loop costs nothing.

import { playerColour } from "./render.js";

function el(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id}`);
  return e;
}

function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export class Hud {
  constructor() {
    this.round = el("round");
    this.scores = el("scores");
    this.feed = el("feed");
    this.net = el("net");
    this.banner = el("banner");
    this.bannerText = el("banner-text");
    this.reconnect = el("reconnect");
    this.centre = el("centre");
    this.help = el("help");
    this.last = new Map();
    this.toastTimer = undefined;
  }

  /** Sets a text only when it changed; returns whether it did. */
  changed(key, value) {
    if (this.last.get(key) === value) return false;
    this.last.set(key, value);
    return true;
  }

  text(node, key, value) {
    if (this.changed(key, value)) node.textContent = value;
  }

  /**
   * @param {import("./world.js").World} world
   * @param {number} now local time (ms)
   * @param {{scheme: string, protocol: string|null, rtt: number|null, connected: boolean,
   *   tick: number}} net `tick`: the server's tick now
   */
  update(world, now, net) {
    const tick = net.tick;
    let round = "";
    let centre = "";
    if (world.round) {
      const left = (world.round.endTick - tick) / world.tickRate;
      round = `Round ${world.round.round} · ${world.map ? world.map.name : world.mapName} · ${clock(left)} · first to ${world.round.scoreLimit}`;
    }
    if (world.roundEnd) {
      const next = (world.roundEnd.nextTick - tick) / world.tickRate;
      const who = world.roundEnd.winner === undefined || world.roundEnd.winner === null
        ? "Draw"
        : `${world.nameOf(world.roundEnd.winner)} wins`;
      centre = `${who} · round ${world.roundEnd.round} over · next round in ${clock(next)}`;
      round = `Intermission · next round in ${clock(next)}`;
    } else if (world.role === "spectator") {
      centre = "";
      round += " · spectating";
    }
    this.text(this.round, "round", round);
    if (this.changed("role", world.role)) this.help.hidden = world.role === "spectator";
    this.text(this.centre, "centre", centre);
    this.centre.hidden = centre === "";

    const latest = world.newest;
    const rows = latest
      ? [...latest.players.values()].sort((a, b) => b.score - a.score || a.id - b.id)
      : [];
    const key = rows.map((p) => `${p.id}:${world.nameOf(p.id)}:${p.score}:${p.flags}`).join("|") + `/${world.you}`;
    if (this.changed("scores", key)) {
      this.scores.replaceChildren(
        ...rows.map((p) => {
          const li = document.createElement("li");
          if (p.id === world.you) li.className = "you";
          const swatch = document.createElement("span");
          swatch.className = "swatch";
          swatch.style.backgroundColor = playerColour(p.id);
          const name = document.createElement("span");
          name.className = "name";
          name.textContent = world.nameOf(p.id) + (p.flags & 2 ? " (away)" : "");
          const score = document.createElement("span");
          score.className = "score";
          score.textContent = String(p.score);
          li.append(swatch, name, score);
          return li;
        }),
      );
    }

    const feed = world.recentFeed(now).map((f) => f.text);
    if (this.changed("feed", feed.join("\n"))) {
      this.feed.replaceChildren(
        ...feed.map((t) => {
          const li = document.createElement("li");
          li.textContent = t;
          return li;
        }),
      );
    }

    const rtt = net.rtt === null ? "–" : `${Math.round(net.rtt)} ms`;
    const line = net.connected
      ? `${net.protocol} over ${net.scheme} · RTT ${rtt}${world.room ? " · room " + world.room : ""}`
      : `offline (${net.scheme})`;
    this.text(this.net, "net", line);
    if (this.changed("connected", net.connected)) {
      this.net.classList.toggle("down", !net.connected);
      // The arena fades while the picture is stale.
      document.body.classList.toggle("offline", !net.connected);
    }
  }

  /**
   * Shows the connection banner. While playing it is hidden, or shown for a few seconds
   * when `toast` (e.g. "Reconnected"); when stopped it carries the Reconnect button.
   */
  status(text, kind, toast = false) {
    clearTimeout(this.toastTimer);
    this.banner.hidden = kind === "playing" && !toast;
    this.banner.dataset.kind = kind;
    this.bannerText.textContent = text;
    this.reconnect.hidden = kind !== "stopped";
    if (kind === "playing" && toast) {
      this.toastTimer = setTimeout(() => {
        this.banner.hidden = true;
      }, 3000);
    }
  }
}
