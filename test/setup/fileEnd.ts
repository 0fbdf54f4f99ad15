/**
 * vitest setupFiles: runs in each test file's worker before the file. A child process that runCommand started
 * outside a test (in a beforeAll, or at module level) is killed when the file ends, after the file's own afterAll
 * hooks (vitest runs after-hooks in reverse order, and this one is registered first). Before, only its hang limit
 * ended it, up to 10 minutes later, or never: the limit's timer dies with the worker. Then the folders tempDir made
 * outside a test are removed.
 */
import { afterAll } from 'vitest';

import { killFileChildren } from '../helpers/nodeChild.js';
import { removeFileTempDirs } from '../helpers/tempDir.js';

afterAll(async () => {
  await killFileChildren();
  removeFileTempDirs();
});
