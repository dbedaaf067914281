// An internal service over a stream socket (TCP or unix), served inside the
// supervisor. Connections are accepted bare and made net.Sockets once
// served (or refused), so that each builtin chooses how its socket reads
// (echo reads into a buffer of its own). With max-connections or
// max-per-source set, clients beyond them wait in a queue, unread, as for
// a nowait service.
//
// States: serving → stopped (stop closes the listener and every connection).

import type net from 'node:net';
import type { ServiceEntry } from '../../config/entry.js';
import { counted, ReportThrottle, type Logger } from '../../log.js';
import type { AcceptedConnection } from '../../sockets/internals.js';
import { ClientFilter } from '../access.js';
import { Admission } from '../admission.js';
import { connectionBudget, type BudgetHolder } from '../connection-budget.js';
import {
  acceptConnectionsOn,
  acceptFailureReporter,
  clientName,
  clientOf,
  GoneSweep,
  letGo,
  QueueOverflow,
  waitingConnection,
  type WaitingConnection,
} from '../listener.js';
import type { Builtin } from './builtin.js';
import { builtins } from './index.js';

const reportEveryMs = 60_000;

export class InternalStreamService implements BudgetHolder {
  #state: 'serving' | 'stopped' = 'serving';
  readonly #builtin: Builtin;
  readonly #entry: ServiceEntry;
  readonly #log: Logger;
  readonly #admission: Admission<WaitingConnection>;
  readonly #overflow: QueueOverflow;
  readonly #open = new Set<net.Socket>();
  readonly #servers: net.Server[] = [];
  readonly #overBudget = new ReportThrottle(reportEveryMs, (count) =>
    this.#log.warn(
      this.#entry.label,
      `rejected ${counted(count, 'more client')} since the last report: internal services already held ${connectionBudget.limit} connections`,
    ),
  );
  readonly #goneSweep = new GoneSweep();
  readonly #filter: ClientFilter;
  /** Connections closed to make room for another service's client: their place is given back at once, not at 'close'. */
  readonly #evicted = new WeakSet<net.Socket>();

  private constructor(entry: ServiceEntry, log: Logger) {
    if (entry.program.kind !== 'internal') throw new Error(`internal: ${entry.label} is not an internal service`);
    this.#builtin = builtins[entry.program.name];
    this.#entry = entry;
    this.#log = log;
    const limits = { maxConnections: entry.maxConnections, maxPerSource: entry.maxPerSource, queueLimit: entry.backlog };
    this.#admission = new Admission(limits);
    this.#overflow = new QueueOverflow(entry.label, log, entry.backlog);
    this.#filter = new ClientFilter(entry.access, entry.label, log, 'connection');
  }

  static async start(entry: ServiceEntry, fds: readonly number[], log: Logger): Promise<InternalStreamService> {
    const service = new InternalStreamService(entry, log);
    const onConnection = (connection: AcceptedConnection) => service.#onConnection(connection);
    const onError = acceptFailureReporter(entry.label, log);
    for (const fd of fds) service.#servers.push(await acceptConnectionsOn(fd, entry.backlog, onConnection, onError));
    return service;
  }

  stop(): Promise<void> {
    if (this.#state === 'serving') {
      this.#state = 'stopped';
      for (const server of this.#servers) server.close();
      for (const { connection } of this.#admission.takeQueue()) this.#closeUnserved(connection);
      for (const socket of this.#open) socket.destroy();
    }
    return Promise.resolve();
  }

  #onConnection(connection: AcceptedConnection): void {
    if (this.#state === 'stopped') return connection.close();
    const peer = connection.peer();
    // Closed at once, as xinetd does: a refused client is not given time to hold a connection.
    if (!this.#filter.admits(peer)) return connection.close();
    if (!connectionBudget.take(this)) return this.#refuseOverBudget(connection, clientName(peer));
    if (peer === null && this.#entry.transport === 'tcp') return this.#dropGone(connection, 'before it was accepted');
    for (const gone of this.#goneSweep.sweep(this.#admission)) this.#dropGone(gone.connection, 'while it waited');
    const waiting = waitingConnection(connection, peer);
    const refused = this.#admission.offer(waiting, waiting.source);
    if (refused) this.#overflow.refuse(letGo(refused.connection, this));
    this.#serveQueue(waiting);
  }

  /**
   * Serves every client the limits admit; a TCP client that has gone while
   * it waited is closed instead (`arrived`, the connection being offered
   * now, has not waited: its peer was just read).
   */
  #serveQueue(arrived?: WaitingConnection): void {
    for (let admitted = this.#admission.admit(); admitted; admitted = this.#admission.admit()) {
      const { connection, source } = admitted.client;
      if (admitted.client !== arrived && connection.isGone()) {
        this.#admission.release(source);
        this.#dropGone(connection, 'while it waited');
      } else this.#builtin.stream((onread) => this.#openSocket(connection, source, onread));
    }
  }

  /** The socket of an admitted connection, counted in the budget and the limits until it closes. */
  #openSocket(connection: AcceptedConnection, source: string, onread?: net.OnReadOpts): net.Socket {
    const socket = connection.toSocket(onread);
    this.#open.add(socket);
    socket.on('error', (error) => this.#log.debug(this.#entry.label, `client error: ${error.message}`));
    socket.once('close', () => {
      if (!this.#evicted.has(socket)) connectionBudget.give(this);
      this.#open.delete(socket);
      this.#admission.release(source);
      if (this.#state === 'serving') this.#serveQueue();
    });
    return socket;
  }

  #closeUnserved(connection: AcceptedConnection): void {
    connection.close();
    connectionBudget.give(this);
  }

  #dropGone(connection: AcceptedConnection, when: string): void {
    this.#closeUnserved(connection);
    this.#log.debug(this.#entry.label, `a client went ${when}`);
  }

  /** Closed at once, not gently and never counted: the point is to free its fd. */
  #refuseOverBudget(connection: AcceptedConnection, client: string): void {
    connection.close();
    this.#reportOverBudget(client);
  }

  /** The budget needs room for another service's client: this service's newest client goes, a waiting one first. */
  evictNewest(): boolean {
    const waiting = this.#admission.takeNewest();
    if (waiting !== undefined) {
      this.#closeUnserved(waiting.connection);
      this.#reportOverBudget(waiting.client);
      return true;
    }
    const newest = [...this.#open].filter((socket) => !socket.destroyed).pop();
    if (newest === undefined) return false;
    // Given back now: a burst of other clients, accepted in one go, must see the count go down.
    this.#evicted.add(newest);
    connectionBudget.give(this);
    const client = clientOf(newest);
    newest.destroy();
    this.#reportOverBudget(client);
    return true;
  }

  #reportOverBudget(client: string): void {
    const more = this.#overBudget.heldBackNote();
    if (more === null) return;
    this.#log.warn(
      this.#entry.label,
      `reject client ${client}: internal services already hold ${connectionBudget.limit} connections, ` +
        `all that the supervisor's open-file limit (ulimit -n) leaves room for; closed its connection${more}`,
    );
  }
}
