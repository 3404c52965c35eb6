// The client's state machine against a scripted socket: states and their reasons,
// backoff, resume, `moved`, giving up, and what is refused before it reaches the wire.
// Timers are mocked, so nothing here waits.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, V1_JSON } from "../src/index.js";
import { scriptedSocket } from "../test-support/socket.js";

/** A WebSocket whose every move the test makes, speaking JSON. */
const ScriptedSocket = scriptedSocket({ encode: JSON.stringify, decode: JSON.parse }, V1_JSON);

const welcome = (extra = {}) => ({
  t: "welcome", you: 5, room: "r", tick: 100, tick_rate: 30, map: "m", protocol: V1_JSON,
  snap_rate: 30, role: "player", resumed: false, player_radius: 0.5, max_hp: 100, ...extra,
});

/** Lets the client's async connection attempt run. */
const settle = () => new Promise((r) => setImmediate(r));

/** Connects, and the scripted server accepts and welcomes. */
async function play(c, last) {
  c.connect();
  await settle();
  last().accept();
  last().deliver(welcome());
}

function setup(t, opts = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  ScriptedSocket.made = [];
  const c = new Client({
    url: "ws://game.test/play",
    WebSocket: ScriptedSocket,
    token: "tok",
    protocols: [V1_JSON],
    random: () => 0.5,
    ...opts,
  });
  const states = [];
  c.on("state", (s) => states.push(s));
  const last = () => ScriptedSocket.made[ScriptedSocket.made.length - 1];
  return { c, states, last };
}

test("connecting, open, resuming after a drop, open again with the same entity", async (t) => {
  const { c, states, last } = setup(t);
  c.connect();
  await settle();
  assert.deepEqual(last().protocols, [V1_JSON, "bearer.tok"], "the token rides in a subprotocol entry");
  last().accept();
  last().deliver(welcome());
  assert.deepEqual(states.map((s) => s.state), ["connecting", "open"]);
  assert.equal(c.protocol, V1_JSON);
  assert.equal(last().sent[0].t, "ping", "a ping at once");

  last().drop(1006);
  assert.equal(c.state.state, "resuming");
  assert.equal(c.state.reason?.code, 1006);
  assert.equal(c.state.retryInMs, 250);
  t.mock.timers.tick(250);
  await settle();
  assert.equal(ScriptedSocket.made.length, 2);
  last().accept();
  last().deliver(welcome({ resumed: true }));
  assert.equal(c.state.state, "open");
  assert.equal(c.welcome?.resumed, true);
  assert.deepEqual(states.map((s) => s.state), ["connecting", "open", "resuming", "resuming", "open"]);
});

test("after 1001 the first retry waits a second", async (t) => {
  const { c, last } = setup(t);
  await play(c, last);
  last().deliver({ t: "error", code: "shutting_down", message: "server shutting down" });
  last().drop(1001, "server shutting down");
  assert.equal(c.state.retryInMs, 1000);
  assert.equal(c.lastClose?.errorCode, "shutting_down");
  assert.equal(c.lastClose?.message, "server shutting down");
});

test("`moved` sends the reconnect to the new node", async (t) => {
  const { c, last } = setup(t);
  const moved = [];
  c.on("moved", (m) => moved.push(m.url));
  await play(c, last);
  last().deliver({ t: "moved", url: "ws://node-b.test/play?room=r" });
  last().drop(1012);
  assert.equal(c.state.state, "resuming");
  t.mock.timers.tick(250);
  await settle();
  assert.deepEqual(moved, ["ws://node-b.test/play?room=r"]);
  assert.equal(last().url, "ws://node-b.test/play?room=r");
});

test("a server that keeps refusing: backoff, then closed with gaveUp", async (t) => {
  const fresh = [];
  const { c, states, last } = setup(t, {
    token: ({ fresh: f }) => {
      fresh.push(f);
      return "tok";
    },
    reconnect: { maxAttempts: 3 },
  });
  c.connect();
  for (const wait of [250, 500, 1000]) {
    await settle();
    last().drop(1006); // never opened: a refused handshake
    assert.equal(c.state.state, "connecting", "no session yet, so not resuming");
    assert.equal(c.state.retryInMs, wait);
    t.mock.timers.tick(wait);
  }
  await settle();
  last().drop(1006);
  assert.equal(c.state.state, "closed");
  assert.equal(c.state.reason?.gaveUp, true);
  assert.deepEqual(fresh, [false, true, true, true], "a fresh token after each refusal");
  assert.equal(states.filter((s) => s.state === "closed").length, 1);
});

test("a kick is final, and its reason is visible", async (t) => {
  const { c, last } = setup(t);
  await play(c, last);
  last().deliver({ t: "error", code: "kicked", message: "kicked by an operator" });
  last().drop(4002, "kicked by an operator");
  assert.equal(c.state.state, "closed");
  assert.equal(c.state.reason?.errorCode, "kicked");
  t.mock.timers.tick(60_000);
  await settle();
  assert.equal(ScriptedSocket.made.length, 1);
  c.reconnectNow();
  await settle();
  assert.equal(ScriptedSocket.made.length, 2, "the player may come back by hand");
  assert.deepEqual(c.state, { state: "connecting", reason: null, attempt: 0, retryInMs: null }, "a fresh start");
});

test("inputs: nothing before the welcome or for spectators; seq and pending otherwise", async (t) => {
  const { c, last } = setup(t);
  const input = { mx: 1, my: 0, aim: 0, fire: false };
  assert.equal(c.sendInput(input), null, "not connected");
  c.connect();
  await settle();
  last().accept();
  last().deliver(welcome({ role: "spectator", you: 0 }));
  assert.equal(c.sendInput(input), null, "a spectator sends none (the server would close 1008)");
  last().deliver(welcome());
  assert.equal(c.sendInput(input)?.seq, 1);
  assert.equal(c.sendInput(input)?.seq, 2);
  assert.deepEqual(last().sent.filter((m) => m.t === "input").map((m) => m.seq), [1, 2]);
  last().bufferedAmount = 100_000;
  assert.equal(c.sendInput(input), null, "skipped while the socket is backed up");
  last().bufferedAmount = 0;
  const seen = [];
  c.on("snapshot", (s, pending) => seen.push([s.ack, pending.map((p) => p.seq)]));
  last().deliver({ t: "snap", tick: 101, ack: 1, ents: [[5, 0, 1, 1, 0, 100, 0, 0]] });
  assert.deepEqual(seen, [[1, [2]]]);
});

test("a predictor sees every input and every snapshot with the pending inputs", async (t) => {
  const log = [];
  const predictor = {
    input: (r) => log.push(`input ${r.seq}`),
    reconcile: (s, pending) => log.push(`snap ${s.tick} ack ${s.ack} pending ${pending.map((p) => p.seq)}`),
  };
  const { c, last } = setup(t, { predictor });
  await play(c, last);
  c.sendInput({ mx: 0, my: 1, aim: 0, fire: false });
  c.sendInput({ mx: 0, my: 1, aim: 0, fire: false });
  last().deliver({ t: "snap", tick: 101, ack: 1, ents: [] });
  assert.deepEqual(log, ["input 1", "input 2", "snap 101 ack 1 pending 2"]);
});

test("events by name, undecodable frames counted, no event names from the server", async (t) => {
  const { c, last } = setup(t);
  const got = [];
  for (const name of ["kill", "round_end", "event", "welcome", "chat"]) c.on(name, (m) => got.push(`${name}:${m.t}`));
  await play(c, last);
  last().deliver({ t: "event", e: "kill", killer: 1, victim: 2 });
  last().deliver({ t: "event", e: "welcome" });
  last().deliver({ t: "chat", from: 1, name: "a", text: "hi" });
  last().onmessage?.({ data: "{not json" });
  last().onmessage?.({ data: "[1,2]" });
  assert.deepEqual(got, ["welcome:welcome", "event:event", "kill:event", "event:event", "chat:chat"]);
  assert.equal(c.decodeErrors, 2);
});

test("close() leaves for good, even while waiting to retry", async (t) => {
  const { c, last } = setup(t);
  await play(c, last);
  last().drop(1006);
  assert.equal(c.state.state, "resuming");
  c.close();
  assert.equal(c.state.state, "closed");
  t.mock.timers.tick(60_000);
  await settle();
  assert.equal(ScriptedSocket.made.length, 1);
});

test("arena inputs carry view, the tick being drawn; other games' inputs do not", async (t) => {
  let clock = 1000;
  const { c, last } = setup(t, { now: () => clock });
  c.connect();
  await settle();
  last().accept();
  last().deliver(welcome({ game: "arena" }));
  const input = { mx: 1, my: 0, aim: 0, fire: true };
  c.sendInput(input);
  last().deliver({ t: "snap", tick: 200, ack: 1, ents: [] });
  c.sendInput(input);
  clock += 100; // three ticks at 30 Hz later
  c.sendInput(input);
  c.sendInput({ ...input, view: 150 });
  const sent = () => last().sent.filter((m) => m.t === "input");
  const rendered = Math.round(c.renderTick(clock));
  assert.deepEqual(sent().map((m) => m.view), [undefined, rendered - 3, rendered, 150]);
  assert.equal(rendered, 200, "100 ms of interpolation delay behind the stream");
  assert.deepEqual(c.inputs.pending().map((r) => r.fields.view), [undefined, undefined, 150]);
  last().deliver(welcome({ game: "other" }));
  c.sendInput(input);
  assert.equal(sent().at(-1).view, undefined, "a game without lag compensation gets no view");
});
