// Small HTTPS/1.1 client for the provider APIs (OAuth token exchange, FCM), with a bounded response body.
import { Agent, request as httpsRequest } from 'node:https';
import { getCACertificates } from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';

export type HttpResponse = { status: number; headers: IncomingHttpHeaders; body: string };

const MAX_BODY = 64 * 1024;

/** Trusted roots: the defaults plus an optional extra CA (private deployments, tests). */
export function trustedCa(extra: string | undefined): string[] | undefined {
  return extra ? [...getCACertificates('default'), extra] : undefined;
}

/** One keep-alive agent per provider, trusting the extra CA when one is configured. */
export function createAgent(extraCa: string | undefined): Agent {
  const ca = trustedCa(extraCa);
  return new Agent({ keepAlive: true, maxSockets: 16, ...(ca ? { ca } : {}) });
}

export function httpCall(
  url: string,
  opts: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; agent: Agent; timeoutMs: number; signal?: AbortSignal | undefined },
): Promise<HttpResponse> {
  const u = new URL(url);
  const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
  const headers = { ...opts.headers, ...(body ? { 'content-length': String(body.length) } : {}) };
  const signal = opts.signal ? { signal: opts.signal } : {};
  return new Promise((resolve, reject) => {
    const req = httpsRequest(u, { method: opts.method, headers, agent: opts.agent, timeout: opts.timeoutMs, ...signal });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.end(body);
  });
}
