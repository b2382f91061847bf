// Redaction of secrets in everything ticksync prints, logs, serves or records: the one place
// that knows what a secret looks like. Two nets, both applied by `redact`:
//   1. by shape: the password of any `scheme://user:password@host` URL, and secret-named query
//      parameters (`?apikey=…`, `&token=…`), wherever they appear in a text;
//   2. by value: every secret the config holds (collected by `collectSecrets` when the config is
//      loaded, valid or not, and registered with `addSecrets`), wherever it appears.
// Base layer: imports nothing of ours.

export const MASK = "***";

/** Field names whose values are secrets (config keys, query parameters, JSON fields). */
// (Not a bare `key`: a config's `key` is a list of key columns.)
export const SECRET_KEY = /^(pass(word|wd)?|secret|client_?secret|tokens?|access_?token|auth_?token|api_?key|apikey|authorization|credentials?)$/i;
/** Field names that hold a secret somewhere inside a longer name (smtpPassword, webhookToken). */
const SECRET_KEY_PART = /pass(word|wd)|secret|token|api_?key|authorization|credential/i;

/** A `…Id` key (tokenId) names a secret by its fingerprint and is kept. */
export const isSecretKey = (key: string): boolean => (SECRET_KEY.test(key) || SECRET_KEY_PART.test(key)) && !/Id$/.test(key);

/** Secrets shorter than this are not searched for by value (they would mask ordinary words); URLs still are by shape. */
export const MIN_SECRET_LENGTH = 4;
/**
 * A plain lower-case word (a default such as QuestDB's "quest" or "postgres") is masked by shape
 * only: masking it everywhere would turn "questdb" into "***db" in every message.
 */
const PLAIN_WORD = /^[a-z]{1,8}$/;

const known = new Set<string>();
let pattern: RegExp | null = null;

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Register secret values to be masked in every later `redact` (the forms a text may show them in too). */
export function addSecrets(values: Iterable<string>): void {
  let added = false;
  for (const value of values) {
    if (typeof value !== "string" || value.length < MIN_SECRET_LENGTH || PLAIN_WORD.test(value)) continue;
    // As written, URL-encoded, and JSON-escaped (a secret with a quote inside a JSON body).
    for (const form of new Set([value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]))
      if (!known.has(form)) {
        known.add(form);
        added = true;
      }
  }
  // Longest first, so a secret that contains another is masked whole.
  if (added) pattern = new RegExp([...known].sort((a, b) => b.length - a.length).map(escapeRe).join("|"), "g");
}

/** Forget the registered secrets (tests). */
export function clearSecrets(): void {
  known.clear();
  pattern = null;
}

// `scheme://user:password@`: the password ends at the last @ before the host (passwords may hold @).
// The scheme is optional: `//user:password@host` (protocol-relative, or a scheme mistyped) counts.
const URL_PASSWORD = /((?:[a-z][a-z0-9+.-]*:)?\/\/[^\s:/?#@"'<>]*:)[^\s/?#"'<>]*@/gi;
// `?apikey=…` / `&key=…` in a URL or a form body.
const QUERY_SECRET = /([?&;](?:key|sig|signature)=)[^&#\s"'<>]*/gi;
// `password=…` / `token=…` anywhere (a query, a form body, a libpq conninfo "host=h password=…").
const NAMED_SECRET = /((?<![A-Za-z0-9_])(?:pass(?:word|wd)?|secret|client_secret|tokens?|access_token|auth_token|api_?key|apikey)=)[^&#\s"'<>]*/gi;

/** Mask URL passwords and secret parameters in a text (by shape only). */
export function redactUrl(text: string): string {
  return text.replace(URL_PASSWORD, `$1${MASK}@`).replace(QUERY_SECRET, `$1${MASK}`).replace(NAMED_SECRET, `$1${MASK}`);
}

/** Mask every secret in a text: by shape (URLs) and every registered value (plus `extra`). */
export function redact(text: string, extra?: Iterable<string>): string {
  let out = redactUrl(text);
  if (pattern) out = out.replace(pattern, MASK);
  if (extra)
    for (const s of extra) if (typeof s === "string" && s.length >= MIN_SECRET_LENGTH) out = out.split(s).join(MASK);
  return out;
}

/** A deep copy of a JSON-like value with every string redacted and secret-named fields masked. */
export function redactValue<T>(value: T, depth = 0): T {
  if (typeof value === "string") return redact(value) as T;
  if (depth > 32 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((x) => redactValue(x, depth + 1)) as T;
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(value)) out[k] = isSecretKey(k) && x !== null && x !== undefined && x !== "" ? maskLike(x) : redactValue(x, depth + 1);
  return out as T;
}

const isPlainObject = (v: object) => {
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
};
const maskLike = (x: unknown) => (Array.isArray(x) ? x.map(() => MASK) : MASK);

/** The secret parts of one URL: its password (as written and decoded) and secret query values. */
export function urlSecrets(text: string, wholePath = false): string[] {
  // By shape first: a URL that does not parse (a typo in the host) still has its password.
  const out: string[] = [...text.matchAll(URL_PASSWORD)].map((m) => m[0].slice(m[1]!.length, -1));
  for (const re of [QUERY_SECRET, NAMED_SECRET]) for (const m of text.matchAll(re)) out.push(m[0].slice(m[1]!.length));
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return out;
  }
  if (u.password) out.push(u.password, safeDecode(u.password));
  for (const [k, val] of u.searchParams) if (val && (isSecretKey(k) || /^(sig|signature)$/i.test(k))) out.push(val);
  // Webhook URLs carry their token in the path (hooks.slack.com/services/T…/B…/<token>).
  if (wholePath && u.pathname.length > 1) out.push(u.pathname + u.search, u.pathname.split("/").filter(Boolean).pop() ?? "");
  // questdb://…?http=http://user:pass@host: a URL inside a parameter.
  for (const [, val] of u.searchParams) if (/^[a-z][a-z0-9+.-]*:\/\//i.test(val)) out.push(...urlSecrets(val));
  return out;
}

const safeDecode = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/**
 * Every secret a config (parsed or raw, valid or not) holds: values of secret-named fields
 * (passwords, tokens, API keys, whatever their type), passwords and secret parameters of every
 * URL anywhere, and the path of webhook URLs.
 */
export function collectSecrets(config: unknown): string[] {
  const out = new Set<string>();
  const walk = (node: unknown, secret: boolean, webhook: boolean, depth: number) => {
    if (depth > 32) return;
    if (typeof node === "string") {
      if (secret) out.add(node);
      for (const s of urlSecrets(node, webhook)) out.add(s);
      return;
    }
    if (typeof node === "number" || typeof node === "bigint") {
      if (secret) out.add(String(node));
      return;
    }
    if (node === null || typeof node !== "object") return;
    if (Array.isArray(node)) {
      for (const x of node) walk(x, secret, webhook, depth + 1);
      return;
    }
    for (const [k, x] of Object.entries(node)) walk(x, secret || isSecretKey(k), webhook || /webhook/i.test(k), depth + 1);
  };
  walk(config, false, false, 0);
  return [...out].filter((s) => s.length > 0);
}
