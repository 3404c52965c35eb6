// The subprotocols this SDK speaks and how each encodes a message.
//
// `rallypoint.v2.msgpack` and `rallypoint.v1.msgpack`: one MessagePack map per binary frame
// (v2 differs only in its snapshots, which v2.js decodes); `rallypoint.v1.json`: one JSON
// object per text frame. The MessagePack codec is @msgpack/msgpack, vendored in
// ../vendor (pinned and checksummed, see README.md). In a browser the page loads it as a
// classic script (`window.MessagePack`); in Node it is required from the vendor folder on
// first use; a caller may also pass its own `{encode, decode}`.
//
// Must not open sockets or keep state beyond the loaded codec.

/** @typedef {import("../index.js").MsgpackCodec} MsgpackCodec */

import { V2_MSGPACK } from "./v2.js";

export { V2_MSGPACK };
export const V1_MSGPACK = "rallypoint.v1.msgpack";
export const V1_JSON = "rallypoint.v1.json";

/**
 * Preference order when the caller names none: v2 where the server speaks it, else v1's
 * MessagePack (a server without v2 picks the second entry).
 */
export const DEFAULT_PROTOCOLS = Object.freeze([V2_MSGPACK, V1_MSGPACK]);

/** The file name of the vendored codec, relative to this module. */
const VENDORED = "../vendor/msgpack-3.1.3.min.js";

/** @type {MsgpackCodec | null} */
let loaded = null;

/**
 * The MessagePack codec: `window.MessagePack` when the page loaded it, else the vendored
 * file (Node).
 * @returns {Promise<MsgpackCodec>}
 */
export async function vendoredMsgpack() {
  if (loaded) return loaded;
  const g = /** @type {{MessagePack?: MsgpackCodec}} */ (globalThis);
  if (g.MessagePack) {
    loaded = g.MessagePack;
  } else if (isNode()) {
    // The vendored file is a UMD bundle: CommonJS for Node (vendor/package.json says so).
    // The specifier is a variable so that browser bundlers leave this branch alone.
    const nodeModule = "node:module";
    const { createRequire } = await import(nodeModule);
    loaded = /** @type {MsgpackCodec} */ (createRequire(import.meta.url)(VENDORED));
  } else {
    throw new Error(
      `no MessagePack codec: load ${VENDORED.slice(3)} with a <script> tag before the SDK, ` +
        "or pass {msgpack: {encode, decode}}",
    );
  }
  return loaded;
}

/** Whether this runs in Node (its `process` global names a Node version). */
function isNode() {
  const p = /** @type {{process?: {versions?: {node?: string}}}} */ (globalThis).process;
  return typeof p?.versions?.node === "string";
}

/**
 * Encoder and decoder for a negotiated subprotocol.
 * @param {string} protocol
 * @param {MsgpackCodec} msgpack
 * @returns {{binary: boolean, encode: (m: object) => Uint8Array | string, decode: (d: unknown) => unknown}}
 */
export function codecFor(protocol, msgpack) {
  if (protocol === V1_JSON) {
    return {
      binary: false,
      encode: (m) => JSON.stringify(m),
      decode: (d) => {
        if (typeof d !== "string") throw new Error("binary frame on json");
        return JSON.parse(d);
      },
    };
  }
  if (protocol === V1_MSGPACK || protocol === V2_MSGPACK) {
    return {
      binary: true,
      encode: (m) => msgpack.encode(m),
      decode: (d) => {
        if (typeof d === "string") throw new Error("text frame on msgpack");
        return msgpack.decode(toBytes(d));
      },
    };
  }
  throw new Error(`unsupported subprotocol ${protocol}`);
}

/**
 * A binary frame's payload as bytes (an ArrayBuffer in browsers, a Buffer or an array of
 * Buffers from `ws` depending on its binaryType).
 * @param {unknown} d
 * @returns {Uint8Array}
 */
function toBytes(d) {
  if (d instanceof ArrayBuffer) return new Uint8Array(d);
  if (ArrayBuffer.isView(d)) return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  throw new Error("unexpected binary frame payload");
}
