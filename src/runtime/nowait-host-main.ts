// A nowait host's entry point; the supervisor starts it (see nowait-host.ts).
import { exitCodes } from './exit-codes.js';
import { host } from './nowait-host.js';

host().catch((error: unknown) => {
  process.stderr.write(`wakeport: wakeport: error: fatal: ${(error as Error).stack ?? error}\n`);
  process.exit(exitCodes.bug);
});
