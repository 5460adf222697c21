/**
 * The admin API of the service (`@idem/admin` at /admin/idem), only with ADMIN_TOKEN: a meeting's
 * record looked up by its key and scope, deleted to force a re-run, and nothing without the token.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, type Service } from '../src/app.js';
import { ConfigError, loadConfig, testConfig } from '../src/config.js';
import { idempotencyKeyOf } from '../src/extraction.js';
import { keyParts, parseMeetingPayload } from '../src/payload.js';
import { fakeLlm, meeting, type FakeLlm } from './helpers.js';

const TOKEN = 'admin-token-for-tests-0123456789abcdef';

/** The admin API's address of the record of `/extract` for this meeting. */
function recordQuery(body: Record<string, unknown>): string {
  const parts = keyParts(parseMeetingPayload(body));
  return `scope=${encodeURIComponent('POST /extract')}&keyJson=${encodeURIComponent(JSON.stringify(parts))}`;
}

describe('the admin API', () => {
  let service: Service | undefined;
  let llm: FakeLlm;
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });

  function start(adminToken: string | undefined): Service {
    llm = fakeLlm();
    service = createApp(testConfig({ adminToken }), { llm });
    return service;
  }

  it('looks a meeting up by its key and scope, and a delete makes the same request run the model again', async () => {
    const { app } = start(TOKEN);
    const body = meeting('admin-1');
    const first = await request(app).post('/extract').send(body);
    expect(first.status).toBe(200);

    const found = await request(app)
      .get(`/admin/idem/records?${recordQuery(body)}`)
      .set('authorization', `Bearer ${TOKEN}`);
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({
      state: 'completed',
      status: 200,
      storageKey: idempotencyKeyOf('extract', parseMeetingPayload(body)),
    });
    expect(found.body.response).toBeUndefined(); // the body only when asked for

    expect((await request(app).post('/extract').send(body)).headers['idempotent-replayed']).toBe('true');
    expect(llm.calls).toBe(1);

    const deleted = await request(app)
      .delete(`/admin/idem/records?${recordQuery(body)}`)
      .set('authorization', `Bearer ${TOKEN}`);
    expect(deleted.status).toBe(200);
    const again = await request(app).post('/extract').send(body);
    expect(again.headers['idempotent-replayed']).toBeUndefined();
    expect(llm.calls).toBe(2);
  });

  it('answers 403 problem+json without the token or with a wrong one, and reads nothing', async () => {
    const { app } = start(TOKEN);
    // No header, a short and a long wrong token, one of the same length (the constant-time compare
    // itself says no), another scheme, and the token without its scheme.
    const sameLength = TOKEN.slice(0, -1) + (TOKEN.endsWith('f') ? 'e' : 'f');
    for (const auth of [
      undefined,
      'Bearer wrong',
      `Bearer ${TOKEN}x`,
      `Bearer ${sameLength}`,
      `Basic ${TOKEN}`,
      TOKEN,
    ]) {
      const req = request(app).get('/admin/idem/health');
      const res = auth === undefined ? await req : await req.set('authorization', auth);
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    const health = await request(app).get('/admin/idem/health').set('authorization', `Bearer ${TOKEN}`);
    expect(health.status).toBe(200);
    expect(health.body.store).toMatchObject({ name: 'memory', reachable: true });
    // The scheme's case does not matter in HTTP.
    expect((await request(app).get('/admin/idem/health').set('authorization', `bearer ${TOKEN}`)).status).toBe(200);
  });

  it('does not exist without ADMIN_TOKEN', async () => {
    const { app } = start(undefined);
    const res = await request(app).get('/admin/idem/health').set('authorization', `Bearer ${TOKEN}`);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('not_found');
  });

  it('refuses a short ADMIN_TOKEN at start, without echoing it', () => {
    let error: unknown;
    try {
      loadConfig({ ADMIN_TOKEN: 'short-secret' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/ADMIN_TOKEN/);
    expect((error as Error).message).not.toMatch(/short-secret/);
  });
});
