// Files the dashboard imports as text (`with { type: "text" }`), so `bun build --compile` embeds them.
// (`*.html` is typed by bun-types as an HTML bundle; routes.ts casts the text import.)
declare module "*/dashboard.css" {
  const text: string;
  export default text;
}
declare module "*/dashboard.js" {
  const text: string;
  export default text;
}
declare module "*/lightweight-charts.standalone.production.js" {
  const text: string;
  export default text;
}
