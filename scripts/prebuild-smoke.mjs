// Run by scripts/prebuild.sh --check inside a Debian 11 root (glibc 2.31),
// natively for x64 and under qemu-user for arm64, from a staged install that
// has only the prebuilt addons: loads the addon of this platform, runs a
// task and an actor call, and fails loudly if anything differs.
import * as ray from 'rayts';

const glibc = process.report.getReport().header.glibcVersionRuntime;
const started = Date.now();
await ray.init({ numCpus: 1, objectStoreMemory: 64 * 1024 * 1024 });
const add = ray.remote((a, b) => ({ sum: a + b, arch: process.arch }));
const r = await add.remote(20, 22);
const Counter = ray.remote(class Counter {
  n = 0;
  inc(by) { return (this.n += by); }
});
const c = Counter.remote();
await c.inc.remote(1);
const n = await c.inc.remote(2);
await ray.shutdown();
if (r.sum !== 42 || n !== 3 || r.arch !== process.arch) {
  console.error(`smoke: wrong results: task ${JSON.stringify(r)}, actor ${n}`);
  process.exit(1);
}
console.log(`smoke: linux-${process.arch} glibc ${glibc} node ${process.version}: task 20+22=${r.sum} (worker arch ${r.arch}), actor count ${n}, ${Date.now() - started} ms`);
