#!/usr/bin/env node
// ort_core.js -- in-process timing of ONNX Runtime (onnxruntime-node), the
// counterpart of bench/core_bench.c. Run by bench/run.sh.
//
//   node bench/ort_core.js [-t SECONDS] KEY MODEL.onnx SPEC [SPEC...]
//       one JSON line per SPEC: the time of one `await session.run(feeds)`,
//       median over many calls after a warm-up (intraOpNumThreads 1,
//       interOpNumThreads 1, sequential execution, all graph optimizations).
//   node bench/ort_core.js --session MODEL.onnx
//       one JSON line: time to require('onnxruntime-node') and to create the
//       InferenceSession in this fresh process, and the first run's time is
//       not included (cold start of the runtime itself).
//
// SPEC files are bench/prep.py's (see core_bench.c). The per-call floor of
// ORT (N-API crossing, promise, tensor wrapping) is measured by running the
// same script on an Identity model; run.sh/report.py subtract it.
// onnxruntime-node is found in bench/work/node_modules (or NODE_PATH).

'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    return require(path.join(__dirname, 'work', 'node_modules', 'onnxruntime-node'));
  }
}

const SESSION_OPTS = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

function readSpec(ort, spec) {
  const lines = fs.readFileSync(spec, 'utf8').trim().split('\n');
  const n = parseInt(lines[0], 10);
  const feeds = [];
  for (let i = 1; i <= n; i++) {
    const f = lines[i].trim().split(/\s+/);
    const dtype = parseInt(f[0], 10);
    const nd = parseInt(f[1], 10);
    const dims = f.slice(2, 2 + nd).map(Number);
    const raw = f[2 + nd];
    const name = f[3 + nd];
    const buf = fs.readFileSync(raw);
    const copy = new Uint8Array(buf.length);
    copy.set(buf);
    let t;
    if (dtype === 1) t = new ort.Tensor('float32', new Float32Array(copy.buffer), dims);
    else if (dtype === 7) t = new ort.Tensor('int64', new BigInt64Array(copy.buffer), dims);
    else throw new Error(spec + ': dtype ' + dtype + ' not handled');
    feeds.push([name, t, dims[0]]);
  }
  return feeds;
}

const nowUs = () => Number(process.hrtime.bigint()) / 1e3;

async function timeSpec(session, ort, key, spec, budget) {
  const list = readSpec(ort, spec);
  const feeds = {};
  // bind by position, like core_bench (the spec's names are the model's)
  list.forEach(([name, t], i) => { feeds[session.inputNames[i] || name] = t; });
  const batch = list[0][2];
  let end = nowUs() + budget * 0.2e6;
  for (let i = 0; i < 20 || nowUs() < end; i++) await session.run(feeds);
  const times = [];
  end = nowUs() + budget * 1e6;
  while (times.length < 200000 && (times.length < 30 || nowUs() < end)) {
    const c0 = nowUs();
    await session.run(feeds);
    times.push(nowUs() - c0);
  }
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  times.sort((a, b) => a - b);
  const n = times.length;
  return {
    engine: 'ort', model: key, batch, calls: n,
    median_us: +times[n >> 1].toFixed(3),
    p10_us: +times[Math.floor(n / 10)].toFixed(3),
    p90_us: +times[Math.floor(n * 9 / 10)].toFixed(3),
    mean_us: +mean.toFixed(3),
  };
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--session') {
    const t0 = nowUs();
    const ort = loadOrt();
    const t1 = nowUs();
    await ort.InferenceSession.create(args[1], SESSION_OPTS);
    const t2 = nowUs();
    process.stdout.write(JSON.stringify({ engine: 'ort', model: args[1], require_ms: (t1 - t0) / 1e3, create_ms: (t2 - t1) / 1e3 }) + '\n');
    return;
  }
  let budget = 1.0;
  if (args[0] === '-t') { budget = parseFloat(args[1]); args.splice(0, 2); }
  if (args.length < 3) {
    process.stderr.write('usage: node ort_core.js [-t SECONDS] KEY MODEL.onnx SPEC [SPEC...] | --session MODEL.onnx\n');
    process.exit(2);
  }
  const [key, model, ...specs] = args;
  const ort = loadOrt();
  const t0 = nowUs();
  const session = await ort.InferenceSession.create(model, SESSION_OPTS);
  const loadMs = (nowUs() - t0) / 1e3;
  for (const spec of specs) {
    const r = await timeSpec(session, ort, key, spec, budget);
    r.load_ms = +loadMs.toFixed(3);
    process.stdout.write(JSON.stringify(r) + '\n');
  }
}

main().catch((e) => {
  process.stderr.write('ort_core: ' + (e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
