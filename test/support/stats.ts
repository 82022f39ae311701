// Runtime figures that several tests sample.
import * as ray from 'rayts';

/** Bytes in use in the node's object store now (debugStats). */
export async function storeUsed(): Promise<number> {
  return (await ray.debugStats()).node.storeUsed!;
}
