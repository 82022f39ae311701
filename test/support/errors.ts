// Getting hold of an expected error, to assert on its class and fields.

/** Resolves with the error `p` rejects with; rejects if `p` fulfils. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(() => { throw new Error('expected a rejection'); }, (e: unknown) => e as Error);
}

/** Runs `fn`, expects it to throw synchronously, returns the error. */
export function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a synchronous throw, nothing was thrown');
}
