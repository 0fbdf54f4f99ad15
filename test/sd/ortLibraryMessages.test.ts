/**
 * The errors of an ONNX Runtime library that is not there: they say where the path came from (the option,
 * BRAINLATENT_ORT_LIB, the default), and, with no default at all, whether the package's own copy is missing (named)
 * or none ships for the platform. Reviewer R2: 'ONNX Runtime library not found: …' did not say it came from
 * BRAINLATENT_ORT_LIB, and with the shipped libonnxruntime.so.1 deleted the message said none ships for linux-x64.
 */
import { afterEach, describe, expect, it } from 'vitest';

import { BackendUnavailableError } from '../../ts/errors.js';
import { noOrtLibraryMessage, resolveOrtLibrary } from '../../ts/sd/native.js';

const saved = process.env.BRAINLATENT_ORT_LIB;
afterEach(() => {
  if (saved === undefined) delete process.env.BRAINLATENT_ORT_LIB;
  else process.env.BRAINLATENT_ORT_LIB = saved;
});

describe('an ONNX Runtime library not found', () => {
  it('names BRAINLATENT_ORT_LIB when the path came from it', () => {
    process.env.BRAINLATENT_ORT_LIB = '/nonexistent/libonnxruntime.so.1';
    expect(() => resolveOrtLibrary()).toThrow(BackendUnavailableError);
    expect(() => resolveOrtLibrary()).toThrow('ONNX Runtime library not found: /nonexistent/libonnxruntime.so.1 (from BRAINLATENT_ORT_LIB)');
  });

  it('names the option when the path came from it, over the variable', () => {
    process.env.BRAINLATENT_ORT_LIB = '/nonexistent/env/libonnxruntime.so.1';
    expect(() => resolveOrtLibrary('/nonexistent/option/libonnxruntime.so.1')).toThrow(
      'ONNX Runtime library not found: /nonexistent/option/libonnxruntime.so.1 (from the ortLibrary option (--ort-lib))',
    );
  });

  it('names the file the package ships when that copy is missing', () => {
    const message = noOrtLibraryMessage({ file: '/app/node_modules/brainlatent/prebuilds/linux-x64/libonnxruntime.so.1', prebuildFolder: true }, 'linux-x64');
    expect(message).toContain('the copy that ships with the package is missing (no /app/node_modules/brainlatent/prebuilds/linux-x64/libonnxruntime.so.1: reinstall brainlatent)');
    expect(message).not.toContain('none ships');
    expect(message).toContain('`ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@1.30.0`');
    expect(message).toContain('BRAINLATENT_ORT_LIB');
  });

  it('says none ships where the package has no prebuilt engine for the platform', () => {
    expect(noOrtLibraryMessage(undefined, 'darwin-arm64')).toContain('none ships with the package for darwin-arm64, and onnxruntime-node is not installed');
    expect(noOrtLibraryMessage({ file: '/x/prebuilds/linux-arm64/libonnxruntime.so.1', prebuildFolder: false }, 'linux-arm64')).toContain(
      'none ships with the package for linux-arm64',
    );
  });
});
