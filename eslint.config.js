// ESLint (flat config) for the TypeScript and JavaScript of the repository.
// Rules that catch real problems: @eslint/js recommended, typescript-eslint
// recommended plus the type-aware rules that find unhandled or misused
// promises. Formatting is not linted (the code base's style is consistent
// and .editorconfig states it); purely stylistic rules that the existing
// code disagrees with are configured to its style or left off.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['dist/**', 'dist.*/**', 'build/**', 'build-*/**', 'node_modules/**', 'core/**', 'bindings/**'],
  },
  {
    files: ['ts/**/*.ts', 'test/**/*.ts', 'scripts/**/*.{js,mjs,ts}', 'bench/**/*.{js,mjs,ts}', 'examples/**/*.{js,mjs,ts}'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: { ...globals.node },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Unused bindings are bugs or dead code; a leading _ marks one kept on purpose.
      '@typescript-eslint/no-unused-vars': ['error', {
        argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true,
      }],
      // Empty catch blocks are the house idiom for "the process/file is already gone".
      'no-empty': ['error', { allowEmptyCatch: true }],
      'prefer-const': ['error', { destructuring: 'all' }],
      // `let killed = 0` before a try whose finally assigns it is house style.
      'no-useless-assignment': 'off',
      // Shipping functions to workers takes any function by design (ts/source.ts, actor classes).
      '@typescript-eslint/no-unsafe-function-type': 'off',
      // `for (let s = this; s; s = s.parent)` walks a chain; arrow functions make the real misuse moot.
      '@typescript-eslint/no-this-alias': 'off',
    },
  },
  {
    // Type-aware rules where the files belong to a tsconfig (ts/ and test/).
    files: ['ts/**/*.ts', 'test/**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-await': 'off',
      // House style writes `a[i]!` on indexed reads (ready for noUncheckedIndexedAccess)
      // and casts to document intent; the rule would strip both.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      '@typescript-eslint/only-throw-error': 'error',
      // reject(signal.reason) and Promise.reject(caught) pass on what they were given.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      '@typescript-eslint/no-for-in-array': 'error',
      '@typescript-eslint/no-implied-eval': 'error',
      '@typescript-eslint/restrict-plus-operands': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
);
