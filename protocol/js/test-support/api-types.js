// Type-level test, run by `tsc --noEmit` (not by node --test): the implementation in
// src/ must be assignable to the hand-written declarations in index.d.ts, so the two
// cannot drift apart.

import * as impl from "../src/index.js";

/** @type {typeof import("../index.js")} */
export const declared = impl;
