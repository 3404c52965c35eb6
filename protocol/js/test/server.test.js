// The SDK against a real server (test/support/server.js starts one per test): every
// subprotocol, every token carriage, resume after a dropped connection, no reconnect
// after a kick (4002) or a replacement (4004), inputs and acks, pings and the clock, and
// interpolated rows from live snapshots; on v2, checked state hashes, a keyframe after
// resume and after a resync, and the same picture as a v1 client's.

import assert from "node:assert/strict";
import { test } from "node:test";
import WebSocket from "ws";

import { Client, V1_JSON, V1_MSGPACK, V2_MSGPACK } from "../src/index.js";
import { next, sleep, startRelay, startServer } from "../test-support/server.js";

/** A client for `sub` on `server`, closed when the test ends. */
async function client(server, sub, opts = {}) {
  const token = opts.token ?? (await server.token(sub));
  return server.track(new Client({ url: server.playUrl, WebSocket, token, ...opts }));
}

/** Connects and waits for the welcome and a snapshot that contains us. */
async function play(c) {
  const welcome = next(c, "welcome");
  c.connect();
  const w = await welcome;
  await next(c, "snapshot", (s) => s.ents.some((r) => r[0] === w.you));
  return w;
}

for (const protocol of [V2_MSGPACK, V1_MSGPACK, V1_JSON]) {
  test(`plays over ${protocol}`, async (t) => {
    const server = await startServer(t);
    const c = await client(server, "ana", { protocols: [protocol] });
    const states = [];
    c.on("state", (s) => states.push(s.state));
    const events = [];
    c.on("event", (e) => events.push(e.e));
    const map = next(c, "map");
    const w = await play(c);
    assert.equal(c.protocol, protocol);
    assert.equal(w.protocol, protocol);
    assert.equal(w.role, "player");
    assert.equal(w.resumed, false);
    assert.ok(w.you > 0 && w.tick_rate > 0);
    assert.deepEqual(states, ["connecting", "open"]);
    const m = await map;
    assert.ok(m.w > 0 && Array.isArray(m.walls), "the map event, by name");
    assert.ok(events.includes("round_start") && events.includes("player"), events.join());
    assert.equal(c.decodeErrors, 0);
    assert.ok(w.max_speed > 0 && w.acceleration > 0, "the movement tuning, for prediction");
    assert.equal(w.schema !== undefined, protocol === V2_MSGPACK, "a schema on v2 only");
  });
}

test("v2 is what the SDK speaks by default: keyframe, deltas, checked hashes, no desync", async (t) => {
  const server = await startServer(t);
  const c = await client(server, "vera");
  const w = await play(c);
  assert.equal(c.protocol, V2_MSGPACK);
  const first = c.snapshots.snaps[0];
  assert.ok(first, "a snapshot");
  await next(c, "snapshot", () => c.stats.hashChecks >= 2, 5000);
  const s = c.stats;
  assert.equal(s.keyframes, 1, "one keyframe, on join");
  assert.ok(s.deltas > 10, `${s.deltas} deltas`);
  assert.deepEqual([s.desyncs, s.resyncs, s.ignored, c.decodeErrors], [0, 0, 0, 0]);
  assert.ok(s.bytes.delta > 0 && s.bytes.keyframe > 0);
  // Our own row, named by the welcome's schema: the v1 columns, then v2's velocity.
  const me = c.snapshots.latest()?.rows.find((r) => r[0] === w.you);
  assert.ok(me && me.length === 10, `${me}`);
  assert.deepEqual(c.snapshots.schema[0].columns.map((col) => col[0]), ["aim", "hp", "score", "flags", "vx", "vy"]);
});

test("match: one node answers /match with itself, in the room asked for, and a drop resumes through it", async (t) => {
  const server = await startServer(t);
  const c = await client(server, "mo", { match: true, room: "m1" });
  const matched = [];
  c.on("matched", (m) => matched.push(m));
  const w = await play(c);
  assert.equal(w.room, "m1");
  assert.deepEqual(matched, [{ url: `ws://${server.game}/play?room=m1`, room: "m1", node: "local", resume: false }]);
  c.ws?.terminate?.(); // the `ws` package: drop without a close frame
  const back = await next(c, "welcome");
  assert.equal(back.resumed, true);
  assert.equal(back.you, w.you);
  assert.equal(matched.length, 2);
  assert.equal(matched[1].resume, true, "/match knew the account still had its seat");
});

test("v2: resuming after a dropped connection starts from a keyframe", async (t) => {
  const server = await startServer(t);
  const relay = await startRelay(t, server.game);
  const c = await client(server, "wes", { url: `ws://${relay.addr}/play`, token: await server.token("wes") });
  await play(c);
  await next(c, "snapshot", (s) => s.frame?.kind === "delta");
  const frames = [];
  c.on("welcome", () => frames.push("welcome"));
  c.on("snapshot", (s) => frames.push(s.frame?.kind));
  relay.cut();
  await next(c, "snapshot", () => frames.length >= 3, 10_000);
  assert.deepEqual(frames.slice(0, 3), ["welcome", "keyframe", "delta"]);
  assert.equal(c.welcome?.resumed, true);
  assert.equal(c.stats.desyncs, 0);
});

test("v2: a state that drifts from the server's is caught by the hash and healed by a keyframe", async (t) => {
  const server = await startServer(t);
  const c = await client(server, "xia");
  const w = await play(c);
  // Corrupt what this client holds (its own health), as a decoder bug would.
  const rec = c.v2?.recs.get(w.you);
  assert.ok(rec, "we hold our own record");
  rec.f[1] += 1;
  const desync = await next(c, "desync", () => true, 5000);
  assert.equal(desync.kind, "hash_mismatch");
  const healed = await next(c, "snapshot", (s) => s.frame?.kind === "keyframe", 5000);
  assert.ok(healed.ents.some((r) => r[0] === w.you));
  assert.deepEqual([c.stats.desyncs, c.stats.resyncs, c.stats.keyframes], [1, 1, 2]);
  // The server counted the resync.
  const metrics = await (await fetch(`http://${server.admin}/metrics`)).text();
  assert.match(metrics, /^rallypoint_room_v2_resyncs_total\{[^}]*\} 1$/m);
});

test("v1 and v2 clients in one room see the same entities at the same tick, within the quantization", async (t) => {
  const server = await startServer(t);
  const v1 = await client(server, "yan", { protocols: [V1_MSGPACK], room: "same" });
  const v2 = await client(server, "zoe", { protocols: [V2_MSGPACK], room: "same" });
  await play(v1);
  await play(v2);
  // Both walk, so there is motion to reconstruct.
  const walk = setInterval(() => {
    v1.sendInput({ mx: 1, my: 0.3, aim: 0, fire: false });
    v2.sendInput({ mx: -0.5, my: 1, aim: 1, fire: false });
  }, 33);
  t.after(() => clearInterval(walk));
  await sleep(600);
  let compared = 0;
  for (let i = 0; i < 10; i++) {
    const a = await next(v2, "snapshot");
    const b = v1.snapshots.snaps.find((s) => s.tick === a.tick) ?? (await next(v1, "snapshot", (s) => s.tick === a.tick));
    const rows = b.ents ?? b.rows;
    assert.deepEqual(a.ents.map((r) => r[0]), rows.map((r) => r[0]).sort((x, y) => x - y), `ids at tick ${a.tick}`);
    for (const r1 of rows) {
      const r2 = a.ents.find((r) => r[0] === r1[0]);
      // One position step (1/64) of dead reckoning plus half a step of rounding.
      assert.ok(Math.abs(r1[2] - r2[2]) <= 1.5 / 64 && Math.abs(r1[3] - r2[3]) <= 1.5 / 64, `${r1} vs ${r2}`);
      if (r1[1] === 0) {
        assert.ok(Math.abs(r1[4] - r2[4]) <= Math.PI / 1024 + 1e-6, `aim ${r1[4]} vs ${r2[4]}`);
        assert.deepEqual(r1.slice(5, 8), r2.slice(5, 8), "hp, score, flags exactly");
      }
      compared += 1;
    }
  }
  assert.ok(compared >= 20, `${compared} rows compared`);
});

test("every token carriage is accepted", async (t) => {
  const server = await startServer(t);
  const carriages = [
    ["header", WebSocket],
    ["subprotocol", WebSocket],
    ["query", WebSocket],
  ];
  // Node's own WebSocket (22 and later, or 20 with --experimental-websocket, as the Rust
  // trial runs this suite) can only carry the token in a subprotocol entry, like a browser.
  if (typeof globalThis.WebSocket === "function") carriages.push(["subprotocol", globalThis.WebSocket]);
  for (const [tokenIn, WS] of carriages) {
    const sub = `carrier-${tokenIn}-${WS === WebSocket ? "ws" : "builtin"}`;
    const c = await client(server, sub, { tokenIn, WebSocket: WS });
    const w = await play(c);
    assert.equal(c.tokenIn, tokenIn);
    assert.ok(w.you > 0, sub);
    c.close();
  }
  // "auto" picks the header for `ws` and the subprotocol entry elsewhere.
  assert.equal(new Client({ url: server.playUrl, WebSocket }).tokenIn, "header");
  if (globalThis.WebSocket) assert.equal(new Client({ url: server.playUrl }).tokenIn, "subprotocol");
});

test("a refused token is retried with a fresh one from the callback", async (t) => {
  const server = await startServer(t);
  const asked = [];
  const good = await server.token("fresh-one");
  const c = await client(server, "fresh-one", {
    token: async ({ fresh }) => {
      asked.push(fresh);
      return asked.length === 1 ? "not-a-jwt" : good;
    },
    reconnect: { firstDelayMs: 20 },
  });
  const w = await play(c);
  assert.ok(w.you > 0);
  assert.deepEqual(asked, [false, true]);
  assert.equal(c.lastClose?.opened, false, "the first handshake was refused");
  assert.match(String(c.lastClose?.message), /401/, "ws reports the HTTP status");
});

test("resumes the same entity after the connection drops", async (t) => {
  const server = await startServer(t);
  const relay = await startRelay(t, server.game);
  const c = await client(server, "dora", { url: `ws://${relay.addr}/play`, token: await server.token("dora") });
  const first = await play(c);
  const states = [];
  c.on("state", (s) => states.push(s.state));
  const welcomed = next(c, "welcome");
  relay.cut();
  const again = await welcomed;
  assert.equal(again.resumed, true, "welcome.resumed");
  assert.equal(again.you, first.you, "the same entity");
  assert.equal(c.lastClose?.code, 1006);
  assert.equal(c.lastClose?.reconnect, true);
  assert.deepEqual(states, ["resuming", "resuming", "open"], "waiting, then the attempt, then open");
  // The new connection's inputs count from 1 again and are applied.
  await next(c, "snapshot");
  const sent = c.sendInput({ mx: 1, my: 0, aim: 0, fire: false });
  assert.equal(sent?.seq, 1);
  await next(c, "snapshot", (s) => s.ack >= 1);
});

test("a kick (4002) closes for good", async (t) => {
  const server = await startServer(t);
  const c = await client(server, "erin", { reconnect: { firstDelayMs: 10 } });
  await play(c);
  const closed = next(c, "close");
  await server.kick("erin");
  const info = await closed;
  assert.equal(info.code, 4002);
  assert.equal(info.errorCode, "kicked");
  assert.equal(info.reconnect, false);
  await sleep(500);
  assert.equal(c.state.state, "closed");
  assert.equal(c.state.reason?.code, 4002);
  assert.equal(c.attempts, 1, "no reconnect");
});

test("a second connection of the account replaces the first (4004), which stays closed", async (t) => {
  const server = await startServer(t);
  const a = await client(server, "fay", { reconnect: { firstDelayMs: 10 } });
  const first = await play(a);
  const closed = next(a, "close");
  const b = await client(server, "fay", { protocols: [V1_JSON] });
  const second = await play(b);
  const info = await closed;
  assert.equal(info.code, 4004);
  assert.equal(info.errorCode, "replaced");
  assert.equal(info.reconnect, false);
  assert.equal(second.you, first.you, "the replacement takes over the entity");
  assert.equal(second.resumed, true);
  await sleep(500);
  assert.equal(a.state.state, "closed");
  assert.equal(a.attempts, 1, "the replaced client does not fight back");
  assert.equal(b.state.state, "open");
});

test("inputs get seq numbers, acks settle them, and the player moves", async (t) => {
  const server = await startServer(t);
  const c = await client(server, "gus");
  const w = await play(c);
  const x0 = c.snapshots.latest()?.rows.find((r) => r[0] === w.you)?.[2];
  c.on("snapshot", (s, pending) => {
    for (const p of pending) assert.ok(p.seq > s.ack, "pending inputs are the unacknowledged ones");
  });
  for (let i = 1; i <= 20; i++) {
    const r = c.sendInput({ mx: i % 2 ? 1 : -1, my: 0, aim: 0, fire: false });
    assert.equal(r?.seq, i);
    assert.equal(c.inputs.pending().at(-1), r, "kept until acknowledged");
    await sleep(1000 / w.tick_rate);
  }
  await next(c, "snapshot", (s) => s.ack === 20);
  assert.equal(c.inputs.pending().length, 0);
  assert.equal(c.inputs.ack, 20);
  assert.ok(c.inputs.lastAckLatencyMs !== null && c.inputs.lastAckLatencyMs < 1000);
  for (let i = 0; i < 15; i++) {
    c.sendInput({ mx: 1, my: 0, aim: 0, fire: false });
    await sleep(1000 / w.tick_rate);
  }
  await next(c, "snapshot", (s) => s.ack === c.inputs.seq);
  const x1 = c.snapshots.latest()?.rows.find((r) => r[0] === w.you)?.[2];
  assert.ok(x0 !== undefined && x1 !== undefined && x1 > x0, `moved right: ${x0} → ${x1}`);
  assert.throws(() => c.sendInput({ mx: NaN, my: 0, aim: 0, fire: false }), RangeError);
});

test("pings measure the round trip and the clocks follow the server's tick", async (t) => {
  const server = await startServer(t);
  const c = await client(server, "hal", { pingIntervalMs: 100 });
  await play(c);
  const pong = await next(c, "pong");
  assert.ok(pong.rtt >= 0 && pong.rtt < 500, `rtt ${pong.rtt}`);
  await sleep(300);
  const snap = await next(c, "snapshot");
  const now = performance.now();
  // On loopback the server's tick and the stream's differ by well under two ticks.
  assert.ok(Math.abs(c.serverTick(now) - snap.tick) < 2, `server tick ${c.serverTick(now)} vs ${snap.tick}`);
  assert.ok(Math.abs(c.streamTick(now) - snap.tick) < 2, `stream tick ${c.streamTick(now)} vs ${snap.tick}`);
  const view = c.view(now);
  assert.ok(view !== null);
  const delay = c.interpolationDelayTicks();
  assert.ok(Math.abs(snap.tick - delay - view.tick) < 2, `render tick ${view.tick}, delay ${delay}`);
  assert.ok(view.from <= view.tick && view.tick <= view.to + 1e-9 || view.from === view.to);
  assert.ok(view.rows.some((r) => r[0] === c.welcome?.you), "we are in the picture");
});

test("chat reaches the room", async (t) => {
  const server = await startServer(t);
  const a = await client(server, "ida");
  const b = await client(server, "jon");
  await play(a);
  await play(b);
  const heard = next(b, "chat");
  assert.equal(a.sendChat("hello"), true);
  const line = await heard;
  assert.equal(line.text, "hello");
  assert.equal(line.name, "ida");
  assert.throws(() => a.sendChat("x".repeat(201)), RangeError);
});
