import assert from "node:assert/strict";
import { test } from "node:test";

import { ServerClock } from "../src/index.js";

test("the server tick comes from the least-delayed pong", () => {
  const c = new ServerClock();
  c.reset(30, 100, 0);
  // The server is at tick 130 + t·30/s at local time 1000 + t: one tick per 33.3 ms.
  const serverAt = (local) => 130 + ((local - 1000) * 30) / 1000;
  // A symmetric 60 ms round trip: the pong's tick is read halfway.
  c.pong(1000, 1060, Math.floor(serverAt(1030)));
  assert.equal(c.rtt, 60);
  assert.ok(Math.abs(c.serverTick(1060) - serverAt(1060)) < 1, `${c.serverTick(1060)}`);
  // A slow, lopsided pong (stuck on the way back) does not move the estimate.
  const before = c.serverTick(3000);
  c.pong(2000, 2400, Math.floor(serverAt(2020)));
  assert.equal(c.rtt, 400);
  assert.equal(c.minRtt, 60);
  assert.equal(c.serverTick(3000), before);
});

test("the stream clock follows the earliest snapshot arrivals and ignores jitter", () => {
  const c = new ServerClock();
  c.reset(30, 0, 0);
  const ms = 1000 / 30;
  // Snapshot n is sent at n·ms and arrives 50 ms later, plus 0–40 ms of jitter.
  const jitter = [0, 40, 10, 30, 0, 20, 40, 0, 5, 35];
  for (let n = 1; n <= 300; n++) c.snapshot(n, n * ms + 50 + jitter[n % jitter.length]);
  // On time, the newest snapshot's tick: the clock tracks the least-delayed arrivals.
  const now = 300 * ms + 50;
  assert.ok(Math.abs(c.streamTick(now) - 300) < 0.3, `${c.streamTick(now)}`);
});

test("a stream far behind (a sleeping tab) resets to the arrival", () => {
  const c = new ServerClock();
  c.reset(30, 0, 0);
  c.snapshot(10, 10_000);
  assert.equal(c.streamTick(10_000), 10);
  c.snapshot(11, 60_000); // a minute later, only one tick on: the server paused
  assert.equal(c.streamTick(60_000), 11);
});
