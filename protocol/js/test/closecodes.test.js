// The close-code table's meanings: which closes are retried, and how unknown ones fall
// back. (Its rows against protocol/src/close.rs: server/src/web.rs.)

import assert from "node:assert/strict";
import { test } from "node:test";

import { CLOSE_CODES, describeClose } from "../src/index.js";

const opened = { opened: true, canRefreshToken: false };

test("closes that must not be retried are not", () => {
  for (const [code, error] of [
    [4001, "token_expired"],
    [4002, "kicked"],
    [4004, "replaced"],
    [1008, "rate_limited"],
    [1008, "spectator_input"],
    [1008, null],
    [1003, "wrong_frame_type"],
    [1007, "invalid_message"],
    [1009, "message_too_large"],
    [1000, null],
  ]) {
    assert.equal(describeClose(code, error, opened).reconnect, false, `${code} ${error}`);
  }
});

test("closes on the network's or the server's side are retried", () => {
  for (const [code, error] of [
    [1001, "shutting_down"],
    [1001, null],
    [1005, null],
    [1006, null],
    [1011, "internal_error"],
    [1012, "room_moved"],
    [1012, null],
    [1008, "slow_consumer"],
    [1008, "heartbeat_timeout"],
  ]) {
    assert.equal(describeClose(code, error, opened).reconnect, true, `${code} ${error}`);
  }
});

test("an expired token is retried only when a fresh one can be had", () => {
  assert.equal(describeClose(4001, "token_expired", opened).reconnect, false);
  const d = describeClose(4001, "token_expired", { opened: true, canRefreshToken: true });
  assert.equal(d.reconnect, true);
  assert.equal(d.freshToken, true);
});

test("a refused handshake is retried with a fresh token, whatever the code", () => {
  const d = describeClose(1006, null, { opened: false, canRefreshToken: true });
  assert.equal(d.reconnect, true);
  assert.equal(d.freshToken, true);
  assert.match(d.text, /Could not connect/);
  assert.equal(describeClose(1006, null, { opened: false, canRefreshToken: false }).reconnect, false);
});

test("client bugs are flagged, unknown codes and reasons are not retried", () => {
  assert.equal(describeClose(1007, "invalid_message", opened).clientBug, true);
  assert.equal(describeClose(4002, "kicked", opened).clientBug, false);
  const policy = describeClose(1008, "something_new", opened);
  assert.deepEqual([policy.reconnect, policy.known], [false, false]);
  assert.match(policy.text, /something_new/);
  const odd = describeClose(4999, null, opened);
  assert.deepEqual([odd.reconnect, odd.known], [false, false]);
  assert.match(odd.text, /4999/);
});

test("the table has one row per (code, error) and a text for each", () => {
  const keys = CLOSE_CODES.map((r) => `${r.code}/${r.error}`);
  assert.equal(new Set(keys).size, keys.length);
  for (const r of CLOSE_CODES) {
    assert.ok(r.text.endsWith("."), r.code);
    assert.ok(["yes", "no", "fresh_token"].includes(r.retry));
  }
});
