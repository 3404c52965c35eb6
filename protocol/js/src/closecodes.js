// What each WebSocket close means, and whether a client should reconnect by itself.
//
// The one JavaScript copy of the close-code table of protocol/PROTOCOL.md. The rows the
// server sends (every `CloseReason` of protocol/src/close.rs, with its `error.code`) are
// checked against the Rust enum by a test in server/src/web.rs, so neither side can
// change alone: keep one row per line, in the shape below, for that test to read.
//
// The rule: reconnect when a new connection is likely to work (the network, a restart, a
// stalled client: the server keeps a dropped player's entity for its resume grace period,
// so a quick reconnect continues the game). Never retry what would fail the same way (a
// client bug), what a person decided (a kick), or what would fight another session of the
// same account (replaced: two tabs would replace each other forever).
//
// Pure data and one pure function: no sockets, no clock.

/**
 * @typedef {import("../index.js").CloseCode} CloseCode
 * @typedef {import("../index.js").CloseMeaning} CloseMeaning
 */

/**
 * Every close a client can see. `error` is the `code` of the `{"t":"error"}` message the
 * server sends before it (null: no such message, the close is the transport's own or has
 * no reason). `retry`: "yes", "no", or "fresh_token" (yes when a new token can be had
 * without the player). `clientBug`: the close means this client sent something it must
 * not, and retrying would repeat it.
 * @type {readonly CloseCode[]}
 */
export const CLOSE_CODES = Object.freeze([
  { code: 1000, error: "normal", retry: "no", clientBug: false, text: "The server ended the session." },
  { code: 1001, error: "shutting_down", retry: "yes", clientBug: false, text: "The server is restarting." },
  { code: 1002, error: "protocol_violation", retry: "no", clientBug: true, text: "The connection broke the WebSocket protocol." },
  { code: 1003, error: "wrong_frame_type", retry: "no", clientBug: true, text: "The client sent the wrong kind of frame for its protocol." },
  { code: 1005, error: null, retry: "yes", clientBug: false, text: "Connection lost." },
  { code: 1006, error: null, retry: "yes", clientBug: false, text: "Connection lost." },
  { code: 1007, error: "invalid_message", retry: "no", clientBug: true, text: "The server could not understand a message from this client." },
  { code: 1008, error: "rate_limited", retry: "no", clientBug: false, text: "Disconnected for sending too many messages." },
  { code: 1008, error: "spectator_input", retry: "no", clientBug: true, text: "Spectators cannot play, but this client sent input." },
  { code: 1008, error: "slow_consumer", retry: "yes", clientBug: false, text: "This client fell too far behind the game." },
  { code: 1008, error: "heartbeat_timeout", retry: "yes", clientBug: false, text: "The server heard nothing from this client for too long." },
  { code: 1009, error: "message_too_large", retry: "no", clientBug: true, text: "A message was too large for the server." },
  { code: 1011, error: "internal_error", retry: "yes", clientBug: false, text: "The server hit an internal error." },
  { code: 1012, error: "room_moved", retry: "yes", clientBug: false, text: "The room moved to another server." },
  { code: 1015, error: null, retry: "no", clientBug: false, text: "The secure connection (TLS) failed." },
  { code: 4001, error: "token_expired", retry: "fresh_token", clientBug: false, text: "The session token expired." },
  { code: 4002, error: "kicked", retry: "no", clientBug: false, text: "You were kicked by an operator." },
  { code: 4004, error: "replaced", retry: "no", clientBug: false, text: "Your account connected from another tab or device, so this one was closed." },
]);

/** A handshake that never opened: browsers hide the HTTP status (401, 429, 503 all look
 * like 1006), so retry with backoff and a fresh token in case ours was the problem. */
const REFUSED = Object.freeze({
  code: 1006,
  error: null,
  retry: "fresh_token",
  clientBug: false,
  text: "Could not connect: the server is unreachable or refused the connection.",
});

/**
 * What a close means.
 * @param {number} code the close code (1006 when the connection dropped without one)
 * @param {string | null} errorCode the `code` of the server's `error` message before it
 * @param {{opened: boolean, canRefreshToken: boolean}} ctx whether the socket ever opened,
 *   and whether a fresh token can be had without the player
 * @returns {CloseMeaning}
 */
export function describeClose(code, errorCode, ctx) {
  const row = ctx.opened ? findRow(code, errorCode) : REFUSED;
  if (row === null) {
    // A code or reason this table does not know (another server version, a proxy): say
    // what it was and do not retry.
    const several = CLOSE_CODES.some((r) => r.code === code);
    const text = several
      ? `Disconnected by server policy (${errorCode || "no reason given"}).`
      : `Disconnected (close code ${code}${errorCode ? ", " + errorCode : ""}).`;
    return { code, errorCode, text, clientBug: false, reconnect: false, freshToken: false, known: false };
  }
  return {
    code,
    errorCode,
    text: row.text,
    clientBug: row.clientBug,
    reconnect: row.retry === "yes" || (row.retry === "fresh_token" && ctx.canRefreshToken),
    freshToken: row.retry === "fresh_token",
    known: true,
  };
}

/**
 * The row for a close: the exact (code, error) row; else the code's only row (1001 whose
 * error message was lost, 1006); else null (1008 with a reason we cannot name).
 * @param {number} code
 * @param {string | null} errorCode
 * @returns {CloseCode | null}
 */
function findRow(code, errorCode) {
  const rows = CLOSE_CODES.filter((r) => r.code === code);
  return rows.find((r) => r.error === errorCode) ?? (rows.length === 1 ? rows[0] : null);
}
