import { statSync } from 'node:fs';

import type { Command } from 'commander';

import { MAX_JOB_PROCESSES } from '../../batch/pool.js';
import { InvalidArgumentError } from '../../errors.js';
import { redisConnection } from '../../batch/redis.js';
import { shownRedisUrl } from '../../server/jobs/redisReachable.js';
import { startServer, trustProxyFlag, type LogLevel } from '../../server/serve.js';
import { MAX_SESSION_MAX_AGE_S, MAX_SHUTDOWN_DEADLINE_MS } from '../../server/pluginOptions.js';
import { ensureServiceFlags, SERVICE_FLAGS_ENV, SERVICE_V8_FLAGS } from '../../server/serviceFlags.js';
import { MAKE_TOKEN, MIN_TOKEN_LENGTH, weakToken, weakTokenMessage } from '../../server/tokenStrength.js';
import { integerFlag } from '../flagValue.js';
import { MAX_TIMER_MS } from '../../ridge/options.js';

interface ServeFlags {
  host: string;
  port: string;
  root: string;
  redis?: string;
  token?: string;
  jobs: string;
  workers?: string;
  predictThreads?: string;
  shutdownDeadline: string;
  sessionMaxAge: string;
  trustProxy?: string;
  eventLoopResolution: string;
  bodyTimeout: string;
  logLevel: string;
}

/** The levels --log-level takes: each logs at least the errors (a 500's details are only in the log). */
const CLI_LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'trace'];

/** --log-level as the service's logger: JSON lines on stderr (stdout says where it listens and when it stops). */
function loggerOf(level: string): { level: LogLevel; stream: NodeJS.WritableStream } {
  if (!CLI_LOG_LEVELS.includes(level as LogLevel)) throw new Error(`--log-level: expected one of ${CLI_LOG_LEVELS.join(', ')}, got '${level}'`);
  return { level: level as LogLevel, stream: process.stderr };
}


/** --root: an existing folder, named as the flag (the plugin's own check names its option). */
function rootFolder(dir: string): string {
  let isDirectory = false;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    throw new Error(`--root: '${dir}' does not exist; expected the folder every path in a request must stay inside`);
  }
  if (!isDirectory) throw new Error(`--root: '${dir}' is not a folder`);
  return dir;
}

/** --token, else $BRAINLATENT_TOKEN (an empty variable counts as unset), else none; a weak one is refused naming where it came from. */
function tokenOf(flag: string | undefined): string | null {
  if (flag !== undefined && flag.length === 0) throw new Error(`--token: expected a non-empty secret, got ''`);
  const token = flag ?? (process.env.BRAINLATENT_TOKEN || null);
  const weak = token === null ? undefined : weakToken(token);
  if (weak) {
    const [source, example] = flag !== undefined ? ['--token', `--token "$(${MAKE_TOKEN})"`] : ['$BRAINLATENT_TOKEN', `BRAINLATENT_TOKEN=$(${MAKE_TOKEN})`];
    throw new InvalidArgumentError(weakTokenMessage(source, weak, example));
  }
  return token;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the HTTP service: jobs with live progress, model predict and img2img, health, metrics and a web page')
    .option('--host <address>', 'address to listen on; anything but loopback needs --token', '127.0.0.1')
    .option('--port <n>', 'port (0: any free port)', '8080')
    .option('--root <dir>', 'the folder every path in a request must stay inside (relative paths start there)', '.')
    .option('--redis <url>', 'run reconstruct, encode and batch jobs through BullMQ on this Redis, shared with `brainlatent worker` processes')
    .option('--token <secret>', `bearer token required on every route but /healthz, /readyz, the page (/) and its sign-in (/v1/session) (default: $BRAINLATENT_TOKEN); at least ${MIN_TOKEN_LENGTH} characters, e.g. $(${MAKE_TOKEN})`)
    .option('--jobs <n>', 'jobs run at once by this process', '1')
    .option('--workers <n>', 'with --redis (refused without it): job processes this service gives the shared queue while its jobs run (default 1; 0: only `brainlatent worker` processes work)')
    .option('--predict-threads <n>', 'threads for ridge predict (default: half the cores)')
    .option('--shutdown-deadline <s>', 'on SIGTERM, seconds running jobs may take to finish before they are cancelled', '30')
    .option('--body-timeout <s>', 'seconds a request body may send nothing before it is answered 408 and its connection closed (a stalled upload holds its share of the bytes in flight; a whole request gets 300 s at most), and after which it must average 1,024 bytes a second, and an event stream whose client reads nothing may wait before it is closed', '30')
    .option('--session-max-age <s>', "seconds a sign-in session (the page's cookie) lasts", '43200')
    .option('--trust-proxy <proxies>', "behind a reverse proxy that terminates TLS (needs --token): whose X-Forwarded-Proto/-For to believe (the proxy's addresses or CIDR ranges, comma-separated, or 'loopback'; true: any peer), so the session cookie is Secure over https (default: none)")
    .option('--log-level <level>', `what the service logs on stderr, as JSON lines: ${CLI_LOG_LEVELS.join(', ')}; each logs every request answered 5xx with its stack, 'info' logs every request`, 'warn')
    .option('--event-loop-resolution <ms>', 'sampling interval of the nodejs_eventloop_lag_* metrics; each sample includes it (1: sees stalls of a few ms)', '10')
    .addHelpText(
      'after',
      `
The API is under /v1 (OpenAPI document: /v1/openapi.json); the page is at /.
  POST /v1/jobs             {"kind": "reconstruct"|"encode"|"batch"|"ridge-fit"|"demo", ...} → 202
  GET  /v1/jobs/ID/events   Server-Sent Events: state, stage, progress (rate, ETA), then result or error
  DELETE /v1/jobs/ID        cancel (the job stops at its next step or batch; 409 once it has ended)
  GET  /v1/jobs/ID/files/P  a file of the run folder (report.html, images/…, .npy, NIfTI; a demo job's: run/…)
  POST /v1/models           {"kind": "ridge"|"sd", "name": …, "path": …}
  POST /v1/ridge/NAME/predict, POST /v1/sd/NAME/img2img
  POST /v1/session          {"token": …} → a session cookie (the page's sign-in); DELETE signs out
  GET  /healthz, /readyz, /metrics (Prometheus)

The service runs itself again at start-up (same pid) with Node's ${SERVICE_V8_FLAGS.join(' ')}: V8's memory
reducer otherwise stalls the event loop 20–40 ms now and then to shrink the heap (${SERVICE_FLAGS_ENV}=0: not).
Jobs run in processes of their own at a lower CPU priority (nice +10, and their own autogroup on Linux).

Examples:
  brainlatent serve --root /data                    # http://127.0.0.1:8080/
  export BRAINLATENT_TOKEN=$(${MAKE_TOKEN})
  brainlatent serve --host 0.0.0.0 --root /data     # every client needs the token
  brainlatent serve --root /data --redis redis://10.0.0.5:6379/0 --workers 0   # the work done by:
  brainlatent worker --redis redis://10.0.0.5:6379/0                            #   (on each compute node)
  brainlatent serve --root /data --trust-proxy 127.0.0.1    # behind nginx/Caddy on this host (TLS there), token as above
  curl -H "Authorization: Bearer $BRAINLATENT_TOKEN" -d '{"kind":"demo","out":"demo1"}' \\
       -H 'content-type: application/json' http://HOST:8080/v1/jobs

See docs/server.md (every route, option, the page, Redis, metrics).`,
    )
    .action(async (flags: ServeFlags) => {
      // the numbers first, before this process is run again (a bad flag fails at once, in this process)
      const port = integerFlag(flags.port, '--port', 0, 65535);
      // (named by its flag here: startServer's own check names options.host)
      if (flags.host.length === 0) throw new InvalidArgumentError(`--host: expected an address or host name (e.g. 127.0.0.1 or 0.0.0.0), got ''`);
      // (named by its flag here: the plugin's own check names options.redis)
      if (flags.redis !== undefined) redisConnection(flags.redis);
      // (without a Redis the service runs its jobs itself, --jobs at once: a --workers there would be ignored)
      if (flags.workers !== undefined && !flags.redis) {
        throw new InvalidArgumentError('--workers is for jobs through --redis (job processes given to the shared queue); without --redis, --jobs sets how many jobs run at once');
      }
      const jobs = { concurrency: integerFlag(flags.jobs, '--jobs', 1), workers: flags.workers === undefined ? 1 : integerFlag(flags.workers, '--workers', 0, MAX_JOB_PROCESSES) };
      const predict = flags.predictThreads ? { concurrency: integerFlag(flags.predictThreads, '--predict-threads', 1) } : undefined;
      const eventLoopResolutionMs = integerFlag(flags.eventLoopResolution, '--event-loop-resolution', 1);
      // (the plugin's bounds, in the flags' own units: a deadline in seconds is refused here naming --shutdown-deadline)
      const deadline = integerFlag(flags.shutdownDeadline, '--shutdown-deadline', 0, Math.floor(MAX_SHUTDOWN_DEADLINE_MS / 1000));
      const sessionMaxAgeSeconds = integerFlag(flags.sessionMaxAge, '--session-max-age', 1, MAX_SESSION_MAX_AGE_S);
      const bodyTimeoutMs = 1000 * integerFlag(flags.bodyTimeout, '--body-timeout', 1, Math.floor(MAX_TIMER_MS / 1000));
      const logger = loggerOf(flags.logLevel);
      const trustProxy = flags.trustProxy === undefined ? undefined : trustProxyFlag(flags.trustProxy);
      const token = tokenOf(flags.token);
      // then: this process may be replaced by itself with the service's V8 flags
      await ensureServiceFlags();
      const root = rootFolder(flags.root);
      // The signal handlers come first: a supervisor may send SIGTERM as soon as it reads the line below (the
      // write wakes it, and it may run before this process does again), or while the service is starting.
      let server: Awaited<ReturnType<typeof startServer>> | undefined;
      let closing: string | undefined;
      const close = () => {
        console.log(`brainlatent serve: ${closing}: finishing running jobs (up to ${deadline} s), then exiting`);
        server!.close().then(
          () => process.exit(0),
          (e: unknown) => {
            console.error(`brainlatent serve: shutdown failed: ${(e as Error).message}`);
            process.exit(1);
          },
        );
      };
      const stop = (signal: string) => {
        if (closing) {
          console.error(`brainlatent serve: ${signal} again, exiting now`);
          process.exit(1);
        }
        closing = signal;
        // while starting, the service closes as soon as it has started
        if (server) close();
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      server = await startServer({
        host: flags.host,
        port,
        root,
        token,
        jobs,
        redis: flags.redis,
        predict,
        shutdownDeadlineMs: deadline * 1000,
        sessionMaxAgeSeconds,
        bodyTimeoutMs,
        eventLoopResolutionMs,
        logger,
        trustProxy,
      });
      if (closing) return close();
      const jobsOn = flags.redis ? `, jobs through ${shownRedisUrl(flags.redis)}` : '';
      console.log(`brainlatent serve: listening on ${server.url}/ (root ${flags.root}${token ? ', token required' : ', loopback only, no token'}${jobsOn})`);
    });
}
