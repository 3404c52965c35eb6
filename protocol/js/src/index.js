// @rallypoint/client: the JavaScript SDK for Rallypoint game servers.
//
// The entry point re-exports the modules; each says what it does in its own header.
// Types are in ../index.d.ts; the README shows a complete example.

export { Client, TokenError } from "./client.js";
export { CLOSE_CODES, describeClose } from "./closecodes.js";
export { DEFAULT_BACKOFF, backoffDelay } from "./backoff.js";
export { ServerClock } from "./clock.js";
export { DEFAULT_PROTOCOLS, V1_JSON, V1_MSGPACK, V2_MSGPACK, codecFor, vendoredMsgpack } from "./codec.js";
export { Emitter } from "./emitter.js";
export { InputHistory } from "./inputs.js";
export { ARENA_ROWS, SnapshotBuffer, lerp, lerpAngle, rowObject } from "./interpolation.js";
export { V2SchemaError, V2State, describeV2Error, rowSchemaOf } from "./v2.js";
export { ArenaPredictor, ArenaSpace, clampMove, stepBody } from "./arena.js";
