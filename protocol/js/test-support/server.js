// A real `rallypoint` server for the tests: started in dev mode on free loopback ports,
// its ports read from its `listening` log line, killed when the test ends.
//
// The binary: $RALLYPOINT_BIN (the Rust test that runs this suite sets it to the binary
// cargo just built), else target/debug/rallypoint under $CARGO_TARGET_DIR or the
// repository root.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import net from "node:net";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const START_TIMEOUT_MS = 30_000;

/** The server binary, or a clear error saying how to build it. */
export function serverBinary() {
  const candidates = [
    process.env.RALLYPOINT_BIN,
    process.env.CARGO_TARGET_DIR && path.join(process.env.CARGO_TARGET_DIR, "debug/rallypoint"),
    path.join(REPO, "target/debug/rallypoint"),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`no rallypoint binary (looked at ${candidates.join(", ")}): run \`cargo build\` first`);
  }
  return found;
}

/**
 * Starts a dev-mode server; `t.after` stops it.
 * @param {import("node:test").TestContext} t
 * @param {string[]} [args] extra command-line arguments
 */
export async function startServer(t, args = []) {
  const child = spawn(
    serverBinary(),
    ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json",
      "--assets", path.join(REPO, "assets"), ...args],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: "info" } },
  );
  const logs = [];
  const server = new TestServer(logs);
  // Clients first, and their closing handshakes finished: a client that outlived its
  // server would keep reconnecting, or wait out `ws`'s 30 s close timeout.
  t.after(async () => {
    await Promise.all([...server.clients].map((c) => closed(c)));
    child.kill("SIGKILL");
  });
  createInterface({ input: child.stderr }).on("line", (l) => logs.push(l));
  const ports = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${logs.join("\n")}`)), START_TIMEOUT_MS);
    child.on("exit", (code) => reject(new Error(`server exited (${code}):\n${logs.join("\n")}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      logs.push(line);
      let v;
      try {
        v = JSON.parse(line);
      } catch {
        return;
      }
      if (v?.fields?.message === "listening") {
        clearTimeout(timer);
        resolve({ game: v.fields.game, admin: v.fields.admin });
      }
    });
  });
  server.game = ports.game;
  server.admin = ports.admin;
  return server;
}

export class TestServer {
  constructor(logs) {
    /** host:port of the game and admin ports. */
    this.game = "";
    this.admin = "";
    /** Every log line so far. */
    this.logs = logs;
    /** Clients closed before the server stops (`track`). */
    this.clients = new Set();
  }

  /** Closes `client` when the test ends, before the server is stopped. */
  track(client) {
    this.clients.add(client);
    return client;
  }

  get playUrl() {
    return `ws://${this.game}/play`;
  }

  /** A dev-mode token for `sub`. */
  async token(sub, name = sub, extra = {}) {
    const q = new URLSearchParams({ sub, name, ...extra });
    const res = await fetch(`http://${this.game}/dev/token?${q}`);
    if (!res.ok) throw new Error(`/dev/token: HTTP ${res.status}`);
    return (await res.json()).token;
  }

  /** `POST /admin/kick?sub=` */
  async kick(sub) {
    const res = await fetch(`http://${this.admin}/admin/kick?sub=${encodeURIComponent(sub)}`, { method: "POST" });
    if (!res.ok) throw new Error(`kick: HTTP ${res.status} ${await res.text()}`);
  }
}

/**
 * A TCP relay in front of the server whose `cut()` drops every connection through it at
 * once, the way a network failure does: no close frame, so the client sees 1006 and the
 * server a lost peer (which keeps the entity for the resume grace period).
 * @param {import("node:test").TestContext} t
 * @param {string} upstream host:port
 */
export async function startRelay(t, upstream) {
  const [host, port] = [upstream.slice(0, upstream.lastIndexOf(":")), Number(upstream.slice(upstream.lastIndexOf(":") + 1))];
  const sockets = new Set();
  const server = net.createServer((down) => {
    const up = net.connect(port, host);
    for (const s of [down, up]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return {
    addr: `127.0.0.1:${server.address().port}`,
    cut() {
      for (const s of sockets) s.resetAndDestroy();
    },
  };
}

/**
 * Resolves with the first `type` event of `client` that satisfies `pred`; rejects after
 * `ms` milliseconds with what was awaited.
 */
export function next(client, type, pred = () => true, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} event within ${ms} ms (state ${JSON.stringify(client.state)})`));
    }, ms);
    const off = client.on(type, (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args[0]);
    });
  });
}

/** Closes `client` and resolves once its socket is closed (at most 2 s). */
async function closed(client) {
  const done = client.ws === null ? Promise.resolve() : next(client, "close", () => true, 2000).catch(() => {});
  client.close();
  await done;
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
