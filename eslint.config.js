'use strict';

// ESLint flat config. Formatting is Prettier's job (eslint-config-prettier turns off every rule
// that would disagree with it); ESLint looks for bugs.
const js = require('@eslint/js');
const { defineConfig, globalIgnores } = require('eslint/config');
const prettier = require('eslint-config-prettier');
const globals = require('globals');
const tseslint = require('typescript-eslint');

module.exports = defineConfig([
  // Build output, dependencies, the Node 22 binary and benchmark results are not ours to lint.
  globalIgnores(['nodes/', 'node_modules/', '.cache/', 'bench/results/', '.demo-userdir/', '.test-tmp/']),

  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },

  // The package: TypeScript, with type information for the rules that need it.
  {
    files: ['src/**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: __dirname },
      globals: globals.node,
    },
    rules: {
      // A promise nobody awaits or catches turns a failed handshake or send into an unhandled rejection.
      '@typescript-eslint/no-floating-promises': 'error',
      // An async function where a callback's result is ignored (event handlers, ws and timer callbacks).
      '@typescript-eslint/no-misused-promises': 'error',
      // Awaiting a non-promise is a mistake; Promise.all over "a promise or undefined" per item is not.
      '@typescript-eslint/await-thenable': ['error', { allowMixedPromiseArrays: true }],
      // `return promise` inside try/catch skips the catch when it rejects.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/only-throw-error': 'error',
      // Rejecting with an AbortSignal's reason (typed any/unknown) is what fetch does, and what we do.
      '@typescript-eslint/prefer-promise-reject-errors': [
        'error',
        { allowThrowingAny: true, allowThrowingUnknown: true },
      ],
      // `const node = this` is the Node-RED idiom in a node's constructor function.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['node'] }],
    },
  },

  // Tests, benchmarks, the CLI and build scripts: CommonJS on Node.
  {
    files: ['**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: {
      sourceType: 'commonjs',
      globals: globals.node,
    },
  },
  {
    files: ['test/**/*.js'],
    languageOptions: { globals: globals.mocha },
  },
  {
    // Its page.evaluate() callbacks run inside the Node-RED editor page (RED, jQuery).
    files: ['test/e2e/browser.test.js'],
    languageOptions: { globals: { ...globals.browser, RED: 'readonly', $: 'readonly' } },
  },

  prettier,
]);
