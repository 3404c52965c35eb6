// One player on a cluster, for the Rust cluster trial (tests/tests/external/nodes.rs):
// connects with the SDK through `/match` and reports on stdout, one JSON object per line,
// what a game would see: `welcome` (with the node `/match` named, and the host it
// connected to), `moved`, `close`. Leaves (close 1000) and exits when stdin ends.
//
// Environment: RALLYPOINT_MATCH (comma-separated node URLs to ask `/match`),
// RALLYPOINT_TOKEN, RALLYPOINT_ROOM.

import WebSocket from "ws";

import { Client } from "../src/index.js";

const say = (m) => process.stdout.write(JSON.stringify(m) + "\n");

const match = (process.env.RALLYPOINT_MATCH ?? "").split(",").filter(Boolean);
const client = new Client({
  url: match[0],
  match,
  room: process.env.RALLYPOINT_ROOM,
  token: process.env.RALLYPOINT_TOKEN,
  WebSocket,
  matchTimeoutMs: 2000,
  reconnect: { firstDelayMs: 100, maxDelayMs: 1000, maxAttempts: 60 },
});
let host = null;
let node = null;
client.on("matched", (m) => {
  host = new URL(m.url).host;
  node = m.node;
});
client.on("moved", (m) => {
  host = new URL(m.url).host;
  node = null;
  say({ t: "moved", url: m.url });
});
client.on("welcome", (w) => say({ t: "welcome", you: w.you, resumed: w.resumed, room: w.room, node, host }));
client.on("close", (c) => say({ t: "close", code: c.code, reconnect: c.reconnect }));
client.on("state", (s) => s.state === "closed" && say({ t: "closed", text: s.reason?.text ?? null }));
process.stdin.resume();
process.stdin.on("end", () => {
  client.close();
  setTimeout(() => process.exit(0), 200);
});
client.connect();
