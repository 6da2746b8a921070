#!/usr/bin/env node
// ort_run.js -- run one ONNX model with ONNX Runtime (onnxruntime-node) on
// inputs given as JSON, write the outputs as JSON.  Used as the reference
// ("oracle") by tools/make_spec_fixtures.py; not used by the server.
//
// usage: node tools/ort_run.js MODEL.onnx INPUTS.json OUTPUTS.json
//
// onnxruntime-node is found through normal require() resolution, so set
// NODE_PATH to the node_modules directory that holds it, or set
// ORT_NODE_MODULES to that directory.  To obtain it (npm registry only):
//   mkdir -p /tmp/ort && cd /tmp/ort && npm init -y >/dev/null &&
//   npm install --ignore-scripts onnxruntime-node
// (--ignore-scripts is required: the package already carries the Linux
// library and its install script would try to download more.)
//
// JSON tensor encoding (both directions), exact for every value incl. NaN:
//   {"type": "float32"|"float64"|"int64"|"int32"|"string",
//    "dims": [..],
//    "b64": "<little-endian raw bytes, base64>"     (numeric types)
//    "strings": ["..", ..]                          (type string)}
// INPUTS.json:  {"inputs": {NAME: tensor, ...}}
// OUTPUTS.json: {"outputs": {NAME: tensor, ...}, "output_names": [...]}
// On a load or run error the message is printed to stderr and the exit
// status is 1 (OUTPUTS.json is then not written).

'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    const dir = process.env.ORT_NODE_MODULES;
    if (dir) return require(path.join(path.resolve(dir), 'onnxruntime-node'));
    throw e;
  }
}

const ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
};

function decode(ort, t) {
  if (t.type === 'string') return new ort.Tensor('string', t.strings, t.dims);
  const Arr = ARRAYS[t.type];
  if (!Arr) throw new Error('unsupported input type ' + t.type);
  const buf = Buffer.from(t.b64, 'base64');
  const copy = new Uint8Array(buf.length);
  copy.set(buf);
  return new ort.Tensor(t.type, new Arr(copy.buffer), t.dims);
}

function encode(tensor) {
  const dims = Array.from(tensor.dims);
  if (tensor.type === 'string') return { type: 'string', dims, strings: Array.from(tensor.data) };
  const d = tensor.data;
  const bytes = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return { type: tensor.type, dims, b64: bytes.toString('base64') };
}

async function main() {
  const [modelPath, inPath, outPath] = process.argv.slice(2);
  if (!modelPath || !inPath || !outPath) {
    process.stderr.write('usage: node ort_run.js MODEL.onnx INPUTS.json OUTPUTS.json\n');
    process.exit(2);
  }
  const ort = loadOrt();
  const req = JSON.parse(fs.readFileSync(inPath, 'utf8'));
  const session = await ort.InferenceSession.create(modelPath);
  const feeds = {};
  for (const [name, t] of Object.entries(req.inputs)) feeds[name] = decode(ort, t);
  const results = await session.run(feeds);
  const outputs = {};
  for (const name of session.outputNames) outputs[name] = encode(results[name]);
  fs.writeFileSync(outPath, JSON.stringify({ outputs, output_names: session.outputNames }));
}

main().catch((e) => {
  process.stderr.write(String(e && e.message ? e.message : e) + '\n');
  process.exit(1);
});
