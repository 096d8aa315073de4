// Upstream TLS: an HTTPS fake with a self-signed certificate (made with the openssl CLI at test time).
// Without a CA for it: 502 upstream_unreachable whose message names the certificate problem; with
// server.tls_ca_file pointing at it: the same requests succeed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startFakeOpenAI } from '../e2e/lib/fake-openai.mjs';
import { startFakeAnthropic } from '../e2e/lib/fake-anthropic.mjs';
import { T, scratchDir, startGateway } from '../e2e/lib/gateway.mjs';
import {
  ANTHROPIC_KEY,
  OPENAI_MODEL,
  CLAUDE_MODEL,
  faultEnv,
  writeConfig,
  chat,
  post,
  postStream,
  assertError,
  assertCleanExit,
} from './lib/faults.mjs';

describe('upstream TLS', { timeout: T(120000) }, () => {
  let dir;
  let certFile;
  let tlsFake;
  let anthropic;
  const gateways = [];

  before(async () => {
    dir = await scratchDir('prism-faults-tls-');
    certFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-addext', 'basicConstraints=critical,CA:TRUE'],
      { stdio: 'pipe', timeout: 30000 },
    );
    tlsFake = await startFakeOpenAI({ tls: { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) } });
    assert.match(tlsFake.baseURL, /^https:\/\/127\.0\.0\.1:\d+\/v1$/);
    anthropic = await startFakeAnthropic({ apiKey: ANTHROPIC_KEY });
  });

  after(async () => {
    for (const gw of gateways) await gw.kill();
    if (tlsFake) await tlsFake.close();
    if (anthropic) await anthropic.close();
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  });

  async function gateway(overrides, name) {
    const config = await writeConfig(dir, overrides, name);
    const gw = await startGateway({ env: faultEnv({ openai: tlsFake, anthropic }), config });
    gateways.push(gw);
    return gw;
  }

  it('an untrusted certificate: 502 upstream_unreachable naming the certificate; the gateway keeps serving', { timeout: T(30000) }, async () => {
    const gw = await gateway({}, 'no-ca.yml');
    tlsFake.reset();
    const r = await post(gw, chat(OPENAI_MODEL));
    const err = assertError(r, 502, { type: 'api_error', code: 'upstream_unreachable' });
    assert.match(err.message, /certificate|SSL|TLS/i, 'the message says what went wrong');
    assert.equal(tlsFake.requests.length, 0, 'no request got through the failed handshake');

    const s = await post(gw, chat(OPENAI_MODEL, { stream: true }));
    assertError(s, 502, { type: 'api_error', code: 'upstream_unreachable' }, 'streamed');

    const ok = await post(gw, chat(CLAUDE_MODEL));
    assert.equal(ok.status, 200, `the Claude path still works: ${ok.text.slice(0, 300)}`);
    await assertCleanExit(gw);
  });

  it('server.tls_ca_file trusting the certificate: the same requests succeed', { timeout: T(30000) }, async () => {
    const gw = await gateway({ server: { tls_ca_file: certFile } }, 'with-ca.yml');
    tlsFake.reset();
    const r = await post(gw, chat(OPENAI_MODEL));
    assert.equal(r.status, 200, r.text.slice(0, 500));
    assert.deepEqual(r.json, tlsFake.responses[0].body);
    const s = await postStream(gw, chat(OPENAI_MODEL));
    assert.equal(s.status, 200);
    assert.equal(s.data.at(-1), '[DONE]');
    assert.deepEqual(s.data.slice(0, -1).map((d) => JSON.parse(d)), tlsFake.responses[1].chunks);
    assert.equal(tlsFake.requests.length, 2);
    await assertCleanExit(gw);
  });
});
