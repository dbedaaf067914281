/**
 * The callers of a service's stop(): each gets a promise, and all are
 * resolved together once the service has stopped. A stop() after that
 * resolves at once.
 */
export class StopWaiters {
  #waiting: (() => void)[] = [];
  #stopped = false;

  /** A promise for the stop; `request` asks the service to stop (again, which may mean harder). */
  wait(request: () => void): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.#waiting.push(resolve));
    request();
    return done;
  }

  /** The service has stopped. */
  release(): void {
    this.#stopped = true;
    for (const resolve of this.#waiting.splice(0)) resolve();
  }
}
