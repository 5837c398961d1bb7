#!/usr/bin/env node
/*
 * node_tls_client.cjs — Node's own HTTPS clients for test_node_tls.py
 * (issue 11: Node's compiled-in OpenSSL covered by patching).
 *
 * Usage: node node_tls_client.cjs MODE PORT CA_FILE [SERVERNAME]
 *   fetch   two chat calls with the built-in fetch (undici, one keep-alive
 *           connection)
 *   https   two chat calls with https.request on a keep-alive Agent
 *   worker  a worker_threads worker makes two https.request calls, then the
 *           main thread one
 *   alpn    tls.connect offering h2 and http/1.1 with SERVERNAME as SNI;
 *           prints the protocol the server chose
 *   parallel  four https.request calls at once on four connections, the third
 *           with model gpt-4o-mini-forbidden (the test's policy blocks it);
 *           lines printed in call order
 * Each call prints one line: `<tag> <status> <x-xenovia-trace-id or -> <body>`.
 * The CA comes from CA_FILE (given in code; fetch needs NODE_EXTRA_CA_CERTS).
 * Exits 0 when every call completed, 1 otherwise. Bounded: 30 s.
 */
'use strict';
const fs = require('fs');
const https = require('https');
const tls = require('tls');
const { Worker, isMainThread, workerData, parentPort } = require('worker_threads');

setTimeout(() => { console.error('timeout'); process.exit(1); }, 30000).unref();

function body(text, model) {
  return JSON.stringify({ model: model || 'gpt-4o-mini', messages: [{ role: 'user', content: text }] });
}

function viaHttps(agent, port, ca, text, model) {
  return new Promise((resolve, reject) => {
    const b = body(text, model);
    const req = https.request({
      host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', ca, agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(b),
                 Authorization: 'Bearer sk-test-XENOVIA-SECRET-123' },
    }, (res) => {
      let d = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { d += c; });
      res.on('end', () => resolve(`${res.statusCode} ${res.headers['x-xenovia-trace-id'] || '-'} ${d}`));
    });
    req.on('error', reject);
    req.end(b);
  });
}

async function main() {
  if (!isMainThread) {
    const { port, caFile } = workerData;
    const ca = fs.readFileSync(caFile);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const out = [];
    for (const t of ['worker call 1', 'worker call 2']) out.push(await viaHttps(agent, port, ca, t));
    agent.destroy();
    parentPort.postMessage(out);
    return;
  }
  const [mode, portS, caFile, servername] = process.argv.slice(2);
  const port = Number(portS);
  const ca = fs.readFileSync(caFile);
  if (mode === 'fetch') {
    for (const t of ['fetch call 1', 'fetch call 2']) {
      const r = await fetch(`https://127.0.0.1:${port}/v1/chat/completions`, {
        method: 'POST', body: body(t),
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-test-XENOVIA-SECRET-123' },
      });
      console.log(`fetch ${r.status} ${r.headers.get('x-xenovia-trace-id') || '-'} ${await r.text()}`);
    }
  } else if (mode === 'https') {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    for (const t of ['https call 1', 'https call 2']) console.log('https ' + await viaHttps(agent, port, ca, t));
    agent.destroy();
  } else if (mode === 'worker') {
    const lines = await new Promise((resolve, reject) => {
      const w = new Worker(__filename, { workerData: { port, caFile } });
      w.on('message', resolve);
      w.on('error', reject);
    });
    for (const l of lines) console.log('worker ' + l);
    const agent = new https.Agent({ keepAlive: false });
    console.log('main ' + await viaHttps(agent, port, ca, 'main call'));
  } else if (mode === 'parallel') {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 4 });
    const calls = [1, 2, 3, 4].map((i) => viaHttps(agent, port, ca, `parallel call ${i}`,
                                                    i === 3 ? 'gpt-4o-mini-forbidden' : undefined));
    const lines = await Promise.all(calls);
    lines.forEach((l, i) => console.log(`parallel${i + 1} ${l}`));
    agent.destroy();
  } else if (mode === 'alpn') {
    const proto = await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca, servername,
                              ALPNProtocols: ['h2', 'http/1.1'] }, () => {
        const p = s.alpnProtocol;
        s.end();
        resolve(p);
      });
      s.on('error', reject);
    });
    console.log(`alpn ${proto}`);
  } else {
    throw new Error('unknown mode ' + mode);
  }
}

main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
