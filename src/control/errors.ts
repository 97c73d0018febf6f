/**
 * Control-plane errors: each class has a stable `code` that scripts and tests can rely on.
 * The data path never throws; these are for configuration, files, sockets and the CLI.
 */
export class MirrorgateError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A configuration that failed validation; `problems` holds one line per problem. */
export class ConfigError extends MirrorgateError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[], source?: string) {
    super('MG_ERR_CONFIG', `${source ? source + ': ' : ''}invalid configuration:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

/** A capture file that cannot be read or written. */
export class CaptureError extends MirrorgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MG_ERR_CAPTURE', message, options);
  }
}

/** A socket operation refused by the kernel; `errno` names the reason (EPERM, EADDRINUSE...). */
export class SocketError extends MirrorgateError {
  readonly errno: string;
  constructor(code: string, errno: string, message: string) {
    super(code, message);
    this.errno = errno;
  }
}

/** A usage error of the CLI (wrong arguments), reported without a stack trace. */
export class UsageError extends MirrorgateError {
  constructor(message: string) {
    super('MG_ERR_USAGE', message);
  }
}
