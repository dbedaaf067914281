// A real HTTP client for tests: one request on a fresh connection.

import http from 'node:http';

export interface Reply {
  readonly status: number;
  readonly body: string;
}

export function get(port: number, path = '/', host = '127.0.0.1'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host, port, path, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.setTimeout(15_000, () => request.destroy(new Error('no answer within 15 s')));
  });
}
