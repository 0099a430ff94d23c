import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

// The arrows of docs/architecture.md: server -> store -> core -> assembly,
// memory and metrics used by store. Nothing in core imports store, memory,
// storage or server; only server imports server; storage imports nothing
// from server, store or core; the Store does not reach for the single-thread
// Index.

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
    core: ['store', 'memory', 'storage', 'server', 'single-thread-index.ts', 'index.ts', 'options.ts'],
    store: ['server', 'single-thread-index.ts', 'index.ts'],
    memory: ['store', 'server', 'single-thread-index.ts', 'index.ts'],
    storage: ['server', 'store', 'core'],
    cluster: ['server', 'store', 'core', 'single-thread-index.ts', 'index.ts'],
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
  t.ok(importsOf(join(HOST, 'storage/wal.ts')).includes('errors.ts'), 'the check sees storage imports');
});

t.test('docs/architecture.md lists every file of host/ and assembly/', async (t) => {
  const ROOT = fileURLToPath(new URL('../', import.meta.url));
  const doc = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
  // Each "## <dir>/ (...)" section's table rows name files of that directory; `routes/*.ts` stands for the folder.
  const listed = new Set<string>();
  const globs: string[] = [];
  for (const section of doc.split(/^## /m).slice(1)) {
    const dir = section.split(/\s/)[0]!;
    for (const m of section.matchAll(/^\| `([^`]+)` \|/gm)) {
      if (m[1]!.endsWith('/*.ts')) globs.push(dir + m[1]!.slice(0, -'*.ts'.length));
      else listed.add(dir + m[1]!);
    }
  }
  const actual = ['host', 'assembly'].flatMap((d) => files(join(ROOT, d))).map((f) => relative(ROOT, f));
  const missing = actual.filter((f) => !listed.has(f) && !globs.some((g) => f.startsWith(g) && !f.slice(g.length).includes('/')));
  const gone = [...listed].filter((f) => !actual.includes(f));
  t.same(missing, [], 'every file has its line');
  t.same(gone, [], 'every line names a file that exists');
  t.ok(listed.has('host/storage/wal.ts') && listed.size > 40, 'the check reads the tables');
});
