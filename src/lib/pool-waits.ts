// How long PostgreSQL transactions wait for a pooled connection, told to whoever keeps the
// metrics (src/lib/metrics.ts installs its recorder when it is made). The store records through
// this rather than importing the metrics, so a CLI run that keeps no metrics never loads them.
export type PoolWaitRecorder = {
  /** A transaction began waiting. */
  waiting(): void;
  /** It stopped waiting: it got a connection after `seconds`, or (null) it failed first. */
  done(seconds: number | null): void;
};

let recorder: PoolWaitRecorder | null = null;

export const setPoolWaitRecorder = (r: PoolWaitRecorder | null): void => {
  recorder = r;
};

export const poolWaitRecorder = (): PoolWaitRecorder | null => recorder;
