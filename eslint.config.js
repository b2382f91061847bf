// Size rules of docs/architecture.md ("Style"): no file over 600 lines, no function over 150.
// Unit tests beside the code (src/**/*.test.ts) are not code: their describe blocks may run long;
// generated files (the dashboard bundle, the API client types) are not written by hand.
// ESLint runs only these two rules; import layering is dependency-cruiser's (.dependency-cruiser.cjs).
import tsParser from "@typescript-eslint/parser";

export default [
  { ignores: ["node_modules/**", "dist/**", ".services/**", "src/http/dashboard/*.js", "src/http/client/api.ts", "src/**/*.test.ts"] },
  {
    files: ["src/**/*.ts"],
    languageOptions: { parser: tsParser, ecmaVersion: "latest", sourceType: "module" },
    linterOptions: { reportUnusedDisableDirectives: "error", noInlineConfig: true },
    rules: {
      "max-lines": ["error", { max: 600, skipBlankLines: false, skipComments: false }],
      "max-lines-per-function": ["error", { max: 150, skipBlankLines: false, skipComments: false, IIFEs: true }],
    },
  },
];
