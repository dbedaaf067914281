#!/usr/bin/env node
// The HTTP server wakeport ships for examples and benchmarks: answers every
// request with a short text, keep-alive. Started by wakeport with
// handoff = listen-fds it serves the sockets it is given (wakeport/worker),
// checks in with READY=1, and with --idle-timeout exits when unused; started
// alone, `--port N` makes it bind 127.0.0.1:N itself.
//
//   http-server [--port N] [--idle-timeout DURATION]

import http from 'node:http';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/config/options.js';
import { listenFds, ready } from '../src/worker.js';

const { values } = parseArgs({
  options: { port: { type: 'string' }, 'idle-timeout': { type: 'string' } },
});

const body = Buffer.from(`hello from wakeport's http-server (pid ${process.pid})\n`);
const handler: http.RequestListener = (_request, response) => {
  response.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  response.end(body);
};

if (values.port !== undefined) {
  http.createServer(handler).listen(Number(values.port), '127.0.0.1', () => ready());
} else {
  const idle = values['idle-timeout'];
  const sockets = listenFds({
    createServer: () => http.createServer(handler),
    ...(idle === undefined ? {} : { idleTimeout: parseDuration(idle) }),
  });
  if (Object.keys(sockets).length === 0) {
    process.stderr.write('http-server: no sockets were handed over (LISTEN_FDS); use --port N to bind one\n');
    process.exit(100);
  }
  ready();
}
