#!/usr/bin/env node
/*
 * bench_node.cjs — the benchmark's Node client (issue 11): the same keep-alive
 * chat call as `bench_client chat tls`, made with Node's https.request on one
 * keep-alive connection. Node's OpenSSL is compiled in, so under
 * LD_PRELOAD=libxenovia.so its calls go through the agent's patched entry
 * points (patch/).
 *
 * Usage: node bench_node.cjs PORT CA CALLS WARMUP
 *   Prints each measured call's latency in nanoseconds (request write to the
 *   end of the response) on its own line; on stderr "calls=N stamped=K"
 *   (K = responses carrying X-Xenovia-Trace-Id). Exit 1 on any error.
 */
'use strict';
const fs = require('fs');
const https = require('https');

const [portS, caFile, callsS, warmS] = process.argv.slice(2);
const port = Number(portS), calls = Number(callsS), warm = Number(warmS);
const ca = fs.readFileSync(caFile);
const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [
  { role: 'system', content: 'You are a terse assistant.' },
  { role: 'user', content: 'Say hello to the benchmark in one short sentence, please.' }],
  temperature: 0.2, max_tokens: 64 });
const headers = { 'User-Agent': 'xv-bench/1', Authorization: 'Bearer sk-bench-not-a-key',
  'Content-Type': 'application/json', Accept: 'application/json',
  'Content-Length': Buffer.byteLength(body) };

function call() {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = https.request({ host: '127.0.0.1', port, path: '/v1/chat/completions',
                                method: 'POST', ca, agent, headers }, (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error('status ' + res.statusCode));
        else resolve([process.hrtime.bigint() - t0, res.headers['x-xenovia-trace-id'] ? 1 : 0]);
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

(async () => {
  const lat = [];
  let stamped = 0;
  for (let i = 0; i < warm + calls; i++) {
    const [ns, s] = await call();
    if (i >= warm) { lat.push(ns); stamped += s; }
  }
  agent.destroy();
  process.stdout.write(lat.join('\n') + '\n');
  process.stderr.write(`calls=${calls} stamped=${stamped}\n`);
})().catch((e) => { console.error(String(e)); process.exit(1); });
