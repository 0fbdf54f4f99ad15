#!/usr/bin/env node
// Builds the native engine and addon with cmake-js (run by `npm install`). Checks the
// toolchain first so that a missing piece stops the install with one clear message.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';

function has(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

function fail(message) {
  console.error(`\nbrainlatent: cannot build the native engine.\n${message}\n`);
  process.exit(1);
}

if (!has('cmake')) fail('CMake (>= 3.18) is missing. Debian/Ubuntu: sudo apt-get install cmake');
if (!has(process.env.CXX ?? 'c++')) fail('A C++17 compiler is missing. Debian/Ubuntu: sudo apt-get install g++');

const env = { ...process.env };
// Build against the running Node's own headers where they are installed (no download).
if (!env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';

const parallel = String(Math.max(1, os.availableParallelism?.() ?? os.cpus().length));
const args = ['cmake-js', 'compile', '--out', 'build', '-p', parallel];
if (process.env.BRAINLATENT_CUDA) args.push(`--CDBRAINLATENT_CUDA=${process.env.BRAINLATENT_CUDA}`);
const r = spawnSync('npx', ['--no-install', ...args], { stdio: 'inherit', env });
if (r.status !== 0) fail('The CMake build failed; the messages above say why.');
