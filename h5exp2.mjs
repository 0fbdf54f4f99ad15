import fs from 'node:fs';
import h5wasm from 'h5wasm/node';
await h5wasm.ready;
const origW = process.stderr.write.bind(process.stderr);
const origWS = fs.writeSync;
let viaStderr = 0, viaWriteSync = 0;
process.stderr.write = (c, ...a) => { viaStderr++; return true; };
fs.writeSync = function (fd, ...a) { if (fd === 2) { viaWriteSync++; return typeof a[0] === 'string' ? a[0].length : a[0].length; } return origWS.call(fs, fd, ...a); };
const origCE = console.error;
let f;
try { f = new h5wasm.File('/tmp/h5cut.h5', 'r'); } catch (e) { origW('threw ' + e.message + '\n'); }
process.stderr.write = origW; fs.writeSync = origWS;
console.log({ viaStderr, viaWriteSync, file_id: f?.file_id });
try { console.log(f.keys()); } catch (e) { console.log('keys threw', e.message); }
