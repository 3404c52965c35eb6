// The client on `rallypoint.v2.msgpack` against a scripted socket fed the Rust encoder's
// frames (test/vectors/v2.json): reconstructed rows in the snapshot event and the
// interpolation buffer, dead reckoning past the newest snapshot, stats, and what it does
// with frames it cannot apply: drop the state, resync once, ignore deltas until the
// keyframe, never throw at the application.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { Client, DEFAULT_PROTOCOLS, V1_MSGPACK, V2_MSGPACK, rowObject, vendoredMsgpack } from "../src/index.js";
import { scriptedSocket } from "../test-support/socket.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const vectors = JSON.parse(readFileSync(path.join(HERE, "vectors/v2.json"), "utf8"));
const msgpack = await vendoredMsgpack();
const fromHex = (s) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));

/** A WebSocket whose every move the test makes, speaking MessagePack. */
const BinarySocket = scriptedSocket(msgpack, V2_MSGPACK);
/** The `resync` requests a socket carried. */
const resyncs = (ws) => ws.sent.filter((m) => m.t === "resync").length;

/** A client welcomed on v2 with the vectors' schema; `clock.t` is its time (ms). */
async function v2client(t, opts = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  BinarySocket.made = [];
  const clock = { t: 0 };
  const c = new Client({
    url: "ws://game.test/play", WebSocket: BinarySocket, token: "tok", now: () => clock.t, random: () => 0.5, ...opts,
  });
  c.connect();
  await new Promise((r) => setImmediate(r));
  const ws = BinarySocket.made.at(-1);
  assert.deepEqual(ws.protocols.slice(0, 2), [V2_MSGPACK, V1_MSGPACK], "v2 first, then v1");
  ws.accept(V2_MSGPACK);
  ws.deliver({
    t: "welcome", you: 3, room: "r", tick: 1, tick_rate: vectors.tick_rate, map: "m", protocol: V2_MSGPACK,
    snap_rate: vectors.tick_rate, role: "player", resumed: false, game: "test", schema: vectors.schema,
  });
  return { c, ws, clock };
}

test("the default offer is v2 then v1, both MessagePack", () => {
  assert.deepEqual([...DEFAULT_PROTOCOLS], [V2_MSGPACK, V1_MSGPACK]);
});

test("frames become rows in snapshot events and the interpolation buffer, as the Rust decoder's", async (t) => {
  const { c, ws, clock } = await v2client(t);
  const steps = vectors.streams[0].steps;
  const snaps = [];
  c.on("snapshot", (s) => snaps.push(s));
  for (const step of steps) {
    clock.t += 1000 / vectors.tick_rate;
    ws.bytes(fromHex(step.frame));
  }
  assert.equal(snaps.length, steps.length);
  steps.forEach((step, i) => {
    assert.equal(snaps[i].tick, step.tick);
    assert.equal(snaps[i].ack, step.ok.ack);
    assert.equal(snaps[i].frame?.kind, step.ok.kind);
    if (step.rows) assert.deepEqual(snaps[i].ents, step.rows, `step ${i}`);
  });
  const s = c.stats;
  assert.deepEqual([s.keyframes, s.deltas, s.desyncs, s.resyncs], [1, steps.length - 1, 0, 0]);
  assert.equal(s.hashChecks, steps.filter((x) => x.ok.hash_checked).length);
  assert.ok(s.bytes.keyframe > 0 && s.bytes.delta > 0 && s.bytes.other > 0);
  assert.equal(c.decodeErrors, 0);
  // The buffer names the rows by the welcome's schema, v2-only fields included.
  const last = c.snapshots.latest();
  assert.equal(last?.tick, steps.at(-1).tick);
  const drone = last.rows.find((r) => r[1] === 5);
  assert.ok(drone, "a drone in the world");
  assert.deepEqual(Object.keys(rowObject(drone, c.snapshots.schema)), ["id", "kind", "type", "x", "y", "vx", "heading", "vy", "charge", "target"]);
});

test("past the newest snapshot, view() dead-reckons moving entities", async (t) => {
  const { c, ws, clock } = await v2client(t, { interpolationDelayMs: 0, minSnapshotIntervals: 0 });
  const step = vectors.streams[0].steps[0];
  ws.bytes(fromHex(step.frame));
  clock.t += (1000 / vectors.tick_rate) * 7;
  const view = c.view();
  assert.ok(view && Math.abs(view.tick - (step.tick + 7)) < 1e-9, `render tick ${view?.tick}`);
  assert.deepEqual(view.rows, step.ahead.rows, "the Rust decoder's rows 7 ticks on");
  clock.t += 10_000;
  assert.deepEqual(c.view().rows, c.v2.rowsAt(step.tick + (250 * vectors.tick_rate) / 1000), "at most 250 ms ahead");
});

test("a delta the client cannot apply: state dropped, one resync, deltas ignored until the keyframe", async (t) => {
  const { c, ws, clock } = await v2client(t, { resyncRetryMs: 1000 });
  const steps = vectors.streams[0].steps;
  const desyncs = [];
  c.on("desync", (d) => desyncs.push(d));
  const snaps = [];
  c.on("snapshot", (s) => snaps.push(s.tick));
  ws.bytes(fromHex(steps[0].frame));
  // Step 2's delta is against step 1's tick, which this client never got.
  ws.bytes(fromHex(steps[2].frame));
  assert.equal(c.v2?.tick, null, "the state is dropped");
  assert.equal(desyncs.length, 1);
  assert.equal(desyncs[0].kind, "baseline_mismatch");
  assert.equal(resyncs(ws), 1);
  for (const step of steps.slice(3, 6)) ws.bytes(fromHex(step.frame));
  assert.equal(resyncs(ws), 1, "one resync while the deltas in flight arrive");
  assert.equal(c.stats.ignored, 3);
  clock.t += 1500;
  ws.bytes(fromHex(steps[6].frame));
  assert.equal(resyncs(ws), 2, "asked again after resyncRetryMs without a keyframe");
  assert.deepEqual(snaps, [steps[0].tick], "nothing from a broken state reached the application");
  // The keyframe heals it.
  const stream = vectors.streams[2].steps;
  const key = stream.find((s) => s.ok?.kind === "keyframe" && s.ok.hash_checked);
  ws.bytes(fromHex(key.frame));
  assert.equal(c.v2?.tick, key.tick);
  assert.equal(snaps.at(-1), key.tick);
  assert.equal(c.stats.desyncs, 1);
  assert.equal(c.stats.lastDesync?.kind, "baseline_mismatch");
});

test("hostile frames: counted, resynced, never thrown at the application", async (t) => {
  const { c, ws } = await v2client(t);
  const thrown = [];
  c.on("snapshot", (s) => {
    for (const r of s.ents) if (!r.every((v) => Number.isFinite(v))) thrown.push(`garbage row ${r}`);
  });
  let expectDesyncs = 0;
  for (const step of vectors.streams[2].steps) {
    try {
      ws.bytes(fromHex(step.frame));
    } catch (e) {
      thrown.push(String(e));
    }
    if (step.error && step.error.kind !== "awaiting_keyframe") expectDesyncs += 1;
  }
  // Frames the MessagePack decoder refuses are undecodable frames, not desyncs.
  assert.equal(c.stats.desyncs + c.decodeErrors, expectDesyncs);
  assert.equal(resyncs(ws), c.stats.desyncs);
  for (const junk of [[], [0xc1], [0x81, 0xa1, 0x74, 0xa1, 0x73], [0x85, 0xa1, 0x74, 0xa1, 0x73, 0xa1, 0x6e, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]]) {
    try {
      ws.bytes(Uint8Array.from(junk));
    } catch (e) {
      thrown.push(String(e));
    }
  }
  assert.deepEqual(thrown, []);
  assert.equal(c.state.state, "open", "still connected");
});

test("a v1 session after a v2 one interpolates with the arena's rows again", async (t) => {
  const { c, ws } = await v2client(t);
  assert.ok(c.v2 !== null);
  ws.close(1006);
  t.mock.timers.tick(300);
  await new Promise((r) => setImmediate(r));
  const again = BinarySocket.made.at(-1);
  again.accept(V1_MSGPACK);
  again.deliver({ t: "welcome", you: 3, room: "r", tick: 9, tick_rate: 30, map: "m", protocol: V1_MSGPACK, snap_rate: 30, role: "player", resumed: true, game: "arena" });
  assert.equal(c.v2, null);
  assert.equal(c.snapshots.schema[0].columns.length, 4, "ARENA_ROWS");
  again.deliver({ t: "s", n: 10, b: 0, a: 0, d: new Uint8Array([0, 0]) });
  assert.equal(c.decodeErrors, 1, "a v2 frame on v1 is not a message this session understands");
});
