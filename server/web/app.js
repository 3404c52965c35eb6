// The Rallypoint browser client: wires the connection, the world, the controls, the
// renderer and the HUD together, and publishes the page's state on `window.rallypoint`
// for tests and for curious players (open the console).
//
// Page URL options (query string): `name=` display name and `role=spectator` in dev
// mode, `room=` room to join, `proto=json` to speak `rallypoint.v1.json` (debugging).
// The token comes from token.js; the socket goes to `/play` on this page's host, `wss:`
// when the page is https.

import { Controls } from "./input.js";
import { Hud } from "./hud.js";
import { Connection } from "./net.js";
import { Renderer } from "./render.js";
import { tokenSource } from "./token.js";
import { World } from "./world.js";

const query = new URLSearchParams(location.search);
const scheme = location.protocol === "https:" ? "wss" : "ws";
const playUrl = new URL("/play", location.href);
playUrl.protocol = scheme + ":";
if (query.get("room")) playUrl.searchParams.set("room", query.get("room"));
const subprotocol = query.get("proto") === "json" ? "rallypoint.v1.json" : "rallypoint.v1.msgpack";

const canvas = document.getElementById("arena");
const world = new World();
const controls = new Controls(canvas);
const renderer = new Renderer(canvas);
const hud = new Hud();

/** The page's state, for tests and debugging. Replaced fields, never a replaced object. */
const state = {
  connected: false,
  /** The subprotocol the server picked. */
  protocol: null,
  scheme,
  you: 0,
  room: null,
  map: null,
  /** The map's geometry: {name, w, h, walls: [[x, y, w, h], ...]}. */
  arena: null,
  role: null,
  tickRate: 0,
  /** Tick of the newest snapshot. */
  tick: 0,
  /** Last input `seq` sent on this connection, and the last one the server applied. */
  seq: 0,
  ack: 0,
  /** Round-trip time of the last ping, in ms. */
  rtt: null,
  /** The last frame: the (fractional) server tick it shows, and where it drew us. */
  drawn: { tick: 0, x: null, y: null },
  /** From the newest snapshot: id → {x, y, hp, score, name, aim, dead, away}. */
  players: {},
  projectiles: [],
  pickups: [],
  lastClose: null,
  welcomes: 0,
  resumed: false,
  /** What the banner says, and its kind: connecting, retrying, stopped, playing. */
  status: "",
  statusKind: "connecting",
  tokenSource: null,
  /** Dev mode only: the account id this page made up. */
  sub: null,
  /** Uncaught errors and CSP violations on this page; empty when all is well. */
  errors: [],
  decodeErrors: 0,
  /** Reconnects now (the banner's button). */
  reconnect: () => conn.reconnectNow(),
  /** Leaves the game with a normal close. */
  leave: () => conn.stop(),
  /** Where a world point is on the canvas, in CSS pixels (for tests that click). */
  screenOf: (x, y) => renderer.toScreen({ x, y }),
};
window.rallypoint = state;

function recordError(text) {
  state.errors.push(String(text));
  if (state.errors.length > 20) state.errors.shift();
}
addEventListener("error", (e) => recordError(e.message));
addEventListener("unhandledrejection", (e) => recordError(e.reason));
document.addEventListener("securitypolicyviolation", (e) =>
  recordError(`CSP: ${e.violatedDirective} blocked ${e.blockedURI}`),
);

function setStatus(text, kind, toast = false) {
  state.status = text;
  state.statusKind = kind;
  hud.status(text, kind, toast);
}

function publishSnapshot() {
  const snap = world.latest();
  if (!snap) return;
  state.tick = snap.tick;
  state.ack = world.ack;
  const players = {};
  for (const p of snap.players.values()) {
    players[p.id] = {
      x: p.x,
      y: p.y,
      hp: p.hp,
      score: p.score,
      name: world.nameOf(p.id),
      aim: p.aim,
      dead: (p.flags & 1) !== 0,
      away: (p.flags & 2) !== 0,
    };
  }
  state.players = players;
  state.projectiles = snap.projectiles;
  state.pickups = snap.pickups;
}

const conn = new Connection({
  url: playUrl.href,
  subprotocol,
  tokens: null, // set below, once the source is known
  on: {
    message(msg) {
      const now = performance.now();
      switch (msg.t) {
        case "welcome":
          world.welcome(msg, now);
          state.welcomes += 1;
          state.connected = true;
          state.protocol = conn.protocol;
          state.you = msg.you;
          state.room = world.room;
          state.map = world.mapName;
          state.role = world.role;
          state.tickRate = world.tickRate;
          state.resumed = msg.resumed === true;
          state.players = {};
          startInputs();
          setStatus(
            state.welcomes > 1
              ? state.resumed
                ? "Reconnected: your player was kept."
                : "Reconnected as a new player (the old one had left)."
              : "Playing.",
            "playing",
            state.welcomes > 1,
          );
          break;
        case "snap":
          world.snap(msg, now);
          publishSnapshot();
          break;
        case "event":
          world.event(msg, now);
          if (msg.e === "map") {
            state.map = world.map.name;
            state.arena = world.map;
          }
          break;
        case "chat":
          world.chat(msg, now);
          break;
        case "pong":
          state.rtt = Math.round(conn.rtt * 10) / 10;
          break;
        default:
          break; // `error` is kept by the connection for the close that follows
      }
    },
    status: setStatus,
    close(info) {
      state.connected = false;
      state.lastClose = info;
      stopInputs();
    },
  },
});

// Inputs go out on a timer at the room's tick rate, not from the animation loop: the
// loop stops in background tabs, and its rate is the display's, not the game's.
let inputTimer = null;
function startInputs() {
  stopInputs();
  if (world.role !== "player") return;
  inputTimer = setInterval(() => {
    const me = world.latest()?.players.get(world.you) ?? null;
    const s = controls.sample(me, (p) => renderer.toWorld(p));
    if (conn.sendInput(s.mx, s.my, s.aim, s.fire)) state.seq = conn.seq;
  }, 1000 / world.tickRate);
}
function stopInputs() {
  if (inputTimer !== null) clearInterval(inputTimer);
  inputTimer = null;
}

document.getElementById("reconnect").addEventListener("click", () => conn.reconnectNow());

function frame() {
  const now = performance.now();
  const view = world.view(now);
  renderer.draw(world, view, controls.aim);
  const me = view ? view.players.find((p) => p.id === world.you) : undefined;
  state.drawn = { tick: view ? view.tick : 0, x: me ? me.x : null, y: me ? me.y : null };
  state.decodeErrors = conn.decodeErrors;
  hud.update(world, now, {
    scheme,
    protocol: conn.protocol,
    rtt: conn.rtt,
    connected: conn.connected,
  });
  requestAnimationFrame(frame);
}

if (!globalThis.MessagePack && subprotocol.endsWith("msgpack")) {
  setStatus("The MessagePack library did not load; reload the page.", "stopped");
} else {
  const tokens = tokenSource(query);
  state.tokenSource = tokens.kind;
  state.sub = tokens.sub;
  conn.tokens = tokens;
  conn.start();
}
requestAnimationFrame(frame);
