// A nowait host: a small process the supervisor starts (see
// services/nowait-pool.ts) with some nowait services' listening sockets. It
// accepts and starts one program per connection, exactly as a nowait
// service does in any process, and exits 0 once it has had nothing to do
// for the hello's idleExitMs, or once it has drained (a DrainRequest: it
// stops accepting and exits when its programs have finished).

import { counted, formatDuration, ReportThrottle, type Logger } from '../log.js';
import { NowaitService } from '../services/nowait.js';
import { isDrainRequest, type DrainRequest, type DrainStarted, type ProgramsReport } from './hello.js';
import { handleStopRequests, takeOver } from './lifecycle.js';

const idleCheckMs = 1000;
const reportProgramsMs = 100;
const idleCollectMs = 2000;

export async function host(): Promise<void> {
  const { hello, log, inbox } = await takeOver('a nowait host must be started by the supervisor');
  // A drain asked for while the services start is done once they have.
  let drainAsked: DrainRequest | null = null;
  let drain = (request: DrainRequest) => void (drainAsked = request);
  inbox.listen((message) => {
    if (isDrainRequest(message)) drain(message);
  });
  const starts = await Promise.allSettled(
    hello.entries.map((entry) =>
      NowaitService.start(
        entry,
        {
          fds: hello.sockets.filter(({ label }) => label === entry.label).map(({ fd }) => fd),
          stderrFd: hello.stderrFds?.[entry.label] ?? null,
          shared: hello.shared?.includes(entry.label) ?? false,
        },
        log,
        (failure) => process.send?.(failure),
      ),
    ),
  );
  // One service that cannot start here (the supervisor checked what it could) leaves the others served.
  const services = starts.flatMap((start, index) => {
    if (start.status === 'fulfilled') return [start.value];
    log.error(hello.entries[index]!.label, `cannot start in nowait host pid ${process.pid}: ${(start.reason as Error).message}`);
    return [];
  });
  log.debug('wakeport', `nowait host pid ${process.pid} serving ${counted(services.length, 'service')}`);
  // A stop during a drain ends the host once every service has stopped, what drained services' programs left included.
  let stopping = false;
  handleStopRequests(() => services, log, 'the supervisor is gone', 'debug', () => void (stopping = true));
  watchIdleness(services, hello.idleExitMs ?? 0, log);
  reportPrograms(services);
  const drainEach = ({ access }: DrainRequest) =>
    Promise.all(services.map((service) => service.drain(Object.hasOwn(access, service.label) ? access[service.label]! : null)));
  let draining = false;
  drain = (request) => {
    // Asked again, by a later reload: its rules apply to the clients still here.
    if (draining) return void drainEach(request);
    draining = true;
    log.debug('wakeport', `nowait host pid ${process.pid} draining`);
    // Each service closes its servers at once, before its processes finish.
    const drained = drainEach(request);
    const started: DrainStarted = { type: 'drain-started' };
    process.send?.(started, () => {});
    // What programs left in their groups runs on: the supervisor takes it over from this last report.
    void drained.then(() => {
      if (stopping) return;
      ReportThrottle.flushAll();
      if (process.send) process.send(programsReport(services), () => process.exit(0));
      else process.exit(0);
    });
  };
  if (drainAsked) drain(drainAsked);
}

/**
 * Tells the supervisor which programs run (and how many clients wait)
 * whenever that changes, at most every reportProgramsMs: should this host
 * die, the supervisor stops them when wakeport stops, as the host would
 * have (services/left-programs.ts). A message per connection would cost
 * the supervisor a wake-up each; one every tenth of a second costs nothing.
 */
function reportPrograms(services: readonly NowaitService[]): void {
  let last = '';
  setInterval(() => {
    const report = programsReport(services);
    const summary = `${report.running.map(([pid]) => pid).join(',')}/${report.left.map(([pgid]) => pgid).join(',')}/${report.waiting}`;
    if (summary === last) return;
    last = summary;
    process.send?.(report, () => {});
  }, reportProgramsMs).unref();
}

function programsReport(services: readonly NowaitService[]): ProgramsReport {
  const running = services.flatMap((service) => service.runningPrograms().map((pid) => [pid, service.label] as const));
  const left = services.flatMap((service) => service.leftGroups().map((pgid) => [pgid, service.label] as const));
  const waiting = services.reduce((sum, service) => sum + service.waiting, 0);
  return { type: 'programs', running, left, waiting };
}

/**
 * Once the host has had no work for idleCollectMs, one full garbage
 * collection (the host runs with --expose-gc): V8 collects its old
 * generation only when it grows past a limit, and under load a host's heap
 * fills with connections' promoted garbage (measured: 5 → 15 MB and back
 * between collections), which V8 keeps while the process is quiet. That
 * memory counts twice: as footprint, and in the cost of every fork. After
 * `idleExitMs` without work (if set), the host exits.
 */
function watchIdleness(services: readonly NowaitService[], idleExitMs: number, log: Logger): void {
  let collected = true;
  const idleCheck = setInterval(() => {
    const now = Date.now();
    const idleMs = Math.min(...services.map((service) => now - (service.idleSince() ?? now)));
    if (idleMs < idleCollectMs) {
      collected = false;
      return;
    }
    if (!collected) {
      collected = true;
      (globalThis as { gc?: () => void }).gc?.();
    }
    if (!idleExitMs || idleMs < idleExitMs) return;
    clearInterval(idleCheck);
    log.debug('wakeport', `nowait host pid ${process.pid}: no work for ${formatDuration(idleExitMs)}; exiting`);
    void Promise.all(services.map((service) => service.stop())).then(() => {
      ReportThrottle.flushAll();
      process.exit(0);
    });
  }, idleCheckMs).unref();
}
