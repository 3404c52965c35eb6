// Input sequence numbers and ack bookkeeping.
//
// Every input sent gets the next `seq` (1 on each new connection: the server restarts its
// count with every session, resumed or not). A snapshot's `ack` is the last `seq` the
// simulation applied; everything after it is still in flight, and is kept in order so a
// predicting client can replay it on top of the server's state. Only inputs newer than the
// last ack are kept, and at most `capacity` of them: a link stalled that long is not worth
// replaying, so the oldest are dropped (and counted).
//
// Pure state: no sockets, no clock (send times are parameters).

/**
 * @template {Record<string, unknown>} [F=import("../index.js").ArenaInput]
 * @typedef {import("../index.js").InputRecord<F>} InputRecord
 */

/** @template {Record<string, unknown>} [F=import("../index.js").ArenaInput] */
export class InputHistory {
  /** @param {number} [capacity] unacknowledged inputs kept; 128 is over 4 s at 30 Hz */
  constructor(capacity = 128) {
    /** @readonly */
    this.capacity = capacity;
    /** @type {InputRecord<F>[]} */
    this.unacked = [];
    /** The last `seq` handed out on this connection. */
    this.seq = 0;
    /** The last `seq` the server acknowledged on this connection. */
    this.ack = 0;
    /** Inputs dropped unacknowledged because more than `capacity` were in flight. */
    this.overflowed = 0;
    /** Time from sending an input to the snapshot that acknowledged it, last one (ms). */
    this.lastAckLatencyMs = /** @type {number | null} */ (null);
  }

  /** A new connection: `seq` starts over at 1 and nothing is in flight. */
  reset() {
    this.unacked.length = 0;
    this.seq = 0;
    this.ack = 0;
    this.lastAckLatencyMs = null;
  }

  /**
   * Records an input about to be sent and gives it the next `seq`.
   * @param {F} fields the game's input fields
   * @param {number} sentAt local time (ms)
   * @returns {InputRecord<F>}
   */
  push(fields, sentAt) {
    this.seq = (this.seq + 1) >>> 0;
    const record = { seq: this.seq, fields, sentAt };
    this.unacked.push(record);
    if (this.unacked.length > this.capacity) {
      this.unacked.shift();
      this.overflowed += 1;
    }
    return record;
  }

  /**
   * A snapshot acknowledged `ack`: forget every input up to it.
   * @param {number} ack
   * @param {number} now local time (ms) the snapshot arrived
   * @returns {number} how many inputs this ack settled
   */
  acknowledge(ack, now) {
    if (!(ack > this.ack)) return 0; // stale or repeated: acks never go back
    this.ack = ack;
    let n = 0;
    while (n < this.unacked.length && this.unacked[n].seq <= ack) n += 1;
    if (n > 0) {
      this.lastAckLatencyMs = now - this.unacked[n - 1].sentAt;
      this.unacked.splice(0, n);
    }
    return n;
  }

  /**
   * The inputs sent but not yet acknowledged, oldest first (the replay list).
   * @returns {readonly InputRecord<F>[]}
   */
  pending() {
    return this.unacked;
  }
}
