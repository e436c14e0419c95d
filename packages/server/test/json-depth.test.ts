import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { jsonNestingExceeds } from "../src/json-depth.js";

const nested = (levels: number, open = "[", close = "]") => `${open.repeat(levels)}${close.repeat(levels)}`;

describe("jsonNestingExceeds", () => {
  test("counts arrays and objects together, up to the limit inclusive", () => {
    assert.equal(jsonNestingExceeds(nested(64), 64), false);
    assert.equal(jsonNestingExceeds(nested(65), 64), true);
    const mixed = `${'{"a":['.repeat(32)}1${"]}".repeat(32)}`;
    assert.equal(jsonNestingExceeds(mixed, 64), false);
    assert.equal(jsonNestingExceeds(`[${mixed}]`, 64), true);
  });

  test("siblings do not add up", () => {
    const wide = `[${Array.from({ length: 1000 }, () => nested(10)).join(",")}]`;
    assert.equal(jsonNestingExceeds(wide, 11), false);
    assert.equal(jsonNestingExceeds(wide, 10), true);
  });

  test("brackets inside strings do not count, escaped quotes do not end a string", () => {
    assert.equal(jsonNestingExceeds(JSON.stringify({ a: "[".repeat(500) }), 2), false);
    assert.equal(jsonNestingExceeds(JSON.stringify({ a: `\\"${"{".repeat(500)}` }), 2), false);
    assert.equal(jsonNestingExceeds(JSON.stringify({ a: `"${"[".repeat(500)}` }), 2), false);
    // An escaped backslash before a quote: the quote ends the string, the brackets after it count.
    assert.equal(jsonNestingExceeds(`["\\\\",${nested(5)}]`, 5), true);
    assert.equal(jsonNestingExceeds(`["\\\\",${nested(4)}]`, 5), false);
  });

  test("text that is not JSON is left to JSON.parse", () => {
    assert.equal(jsonNestingExceeds(`"${"[".repeat(100)}`, 3), false);
    assert.equal(jsonNestingExceeds("]]]]]]]][[[", 3), false);
    assert.equal(jsonNestingExceeds("", 3), false);
  });
});
