// The client in a cluster (`match`), against a scripted socket and a scripted `/match`:
// every attempt asks where to play, a `moved` URL is used once without asking, an
// endpoint that does not answer is passed over, and `/match`'s refusals mean what its
// statuses say. Timers are mocked, so nothing here waits.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, V1_JSON } from "../src/index.js";
import { scriptedSocket } from "../test-support/socket.js";

const ScriptedSocket = scriptedSocket({ encode: JSON.stringify, decode: JSON.parse }, V1_JSON);

const welcome = (extra = {}) => ({
  t: "welcome", you: 5, room: "r", tick: 100, tick_rate: 30, map: "m", protocol: V1_JSON,
  snap_rate: 30, role: "player", resumed: false, player_radius: 0.5, max_hp: 100, ...extra,
});

const settle = () => new Promise((r) => setImmediate(r));

/** A `/match` answer as `fetch` gives it. */
function answer(status, body, retryAfter = null) {
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: { get: (name) => (name.toLowerCase() === "retry-after" ? retryAfter : null) },
    json: async () => body,
  };
}

const at = (node, room = "r", resume = false) =>
  answer(200, { url: `ws://${node}.test/play?room=${room}`, room, node, resume });

/**
 * A client with `match`, whose `fetch` answers from `script`: a function of the asked URL
 * returning a response, or throwing as an unreachable host does.
 */
function setup(t, script, opts = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  ScriptedSocket.made = [];
  const asked = [];
  const c = new Client({
    url: "ws://a.test/play",
    match: true,
    WebSocket: ScriptedSocket,
    token: "tok",
    protocols: [V1_JSON],
    random: () => 0.5,
    fetch: async (url, init) => {
      asked.push({ url, auth: init.headers.Authorization });
      return script(url);
    },
    ...opts,
  });
  const last = () => ScriptedSocket.made[ScriptedSocket.made.length - 1];
  return { c, asked, last };
}

test("every attempt asks /match and connects where it says; a 1012 without moved asks again", async (t) => {
  let node = "b";
  const { c, asked, last } = setup(t, () => at(node, "r", node === "c"), { room: "r" });
  const matched = [];
  c.on("matched", (m) => matched.push(m.node));
  c.connect();
  await settle();
  assert.deepEqual(asked, [{ url: "http://a.test/match?room=r", auth: "Bearer tok" }]);
  assert.equal(last().url, "ws://b.test/play?room=r");
  last().accept();
  last().deliver(welcome());
  assert.equal(c.state.state, "open");

  node = "c"; // the room reopened elsewhere (its node died, or drained without saying where)
  last().drop(1012);
  t.mock.timers.tick(c.state.retryInMs ?? 0);
  await settle();
  assert.equal(asked.length, 2, "the reconnect asked again");
  assert.equal(last().url, "ws://c.test/play?room=r");
  assert.deepEqual(c.matched, { url: "ws://c.test/play?room=r", room: "r", node: "c", resume: true });
  last().accept();
  last().deliver(welcome({ resumed: true }));
  assert.equal(c.welcome?.resumed, true);
  assert.deepEqual(matched, ["b", "c"]);
});

test("a moved URL is used once, without asking; the reconnect after that asks again", async (t) => {
  const { c, asked, last } = setup(t, () => at("b"));
  c.connect();
  await settle();
  last().accept();
  last().deliver(welcome());
  last().deliver({ t: "moved", url: "ws://d.test/play?room=r" });
  last().drop(1012);
  t.mock.timers.tick(c.state.retryInMs ?? 0);
  await settle();
  assert.equal(asked.length, 1, "moved named the node: no /match");
  assert.equal(last().url, "ws://d.test/play?room=r");
  last().drop(1006); // d died before the welcome
  t.mock.timers.tick(c.state.retryInMs ?? 0);
  await settle();
  assert.equal(asked.length, 2);
  assert.equal(last().url, "ws://b.test/play?room=r");
});

test("an endpoint that does not answer is passed over, and the one that did is asked first", async (t) => {
  const { c, asked, last } = setup(
    t,
    (url) => {
      if (url.startsWith("http://dead.test")) throw new TypeError("fetch failed");
      return at("b");
    },
    { match: ["http://dead.test:7000", "http://alive.test:7000/match"] },
  );
  c.connect();
  await settle();
  assert.deepEqual(asked.map((a) => a.url), ["http://dead.test:7000/match", "http://alive.test:7000/match"]);
  assert.equal(last().url, "ws://b.test/play?room=r");
  last().drop(1006);
  t.mock.timers.tick(c.state.retryInMs ?? 0);
  await settle();
  assert.equal(asked[2].url, "http://alive.test:7000/match");
});

test("no endpoint answering is retried with backoff, its reason visible", async (t) => {
  let up = false;
  const { c, last } = setup(t, () => {
    if (!up) throw new TypeError("fetch failed");
    return at("b");
  });
  c.connect();
  await settle();
  assert.equal(c.state.state, "connecting");
  assert.match(c.state.reason?.text ?? "", /No \/match endpoint answered: a\.test: fetch failed/);
  assert.equal(ScriptedSocket.made.length, 0);
  up = true;
  t.mock.timers.tick(c.state.retryInMs ?? 0);
  await settle();
  assert.equal(last().url, "ws://b.test/play?room=r");
});

test("503 waits for Retry-After; 401 with a fixed token is final; 400 is final", async (t) => {
  let reply = answer(503, { error: "directory_unavailable", message: "the room directory is unavailable" }, "3");
  const { c, last } = setup(t, () => reply);
  c.connect();
  await settle();
  assert.equal(c.state.state, "connecting");
  assert.equal(c.state.retryInMs, 3000, "Retry-After, not the 250 ms first backoff");
  assert.equal(c.state.reason?.errorCode, "directory_unavailable");

  reply = answer(401, { error: "invalid_token", message: "token expired" });
  t.mock.timers.tick(3000);
  await settle();
  assert.equal(c.state.state, "closed");
  assert.equal(c.state.reason?.errorCode, "invalid_token");
  assert.match(c.state.reason?.text ?? "", /\/match answered 401 invalid_token: token expired/);
  assert.equal(ScriptedSocket.made.length, 0);

  reply = answer(400, { error: "bad_request", message: "room names are 1 to 32 characters" });
  c.reconnectNow();
  await settle();
  assert.equal(c.state.state, "closed");
  assert.equal(c.state.reason?.errorCode, "bad_request");
  assert.equal(last(), undefined);
});

test("401 with a token source asks it for a fresh token", async (t) => {
  const fresh = [];
  let reply = answer(401, { error: "invalid_token", message: "token expired" });
  const { c, last } = setup(t, () => reply, {
    token: ({ fresh: f }) => {
      fresh.push(f);
      return f ? "new" : "old";
    },
  });
  c.connect();
  await settle();
  assert.equal(c.state.state, "connecting");
  reply = at("b");
  t.mock.timers.tick(c.state.retryInMs ?? 0);
  await settle();
  assert.deepEqual(fresh, [false, true]);
  assert.equal(last().url, "ws://b.test/play?room=r");
});

test("a server without /match (404) is played at url, in the room asked for", async (t) => {
  const { c, asked, last } = setup(t, () => answer(404, { error: "not_found" }), { room: "mine" });
  c.connect();
  await settle();
  assert.equal(asked.length, 1);
  assert.equal(last().url, "ws://a.test/play?room=mine");
});

test("behind TLS: an answer naming the host /match was asked of over https is played over wss", async (t) => {
  let node = "a";
  const { c, last } = setup(t, () => at(node), { url: "wss://a.test/play" });
  c.connect();
  await settle();
  assert.equal(last().url, "wss://a.test/play?room=r", "the proxy's host: TLS");
  node = "b";
  last().drop(1006);
  t.mock.timers.tick(c.state.retryInMs ?? 0);
  await settle();
  assert.equal(last().url, "ws://b.test/play?room=r", "another node keeps the scheme it gave");
});

test("a /match that never answers is abandoned after matchTimeoutMs and the next endpoint asked", async (t) => {
  ScriptedSocket.made = [];
  const asked = [];
  const c = new Client({
    url: "ws://a.test/play",
    match: ["http://stuck.test", "http://alive.test"],
    matchTimeoutMs: 50,
    WebSocket: ScriptedSocket,
    token: "tok",
    protocols: [V1_JSON],
    random: () => 0.5,
    fetch: (url, init) => {
      asked.push(url);
      if (!url.startsWith("http://stuck.test")) return Promise.resolve(at("b"));
      // Hangs until the client gives up on it, as a blackholed host does.
      return new Promise((_, reject) => init.signal.addEventListener("abort", () => reject(init.signal.reason)));
    },
  });
  t.after(() => c.close());
  const started = performance.now();
  c.connect();
  while (ScriptedSocket.made.length === 0 && performance.now() - started < 5000) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(asked, ["http://stuck.test/match", "http://alive.test/match"]);
  assert.equal(ScriptedSocket.made[0]?.url, "ws://b.test/play?room=r");
  assert.ok(performance.now() - started >= 45, "waited for the timeout");
});
