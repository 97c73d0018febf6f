#!/usr/bin/env node
/**
 * mirrorgate's command line. Each command calls the same control-plane functions the control API
 * uses; bad input ends with one clear message and a non-zero exit, never a stack trace.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ConfigError, MirrorgateError } from './control/errors.js';
import { registerCommands } from './cli/commands.js';
import { registerLiveCommands } from './cli/live.js';
import { registerLabCommands } from './cli/lab.js';
import { registerObserveCommands } from './cli/observe.js';

const program = new Command()
  .name('mirrorgate')
  .description("Terminates AWS VPC Traffic Mirroring and delivers the mirrored flow telemetry to collectors, exporter's source kept")
  .version(process.env.npm_package_version ?? '0.1.0')
  .showHelpAfterError()
  .exitOverride();

registerCommands(program);
registerLiveCommands(program);
registerLabCommands(program);
registerObserveCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = exitCodeFor(err);
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode;
  if (err instanceof ConfigError) {
    for (const p of err.problems) process.stderr.write(`${p}\n`);
    return 1;
  }
  if (err instanceof MirrorgateError || err instanceof InvalidArgumentError) {
    process.stderr.write(`mirrorgate: ${err.message}\n`);
    return 1;
  }
  // Anything else is a bug in mirrorgate itself: show everything.
  process.stderr.write(`mirrorgate: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 70;
}
