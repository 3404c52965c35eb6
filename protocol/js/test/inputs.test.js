import assert from "node:assert/strict";
import { test } from "node:test";

import { InputHistory } from "../src/index.js";

const input = (mx) => ({ mx, my: 0, aim: 0, fire: false });

test("seq counts from 1 and acks settle everything up to them", () => {
  const h = new InputHistory();
  const sent = [1, 2, 3, 4, 5].map((i) => h.push(input(i), i * 10));
  assert.deepEqual(sent.map((r) => r.seq), [1, 2, 3, 4, 5]);
  assert.equal(h.acknowledge(3, 100), 3);
  assert.deepEqual(h.pending().map((r) => r.seq), [4, 5], "the replay list, oldest first");
  assert.equal(h.lastAckLatencyMs, 70, "from sending seq 3 to its ack");
  assert.equal(h.acknowledge(2, 110), 0, "acks never go back");
  assert.equal(h.acknowledge(3, 110), 0, "a repeated ack settles nothing");
  assert.equal(h.ack, 3);
  assert.equal(h.acknowledge(9, 120), 2, "an ack past what was sent settles all");
  assert.deepEqual(h.pending(), []);
});

test("a new connection starts over", () => {
  const h = new InputHistory();
  h.push(input(1), 0);
  h.push(input(1), 0);
  h.reset();
  assert.equal(h.push(input(1), 0).seq, 1);
  assert.equal(h.ack, 0);
  assert.equal(h.pending().length, 1);
});

test("at most `capacity` inputs wait; the oldest are dropped and counted", () => {
  const h = new InputHistory(4);
  for (let i = 0; i < 10; i++) h.push(input(i), i);
  assert.deepEqual(h.pending().map((r) => r.seq), [7, 8, 9, 10]);
  assert.equal(h.overflowed, 6);
  assert.equal(h.acknowledge(8, 20), 2);
  assert.deepEqual(h.pending().map((r) => r.seq), [9, 10]);
});
