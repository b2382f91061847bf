// Reads bun's JUnit report and prints the failures and one closing line for CI:
// "N passed, N failed, N skipped". Exits 1 when the report is missing or shows no test at all.
const file = process.argv[2] ?? "test-artifacts/junit.xml";
const f = Bun.file(file);
if (!(await f.exists())) {
  console.error(`no test report at ${file}`);
  process.exit(1);
}
const xml = await f.text();
const attr = (tag: string, name: string) => Number(new RegExp(`<${tag}\\b[^>]*\\b${name}="(\\d+)"`).exec(xml)?.[1] ?? NaN);
const tests = attr("testsuites", "tests");
const failures = attr("testsuites", "failures") + (attr("testsuites", "errors") || 0);
const skipped = attr("testsuites", "skipped") || 0;
for (const m of xml.matchAll(/<testcase\b[^>]*name="([^"]*)"[^>]*classname="([^"]*)"[^>]*>\s*<failure\b[^>]*?(?:message="([^"]*)")?/g))
  console.log(`FAIL ${m[2]} > ${m[1]}${m[3] ? `: ${m[3]}` : ""}`);
if (!Number.isFinite(tests) || tests === 0) {
  console.error("the test report shows no test run");
  process.exit(1);
}
console.log(`${tests - failures - skipped} passed, ${failures} failed, ${skipped} skipped`);
process.exit(failures > 0 ? 1 : 0);
export {};
