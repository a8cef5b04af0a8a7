// Loads the YAML file once at start: parse, interpolate ${VAR} / ${VAR:-default} in
// scalar values, validate against the schema. Every problem is reported as
// `file:line:col: message` so an operator can jump straight to it.
import { readFileSync } from 'node:fs';
import { isMap, isScalar, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { didYouMean, formatProblems, knownKeysAt, type Problem } from './diagnostics.js';
import { configSchema, type SluiceConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

/** Reads and validates a config file; `overrides` (from CLI flags) win over the file. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv, overrides: (raw: Record<string, unknown>) => void = () => {}): SluiceConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}:1:1: cannot read config file (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  return parseConfigText(text, file, env, overrides);
}

export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv, overrides: (raw: Record<string, unknown>) => void = () => {}): SluiceConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(shieldReferences(text), { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problem = (offset: number | undefined, message: string): Problem => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    return { line, col, text: unshield(message) };
  };
  const fail = (problems: Problem[]) => new ConfigError(formatProblems(file, problems));
  if (doc.errors.length > 0) {
    // After the first syntax error the parser is lost and the rest are echoes of it.
    const [first, ...rest] = doc.errors;
    const { line } = lineCounter.linePos(first!.pos[0]);
    const more = rest.length > 0 ? ` (${rest.length} more syntax error${rest.length > 1 ? 's' : ''} after this one, probably caused by it)` : '';
    throw fail([problem(first!.pos[0], `${firstLine(first!.message)}${syntaxHint(text.split('\n')[line - 1] ?? '')}${more}`)]);
  }
  const envProblems = interpolateEnv(doc, env, problem);
  if (envProblems.length > 0) throw fail(envProblems);

  const raw = (doc.toJS() ?? {}) as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw fail([problem(0, 'the config file must be a mapping of keys (listen, backend, routes, ...)')]);
  }
  overrides(raw as Record<string, unknown>);
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw fail(result.error.issues.flatMap((issue) => {
      const path = issue.path as (string | number)[];
      const where = path.length > 0 ? ` (${path.join('.')})` : '';
      if (issue.code === 'unrecognized_keys') {
        const known = knownKeysAt(configSchema, path);
        return issue.keys.map((key) => {
          const suggestion = didYouMean(key, known);
          const hint = suggestion ? `; did you mean "${suggestion}"?` : known.length > 0 ? ` (known keys: ${known.join(', ')})` : '';
          return problem(keyNodeAt(doc, path, key)?.range?.[0], `unknown key "${key}"${path.length > 0 ? ` in ${path.join('.')}` : ''}${hint}`);
        });
      }
      return [problem(nodeAtPath(doc, path)?.range?.[0], `${issue.message}${where}`)];
    }));
  }
  return result.data;
}

/** Validates a config built without a file (quick flags only). */
export function parseConfigObject(raw: Record<string, unknown>, label = '<flags>'): SluiceConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${label}: ${i.message}${i.path.length ? ` (${i.path.join('.')})` : ''}`));
  }
  return result.data;
}

/*
 * `${VAR}` is not a valid plain scalar inside a flow mapping (`{ port: ${PORT} }`: the `{`
 * opens a nested mapping), yet that is the style people write. So before parsing, each
 * reference's braces become two private-use characters, which are plain text to YAML in
 * any context; the length stays the same, so every line:col still points at the source.
 */
const OPEN = '\uE000';
const CLOSE = '\uE001';
const SOURCE_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*(?::-[^}\n]*)?)\}/g;
const SHIELDED_REFERENCE = new RegExp(`\\$${OPEN}([A-Za-z_][A-Za-z0-9_]*)(?::-([^${CLOSE}]*))?${CLOSE}`, 'g');
const WHOLE_REFERENCE = new RegExp(`^\\$${OPEN}[^${CLOSE}]+${CLOSE}$`);

function shieldReferences(text: string): string {
  return text.replace(SOURCE_REFERENCE, (_match, inner: string) => `$${OPEN}${inner}${CLOSE}`);
}

function unshield(text: string): string {
  return text.replaceAll(OPEN, '{').replaceAll(CLOSE, '}');
}

function interpolateEnv(doc: Document, env: NodeJS.ProcessEnv, problem: (offset: number | undefined, message: string) => Problem): Problem[] {
  const problems: Problem[] = [];
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes(OPEN)) return;
      const replaced = node.value.replace(SHIELDED_REFERENCE, (_match, name: string, fallback: string | undefined) => {
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        problems.push(problem(node.range?.[0], `environment variable ${name} is not set and has no default (use \${${name}:-default})`));
        return '';
      });
      // A whole-value reference such as `${PORT}` keeps its YAML type (a number stays a number).
      node.value = WHOLE_REFERENCE.test(node.value) ? coerceScalar(replaced) : unshield(replaced);
    },
  });
  return problems;
}

function coerceScalar(text: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  return text;
}

/** The deepest YAML node along a validation path, so errors point at the offending key. */
function nodeAtPath(doc: Document, path: (string | number)[]): Node | undefined {
  let node: Node | undefined = doc.contents ?? undefined;
  let best = node;
  for (const segment of path) {
    if (!node || isScalar(node) || !('get' in node)) break;
    const next = (node as unknown as { get(k: unknown, keep: true): Node | undefined }).get(segment, true);
    if (!next) {
      // A missing key: point at the key's parent mapping.
      break;
    }
    node = next;
    best = node;
  }
  return best;
}

/** The key node `key` of the mapping at `path`, so an unknown key is reported where it is written. */
function keyNodeAt(doc: Document, path: (string | number)[], key: string): Node | undefined {
  const mapping = path.length === 0 ? doc.contents : nodeAtPath(doc, path);
  if (!isMap(mapping)) return mapping ?? undefined;
  const pair = mapping.items.find((item) => isScalar(item.key) && item.key.value === key);
  return (pair?.key as Node | undefined) ?? mapping;
}

/** The usual cause of a syntax error on a line with `${`: a reference Sluice did not recognise is plain YAML. */
function syntaxHint(sourceLine: string): string {
  if (!sourceLine.includes('${')) return '';
  return '; hint: ${NAME} and ${NAME:-default} (NAME: letters, digits, _) are replaced, anything else with ${ is plain text, which { } and [ ] do not allow unquoted';
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}
