import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULT_BACKOFF, backoffDelay } from "../src/index.js";

test("delays double from the first and stop at the maximum", () => {
  const mid = (n) => backoffDelay(n, DEFAULT_BACKOFF, 0.5);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 12].map(mid), [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
  assert.equal(backoffDelay(1, DEFAULT_BACKOFF, 0.5, 1000), 1000, "a restarting server gets a second");
  assert.equal(backoffDelay(2, DEFAULT_BACKOFF, 0.5, 1000), 2000);
});

test("jitter spreads each delay by ±20 %", () => {
  assert.equal(backoffDelay(3, DEFAULT_BACKOFF, 0), 800);
  assert.ok(Math.abs(backoffDelay(3, DEFAULT_BACKOFF, 0.999999) - 1200) < 1e-3);
  const spread = new Set(Array.from({ length: 50 }, (_, i) => backoffDelay(2, DEFAULT_BACKOFF, i / 50)));
  assert.equal(spread.size, 50, "different clients wait different times");
});

test("the default gives up after about a minute", () => {
  let total = 0;
  for (let n = 1; n <= DEFAULT_BACKOFF.maxAttempts; n++) total += backoffDelay(n, DEFAULT_BACKOFF, 0.5);
  assert.ok(total > 45_000 && total < 75_000, `${total} ms`);
});
