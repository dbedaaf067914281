// An internal service over a stream socket (TCP or unix), served inside the
// supervisor. With max-connections or max-per-source set, clients beyond
// them wait in a queue, as for a nowait service.
//
// States: serving → stopped (stop closes the listener and every connection).

import type net from 'node:net';
import type { ServiceEntry } from '../../config/entry.js';
import { ReportThrottle, type Logger } from '../../log.js';
import { Admission } from '../admission.js';
import { connectionBudget, type BudgetHolder } from '../connection-budget.js';
import { acceptOn, clientOf, QueueOverflow, sourceOf } from '../listener.js';
import { builtins } from './index.js';

const reportEveryMs = 60_000;

export class InternalStreamService implements BudgetHolder {
  #state: 'serving' | 'stopped' = 'serving';
  readonly #serve: (socket: net.Socket) => void;
  readonly #log: Logger;
  readonly #label: string;
  readonly #admission: Admission<net.Socket>;
  readonly #overflow: QueueOverflow;
  readonly #open = new Set<net.Socket>();
  readonly #servers: net.Server[] = [];
  readonly #overBudget = new ReportThrottle(reportEveryMs);
  /** Connections closed to make room for another service's client: their place is given back at once, not at 'close'. */
  readonly #evicted = new WeakSet<net.Socket>();

  private constructor(entry: ServiceEntry, log: Logger) {
    if (entry.program.kind !== 'internal') throw new Error(`internal: ${entry.label} is not an internal service`);
    const builtin = builtins[entry.program.name];
    this.#serve = (socket) => builtin.stream(socket);
    this.#log = log;
    this.#label = entry.label;
    const limits = { maxConnections: entry.maxConnections, maxPerSource: entry.maxPerSource, queueLimit: entry.backlog };
    this.#admission = new Admission(limits);
    this.#overflow = new QueueOverflow(entry.label, log, entry.backlog);
  }

  static async start(entry: ServiceEntry, fds: readonly number[], log: Logger): Promise<InternalStreamService> {
    const service = new InternalStreamService(entry, log);
    for (const fd of fds) {
      const server = await acceptOn(fd, { pauseOnConnect: false, allowHalfOpen: true, backlog: entry.backlog }, (socket) => service.#onConnection(socket));
      server.on('error', (error) => log.error(entry.label, `accept failed: ${error.message}`));
      service.#servers.push(server);
    }
    return service;
  }

  stop(): Promise<void> {
    if (this.#state === 'serving') {
      this.#state = 'stopped';
      for (const server of this.#servers) server.close();
      for (const socket of [...this.#admission.takeQueue(), ...this.#open]) socket.destroy();
    }
    return Promise.resolve();
  }

  #onConnection(socket: net.Socket): void {
    if (this.#state === 'stopped') return void socket.destroy();
    socket.on('error', (error) => this.#log.debug(this.#label, `client error: ${error.message}`));
    if (!connectionBudget.take(this)) return this.#refuseOverBudget(socket);
    const source = sourceOf(socket);
    socket.once('close', () => {
      if (!this.#evicted.has(socket)) connectionBudget.give(this);
      this.#closed(socket, source);
    });
    const refused = this.#admission.offer(socket, source);
    if (refused) this.#overflow.refuse(refused);
    this.#serveQueue();
  }

  #serveQueue(): void {
    for (let admitted = this.#admission.admit(); admitted; admitted = this.#admission.admit()) {
      this.#open.add(admitted.client);
      this.#serve(admitted.client);
    }
  }

  /** Closed at once, not gently: the point is to free its fd. */
  #refuseOverBudget(socket: net.Socket): void {
    const client = clientOf(socket);
    socket.destroy();
    this.#reportOverBudget(client);
  }

  /** The budget needs room for another service's client: this service's newest client goes, a waiting one first. */
  evictNewest(): boolean {
    const newest = this.#admission.takeNewest() ?? [...this.#open].filter((socket) => !socket.destroyed).pop();
    if (newest === undefined) return false;
    const client = clientOf(newest);
    // Given back now: a burst of other clients, accepted in one go, must see the count go down.
    this.#evicted.add(newest);
    connectionBudget.give(this);
    newest.destroy();
    this.#reportOverBudget(client);
    return true;
  }

  #reportOverBudget(client: string): void {
    const more = this.#overBudget.heldBackNote();
    if (more === null) return;
    this.#log.warn(
      this.#label,
      `reject client ${client}: internal services already hold ${connectionBudget.limit} connections, ` +
        `all that the supervisor's open-file limit (ulimit -n) leaves room for; closed its connection${more}`,
    );
  }

  /** A client hung up: its slot goes to the next in the queue, or, if it was still waiting, its place in the queue. */
  #closed(socket: net.Socket, source: string): void {
    if (!this.#open.delete(socket)) {
      this.#admission.withdraw(socket);
      return;
    }
    this.#admission.release(source);
    if (this.#state === 'serving') this.#serveQueue();
  }
}
