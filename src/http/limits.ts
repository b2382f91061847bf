// The bounds on what one HTTP request may ask of the server, in one place: whatever a client
// sends, the work, the memory and the response of a request stay under these. A request over one
// is refused before the work starts, with a 400 that names the limit, or (the audit scan) its
// page ends early with `next` (docs/operations.md, "HTTP limits").

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
/** Page sizes (`limit=`): /api/runs, /api/quarantine, /api/audit; /api/gaps' runs. /api/bars and
 * /api/indicators take `server.maxPageSize` (10000 by default). */
export const MAX_RECORDS_PAGE = 1_000;
export const MAX_GAPS_PAGE = 10_000;
/** Quarantine records one replay request may name or select. */
export const MAX_REPLAY_RECORDS = 10_000;
/** /api/freshness `days`, /api/rates buckets per window. */
export const MAX_FRESHNESS_DAYS = 366;
export const MAX_RATE_BUCKETS = 2_000;
