// Loads the YAML file once at start: parse, interpolate ${VAR} / ${VAR:-default} in
// scalar values, validate against the schema. Every problem is reported as
// `file:line:col: message` so an operator can jump straight to it.
import { readFileSync } from 'node:fs';
import { isScalar, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { configSchema, type SluiceConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

const ENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

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
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${at(e.pos[0])}: ${firstLine(e.message)}`));
  }
  const problems = interpolateEnv(doc, env, at);
  if (problems.length > 0) throw new ConfigError(problems);

  const raw = (doc.toJS() ?? {}) as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError([`${at(0)}: the config file must be a mapping of keys (listen, backend, routes, ...)`]);
  }
  overrides(raw as Record<string, unknown>);
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => {
      const node = nodeAtPath(doc, issue.path as (string | number)[]);
      const where = issue.path.length > 0 ? ` (${issue.path.join('.')})` : '';
      return `${at(node?.range?.[0])}: ${issue.message}${where}`;
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

function interpolateEnv(doc: Document, env: NodeJS.ProcessEnv, at: (offset: number | undefined) => string): string[] {
  const problems: string[] = [];
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const replaced = node.value.replace(ENV_REFERENCE, (_match, name: string, fallback: string | undefined) => {
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        problems.push(`${at(node.range?.[0])}: environment variable ${name} is not set and has no default (use \${${name}:-default})`);
        return '';
      });
      // A whole-value reference such as `${PORT}` keeps its YAML type (a number stays a number).
      node.value = /^\$\{[^}]+\}$/.test(node.value) ? coerceScalar(replaced) : replaced;
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

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}
