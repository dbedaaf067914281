// Load generation with autocannon, to loopback only.
//
// Against a "Connection: close" server, stock autocannon 9 writes the next
// request onto the socket that is closing, counts the reset as an error,
// and pins every later response to an older request (its reconnectRate
// option resets before counting the response, so it is no help either).
// `freshConnections` makes each client open a new connection after every
// response instead: one request per connection, as a browser or curl does.

import autocannon from 'autocannon';

export interface LoadResult {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly requests: number;
}

export interface LoadOptions {
  readonly port: number;
  readonly connections: number;
  readonly durationSeconds: number;
  readonly freshConnections: boolean;
  readonly path?: string;
}

interface AutocannonClient {
  _doRequest(): void;
  _destroyConnection(): void;
  _connect(): void;
  on(event: 'response', listener: () => void): void;
}

function reconnectAfterEachResponse(client: AutocannonClient): void {
  let answered = false;
  client.on('response', () => (answered = true));
  const doRequest = client._doRequest.bind(client);
  client._doRequest = () => {
    if (!answered) return doRequest();
    answered = false;
    client._destroyConnection();
    client._connect(); // Sends the next request on the new connection.
  };
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: `http://127.0.0.1:${options.port}${options.path ?? '/'}`,
    connections: options.connections,
    duration: options.durationSeconds,
    timeout: 10,
    ...(options.freshConnections ? { setupClient: reconnectAfterEachResponse as unknown as (client: unknown) => void } : {}),
  } as autocannon.Options);
  return {
    requestsPerSecond: result.requests.total / options.durationSeconds,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    requests: result.requests.total,
  };
}
