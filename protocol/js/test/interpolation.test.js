import assert from "node:assert/strict";
import { test } from "node:test";

import { SnapshotBuffer, lerpAngle, rowObject } from "../src/index.js";

const player = (id, x, y, aim = 0, hp = 100, score = 0, flags = 0) => [id, 0, x, y, aim, hp, score, flags];
const close = (a, b) => Math.abs(a - b) < 1e-9;

test("positions are interpolated between the snapshots around the render tick", () => {
  const b = new SnapshotBuffer();
  b.push(10, [player(1, 0, 0)]);
  b.push(12, [player(1, 2, -1)]);
  const v = b.at(11.5);
  assert.deepEqual([v.from, v.to, v.alpha], [10, 12, 0.75]);
  assert.deepEqual(v.rows[0].slice(0, 4), [1, 0, 1.5, -0.75]);
});

test("angles go the short way round", () => {
  assert.ok(close(lerpAngle(3.0, -3.0, 0.5), Math.PI) || close(lerpAngle(3.0, -3.0, 0.5), -Math.PI));
  assert.ok(close(lerpAngle(0.1, -0.1, 0.5), 0));
  const b = new SnapshotBuffer();
  b.push(0, [player(1, 0, 0, Math.PI - 0.1)]);
  b.push(1, [player(1, 0, 0, -Math.PI + 0.1)]);
  const aim = b.at(0.5).rows[0][4];
  assert.ok(close(Math.abs(aim), Math.PI), `aim ${aim} crosses ±π, not 0`);
});

test("discrete fields come from the older snapshot", () => {
  const b = new SnapshotBuffer();
  b.push(0, [player(1, 0, 0, 0, 100, 1, 0)]);
  b.push(2, [player(1, 1, 0, 0, 40, 2, 1)]);
  const row = b.at(1.9).rows[0];
  assert.deepEqual(row.slice(5), [100, 1, 0]);
  assert.deepEqual(b.at(2).rows[0].slice(5), [40, 2, 1], "until the newer one is reached");
});

test("a jump past teleportDistance is not glided", () => {
  const b = new SnapshotBuffer({ teleportDistance: 3 });
  b.push(0, [player(1, 0, 0)]);
  b.push(1, [player(1, 20, 5)]);
  assert.deepEqual(b.at(0.9).rows[0].slice(2, 4), [0, 0]);
  assert.deepEqual(b.at(1).rows[0].slice(2, 4), [20, 5]);
});

test("entities appear and disappear when render time reaches the snapshot that says so", () => {
  const b = new SnapshotBuffer();
  b.push(0, [player(1, 0, 0), [7, 1, 5, 5, 10, 0, 1]]);
  b.push(1, [player(1, 1, 0), player(2, 9, 9)]);
  const mid = b.at(0.5).rows;
  assert.deepEqual(mid.map((r) => r[0]), [1, 7], "the projectile until tick 1, the new player from it");
  assert.deepEqual(b.at(1).rows.map((r) => r[0]), [1, 2]);
});

test("projectile velocities are linear, other kinds and extra columns pass through", () => {
  const b = new SnapshotBuffer();
  b.push(0, [[7, 1, 0, 0, 10, 0, 3, 99], [5, 2, 1, 1, 1], [4, 9, 0, 0, 50]]);
  b.push(1, [[7, 1, 1, 0, 20, 0, 3, 98], [5, 2, 1, 1, 0], [4, 9, 2, 0, 60]]);
  const [shot, pickup, unknown] = b.at(0.5).rows;
  assert.deepEqual(shot, [7, 1, 0.5, 0, 15, 0, 3, 99]);
  assert.deepEqual(pickup, [5, 2, 1, 1, 1]);
  assert.deepEqual(unknown, [4, 9, 1, 0, 50], "unknown kind: x, y only");
});

test("outside the buffer: the nearest snapshot, no extrapolation; out-of-order pushes ignored", () => {
  const b = new SnapshotBuffer({ capacity: 3 });
  assert.equal(b.at(5), null);
  for (const t of [1, 2, 3, 4]) b.push(t, [player(1, t, 0)]);
  assert.equal(b.push(3, []), false);
  assert.equal(b.at(0).rows[0][2], 2, "the oldest kept (capacity 3)");
  assert.equal(b.at(99).rows[0][2], 4);
});

test("rowObject names the arena's columns", () => {
  assert.deepEqual(rowObject(player(3, 1, 2, 0.5, 80, 4, 2)), {
    id: 3, kind: 0, type: "player", x: 1, y: 2, aim: 0.5, hp: 80, score: 4, flags: 2,
  });
  assert.equal(rowObject([3, 0, 1, 2]), null, "too short for a player");
  assert.equal(rowObject([3, 42, 1, 2]), null, "unknown kind");
});
