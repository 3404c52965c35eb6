// Round-trip time and the server's tick, estimated two ways.
//
// - From pings: a `pong` carries the room's latest tick when the server answered. Taking
//   that moment as the middle of the round trip gives the offset between local time and
//   the server's tick; the sample with the smallest round trip among the recent ones is
//   the least distorted, so it wins. `serverTick(now)` is the server's tick now: what a
//   prediction or a lag-compensated shot needs.
// - From snapshots: the tick of the snapshots as they arrive, i.e. the server's tick less
//   the one-way delay. The estimate follows the earliest arrivals (the least delayed) and
//   drifts slowly otherwise, so jitter does not shake it. `streamTick(now)` is what an
//   interpolating renderer needs: render time = stream time − the interpolation delay.
//
// Pure state: no sockets, no clock (every time is a parameter, local milliseconds).

/** Pong samples kept for the minimum-RTT choice. */
const RTT_SAMPLES = 8;
/** How much of a late snapshot's error the stream clock absorbs per snapshot. */
const STREAM_DRIFT = 0.02;

export class ServerClock {
  /** @param {number} tickRate ticks per second */
  constructor(tickRate = 30) {
    this.tickRate = tickRate;
    /** Round-trip time of the last pong (ms), or null before one. */
    this.rtt = /** @type {number | null} */ (null);
    /** @type {{rtt: number, offset: number}[]} */
    this.samples = [];
    /** Stream clock: tick `base` at local time `at`. */
    this.stream = /** @type {{base: number, at: number} | null} */ (null);
  }

  /**
   * A new session: its tick rate, and `welcome.tick` received at `now`.
   * @param {number} tickRate
   * @param {number} tick
   * @param {number} now
   */
  reset(tickRate, tick, now) {
    this.tickRate = tickRate > 0 ? tickRate : 30;
    this.samples.length = 0;
    this.stream = { base: tick, at: now };
    // Until a pong says better: the welcome is at most one way old.
    this.samples.push({ rtt: Infinity, offset: tick - (now * this.tickRate) / 1000 });
  }

  /**
   * A pong arrived.
   * @param {number} sentAt local time the ping left (ms)
   * @param {number} receivedAt local time the pong arrived (ms)
   * @param {number} tick the room's tick in the pong
   * @returns {number} the round-trip time (ms)
   */
  pong(sentAt, receivedAt, tick) {
    const rtt = Math.max(0, receivedAt - sentAt);
    this.rtt = rtt;
    // The tick was the latest completed one: on average half a tick old when read.
    const middle = sentAt + rtt / 2;
    this.samples.push({ rtt, offset: tick + 0.5 - (middle * this.tickRate) / 1000 });
    while (this.samples.length > RTT_SAMPLES) this.samples.shift();
    return rtt;
  }

  /** The smallest round trip among the recent pongs (ms), or null before one. */
  get minRtt() {
    const finite = this.samples.filter((s) => Number.isFinite(s.rtt));
    return finite.length ? Math.min(...finite.map((s) => s.rtt)) : null;
  }

  /**
   * The server's tick at local time `now` (fractional), or 0 before a session.
   * @param {number} now
   */
  serverTick(now) {
    if (this.samples.length === 0) return 0;
    const best = this.samples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    return (now * this.tickRate) / 1000 + best.offset;
  }

  /**
   * A snapshot for `tick` arrived at `now`.
   * @param {number} tick
   * @param {number} now
   */
  snapshot(tick, now) {
    const predicted = this.streamTick(now);
    if (this.stream === null || tick > predicted || tick < predicted - this.tickRate) {
      // Ahead of the estimate (less delayed than any before), or far behind it (the tab
      // slept, the server stalled): this arrival is the new reference.
      this.stream = { base: tick, at: now };
    } else {
      this.stream.base += (tick - predicted) * STREAM_DRIFT;
    }
  }

  /**
   * The tick of the snapshot arriving at local time `now` (fractional), or 0 before one.
   * @param {number} now
   */
  streamTick(now) {
    if (this.stream === null) return 0;
    return this.stream.base + ((now - this.stream.at) * this.tickRate) / 1000;
  }
}
