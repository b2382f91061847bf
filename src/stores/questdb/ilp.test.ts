// ILP escapes: a tag value can hold ILP's separators escaped, never a line break.
import { expect, test } from "bun:test";
import { str, tag } from "./ilp.ts";
import { testTimeout } from "../../../test/timeout.ts";

testTimeout();

test("tag values escape spaces, commas, equals signs and backslashes", () => {
  expect(tag("a b,c=d\\e")).toBe("a\\ b\\,c\\=d\\\\e");
  expect(tag("PKN.WA")).toBe("PKN.WA");
});

test("a line break in a tag value is refused, not written as a second line", () => {
  expect(() => tag("stooq\nbars,symbol=X")).toThrow(/line break in a tag value/);
  expect(() => tag("a\rb")).toThrow(/line break/);
});

test("string fields escape quotes, backslashes and newlines", () => {
  expect(str('say "hi"\\\n')).toBe('"say \\"hi\\"\\\\\\\n"');
});
