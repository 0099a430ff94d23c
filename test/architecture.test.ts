import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

// The arrows of docs/architecture.md: server -> store -> core -> assembly,
// memory and metrics used by store. Nothing in core imports store, memory
// or server; only server imports server; the Store does not reach for the
// single-thread Index.

const HOST = fileURLToPath(new URL('../host/', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

/** Every relative import of a file, as a path under host/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g)]
    .map((m) => relative(HOST, resolve(dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
}

const area = (path: string): string => (path.includes('/') ? path.split('/')[0]! : path);

t.test('import directions follow docs/architecture.md', async (t) => {
  const forbidden: Record<string, string[]> = {
    core: ['store', 'memory', 'server', 'single-thread-index.ts', 'index.ts', 'options.ts'],
    store: ['server', 'single-thread-index.ts', 'index.ts'],
    memory: ['store', 'server', 'single-thread-index.ts', 'index.ts'],
  };
  const bad: string[] = [];
  for (const file of files(HOST)) {
    const from = area(relative(HOST, file));
    for (const to of importsOf(file)) {
      if (forbidden[from]?.includes(area(to))) bad.push(`${relative(HOST, file)} -> ${to}`);
    }
  }
  t.same(bad, [], 'no import points against the arrows');
  t.ok(importsOf(join(HOST, 'store/store.ts')).some((p) => p.startsWith('core/')), 'the check sees real imports');
});
