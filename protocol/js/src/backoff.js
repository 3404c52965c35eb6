// Reconnect delays: exponential backoff with jitter, so a restarted server is not hit by
// every client in the same millisecond, and a dead one is not hammered.
//
// Pure: the random source is a parameter; no timers here.

/** @typedef {import("../index.js").BackoffOptions} BackoffOptions */

/** @type {Readonly<Required<BackoffOptions>>} */
export const DEFAULT_BACKOFF = Object.freeze({
  /** The first retry comes quickly: most drops are a blip, and resume has a grace period. */
  firstDelayMs: 250,
  /** Doubling stops here, so a client keeps trying at a steady pace. */
  maxDelayMs: 8000,
  /** ±20 %: enough to spread a crowd over a few hundred ms at the first retry. */
  jitter: 0.2,
  /** 12 attempts is about a minute: past the server's resume grace (15 s by default). */
  maxAttempts: 12,
});

/**
 * The delay before retry number `attempt` (1 for the first retry).
 * @param {number} attempt 1, 2, …
 * @param {Required<BackoffOptions>} opts
 * @param {number} random a number in [0, 1), e.g. `Math.random()`
 * @param {number} [firstDelayMs] overrides `opts.firstDelayMs` for this series (a server
 *   that said it is restarting gets a little more time)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, opts, random, firstDelayMs = opts.firstDelayMs) {
  const n = Math.max(1, Math.floor(attempt));
  const base = Math.min(opts.maxDelayMs, firstDelayMs * 2 ** (n - 1));
  return base * (1 - opts.jitter + 2 * opts.jitter * random);
}
