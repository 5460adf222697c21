// The soak's HTTP client: one POST, never rejecting. Every attempt comes back as one ledger entry
// with its timing, status, problem code, replay marker, the execution that produced the body
// (X-Exec) and a hash of the exact body bytes.
import { createHash } from 'node:crypto';
import { request } from 'node:http';

/**
 * POSTs `body` as JSON to `app` (a live app process: { slot, framework, pid, port, agent }).
 * `key` undefined sends no Idempotency-Key header.
 */
export function post(app, { route, key, body, workMs = 0, pad = 0, timeoutMs = 20_000 }) {
  const payload = Buffer.from(JSON.stringify(body));
  const entry = {
    slot: app.slot,
    fw: app.framework,
    pid: app.pid,
    route,
    key: key ?? null,
    t0: Date.now(),
    t1: 0,
    status: null,
    code: null,
    replayed: false,
    exec: null,
    sha: null,
    location: null,
    type: null,
    error: null,
  };
  return new Promise((resolve) => {
    let done = false;
    const finish = (fields) => {
      if (done) return;
      done = true;
      Object.assign(entry, fields, { t1: Date.now() });
      resolve(entry);
    };
    const req = request(
      {
        host: '127.0.0.1',
        port: app.port,
        path: route,
        method: 'POST',
        agent: app.agent,
        headers: {
          'content-type': 'application/json',
          'content-length': payload.length,
          ...(key !== undefined ? { 'idempotency-key': key } : {}),
          // Test controls, not part of the fingerprint (see app.mjs).
          'x-work-ms': String(workMs),
          'x-pad': String(pad),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('error', (error) => finish({ error: error.code ?? error.message }));
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          let code = null;
          if (String(res.headers['content-type'] ?? '').startsWith('application/problem+json')) {
            try {
              code = JSON.parse(bytes.toString()).code ?? null;
            } catch {
              code = 'unparsable';
            }
          }
          finish({
            status: res.statusCode,
            code,
            replayed: res.headers['idempotent-replayed'] === 'true',
            exec: res.headers['x-exec'] ?? null,
            sha: createHash('sha256').update(bytes).digest('hex'),
            location: res.headers.location ?? null,
            type: res.headers['content-type'] ?? null,
          });
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('client timeout'), { code: 'TIMEOUT' })));
    req.on('error', (error) => finish({ error: error.code ?? error.message }));
    req.end(payload);
  });
}
