// rayts/testing: utilities for tests of programs that use rayts.
export { Cluster, ClusterNode } from './cluster.js';
export type { ClusterNodeOptions, ClusterOptions, HealthCheckOptions } from './cluster.js';
export type { ClusterNodeStatus, ClusterStatus } from '../cluster/status.js';
