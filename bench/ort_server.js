#!/usr/bin/env node
// ort_server.js -- the ONNX Runtime peer for bench/run.sh: a Node HTTP
// server answering POST /invocations like nginfer does, one worker process
// per core (node cluster; the primary only forks and restarts nothing),
// each with its own InferenceSession (intraOpNumThreads 1).
//
//   node bench/ort_server.js MODEL.onnx PORT [WORKERS]
//
// Bodies: {"instances": [[..row..], ...]} (rows of the single input, shape
// [N, F]), or {"inputs": nested list} for the single input (any rank), or
// {"inputs": {NAME: nested list, ...}} for several. Element types come from
// the session's input metadata (float32, int64, int32, float64).
// Answer: {"predictions": <first output as nested lists>}; 400 with
// {"error": {...}} for a body it cannot use. GET /ping answers 200.
// SIGTERM/SIGINT to the primary stops the workers, then the primary.

'use strict';
const cluster = require('cluster');
const http = require('http');
const path = require('path');

function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    return require(path.join(__dirname, 'work', 'node_modules', 'onnxruntime-node'));
  }
}

const [modelPath, portArg, workersArg] = process.argv.slice(2);
if (!modelPath || !portArg) {
  process.stderr.write('usage: node ort_server.js MODEL.onnx PORT [WORKERS]\n');
  process.exit(2);
}
const port = parseInt(portArg, 10);
const nWorkers = parseInt(workersArg || '2', 10);

if (cluster.isPrimary) {
  let stopping = false;
  for (let i = 0; i < nWorkers; i++) cluster.fork();
  cluster.on('exit', (w, code, sig) => {
    if (!stopping) {
      process.stderr.write(`ort_server: worker ${w.process.pid} exited (${code || sig}); stopping\n`);
      stop(1);
    } else if (Object.keys(cluster.workers).length === 0) {
      process.exit(0);
    }
  });
  function stop(rc) {
    if (stopping) return;
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    setTimeout(() => process.exit(rc), 5000).unref();
    if (Object.keys(cluster.workers).length === 0) process.exit(rc);
  }
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
} else {
  worker().catch((e) => {
    process.stderr.write('ort_server: ' + (e && e.stack ? e.stack : e) + '\n');
    process.exit(1);
  });
}

const ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  int64: BigInt64Array,
};

// Flattens a nested list; returns [flat, dims].
function flatten(v) {
  const dims = [];
  let x = v;
  while (Array.isArray(x)) {
    dims.push(x.length);
    x = x[0];
  }
  const flat = Array.isArray(v) ? v.flat(dims.length - 1) : [v];
  const count = dims.reduce((a, b) => a * b, 1);
  if (flat.length !== count) throw new Error('ragged nested list');
  return [flat, dims];
}

function tensor(ort, type, value) {
  const [flat, dims] = flatten(value);
  const Arr = ARRAYS[type];
  if (!Arr) throw new Error('input type ' + type + ' not supported');
  const data = new Arr(flat.length);
  if (type === 'int64') for (let i = 0; i < flat.length; i++) data[i] = BigInt(flat[i]);
  else for (let i = 0; i < flat.length; i++) data[i] = flat[i];
  return new ort.Tensor(type, data, dims);
}

// Tensor data -> nested JS arrays following dims.
function nest(data, dims) {
  const arr = data instanceof BigInt64Array ? Array.from(data, Number) : Array.from(data);
  if (dims.length <= 1) return arr;
  let out = arr;
  for (let d = dims.length - 1; d >= 1; d--) {
    const n = dims[d];
    const next = [];
    for (let i = 0; i < out.length; i += n) next.push(out.slice(i, i + n));
    out = next;
  }
  return out;
}

function send(res, code, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

async function worker() {
  const ort = loadOrt();
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const meta = session.inputMetadata || session.inputNames.map((name) => ({ name, type: 'float32' }));
  const types = {};
  for (const m of meta) types[m.name] = m.type || 'float32';
  const inNames = session.inputNames;
  const outName = session.outputNames[0];

  async function invoke(bodyText) {
    const req = JSON.parse(bodyText);
    const feeds = {};
    if (req.instances !== undefined) {
      if (inNames.length !== 1) throw new Error('"instances" needs a model with one input');
      feeds[inNames[0]] = tensor(ort, types[inNames[0]], req.instances);
    } else if (req.inputs !== undefined) {
      if (Array.isArray(req.inputs)) {
        if (inNames.length !== 1) throw new Error('name the inputs');
        feeds[inNames[0]] = tensor(ort, types[inNames[0]], req.inputs);
      } else {
        for (const name of inNames) {
          if (req.inputs[name] === undefined) throw new Error('missing input ' + name);
          feeds[name] = tensor(ort, types[name], req.inputs[name]);
        }
      }
    } else {
      throw new Error('expected "instances" or "inputs"');
    }
    const out = await session.run(feeds);
    const t = out[outName];
    return { predictions: nest(t.data, t.dims) };
  }

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/ping') return send(res, 200, { status: 'ok' });
    if (req.method !== 'POST' || (req.url !== '/invocations' && req.url !== '/predict')) {
      return send(res, 404, { error: { code: 'not_found', message: req.url } });
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      invoke(Buffer.concat(chunks).toString('utf8')).then(
        (ans) => send(res, 200, ans),
        (e) => send(res, 400, { error: { code: 'bad_request', message: String(e && e.message) } }),
      );
    });
  });
  server.keepAliveTimeout = 65000;
  server.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => process.exit(0));
}
