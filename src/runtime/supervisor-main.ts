// The supervisor's entry point; the launcher starts it (see supervisor.ts).
import { exitCodes } from './exit-codes.js';
import { supervise } from './supervisor.js';

supervise().catch((error: unknown) => {
  process.stderr.write(`wakeport: wakeport: error: fatal: ${(error as Error).stack ?? error}\n`);
  process.exit(exitCodes.bug);
});
