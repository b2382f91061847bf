// Every relative link in README.md and docs/*.md names a file of the repository, and a `#anchor`
// into a Markdown file names one of its headings (GitHub's slugs). README links nothing outside
// the repository: a user who has only the repository must be able to follow every link.
import { describe, expect, test } from "bun:test";
import { Glob } from "bun";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { ROOT } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const DOCS = ["README.md", ...[...new Glob("docs/*.md").scanSync({ cwd: ROOT })].sort()];

/** The text outside fenced code blocks and inline code spans, line by line (links there are examples). */
function prose(markdown: string): string[] {
  let fenced = false;
  return markdown.split("\n").map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return "";
    }
    return fenced ? "" : line.replace(/`[^`]*`/g, "");
  });
}

/** Link targets: inline `[text](target "title")` and reference definitions `[label]: target`. */
function links(markdown: string): { line: number; target: string }[] {
  const found: { line: number; target: string }[] = [];
  prose(markdown).forEach((text, i) => {
    for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+["'(][^)]*)?\)/g)) found.push({ line: i + 1, target: m[1]! });
    const def = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(text);
    if (def) found.push({ line: i + 1, target: def[1]! });
  });
  return found;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const h = fenced ? null : /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const slug = h[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

/** What is wrong with one relative link of `file`, or null. */
function brokenLink(file: string, target: string): string | null {
  const hash = target.indexOf("#");
  const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
  const anchor = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
  const absolute = path === "" ? join(ROOT, file) : resolve(ROOT, dirname(file), path);
  const inRepo = relative(ROOT, absolute);
  if (inRepo.startsWith("..") || isAbsolute(inRepo)) return `${target}: outside the repository`;
  if (!existsSync(absolute)) return `${target}: no such file (${inRepo})`;
  if (anchor !== null && anchor !== "" && statSync(absolute).isFile() && absolute.endsWith(".md")) {
    if (!headingAnchors(readFileSync(absolute, "utf8")).has(anchor)) return `${target}: ${inRepo} has no heading #${anchor}`;
  }
  return null;
}

describe("documentation links", () => {
  test("the pages are there", () => {
    for (const page of ["README.md", "docs/architecture.md", "docs/sources.md", "docs/stores.md", "docs/pocketbase.md", "docs/stream.md", "docs/operations.md", "docs/development.md", "docs/benchmarks.md"])
      expect(DOCS).toContain(page);
  });

  for (const file of DOCS)
    test(`${file}: every relative link resolves`, () => {
      const broken = links(readFileSync(join(ROOT, file), "utf8"))
        .filter((l) => !isExternal(l.target))
        .flatMap((l) => {
          const why = brokenLink(file, l.target);
          return why ? [`${file}:${l.line}: ${why}`] : [];
        });
      expect(broken).toEqual([]);
    });

  test("README links nothing outside the repository", () => {
    const outside = links(readFileSync(join(ROOT, "README.md"), "utf8"))
      .filter((l) => isExternal(l.target) || brokenLink("README.md", l.target)?.endsWith("outside the repository"))
      .map((l) => `README.md:${l.line}: ${l.target}`);
    expect(outside).toEqual([]);
  });

  test("the checker finds what it must", () => {
    expect([...headingAnchors("# A b\n## Materialised rollups (Postgres)\n```\n# not a heading\n```\n## A b\n## `x` and y.")]).toEqual([
      "a-b",
      "materialised-rollups-postgres",
      "a-b-1",
      "x-and-y",
    ]);
    expect(links("[a](x.md) `[b](y.md)` [c](z.md#q \"t\")\n```\n[d](w.md)\n```\n[e]: v.md").map((l) => l.target)).toEqual(["x.md", "z.md#q", "v.md"]);
    expect(brokenLink("README.md", "docs/no-such-page.md")).toMatch(/no such file/);
    expect(brokenLink("README.md", "../shared/DESIGN.md")).toMatch(/outside the repository/);
    expect(brokenLink("README.md", "docs/architecture.md#no-such-heading")).toMatch(/has no heading/);
    expect(brokenLink("README.md", "docs/architecture.md")).toBeNull();
  });
});
