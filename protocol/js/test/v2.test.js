// The v2 decoder: PROTOCOL.md's golden frames decode to the documented state; the test
// vectors the Rust decoder made (test/vectors/v2.json, kept current by a Rust test) decode
// to the same results, hashes and rows, error for error; and hostile bytes never throw.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { V2State, describeV2Error, rowSchemaOf, vendoredMsgpack } from "../src/index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const msgpack = await vendoredMsgpack();

/** A hex dump of PROTOCOL.md (`<!-- hex:name -->`), as bytes. */
function protocolDump(name) {
  const doc = readFileSync(path.join(HERE, "../../PROTOCOL.md"), "utf8");
  const after = doc.split(`<!-- hex:${name} -->`)[1];
  assert.ok(after, `no dump ${name}`);
  const body = after.split("```\n")[1];
  const hex = body.split("\n").map((l) => l.split("  ")[0]).join(" ").trim().split(/\s+/);
  return Uint8Array.from(hex.map((h) => parseInt(h, 16)));
}

/** `welcome.schema` of the arena, as PROTOCOL.md prints it. */
function arenaSchema() {
  const doc = readFileSync(path.join(HERE, "../../PROTOCOL.md"), "utf8");
  const block = doc.split("`welcome.schema` declares")[1].match(/```json\n([\s\S]*?)```/);
  assert.ok(block, "PROTOCOL.md shows the arena's schema");
  return JSON.parse(block[1]);
}

const fromHex = (s) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const near = (a, b, eps = 1e-6) => Math.abs(a - b) <= eps;

test("PROTOCOL.md's keyframe and delta decode to the documented state", () => {
  const state = new V2State(arenaSchema(), 20);
  const key = state.apply(msgpack.decode(protocolDump("v2-keyframe")));
  assert.equal(key.ok, true, JSON.stringify(key));
  assert.deepEqual(
    [key.tick, key.baseline, key.ack, key.kind, key.hashChecked, key.full],
    [100, null, 42, "keyframe", true, 5],
  );
  assert.deepEqual(state.ids(), [1, 2, 5, 7, 9]);
  const rows = new Map(state.rowsAt(100).map((r) => [r[0], r]));
  // Player 1 at (12.5, 8) running right at 8 units/s, aiming at about 0.5 rad.
  const p1 = rows.get(1);
  assert.deepEqual(p1.slice(0, 4), [1, 0, 12.5, 8]);
  assert.ok(near(p1[4], 0.5, Math.PI / 1024), `aim ${p1[4]}`);
  assert.deepEqual(p1.slice(5), [100, 3, 0, 8, 0]);
  // Player 2 dead at (30, 20.25); the pickup; both projectiles flying.
  assert.deepEqual(rows.get(2).slice(0, 4), [2, 0, 30, 20.25]);
  assert.deepEqual(rows.get(2).slice(5, 8), [0, -1, 1]);
  assert.ok(near(rows.get(2)[4], -2.0, Math.PI / 1024));
  assert.deepEqual(rows.get(5), [5, 2, 20, 15, 1]);
  assert.deepEqual(rows.get(7), [7, 1, 28, 20, -30, 0, 2]);
  assert.deepEqual(rows.get(9), [9, 1, 14, 8.5, 30, 0, 1]);

  const delta = state.apply(msgpack.decode(protocolDump("v2-delta")));
  assert.equal(delta.ok, true, JSON.stringify(delta));
  assert.deepEqual([delta.tick, delta.baseline, delta.ack, delta.removed, delta.full, delta.deltas], [101, 100, 43, 1, 1, 3]);
  assert.deepEqual(state.ids(), [1, 2, 5, 9, 10]);
  // "its new position is (819, 522)" in steps of 1/64.
  const p1b = state.recs.get(1);
  assert.deepEqual([p1b.x, p1b.y, p1b.ref], [819, 522, 101]);
  const after = new Map(state.rowsAt(101).map((r) => [r[0], r]));
  assert.deepEqual(after.get(1).slice(8), [6, 3], "the new velocity");
  assert.deepEqual(after.get(2).slice(0, 4), [2, 0, 3, 4], "respawned");
  assert.deepEqual(after.get(5).at(-1), 0, "the pickup was taken");
  // Projectile 9 flew as predicted: 30 units/s for one tick at 20 Hz.
  assert.deepEqual(after.get(9).slice(0, 4), [9, 1, 15.5, 8.5]);
});

test("PROTOCOL.md's hash example", () => {
  const state = new V2State(arenaSchema(), 20);
  const body = Uint8Array.from([0, 1, 5, 5, 0x80, 0x14, 0x80, 0x0f, 1]);
  const r = state.apply({ t: "s", n: 10, b: 0, a: 0, d: body });
  assert.equal(r.ok, true);
  assert.equal(state.hash(), 0x3ffd98bd);
  assert.equal(new V2State(arenaSchema(), 20).hash(), 0x811c9dc5, "an empty state");
});

test("the Rust decoder's test vectors decode the same, error for error", () => {
  const vectors = JSON.parse(readFileSync(path.join(HERE, "vectors/v2.json"), "utf8"));
  let frames = 0;
  let errors = 0;
  for (const stream of vectors.streams) {
    const state = new V2State(vectors.schema, vectors.tick_rate);
    stream.steps.forEach((step, i) => {
      const where = `${stream.name}, step ${i}`;
      let result;
      try {
        result = state.apply(msgpack.decode(fromHex(step.frame)));
      } catch (e) {
        // The MessagePack decoder refuses what the Rust header parser calls malformed
        // (bytes after the map, a truncated map).
        assert.ok(!(e instanceof assert.AssertionError), e);
        state.reset();
        result = { ok: false, error: { kind: "malformed" }, resync: true };
      }
      frames += 1;
      if (step.ok) {
        assert.equal(result.ok, true, `${where}: ${JSON.stringify(result)} vs ${JSON.stringify(step.ok)}`);
        const o = step.ok;
        assert.deepEqual(
          [result.tick, result.baseline, result.ack, result.kind, result.hashChecked, result.removed, result.full, result.deltas],
          [o.tick, o.baseline, o.ack, o.kind, o.hash_checked, o.removed, o.full, o.deltas],
          where,
        );
      } else {
        errors += 1;
        assert.equal(result.ok, false, `${where}: applied, but Rust said ${JSON.stringify(step.error)}`);
        const { reason: _rust, ...want } = step.error;
        const { reason: _js, ...got } = result.error;
        assert.deepEqual(got, want, where);
        assert.equal(result.resync, step.error.kind !== "awaiting_keyframe", where);
        assert.ok(describeV2Error(result.error).length > 0);
      }
      assert.equal(state.tick, step.tick, where);
      assert.equal(state.hash(), step.hash, where);
      if (step.rows) {
        assert.deepEqual(state.rowsAt(step.tick), step.rows, `${where}: rows`);
        assert.deepEqual(state.rowsAt(step.ahead.tick), step.ahead.rows, `${where}: rows ahead`);
      }
    });
  }
  assert.ok(frames > 200 && errors > 30, `${frames} frames, ${errors} refused`);
});

test("hostile bytes never throw out of the decoder, and a failure drops the state", () => {
  const vectors = JSON.parse(readFileSync(path.join(HERE, "vectors/v2.json"), "utf8"));
  const honest = vectors.streams[0].steps.map((s) => fromHex(s.frame));
  const state = new V2State(vectors.schema, vectors.tick_rate);
  let seed = 7;
  const rand = (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let refused = 0;
  for (let i = 0; i < 20000; i++) {
    const bytes = Array.from(honest[rand(honest.length)]);
    for (let j = 0; j <= rand(4); j++) {
      const at = rand(bytes.length + 1);
      switch (rand(3)) {
        case 0:
          bytes[Math.min(at, bytes.length - 1)] = rand(256);
          break;
        case 1:
          bytes.length = at;
          break;
        default:
          bytes.splice(at, 0, rand(256));
      }
    }
    if (rand(2) === 0) state.apply(msgpack.decode(honest[0]));
    let msg;
    try {
      msg = msgpack.decode(Uint8Array.from(bytes));
    } catch {
      continue; // the client counts these as undecodable frames
    }
    const r = state.apply(msg);
    if (!r.ok) {
      refused += 1;
      assert.equal(state.tick, null);
      assert.equal(state.size, 0);
    }
  }
  assert.ok(refused > 1000, `${refused} refused`);
  // Not even a frame of the wrong shape.
  for (const msg of [null, 5, "s", [], { t: "s" }, { t: "s", n: -1, b: 0, a: 0, d: new Uint8Array() }, { t: "s", n: 1.5 }]) {
    const r = state.apply(msg);
    assert.equal(r.ok, false);
    assert.equal(r.error.kind, "malformed");
  }
});

test("a schema the client cannot use is refused up front", () => {
  for (const bad of [
    null,
    { position_scale: 0, kinds: [] },
    { position_scale: 64, kinds: [{ kind: 0, name: "a", fields: [] }, { kind: 0, name: "b", fields: [] }] },
    { position_scale: 64, kinds: [{ kind: 0, name: "a", fields: [{ name: "v", type: "int" }], velocity: [0, 0] }] },
    { position_scale: 64, kinds: [{ kind: 0, name: "a", fields: [{ name: "v", type: "angle", bits: 17 }] }] },
    { position_scale: 64, kinds: [{ kind: 0, name: "a", fields: [{ name: "v", type: "complex" }] }] },
  ]) {
    assert.throws(() => new V2State(bad, 30), { name: "V2SchemaError" }, JSON.stringify(bad));
  }
  assert.throws(() => new V2State(arenaSchema(), 0), { name: "V2SchemaError" });
});

test("the interpolation schema follows the wire schema: reals linear, angles angular", () => {
  const rows = rowSchemaOf(arenaSchema());
  assert.deepEqual(rows[0], {
    name: "player",
    columns: [["aim", "angle"], ["hp", "discrete"], ["score", "discrete"], ["flags", "discrete"], ["vx", "linear"], ["vy", "linear"]],
  });
  assert.deepEqual(rows[1].columns.map((c) => c[1]), ["linear", "linear", "discrete"]);
});
