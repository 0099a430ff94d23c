// The README's Store example, kept runnable: node dist/scripts/example-store.js
import { Store } from '../host/index.js';

const store = await Store.open({ threads: 2 });
await store.createDataset('docs', { dim: 3, metric: 'cosine' });

await store.insert('docs', [1, 2, 3], new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1]));
const { ids, distances } = await store.search('docs', [0.9, 0.1, 0], 2);
console.log(ids, distances);

const ac = new AbortController();
await store.insert('docs', [4], [[0, 1, 1]], { signal: ac.signal });
await store.delete('docs', [2]);
await store.compact('docs');
console.log(await store.count('docs'), await store.get('docs', [1, 2]));
await store.dropDataset('docs');
console.log(await store.close());
