// The Rallypoint browser client: wires the SDK's connection to the world, the controls,
// the renderer and the HUD, and publishes the page's state on `window.rallypoint` for
// tests and for curious players (open the console).
//
// Page URL options (query string): `name=` display name and `role=spectator` in dev
// mode, `room=` room to join, `proto=v1` to speak `rallypoint.v1.msgpack` only,
// `proto=json` `rallypoint.v1.json` (debugging); otherwise v2 first, then v1 MessagePack.
// The token comes from token.js. Before every connection attempt the SDK asks `GET /match`
// on the page's host where to play (in a cluster, the room's node, wherever it reopened
// after a node died; on a single node, this one); a server without `/match` is played at
// `/play` on its host. When the room moves to another node (`moved`), the SDK reconnects
// there and the banner says so.
// Everything about the protocol is the SDK's (`/sdk/`, from protocol/js), the own
// player's prediction included (its ArenaPredictor); this file only decides what the
// player sees.

import { Controls } from "./input.js";
import { Hud } from "./hud.js";
import { Renderer } from "./render.js";
import { ArenaPredictor, Client, DEFAULT_BACKOFF, DEFAULT_PROTOCOLS, V1_JSON, V1_MSGPACK } from "./sdk/index.js";
import { tokenSource } from "./token.js";
import { World } from "./world.js";

const query = new URLSearchParams(location.search);
const scheme = location.protocol === "https:" ? "wss" : "ws";
const playUrl = new URL("/play", location.href);
playUrl.protocol = scheme + ":";
const PROTOCOLS = { json: [V1_JSON], v1: [V1_MSGPACK] };
const protocols = PROTOCOLS[query.get("proto") ?? ""] ?? DEFAULT_PROTOCOLS;
/** Appended to the message of a close that only a fixed client can avoid. */
const CLIENT_BUG = "This is a bug in the game client; reload the page to play again.";

const canvas = document.getElementById("arena");
const world = new World();
const controls = new Controls(canvas);
const renderer = new Renderer(canvas);
const hud = new Hud();
/** The own player's movement, ahead of the server's confirmation. */
const predictor = new ArenaPredictor();
/** @type {Client | null} */
let client = null;
let leaving = false;

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
  /** Prediction of the own player: on, its last correction (units), corrections too
   * large to smooth, inputs not yet acknowledged. */
  predicted: { on: false, correction: 0, snaps: 0, pending: 0 },
  /** The SDK's counters: snapshots, v2 keyframes/deltas/desyncs/resyncs, bytes by kind. */
  stats: null,
  /** From the newest snapshot: id → {x, y, hp, score, name, aim, dead, away}. */
  players: {},
  projectiles: [],
  pickups: [],
  lastClose: null,
  welcomes: 0,
  resumed: false,
  /** The host:port of the node this session plays on (in a cluster, `/match` and `moved` pick it). */
  server: null,
  /** The SDK's connection state: connecting, open, resuming, closed. */
  connection: "closed",
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
  reconnect: () => {
    leaving = false;
    client?.reconnectNow();
  },
  /** Leaves the game with a normal close. */
  leave: () => {
    leaving = true;
    client?.close();
  },
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

/** What to tell the player about a close (the SDK's meaning, in the page's words). */
function closeText(info) {
  if (info.code === 4001) {
    return info.reconnect
      ? "Your session token expired; signing in again."
      : "Your session token expired. Sign in again to keep playing.";
  }
  return info.clientBug ? `${info.text} ${CLIENT_BUG}` : info.text;
}

/** The banner for each connection state. */
function showState(s, maxAttempts) {
  state.connection = s.state;
  if (s.state === "open") return; // the welcome handler words it
  if (s.state === "closed") {
    if (leaving) return setStatus("You left the game.", "stopped");
    const why = s.reason ? closeText(s.reason) : "Disconnected.";
    return setStatus(s.reason?.gaveUp ? `${why} Gave up after ${maxAttempts} attempts.` : why, "stopped");
  }
  if (s.retryInMs === null) return setStatus("Connecting…", "connecting");
  setStatus(
    `${closeText(s.reason)} Reconnecting in ${(s.retryInMs / 1000).toFixed(1)} s ` +
      `(attempt ${s.attempt} of ${maxAttempts})…`,
    "retrying",
  );
}

function welcomed(w) {
  world.welcome(w);
  state.welcomes += 1;
  state.connected = true;
  state.protocol = client.protocol;
  state.server = client.ws ? new URL(client.ws.url).host : null;
  state.you = w.you;
  state.room = world.room;
  state.map = world.mapName;
  state.role = world.role;
  state.tickRate = world.tickRate;
  state.resumed = w.resumed === true;
  state.players = {};
  state.seq = 0;
  state.ack = 0;
  startInputs();
  const again = state.resumed
    ? "Reconnected: your player was kept."
    : "Reconnected as a new player (the old one had left).";
  setStatus(state.welcomes > 1 ? again : "Playing.", "playing", state.welcomes > 1);
}

function publishSnapshot(snap) {
  world.snapshot(snap, client.snapshots.schema);
  state.tick = snap.tick;
  state.ack = snap.ack;
  const players = {};
  for (const p of world.newest.players.values()) {
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
  state.projectiles = world.newest.projectiles;
  state.pickups = world.newest.pickups;
}

function wire(c) {
  c.on("state", (s) => showState(s, DEFAULT_BACKOFF.maxAttempts));
  c.on("welcome", welcomed);
  c.on("snapshot", publishSnapshot);
  c.on("event", (e) => {
    world.event(e, performance.now());
    if (e.e === "map") {
      state.map = world.map.name;
      state.arena = world.map;
    }
  });
  c.on("chat", (m) => world.chat(m, performance.now()));
  c.on("moved", () => setStatus("Moving to another server…", "connecting", true));
  c.on("pong", (p) => {
    state.rtt = Math.round(p.rtt * 10) / 10;
  });
  c.on("close", (info) => {
    state.connected = false;
    state.lastClose = {
      code: info.code,
      reason: info.reason,
      errorCode: info.errorCode,
      message: closeText(info),
      reconnect: info.reconnect,
    };
    stopInputs();
  });
}

// Inputs go out on a timer at the room's tick rate, not from the animation loop: the
// loop stops in background tabs, and its rate is the display's, not the game's.
let inputTimer = null;
function startInputs() {
  stopInputs();
  if (world.role !== "player") return;
  inputTimer = setInterval(() => {
    // Aim from where the player is drawn: ahead of the snapshots when predicted.
    const me = predictor.position(performance.now()) ?? world.newest?.players.get(world.you) ?? null;
    const s = controls.sample(me, (p) => renderer.toWorld(p));
    const sent = client.sendInput(s);
    if (sent) state.seq = sent.seq;
  }, 1000 / world.tickRate);
}
function stopInputs() {
  if (inputTimer !== null) clearInterval(inputTimer);
  inputTimer = null;
}

document.getElementById("reconnect").addEventListener("click", () => state.reconnect());

function frame() {
  const now = performance.now();
  const view = client && state.welcomes > 0 ? world.view(client.view(now), client.snapshots.schema) : null;
  const me = view ? view.players.find((p) => p.id === world.you) : undefined;
  // Everyone else is drawn in the past, between snapshots; we are drawn where our own
  // inputs have taken us already.
  const ahead = predictor.position(now);
  if (me && ahead) {
    me.x = ahead.x;
    me.y = ahead.y;
  }
  renderer.draw(world, view, controls.aim);
  state.drawn = { tick: view ? view.tick : 0, x: me ? me.x : null, y: me ? me.y : null };
  state.predicted = {
    on: ahead !== null,
    correction: predictor.lastCorrection,
    snaps: predictor.snaps,
    pending: client ? client.inputs.pending().length : 0,
  };
  state.stats = client ? structuredClone(client.stats) : null;
  state.decodeErrors = client ? client.decodeErrors : 0;
  hud.update(world, now, {
    scheme,
    protocol: client?.protocol ?? null,
    rtt: client?.rtt ?? null,
    connected: client?.connected ?? false,
    tick: client ? client.serverTick(now) : 0,
  });
  requestAnimationFrame(frame);
}

async function start() {
  if (!globalThis.MessagePack && protocols.includes(V1_MSGPACK)) {
    setStatus("The MessagePack library did not load; reload the page.", "stopped");
    return;
  }
  const tokens = tokenSource(query);
  state.tokenSource = tokens.kind;
  state.sub = tokens.sub;
  // A source that can refresh is asked before every attempt; a fixed one is read once,
  // so the SDK knows an expired token cannot be replaced without the player.
  let token;
  try {
    token = tokens.refreshable ? (ctx) => tokens.get(ctx) : await tokens.get({ fresh: false });
  } catch (e) {
    setStatus(e.message, "stopped");
    return;
  }
  const room = query.get("room") || undefined;
  client = new Client({ url: playUrl.href, match: true, room, token, protocols, predictor });
  wire(client);
  client.connect();
}

start();
requestAnimationFrame(frame);
