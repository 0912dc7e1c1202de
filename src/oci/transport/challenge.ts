// WWW-Authenticate challenges (RFC 7235) as registries really send them: several challenges per
// header and per response, upper-case schemes, escaped quotes, unquoted values, space-separated
// scopes in one param (the distribution token spec, docs/spec/auth/token.md and scope.md).

export interface Challenge {
  /** Lower-cased: 'basic', 'bearer', or any other scheme. */
  scheme: 'basic' | 'bearer' | string;
  /** auth-params by lower-cased name, values unquoted and unescaped; the first of a repeated name wins. */
  params: Record<string, string>;
  /** The token68 form (`Negotiate abc==`), when the challenge carries one instead of params. */
  token68?: string;
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
