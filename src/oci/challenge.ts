// WWW-Authenticate challenges (RFC 7235) and token scopes (distribution's scope.md), as registries
// really send them: several challenges per header and per response, upper-case schemes, escaped
// quotes, unquoted values, space-separated scopes (registry-protocol.md §1.1, §1.2).

export interface Challenge {
  /** Lower-cased: 'basic', 'bearer', or any other scheme. */
  scheme: 'basic' | 'bearer' | string;
  /** auth-params by lower-cased name, values unquoted and unescaped; the first of a repeated name wins. */
  params: Record<string, string>;
  /** The token68 form (`Negotiate abc==`), when the challenge carries one instead of params. */
  token68?: string;
}

/** A resource scope: `repository:library/nginx:pull,push`. */
export interface ResourceScope {
  type: string;
  name: string;
  actions: string[];
}

/**
 * Every challenge in one or several WWW-Authenticate header values. Never throws: what cannot be
 * parsed is skipped, so one odd challenge does not hide a usable one next to it.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const lines = typeof header === 'string' ? [header] : header;
  return lines.flatMap((line) => parseHeaderLine(line));
}

/** The challenge to answer: Bearer when offered (it covers Basic credentials too), else Basic. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

/** Splits a scope into type, name and actions; throws on anything that is not `type:name:actions`. */
export function parseScope(scope: string): ResourceScope {
  const parsed = splitScope(scope);
  if (parsed === undefined) throw new Error(`invalid scope ${JSON.stringify(scope)}: expected type:name:action[,action]`);
  return parsed;
}

export function formatScope(scope: ResourceScope): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(',')}`;
}

/** The scopes in a `scope` parameter or query value, which holds several separated by spaces. */
export function splitScopes(scopeParam: string | undefined): string[] {
  return scopeParam === undefined ? [] : scopeParam.split(' ').filter((s) => s !== '');
}

/**
 * One scope per resource with its actions merged, de-duplicated and sorted ('*' absorbs the others),
 * and the scopes sorted: equal sets of needs give equal lists. Each input may hold several
 * space-separated scopes. Scopes that are not `type:name:actions` (Forgejo's "*") are kept as they are.
 */
export function normalizeScopes(scopes: Iterable<string | ResourceScope>): string[] {
  const actionsByResource = new Map<string, { scope: ResourceScope; actions: Set<string> }>();
  const opaque = new Set<string>();
  for (const item of scopes) {
    const parsedItems = typeof item === 'string' ? splitScopes(item).map((s) => splitScope(s) ?? s) : [item];
    for (const scope of parsedItems) {
      if (typeof scope === 'string') {
        opaque.add(scope);
        continue;
      }
      const key = `${scope.type}:${scope.name}`;
      const entry = actionsByResource.get(key) ?? { scope, actions: new Set<string>() };
      for (const action of scope.actions) entry.actions.add(action);
      actionsByResource.set(key, entry);
    }
  }
  const merged = [...actionsByResource.values()].map(({ scope, actions }) =>
    formatScope({ type: scope.type, name: scope.name, actions: actions.has('*') ? ['*'] : [...actions].sort() }),
  );
  return [...merged, ...opaque].sort();
}

/** The normalised scopes as one space-separated string: a token cache key, and the OAuth2 POST `scope` field. */
export function formatScopes(scopes: Iterable<string | ResourceScope>): string {
  return normalizeScopes(scopes).join(' ');
}

function splitScope(scope: string): ResourceScope | undefined {
  // The name may carry a host:port, so the type ends at the first ':' and the actions start after the last.
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const name = scope.slice(first + 1, last);
  const actions = scope
    .slice(last + 1)
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (name === '' || actions.length === 0) return undefined;
  return { type: scope.slice(0, first), name, actions };
}

// The header grammar is ambiguous at each comma: `, name=value` continues the current challenge's
// params, `, Scheme ...` starts a new challenge. A cursor over the text with one token of look-ahead
// settles it.

interface Cursor {
  text: string;
  pos: number;
}

/** RFC 7230 tchar. */
const tokenChar = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
/** RFC 7235 token68, without its trailing '=' padding. */
const token68Char = /[-._~+/0-9A-Za-z]/;

function parseHeaderLine(text: string): Challenge[] {
  const cursor: Cursor = { text, pos: 0 };
  // Params are collected in Maps: a Record would let a param named "__proto__" or "constructor" misbehave.
  const parsed: { scheme: string; params: Map<string, string>; token68?: string }[] = [];
  for (;;) {
    skipWhile(cursor, /[\s,]/);
    if (atEnd(cursor)) break;
    const name = readWhile(cursor, tokenChar);
    if (name === '') {
      cursor.pos++; // not a token: skip the stray character
      continue;
    }
    skipWhile(cursor, /[ \t]/);
    if (peek(cursor) === '=') {
      cursor.pos++;
      const value = readValue(cursor);
      // A parameter before any scheme belongs to nothing and is dropped.
      const params = parsed.at(-1)?.params;
      if (params !== undefined && !params.has(name.toLowerCase())) params.set(name.toLowerCase(), value);
      continue;
    }
    parsed.push({ scheme: name.toLowerCase(), params: new Map(), token68: readToken68(cursor) });
  }
  return parsed.map(({ scheme, params, token68 }) => ({
    scheme,
    params: Object.fromEntries(params),
    ...(token68 === undefined ? {} : { token68 }),
  }));
}

/** A token68 right after the scheme, if what follows is one: it must run to a comma or the end. */
function readToken68(cursor: Cursor): string | undefined {
  const start = cursor.pos;
  const value = readWhile(cursor, token68Char) + readWhile(cursor, /=/);
  skipWhile(cursor, /[ \t]/);
  if (value !== '' && (atEnd(cursor) || peek(cursor) === ',')) return value;
  cursor.pos = start;
  return undefined;
}

/** A quoted string (backslash escapes any character) or, leniently, anything up to a comma or space. */
function readValue(cursor: Cursor): string {
  skipWhile(cursor, /[ \t]/);
  if (peek(cursor) !== '"') return readWhile(cursor, /[^\s,]/);
  cursor.pos++;
  let value = '';
  while (!atEnd(cursor)) {
    const char = cursor.text[cursor.pos++]!;
    if (char === '"') return value;
    // A backslash at the very end escapes nothing; keep it rather than lose it.
    value += char === '\\' && !atEnd(cursor) ? cursor.text[cursor.pos++]! : char;
  }
  return value; // unterminated: take what there is
}

function readWhile(cursor: Cursor, charPattern: RegExp): string {
  const start = cursor.pos;
  skipWhile(cursor, charPattern);
  return cursor.text.slice(start, cursor.pos);
}

function skipWhile(cursor: Cursor, charPattern: RegExp): void {
  while (!atEnd(cursor) && charPattern.test(cursor.text[cursor.pos]!)) cursor.pos++;
}

function peek(cursor: Cursor): string | undefined {
  return cursor.text[cursor.pos];
}

function atEnd(cursor: Cursor): boolean {
  return cursor.pos >= cursor.text.length;
}
