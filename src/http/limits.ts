// The bounds on what one HTTP request may ask of the server, in one place: whatever a client
// sends, the work, the memory and the response of a request stay under these. Each is checked
// before the work starts and refused with a 400 that names the limit (README: "HTTP limits").
// Page sizes (`limit=`) are per route, next to their query schema, up to `server.maxPageSize`.

/** The query string (after `?`), bytes as sent (percent-encoded). */
export const MAX_QUERY_BYTES = 16_384;
/** Distinct query parameters in one request (no route takes more than ten). */
export const MAX_QUERY_PARAMS = 32;
/** Items of a comma-separated list parameter (`symbols=` of /api/ws and /api/stream). */
export const MAX_LIST_ITEMS = 1_000;
/** Indicators in one /api/indicators `set=`. */
export const MAX_INDICATORS = 32;
/** Indicator values in one /api/indicators page: rows × indicators. */
export const MAX_INDICATOR_CELLS = 250_000;
/** Runs /api/audit reads for one page when filtering by `kind`; a page that reaches it ends early, with `next`. */
export const MAX_AUDIT_SCAN = 5_000;
/** Issues listed in one 400, and the characters of each message (input is never echoed whole). */
export const MAX_ISSUES = 20;
export const MAX_MESSAGE_CHARS = 300;
