// The 3-node nats-server cluster the tests start: scripts/nats-cluster.ts (bench:cluster uses it too).
export * from '../../scripts/nats-cluster.js';
