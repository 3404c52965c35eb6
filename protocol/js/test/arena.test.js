// The arena's movement rules against the Rust simulation (test/vectors/arena-movement.json,
// written and kept current by a Rust test), and prediction with reconciliation.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { MAX_UNSEEN } from "../src/arena.js";
import { ArenaPredictor, ArenaSpace, clampMove, stepBody } from "../src/index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const vectors = JSON.parse(readFileSync(path.join(HERE, "vectors/arena-movement.json"), "utf8"));

/** Float tolerance: positions are float32 on a map up to 1000 units. */
const EPS = 1e-4;

test("the same inputs from the same start give the Rust simulation's positions", () => {
  let worst = 0;
  let exact = 0;
  let total = 0;
  for (const s of vectors.scenarios) {
    let tuning = s.tuning;
    let space = new ArenaSpace(s.map, tuning.player_radius);
    const dt = Math.fround(1 / s.tick_rate);
    let body = { x: s.start[0], y: s.start[1], vx: 0, vy: 0 };
    s.steps.forEach((step, i) => {
      if (step.tuning) {
        tuning = step.tuning;
        space = new ArenaSpace(s.map, tuning.player_radius);
      }
      // From the Rust state each step, so one difference cannot hide the next.
      const next = stepBody(body, clampMove(step.input[0], step.input[1]), tuning, space, dt);
      const err = Math.max(...["x", "y", "vx", "vy"].map((k) => Math.abs(next[k] - step[k])));
      assert.ok(err <= EPS, `${s.name}, step ${i}: ${JSON.stringify(next)} vs ${JSON.stringify(step)}`);
      worst = Math.max(worst, err);
      exact += err === 0 ? 1 : 0;
      total += 1;
      body = { x: step.x, y: step.y, vx: step.vx, vy: step.vy };
    });
  }
  assert.ok(total > 1000, `${total} steps`);
  // Bit for bit in practice; the tolerance is for libm's hypot against this one.
  assert.ok(exact > total * 0.99, `${exact} of ${total} exact, worst ${worst}`);
});

test("a whole run replayed from its start stays on the Rust path", () => {
  for (const s of vectors.scenarios) {
    let tuning = s.tuning;
    let space = new ArenaSpace(s.map, tuning.player_radius);
    const dt = Math.fround(1 / s.tick_rate);
    let body = { x: s.start[0], y: s.start[1], vx: 0, vy: 0 };
    let worst = 0;
    for (const step of s.steps) {
      if (step.tuning) {
        tuning = step.tuning;
        space = new ArenaSpace(s.map, tuning.player_radius);
      }
      body = stepBody(body, clampMove(step.input[0], step.input[1]), tuning, space, dt);
      worst = Math.max(worst, Math.hypot(body.x - step.x, body.y - step.y));
    }
    assert.ok(worst < 1e-3, `${s.name}: drifted ${worst} units`);
  }
});

test("inputs are clamped as the server reads them", () => {
  const [cx, cy] = clampMove(3, 4);
  assert.ok(Math.abs(cx - 0.6) < 1e-7 && Math.abs(cy - 0.8) < 1e-7 && Math.hypot(cx, cy) <= 1);
  assert.deepEqual(clampMove(0.25, -0.5), [0.25, -0.5]);
  assert.deepEqual(clampMove(NaN, Infinity), [0, 0]);
  const [x, y] = clampMove(Math.SQRT1_2, Math.SQRT1_2);
  assert.ok(Math.hypot(x, y) <= 1 + 1e-7);
});

/** A predictor on an open 100 × 100 map at 30 Hz, welcomed as player 5. */
function predictor(opts) {
  const p = new ArenaPredictor(opts);
  p.welcome({ t: "welcome", you: 5, tick_rate: 30, role: "player", player_radius: 0.5, max_speed: 8, acceleration: 60 });
  p.event({ t: "event", e: "map", name: "open", w: 100, h: 100, walls: [[60, 0, 5, 100]] });
  return p;
}

const row = (x, y, flags = 0) => [5, 0, x, y, 0, 100, 0, flags];
const snap = (tick, ack, x, y, receivedAt, flags = 0) => ({ tick, ack, ents: [row(x, y, flags)], receivedAt, frame: null });

test("an input moves the own player at once; a snapshot that agrees changes nothing", () => {
  const p = predictor();
  assert.equal(p.position(0), null, "nothing to predict before a snapshot shows us");
  p.reconcile(snap(10, 0, 50, 50, 0), []);
  assert.deepEqual(p.position(0), { x: 50, y: 50 });
  const sent = [];
  for (let seq = 1; seq <= 6; seq++) {
    const r = { seq, fields: { mx: 1, my: 0, aim: 0, fire: false }, sentAt: seq * 33 };
    sent.push(r);
    p.input(r);
  }
  const ahead = p.position(6 * 33 + 40);
  assert.ok(ahead.x > 50.5, `moved before any snapshot confirmed it: ${ahead.x}`);
  // The server applied the first three exactly as predicted: no correction.
  const at3 = p.history.get(3);
  p.reconcile(snap(13, 3, at3.x, at3.y, 200), sent.slice(3));
  assert.equal(p.lastCorrection, 0);
  assert.deepEqual(p.position(1000), { x: p.body.x, y: p.body.y });
});

test("a small correction is smoothed, a large one snaps", () => {
  const p = predictor({ smoothingMs: 100, snapDistance: 2 });
  p.reconcile(snap(10, 0, 50, 50, 0), []);
  const r = { seq: 1, fields: { mx: 0, my: 1, aim: 0, fire: false }, sentAt: 0 };
  p.input(r);
  const predicted = { ...p.body };
  // The server has us 0.3 units further left than predicted (a bump we did not see).
  p.reconcile(snap(11, 1, predicted.x - 0.3, predicted.y, 1000), []);
  assert.ok(Math.abs(p.lastCorrection - 0.3) < 1e-6);
  const drawn = p.position(1000);
  assert.ok(Math.abs(drawn.x - predicted.x) < 1e-6, "drawn where it was, not jumped");
  const later = p.position(1300);
  assert.ok(Math.abs(later.x - (predicted.x - 0.3)) < 0.02, `eased to the server's: ${later.x}`);
  // A respawn across the map: no gliding.
  p.reconcile(snap(12, 1, 10, 10, 1400), []);
  assert.deepEqual(p.position(1400), { x: 10, y: 10 });
  assert.equal(p.snaps, 1);
});

test("the unacknowledged inputs are replayed from the server's position", () => {
  const p = predictor();
  p.reconcile(snap(10, 0, 55, 50, 0), []);
  const inputs = [];
  for (let seq = 1; seq <= 20; seq++) {
    const r = { seq, fields: { mx: 1, my: 0, aim: 0, fire: false }, sentAt: seq * 33 };
    inputs.push(r);
    p.input(r);
  }
  // Running right into the wall at x = 60: stopped touching it, 0.5 + skin short.
  assert.ok(Math.abs(p.body.x - (60 - 0.5 - 1e-3)) < 1e-4, `${p.body.x}`);
  assert.equal(p.body.vx, 0);
  // The server says seq 4 left us 1 unit further down than we thought: the replay of
  // 5..20 ends at the wall again, 1 unit lower.
  const at4 = p.history.get(4);
  p.reconcile(snap(14, 4, at4.x, at4.y + 1, 700), inputs.slice(4));
  assert.ok(Math.abs(p.body.x - (60 - 0.5 - 1e-3)) < 1e-4);
  assert.ok(Math.abs(p.body.y - 51) < 1e-4);
  assert.ok(Math.abs(p.lastCorrection - 1) < 1e-4);
});

test("dead, between rounds, spectating: no prediction", () => {
  const p = predictor();
  p.reconcile(snap(10, 0, 50, 50, 0, 1), []);
  assert.equal(p.position(0), null, "dead");
  p.reconcile(snap(11, 0, 50, 50, 0), []);
  p.event({ t: "event", e: "round_end", round: 1, scores: [], next_tick: 200 });
  p.input({ seq: 1, fields: { mx: 1, my: 0 }, sentAt: 10 });
  assert.deepEqual(p.position(100), { x: 50, y: 50 }, "frozen between rounds");
  p.event({ t: "event", e: "round_start", round: 2, map: "open", end_tick: 9000, score_limit: 10 });
  p.input({ seq: 2, fields: { mx: 1, my: 0 }, sentAt: 50 });
  assert.ok(p.position(200).x > 50);
  const s = new ArenaPredictor();
  s.welcome({ t: "welcome", you: 0, role: "spectator", tick_rate: 30, player_radius: 0.5, max_speed: 8, acceleration: 60 });
  assert.equal(s.ready, false);
  // A server without the movement tuning: nothing is guessed.
  const old = new ArenaPredictor();
  old.welcome({ t: "welcome", you: 3, role: "player", tick_rate: 30, player_radius: 0.5 });
  old.event({ t: "event", e: "map", w: 10, h: 10, walls: [] });
  assert.equal(old.ready, false);
});

test("a tuning event changes the rules from then on", () => {
  const p = predictor();
  p.reconcile(snap(10, 0, 20, 50, 0), []);
  for (let seq = 1; seq <= 30; seq++) p.input({ seq, fields: { mx: 1, my: 0 }, sentAt: seq });
  assert.ok(Math.abs(p.body.vx - 8) < 1e-6);
  p.event({ t: "event", e: "tuning", player_radius: 0.5, max_hp: 100, max_speed: 12, acceleration: 600 });
  p.input({ seq: 31, fields: { mx: 1, my: 0 }, sentAt: 31 });
  assert.ok(Math.abs(p.body.vx - 12) < 1e-6);
});

test("after a respawn on v1 the first velocity is the server's: one step from rest at the spawn", () => {
  // The truth: the server puts the player at rest at (10, 20) and steps input 7 at once,
  // then input 8 the next tick.
  const truth = predictor();
  const right = { mx: 1, my: 0, aim: 0, fire: false };
  const first = truth.step({ x: 10, y: 20, vx: 0, vy: 0 }, right);
  const second = truth.step(first, right);
  assert.ok(first.vx > 0, "the first step already has a velocity");

  const p = predictor();
  p.reconcile(snap(10, 4, 50, 50, 0), []);
  for (let seq = 5; seq <= 6; seq++) p.input({ seq, fields: right, sentAt: seq });
  p.reconcile(snap(11, 6, 50, 50, 100, 1), []);
  assert.equal(p.position(100), null, "dead");
  p.event({ t: "event", e: "respawn", id: 5, x: 10, y: 20 });
  p.input({ seq: 7, fields: right, sentAt: 200 });
  const eighth = { seq: 8, fields: right, sentAt: 233 };
  p.input(eighth);
  p.reconcile(snap(20, 7, first.x, first.y, 240), [eighth]);
  assert.ok(Math.abs(p.body.x - second.x) < 1e-6, `${p.body.x} vs ${second.x}`);
  assert.ok(Math.abs(p.body.vx - second.vx) < 1e-6, `${p.body.vx} vs ${second.vx}`);

  // Another player's respawn, or a snapshot that one step does not explain: no guess
  // beyond the usual (at rest).
  const q = predictor();
  q.reconcile(snap(10, 4, 50, 50, 0, 1), []);
  q.event({ t: "event", e: "respawn", id: 9, x: 10, y: 20 });
  q.input({ seq: 5, fields: right, sentAt: 200 });
  q.reconcile(snap(20, 5, first.x, first.y, 240), []);
  assert.equal(q.body.vx, 0);
  const late = predictor();
  late.reconcile(snap(10, 4, 50, 50, 0, 1), []);
  late.event({ t: "event", e: "respawn", id: 5, x: 10, y: 20 });
  late.input({ seq: 5, fields: right, sentAt: 200 });
  late.reconcile(snap(21, 5, second.x, second.y, 270), []);
  assert.equal(late.body.vx, 0, "two steps from the spawn are not taken for one");
});

test("inputs remembered while dead are bounded: the newest are kept", () => {
  const p = predictor();
  p.reconcile(snap(10, 0, 50, 50, 0, 1), []);
  for (let seq = 1; seq <= 3 * MAX_UNSEEN; seq++) p.input({ seq, fields: { mx: 1, my: 0 }, sentAt: seq });
  assert.equal(p.unseen.size, MAX_UNSEEN);
  assert.ok(p.unseen.has(3 * MAX_UNSEEN) && !p.unseen.has(2 * MAX_UNSEEN));
});
