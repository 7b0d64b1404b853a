import type { Agent } from 'node:http';

export interface HttpCall {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  agent?: Agent;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface HttpAnswer {
  status: number;
  text: string;
}

/** A sandbox record is a few KiB; a control plane that sends more is not answering our question. */
const MAX_BODY = 1024 * 1024;

/**
 * One small HTTP request with a deadline for the whole exchange. Rejects with Node's own error
 * (with its `code`), or one with code ETIMEDOUT when the deadline passes.
 */
export async function httpCall(call: HttpCall): Promise<HttpAnswer> {
  const url = new URL(call.url);
  const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(url, { method: call.method, headers: call.headers, agent: call.agent });
    const fail = (err: Error): void => {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', onAbort);
      req.destroy();
      reject(err);
    };
    const onAbort = (): void => fail(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }));
    const timer = setTimeout(() => fail(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })), call.timeoutMs);
    timer.unref();
    call.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY) {
          res.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('close', () => {
        clearTimeout(timer);
        call.signal?.removeEventListener('abort', onAbort);
        resolve({ status: res.statusCode ?? 0, text: size > MAX_BODY ? '' : Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.end();
  });
}
