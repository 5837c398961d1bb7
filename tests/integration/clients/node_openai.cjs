#!/usr/bin/env node
/*
 * node_openai.cjs — integration client using the `openai` npm package (6.x).
 *
 * Usage: node node_openai.cjs BASE_URL CA_FILE|- SCENARIO
 * The SDK comes from ../node/node_modules (installed by scripts/test.sh with
 * `npm ci`). One OpenAI client per run, so calls reuse one keep-alive
 * connection of Node's fetch; maxRetries 0 so an error status is one request.
 * Every call is made with .withResponse() so the raw Response's headers can be
 * printed: X-Xenovia-* headers as `XV-HEADER name: value` lines, which
 * run_matrix.py takes out before comparing runs. The transcript format
 * mirrors xvclient.py (canonical JSON with sorted keys). Plain HTTP is the
 * intended transport (Node links OpenSSL statically; the agent cannot hook it).
 */
'use strict';
const path = require('path');
const { createRequire } = require('module');

const [, , baseArg, ca, scenario] = process.argv;
if (!baseArg || !ca || !scenario) {
  console.error('usage: node_openai.cjs BASE_URL CA_FILE|- SCENARIO');
  process.exit(2);
}
const base = baseArg.replace(/\/+$/, '');
for (const v of ['SSL_CERT_FILE', 'SSL_CERT_DIR', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE',
                 'NODE_EXTRA_CA_CERTS', 'http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) {
  delete process.env[v];
}
if (ca !== '-') {
  process.env.SSL_CERT_FILE = ca;   // (Node reads CAs at start; TLS is not this client's transport)
}
const nodeDir = path.join(__dirname, '..', 'node');
const { OpenAI } = createRequire(path.join(nodeDir, 'package.json'))('openai');

const FIXED_SESSION = '5f0c6a8e-3b1d-4c2e-9a7b-1d2e3f4a5b6c';
const API_KEY = 'sk-test-XENOVIA-SECRET-123';
const MODEL = 'gpt-4o-mini';
const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', description: 'Local time in a timezone',
    parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] } } },
];
const RESPONSES_TOOLS = [
  { type: 'function', name: 'lookup_order', description: 'Find an order',
    parameters: { type: 'object', properties: { id: { type: 'string' } } } },
  { type: 'function', name: 'refund_order', description: 'Refund an order',
    parameters: { type: 'object', properties: { id: { type: 'string' } } } },
];
const PRINTED = ['content-type', 'content-encoding', 'transfer-encoding', 'x-request-id'];

function canon(v) {
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']';
  if (v && typeof v === 'object') {
    return '{' + Object.keys(v).sort().filter((k) => v[k] !== undefined)
      .map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}';
  }
  return JSON.stringify(v === undefined ? null : v);
}

function chat(model, text, extra = {}) {
  return { model, messages: [{ role: 'system', content: 'You are a terse test assistant.' },
                             { role: 'user', content: text }], ...extra };
}

function bigText() {
  const unit = 'The quick brown fox jumps over the lazy dog 0123456789. ';
  const n = 1024 * 1024 + 333;
  return unit.repeat(Math.ceil(n / unit.length) + 1).slice(0, n);
}

let callNo = 0;
function head(label, response) {
  callNo += 1;
  const out = [`== call ${callNo} ${label}`, `status: ${response.status}`];
  for (const name of PRINTED) {
    const v = response.headers.get(name);
    if (v !== null) out.push(`${name}: ${v}`);
  }
  const xv = [];
  response.headers.forEach((v, k) => { if (k.toLowerCase().startsWith('x-xenovia-')) xv.push([k.toLowerCase(), v]); });
  xv.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [k, v] of xv) out.push(`XV-HEADER ${k}: ${v}`);
  process.stdout.write(out.join('\n') + '\n');
}

function apiError(label, e) {
  callNo += 1;
  process.stdout.write(`== call ${callNo} ${label}\nstatus: ${e.status}\n`);
  const xv = [];
  if (e.headers) e.headers.forEach((v, k) => { if (k.toLowerCase().startsWith('x-xenovia-')) xv.push([k.toLowerCase(), v]); });
  xv.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  for (const [k, v] of xv) process.stdout.write(`XV-HEADER ${k}: ${v}\n`);
  process.stdout.write(`error: ${e.constructor.name} ${canon(e.error)}\n`);
}

async function plain(label, promise) {
  try {
    const { data, response } = await promise.withResponse();
    head(label, response);
    process.stdout.write('body: ' + canon(data) + '\n');
  } catch (e) {
    if (e instanceof OpenAI.APIError && e.status) {
      apiError(label, e);
    } else {
      // The cut scenario: the body never completed (undici: TypeError "terminated").
      callNo += 1;
      process.stdout.write(`== call ${callNo} ${label}\nclient-error: ${e.constructor.name} ${e.message}\n`);
    }
  }
}

async function streamed(label, promise) {
  let data;
  let response;
  try {
    ({ data, response } = await promise.withResponse());
  } catch (e) {
    if (!(e instanceof OpenAI.APIError && e.status)) throw e;
    apiError(label, e);     // e.g. the synthetic 403 of a blocked stream
    return;
  }
  head(label, response);
  let text = '';
  let usage = null;
  const calls = new Map();
  try {
    await consume(data, calls, (t) => { text += t; }, (u) => { usage = u; });
  } catch (e) {
    process.stdout.write(`client-error: ${e.constructor.name}\n`);   // the cut scenario
  }
  process.stdout.write('stream-text: ' + JSON.stringify(text) + '\n');
  for (const idx of [...calls.keys()].sort((a, b) => a - b)) {
    const c = calls.get(idx);
    process.stdout.write(`stream-tool-call ${idx}: id=${c.id} name=${c.name} arguments=${c.arguments}\n`);
  }
  process.stdout.write('stream-usage: ' + (usage ? canon(usage) : 'none') + '\n');
}

async function consume(data, calls, addText, setUsage) {
  for await (const ev of data) {
    process.stdout.write('sse: ' + canon(ev) + '\n');
    for (const ch of ev.choices || []) {
      const d = ch.delta || {};
      if (typeof d.content === 'string') addText(d.content);
      if (typeof ch.text === 'string') addText(ch.text);
      for (const tc of d.tool_calls || []) {
        const slot = calls.get(tc.index) || { id: null, name: '', arguments: '' };
        if (tc.id) slot.id = tc.id;
        if (tc.function && tc.function.name) slot.name += tc.function.name;
        if (tc.function && tc.function.arguments) slot.arguments += tc.function.arguments;
        calls.set(tc.index, slot);
      }
    }
    if (ev.usage) setUsage(ev.usage);
    if (ev.type === 'response.output_text.delta') addText(ev.delta);
    if (ev.type === 'response.output_item.added' && ev.item && ev.item.type === 'function_call') {
      calls.set(ev.output_index, { id: ev.item.call_id, name: ev.item.name || '', arguments: '' });
    }
    if (ev.type === 'response.function_call_arguments.delta') {
      const slot = calls.get(ev.output_index) || { id: null, name: '', arguments: '' };
      slot.arguments += ev.delta;
      calls.set(ev.output_index, slot);
    }
    if (ev.type === 'response.completed' && ev.response && ev.response.usage) setUsage(ev.response.usage);
  }
}

function settle() { return new Promise((resolve) => setTimeout(resolve, 50)); }

async function main() {
  const opts = { apiKey: API_KEY, baseURL: base + '/v1', maxRetries: 0, timeout: 60000 };
  const client = new OpenAI(opts);
  const cc = client.chat.completions;
  // excluded and nocapture send the calls of chat and tools (run_matrix.py
  // changes the agent's configuration for them).
  const scen = { excluded: 'chat', nocapture: 'tools' }[scenario] || scenario;
  switch (scen) {
    case 'chat':
      await plain('chat', cc.create(chat(MODEL, 'Say hello to the integration test.')));
      break;
    case 'stream':
      await streamed('chat stream', cc.create(chat(MODEL, 'Stream a greeting, please.',
        { stream: true, stream_options: { include_usage: true } })));
      break;
    case 'tools':
      await plain('chat tools', cc.create(chat(MODEL, 'What is the weather in Paris and the time there?',
        { tools: TOOLS })));
      await streamed('chat tools stream', cc.create(chat(MODEL, 'Same question, streamed: weather and time in Oslo?',
        { tools: TOOLS, stream: true })));
      break;
    case 'gzip':
      // Node's fetch sends Accept-Encoding: gzip, deflate by itself and inflates.
      await plain('chat gzip', cc.create(chat(MODEL + '-gzip', 'Compressed reply, please.')));
      await streamed('chat gzip stream', cc.create(chat(MODEL + '-gzip', 'Compressed stream, please.',
        { stream: true, stream_options: { include_usage: true } })));
      break;
    case 'trickle':
      await plain('chat trickle', cc.create(chat(MODEL + '-trickle', 'Reply slowly, please.')));
      await streamed('chat trickle tools stream', cc.create(chat(MODEL + '-trickle', 'Slow tool calls, streamed.',
        { tools: TOOLS, stream: true, stream_options: { include_usage: true } })));
      break;
    case 'cut':
      await streamed('chat cut stream', cc.create(chat(MODEL + '-cut', 'This stream will break.',
        { stream: true, stream_options: { include_usage: true } })));
      await plain('chat cut', cc.create(chat(MODEL + '-cut', 'This reply will break.')));
      break;
    case 'bad_session':
      await plain('bad session header', cc.create(chat(MODEL, 'My session id is bad.'),
        { headers: { 'X-Xenovia-Session-Id': 'not-a-uuid' } }));
      await plain('good call', cc.create(chat(MODEL, 'This one is fine.')));
      break;
    case 'properties':
      await plain('properties', cc.create(chat(MODEL, 'Tag me with properties.')));
      await streamed('properties app header', cc.create(chat(MODEL, 'The app tags this one itself.', { stream: true }),
        { headers: { 'X-Xenovia-Property-team': 'app-value' } }));
      break;
    case 'policy_block': {
      const drop = { type: 'function', function: { name: 'drop_database', description: 'Drop a database',
        parameters: { type: 'object', properties: { name: { type: 'string' } } } } };
      await plain('policy allowed', cc.create(chat(MODEL, 'Weather, allowed.', { tools: TOOLS.slice(0, 1) })));
      await plain('policy blocked', cc.create(chat(MODEL, 'Clean up the database.', { tools: [TOOLS[0], drop] })));
      await plain('policy after block', cc.create(chat(MODEL, 'Still here after the block?')));
      await streamed('policy blocked stream', cc.create(chat(MODEL, 'Drop it, streamed.', { tools: [drop], stream: true })));
      break;
    }
    case 'conversation': {
      // SPEC §4 strategies in pairs (see xvclient.conversation_calls); later
      // turns quote the replies this client actually got, as an app would.
      const sysm = { role: 'system', content: 'You are a terse test assistant.' };
      const u1 = { role: 'user', content: 'Turn one of a conversation.' };
      const r1 = await cc.create({ model: MODEL, messages: [sysm, u1] }).withResponse();
      head('conversation 1', r1.response);
      process.stdout.write('body: ' + canon(r1.data) + '\n');
      await streamed('conversation 2', cc.create({ model: MODEL, stream: true, messages: [
        sysm, u1, { role: 'assistant', content: r1.data.choices[0].message.content },
        { role: 'user', content: 'And turn two, streamed.' }] }));
      const u3 = { role: 'user', content: 'Weather in Paris, via the tool.' };
      const r3 = await cc.create({ model: MODEL, tools: TOOLS.slice(0, 1), messages: [sysm, u3] }).withResponse();
      head('conversation 3', r3.response);
      process.stdout.write('body: ' + canon(r3.data) + '\n');
      const m3 = r3.data.choices[0].message;
      const tc = m3.tool_calls[0];
      await plain('conversation 4', cc.create({ model: MODEL, tools: TOOLS.slice(0, 1), messages: [
        sysm, u3, m3, { role: 'tool', tool_call_id: tc.id, content: '18C and sunny in Paris' }] }));
      const r5 = await client.responses.create({ model: 'gpt-4.1-mini', input: 'Start a thread.' }).withResponse();
      head('conversation 5', r5.response);
      process.stdout.write('body: ' + canon(r5.data) + '\n');
      await plain('conversation 6', client.responses.create({ model: 'gpt-4.1-mini', input: 'Continue the thread.',
        previous_response_id: r5.data.id }));
      for (const [i, text] of [[7, 'Alice asks a first question.'], [8, 'Alice asks something else.']]) {
        await plain(`conversation ${i}`, cc.create({ model: MODEL, user: 'alice-1234',
          messages: [sysm, { role: 'user', content: text }] }));
      }
      await plain('conversation 9', cc.create({ model: MODEL, messages: [
        sysm, { role: 'user', content: 'This call names its session.' }] },
        { headers: { 'X-Xenovia-Session-Id': FIXED_SESSION } }));
      break;
    }
    case 'long':
      await plain('chat long gzip', cc.create(chat(MODEL + '-long', 'A long reply, gzipped.')));
      await streamed('chat long stream', cc.create(chat(MODEL + '-long', 'A long streamed reply.',
        { stream: true, stream_options: { include_usage: true } })));
      break;
    case 'big':
      await plain('chat big', cc.create(chat(MODEL, bigText())));
      break;
    case 'keepalive':
      // Short pauses let undici put the socket back into its pool before the
      // next call (otherwise it may open a second connection).
      await plain('chat 1', cc.create(chat(MODEL, 'First call on this connection.')));
      await settle();
      await streamed('chat 2 stream', cc.create(chat(MODEL, 'Second call, streamed without usage.', { stream: true })));
      await settle();
      await plain('chat 3', cc.create(chat(MODEL + '-chunked-nousage', 'Third call: chunked reply, no usage.')));
      break;
    case 'endpoints': {
      await plain('responses', client.responses.create({ model: 'gpt-4.1-mini', input: 'Responses API, plain.' }));
      await streamed('responses stream', client.responses.create({ model: 'gpt-4.1-mini', input: 'Responses API, streamed.', stream: true }));
      await streamed('responses tools stream', client.responses.create({ model: 'gpt-4.1-mini', input: 'Responses API tools, streamed.', stream: true, tools: RESPONSES_TOOLS }));
      await plain('embeddings', client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'], encoding_format: 'float' }));
      await plain('completions', client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Legacy completion:', max_tokens: 16 }));
      const prefixed = new OpenAI({ ...opts, baseURL: base + '/openai/v1' });
      await plain('prefixed chat', prefixed.chat.completions.create(chat(MODEL, 'Under another prefix.')));
      await plain('chat error', cc.create(chat(MODEL + '-status400', 'Please fail.')));
      break;
    }
    default:
      console.error(`node_openai.cjs: scenario ${scenario} not supported`);
      process.exit(3);
  }
}

main().catch((e) => { console.error('node client failed:', e && e.stack ? e.stack : e); process.exit(1); });
