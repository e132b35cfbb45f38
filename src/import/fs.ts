/** The real file system behind ImportFs (the CLI's shell around the pure importer). */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { ImportFs } from './types.js';

/** Files as the importer sees them; names in messages are relative to the main file's directory. */
export function diskFs(mainPath: string): ImportFs {
  const base = dirname(resolve(mainPath));
  return {
    read(path) {
      try {
        return statSync(path).isFile() ? readFileSync(path, 'utf8') : undefined;
      } catch {
        return undefined;
      }
    },
    list(dir) {
      try {
        return readdirSync(dir);
      } catch {
        return undefined;
      }
    },
    display(path) {
      const rel = relative(base, path);
      return rel.startsWith('..') ? path : rel;
    },
  };
}
