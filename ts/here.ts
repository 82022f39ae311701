// Replaced at build time by scripts/build-ts.mjs with a format-specific
// module (ESM: import.meta.url, CJS: __dirname). This fallback serves tools
// that run the TypeScript sources directly.
import * as path from 'node:path';
export const distDir: string = path.join(process.cwd(), 'dist', 'esm');
