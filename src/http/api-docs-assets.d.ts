// Scalar's browser bundle, imported with `{ type: "file" }` (src/http/api-docs.ts): its path, which
// `bun build --compile` embeds in the executable.
declare module "*/api-reference/dist/browser/standalone.js" {
  const path: string;
  export default path;
}
