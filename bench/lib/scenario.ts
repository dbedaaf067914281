// What every scenario gets, and what it gives back.

export interface BenchOptions {
  readonly quick: boolean;
  /** Interleaved rounds per measurement (at least 3). */
  readonly rounds: number;
  /** One line of progress, to stderr. */
  progress(line: string): void;
}

export interface ScenarioReport {
  readonly title: string;
  /** The terminal table (and notes). */
  readonly text: string;
  /** Everything measured, for --json. */
  readonly data: unknown;
}

export interface Scenario {
  readonly name: string;
  run(options: BenchOptions): Promise<ScenarioReport>;
}
