// The CLI's exit codes, and the text every command's help ends with that documents them.
export const EXIT = {
  ok: 0,
  runFailed: 1,
  usage: 2,
  config: 3,
  quarantined: 4,
  store: 5,
  mismatch: 6,
  checkFailed: 7,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  the run failed (a file, table or stream could not be read; details in the run record;
     a backup or restore could not write its output)
  2  usage error (unknown command or flag, bad flag value)
  3  invalid config (each bad field is named with what was expected)
  4  the run's quality score fell below minQuality (default 0.01: nothing usable, e.g. every
     row quarantined); rows were quarantined and --fail-on-quarantine was given; instruments
     import rejected lines
  5  the store cannot be opened or migrated (also by backup)
  6  verification found differences (migrate, verify), or a backup's checksum does not match
     or its chain is broken (restore), or no increment can be made (backup --incremental)
  7  a check failed (doctor: each failing check is named with its remedy)
A failure prints one line on stderr (TICKSYNC_DEBUG=1 adds the stack); secrets are shown as ***.`;
