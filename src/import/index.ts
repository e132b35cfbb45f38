/**
 * `keepalive-ts import`: keepalived.conf or ldirectord.cf -> keepalive-ts TOML, pure (files come
 * through ImportFs). The output is validated in-process exactly as `keepalive-ts check` would;
 * problems found there are reported against the original statement.
 */
import { ConfigError, parseConfig } from '../config/index.js';
import { readKeepalived } from './keepalived-reader.js';
import { mapKeepalived } from './keepalived-map.js';
import { importLdirectord } from './ldirectord.js';
import { writeToml, type TomlTable } from './toml-writer.js';
import { formatMessage, type ImportFs, type ImportMessage } from './types.js';

export type ImportFormat = 'keepalived' | 'ldirectord';

export interface ImportOptions {
  from?: ImportFormat;
  /** keepalived's -i: which `@ID` lines count. */
  configId?: string;
  /** Used when configId is not given (keepalived: the host name up to the first dot). */
  defaultConfigId: string;
  env: Readonly<Record<string, string | undefined>>;
}

export interface ImportResult {
  format: ImportFormat;
  toml: string;
  /** Every construct dropped or changed, then every `check` problem of the output, in file order. */
  messages: ImportMessage[];
  /** The output passes `keepalive-ts check`. */
  ok: boolean;
}

/** keepalived blocks vs ldirectord `key=value` lines, by the first statements that tell them apart. */
export function detectFormat(text: string): ImportFormat {
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '' || line.startsWith('!')) continue;
    if (/^(virtual6?|real6?|checktimeout|checkinterval|autoreload|logfile|quiescent|fallback6?|emailalert|negotiatetimeout|connecttimeout|failurecount|fork|supervised|callback|execute|maintenancedir|cleanstop|readdquiescent|smtp)\s*=/.test(line)) return 'ldirectord';
    if (/[{}]/.test(line) || /^(global_defs|vrrp_|virtual_server|static_|include|@|\$)/.test(line)) return 'keepalived';
  }
  return 'keepalived';
}

export function importConfig(mainPath: string, fs: ImportFs, opts: ImportOptions): ImportResult {
  const text = fs.read(mainPath);
  const display = fs.display(mainPath);
  if (text === undefined) {
    return { format: opts.from ?? 'keepalived', toml: '', messages: [{ loc: { file: display, line: 1 }, kind: 'error', text: `cannot read ${display}` }], ok: false };
  }
  const format = opts.from ?? detectFormat(text);
  let tables: TomlTable[];
  let messages: ImportMessage[];
  let files: string[];
  if (format === 'keepalived') {
    const read = readKeepalived(mainPath, fs, {
      configId: opts.configId ?? opts.defaultConfigId,
      configIdGiven: opts.configId !== undefined,
      env: opts.env,
    });
    const mapped = mapKeepalived(read.nodes);
    tables = mapped.tables;
    messages = [...read.messages, ...mapped.messages.list];
    files = read.files;
  } else {
    const r = importLdirectord(text, display);
    tables = r.tables;
    messages = r.messages;
    files = [display];
  }
  const order = (m: ImportMessage): [number, number] => [Math.max(0, files.indexOf(m.loc.file)), m.loc.line];
  const sortMessages = (list: ImportMessage[]): ImportMessage[] =>
    list.map((m, i) => ({ m, i })).sort((a, b) => {
      const [fa, la] = order(a.m);
      const [fb, lb] = order(b.m);
      return fa - fb || la - lb || a.i - b.i;
    }).map((x) => x.m);
  // The same note for several real servers of one virtual section is said once.
  const seen = new Set<string>();
  messages = sortMessages(messages).filter((m) => {
    const k = formatMessage(m);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });

  const header = [
    `keepalive-ts configuration imported from ${display} (${format} syntax) by \`keepalive-ts import\`.`,
    'Each table names the statement it came from. Review the notes below, then run `keepalive-ts check`.',
  ];
  if (messages.length > 0) {
    header.push('', 'Import notes (also printed on stderr):');
    for (const m of messages) header.push(`  ${formatMessage(m)}`);
  }
  const out = writeToml(header, tables);

  const checkMessages: ImportMessage[] = [];
  try {
    parseConfig(out.text, 'import');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const issue of err.issues) {
      const loc = (issue.line !== undefined ? out.origins.get(issue.line) : undefined) ?? { file: display, line: 1 };
      checkMessages.push({ loc, kind: 'error', text: `the imported config fails check: ${issue.path === '' ? '' : `${issue.path}: `}${issue.message}` });
    }
  }
  return { format, toml: out.text, messages: [...messages, ...sortMessages(checkMessages)], ok: checkMessages.length === 0 };
}
