// What each WebSocket close means to a player, and whether the client reconnects by itself.
//
// The rule: reconnect when the cause is on the network or the server's side and a new
// connection is likely to work (the server keeps a dropped player's character for its
// resume grace period, so a quick reconnect continues the game). Do not reconnect when
// the cause is this client (a bug would repeat forever), an operator's decision, or
// another tab of the same account (two tabs would keep replacing each other).
// Codes and `error.code` values are those of protocol/PROTOCOL.md.

const CLIENT_BUG = "This is a bug in the game client; reload the page to play again.";

/**
 * Describes a close.
 * @param {number} code the close code (1006 when the connection dropped without one)
 * @param {string|null} errorCode the `code` of the `error` message before the close
 * @param {{opened: boolean, canRefreshToken: boolean}} ctx whether the socket ever
 *   opened, and whether a fresh token can be obtained without the player
 * @returns {{text: string, reconnect: boolean, freshToken: boolean}}
 */
export function describeClose(code, errorCode, ctx) {
  const r = (text, reconnect, freshToken = false) => ({ text, reconnect, freshToken });
  if (!ctx.opened) {
    // The browser hides the HTTP answer of a refused handshake (401, 429, 503 all look
    // like 1006), so retry with backoff and a fresh token in case ours was the problem.
    return r(
      "Could not connect: the server is unreachable or refused the connection.",
      true,
      true,
    );
  }
  switch (code) {
    case 1000:
      return r("The server ended the session.", false);
    case 1001:
      return r("The server is restarting.", true);
    case 1002:
      return r(`The connection broke the WebSocket protocol. ${CLIENT_BUG}`, false);
    case 1003:
      return r(`The client sent the wrong kind of frame for its protocol. ${CLIENT_BUG}`, false);
    case 1005:
    case 1006:
      return r("Connection lost.", true);
    case 1007:
      return r(`The server could not understand a message from this client. ${CLIENT_BUG}`, false);
    case 1008:
      switch (errorCode) {
        case "rate_limited":
          return r("Disconnected for sending too many messages.", false);
        case "spectator_input":
          return r(`Spectators cannot play, but this client sent input. ${CLIENT_BUG}`, false);
        case "slow_consumer":
          // Usually a sleeping laptop or a stalled network; the server kept the player.
          return r("This client fell too far behind the game.", true);
        case "heartbeat_timeout":
          return r("The server heard nothing from this client for too long.", true);
        default:
          return r(`Disconnected by server policy (${errorCode || "no reason given"}).`, false);
      }
    case 1009:
      return r(`A message was too large for the server. ${CLIENT_BUG}`, false);
    case 1011:
      return r("The server hit an internal error.", true);
    case 1015:
      return r("The secure connection (TLS) failed.", false);
    case 4001:
      return ctx.canRefreshToken
        ? r("Your session token expired; signing in again.", true, true)
        : r("Your session token expired. Sign in again to keep playing.", false);
    case 4002:
      return r("You were kicked by an operator.", false);
    case 4004:
      return r(
        "Your account connected from another tab or device, so this one was closed.",
        false,
      );
    default:
      return r(`Disconnected (close code ${code}${errorCode ? ", " + errorCode : ""}).`, false);
  }
}
