// Layer rules of docs/architecture.md ("Layers"): a module may import only from its own
// folder or from a folder below it. Order, top to bottom:
const layers = [
  "src/main\\.ts$",
  "src/cli/",
  "src/serve\\.ts$",
  "src/config/",
  "src/http/",
  "src/scheduler/",
  "src/monitor/",
  "src/pipeline/",
  "src/stream/",
  "src/sinks/",
  "src/sources/",
  "src/stores/",
  "src/universes/",
  "src/domain/",
  "src/lib/",
];

const upward = layers.slice(1).map((layer, i) => ({
  name: `no-upward-from-${layer.replace(/[^a-z]/g, "")}`,
  comment: `${layer} sits below ${layers.slice(0, i + 1).join(", ")}: it must not import them`,
  severity: "error",
  from: { path: `^${layer}` },
  to: { path: layers.slice(0, i + 1).map((l) => `^${l}`) },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: "no-cycle",
      comment: "no import cycle between files",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "lib-is-the-base",
      comment: "src/lib imports nothing of the project outside itself",
      severity: "error",
      from: { path: "^src/lib/" },
      to: { path: "^src/", pathNot: "^src/lib/" },
    },
    {
      name: "src-does-not-import-tests-or-scripts",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(test|scripts)/" },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      from: { path: "^src/" },
      to: { couldNotResolve: true, pathNot: "^(bun|bun:.*|node:.*)$" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "\\.test\\.ts$" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: [".ts", ".js", ".json"], exportsFields: ["exports"], conditionNames: ["bun", "import", "default"] },
  },
};
