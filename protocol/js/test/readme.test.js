// The README's Node example, run as written against a real server, so the documentation
// cannot drift from the API.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { startServer } from "../test-support/server.js";

const PACKAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The code block after the `<!-- example: node` marker. */
function example() {
  const readme = readFileSync(path.join(PACKAGE, "README.md"), "utf8");
  const after = readme.split("<!-- example: node")[1];
  assert.ok(after, "the README marks its Node example");
  const block = after.match(/```js\n([\s\S]*?)```/);
  assert.ok(block, "a js block follows the marker");
  return block[1];
}

test("the README's example runs against a server", async (t) => {
  const server = await startServer(t);
  // Inside the package, so that `@rallypoint/client` resolves to it (a self-reference).
  const file = path.join(PACKAGE, `.readme-example-${process.pid}.mjs`);
  writeFileSync(file, example());
  t.after(() => rmSync(file, { force: true }));
  const { stdout } = await promisify(execFile)(process.execPath, [file], {
    env: { ...process.env, RALLYPOINT_URL: `ws://${server.game}` },
    timeout: 20_000,
  });
  assert.match(stdout, /^state: connecting$/m);
  assert.match(stdout, /^welcome: entity \d+ in \S+, rallypoint\.v2\.msgpack, resumed false$/m);
  assert.match(stdout, /^player \d+ is bot$/m);
  assert.match(stdout, /^after 3 s: rtt \d+\.\d ms, drawn at tick \d+\.\d, at \(-?\d+\.\d\d, -?\d+\.\d\d\), \d+ inputs unacknowledged$/m);
  assert.match(stdout, /^close 1000 : Closed by this client\. \(reconnect: false\)$/m);
});
