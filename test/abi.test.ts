// One source of truth for the core's layout: the core exports its table
// (assembly/index.ts layoutEntry), the host checks it against LAYOUT in
// host/core/abi.ts at instantiate, and any disagreement is CORE_ABI.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { checkLayout, DEBUG_ONLY_EXPORTS, LAYOUT, LAYOUT_NAMES, type CoreExports } from '../host/core/abi.js';
import { coreModule, instantiate } from '../host/core/module.js';
import { Shard } from '../host/core/shard.js';

const CORE_EXPORTS: readonly (keyof CoreExports)[] = [
  'memory', 'layoutEntry', 'init', 'attach', 'setEf', 'ioReserve', 'ioTrim', 'ioPtr', 'ioUsed', 'header', 'usedBytes',
  'sealImage', 'verifyImage', 'stats', 'insert', 'remove', 'get', 'search', 'repairRange', 'repairFinish',
  'compactPlan', 'compactDone', 'planEntry', 'exportNodes', 'importNodes', 'importFinish', 'checkIntegrity', 'listIds',
  'searchFiltered', 'countMatching', 'matches', 'replacePayload', 'createPayloadIndex', 'dropPayloadIndex', 'payloadIndexEntry',
  'rerank', 'spillBegin', 'originalAt', 'spillFinish', 'relearnBegin', 'relearnCount', 'relearnSlots', 'relearnColumn', 'relearnDim', 'relearnFinish', 'encodeRange',
];

function table(build: 'release' | 'debug'): number[] {
  const core = instantiate(build, new WebAssembly.Memory({ initial: 1 }));
  const out: number[] = [];
  for (let i = 0; ; i++) {
    const v = core.layoutEntry(i);
    if (v === -1 && i >= LAYOUT_NAMES.length) break;
    out.push(v);
    if (i > 1000) break;
  }
  return out;
}

t.test('both builds export the layout table abi.ts expects, entry for entry', async (t) => {
  for (const build of ['release', 'debug'] as const) {
    const got = table(build);
    t.same(got, LAYOUT_NAMES.map((n) => LAYOUT[n]), `${build}: the same ${LAYOUT_NAMES.length} entries`);
    t.doesNotThrow(() => checkLayout((i) => (i < got.length ? got[i]! : -1)));
  }
});

t.test('the checker refuses a table that disagrees in any one entry', async (t) => {
  const good = LAYOUT_NAMES.map((n) => LAYOUT[n] as number);
  const from = (values: number[]) => (i: number): number => (i < values.length ? values[i]! : -1);
  for (let k = 0; k < good.length; k++) {
    const bad = good.slice();
    bad[k] = bad[k]! + 4;
    t.throws(() => checkLayout(from(bad)), { code: 'QUIVER_ERR_CORE_ABI', message: new RegExp(`\\b${LAYOUT_NAMES[k]} is `) }, `${LAYOUT_NAMES[k]} altered`);
  }
  t.throws(() => checkLayout(from([...good, 7])), { code: 'QUIVER_ERR_CORE_ABI', message: /more than/ }, 'an extra entry');
  t.throws(() => checkLayout(from(good.slice(0, -1))), { code: 'QUIVER_ERR_CORE_ABI' }, 'a missing entry');
});

t.test('the host mirrors nothing by hand: a shard reads through the checked table', async (t) => {
  // a host whose idea of the header differs is refused before it reads memory
  const core = instantiate('release', new WebAssembly.Memory({ initial: 1 }));
  t.throws(() => checkLayout((i) => core.layoutEntry(i), { ...LAYOUT, H_DIM: LAYOUT.H_DIM + 4 }), { code: 'QUIVER_ERR_CORE_ABI', message: /H_DIM/ });
  const shard = Shard.create({ dim: 5, metric: 'cosine', M: 4, efConstruction: 8, ef: 8 });
  t.equal(shard.dim, 5, 'dim read at H_DIM');
  t.equal(shard.metric, 'cosine', 'metric read at H_METRIC');
  t.equal(shard.header32(LAYOUT.H_MAGIC), LAYOUT.MAGIC);
  t.equal(shard.header32(LAYOUT.H_VERSION), LAYOUT.LAYOUT_VERSION);
  shard.dispose();
});

t.test('test hooks exist only in the debug build', async (t) => {
  const exportsOf = (build: 'release' | 'debug'): string[] => WebAssembly.Module.exports(coreModule(build)).map((e) => e.name);
  const release = exportsOf('release');
  const debug = exportsOf('debug');
  t.same(release.slice().sort(), CORE_EXPORTS.slice().sort(), 'release: exactly the production ABI');
  for (const name of DEBUG_ONLY_EXPORTS) {
    t.notOk(release.includes(name), `release has no ${name}`);
    t.ok(debug.includes(name), `debug has ${name}`);
  }
  t.same(debug.filter((n) => !(DEBUG_ONLY_EXPORTS as readonly string[]).includes(n)).sort(), CORE_EXPORTS.slice().sort(), 'debug: the production ABI plus the hooks');
  // the release text format carries no hook name either
  const wat = readFileSync(new URL('../build/quiver.wat', import.meta.url), 'utf8');
  t.notOk(/arenaRunAlloc|kernelL2/.test(wat), 'no hook in the release build at all');
});
