import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { Agent, errors as undiciErrors, request } from 'undici';
import {
  DomainError,
  DeadlineExceededError,
  FailedPreconditionError,
  NotFoundError,
  PermissionDeniedError,
  UnavailableError,
} from '../../domain/errors.ts';
import {
  type NetworkPolicy,
  checkAddress,
  checkHost,
  checkScheme,
  redactUrl,
} from '../../domain/network-policy.ts';
import { decodeSegment } from '../../domain/http-context.ts';
import type { HostResolver } from '../../ports/host-resolver.ts';
import type { HttpBody, HttpSource } from '../../ports/http-source.ts';
import { systemHostResolver } from '../dns/system-host-resolver.ts';

export interface HttpLimits {
  maxRedirects: number;
  /** Time to connect and receive response headers. */
  headersTimeoutMs: number;
  /** Longest pause between body chunks. */
  bodyTimeoutMs: number;
}

/** undici-based HttpSource: manual redirects (each hop re-checked), DNS answers checked against the policy. */
export class UndiciHttpSource implements HttpSource {
  private readonly agent: Agent;

  constructor(
    private readonly policy: NetworkPolicy,
    private readonly limits: HttpLimits,
    resolveHost: HostResolver = systemHostResolver,
  ) {
    // undici connects to an address from this very answer, after every address in it was checked:
    // no second lookup happens between the check and the connection.
    const checkedLookup: LookupFunction = (hostname, options, callback) => {
      resolveHost(hostname).then(
        (answer) => {
          try {
            for (const a of answer) checkAddress(policy, a.address, `host ${hostname}`);
          } catch (refused) {
            return callback(refused as NodeJS.ErrnoException, '', 0);
          }
          const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
          const addresses: LookupAddress[] = answer.filter((a) => !family || a.family === family);
          if (addresses.length === 0) {
            const none = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
            return callback(none, '', 0);
          }
          if (options.all)
            return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
          const first = addresses[0]!;
          callback(null, first.address, first.family);
        },
        (err: NodeJS.ErrnoException) => callback(err, '', 0),
      );
    };
    this.agent = new Agent({
      connect: { lookup: checkedLookup, timeout: limits.headersTimeoutMs },
      headersTimeout: limits.headersTimeoutMs,
      bodyTimeout: limits.bodyTimeoutMs,
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  async get(url: URL, signal?: AbortSignal): Promise<HttpBody> {
    let current = new URL(url);
    let authorization: string | undefined;
    if (current.username || current.password) {
      const user = decodeSegment(current.username);
      const pass = decodeSegment(current.password);
      authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
      current.username = '';
      current.password = '';
    }
    const origin = current.origin;
    const shown = redactUrl(url);
    for (let hop = 0; ; hop++) {
      const scheme = current.protocol.slice(0, -1);
      if (scheme !== 'http' && scheme !== 'https') {
        throw new PermissionDeniedError(`${shown} redirected to ${redactUrl(current)}, which is not http(s)`);
      }
      const where = hop === 0 ? shown : `${shown}, redirected to ${redactUrl(current)},`;
      checkScheme(this.policy, scheme, where);
      checkHost(this.policy, current.hostname, where);
      const headers: Record<string, string> = { 'user-agent': 'kindling-fetcher' };
      // Credentials go only to the origin they were given for.
      if (authorization && current.origin === origin) headers.authorization = authorization;
      let res;
      try {
        res = await request(current, { method: 'GET', dispatcher: this.agent, headers, signal });
      } catch (err) {
        throw this.transportError(err, redactUrl(current), signal);
      }
      // Errors while the body is read surface through its iterator; a late abort of a finished body must not crash the process.
      res.body.on('error', () => {});
      const { statusCode } = res;
      if (statusCode >= 300 && statusCode < 400 && res.headers.location) {
        res.body.destroy();
        if (hop >= this.limits.maxRedirects) {
          throw new FailedPreconditionError(
            `${shown} redirected more than ${this.limits.maxRedirects} times (last to ${redactUrl(current)}); the server redirects in a loop or the chain is too long`,
          );
        }
        current = new URL(String(res.headers.location), current);
        continue;
      }
      if (statusCode < 200 || statusCode >= 300) {
        res.body.destroy();
        throw statusError(statusCode, redactUrl(current));
      }
      const length = res.headers['content-length'];
      const modified = res.headers['last-modified'];
      const lastModified = typeof modified === 'string' ? new Date(modified) : undefined;
      const contentType = res.headers['content-type'];
      const transportError = (err: unknown) => this.transportError(err, redactUrl(current), signal);
      const body = res.body;
      return {
        finalUrl: current,
        status: statusCode,
        contentLength: typeof length === 'string' ? Number(length) : undefined,
        lastModified: lastModified && !Number.isNaN(lastModified.getTime()) ? lastModified : undefined,
        contentType: typeof contentType === 'string' ? contentType : undefined,
        body: (async function* () {
          try {
            for await (const chunk of body) yield chunk as Uint8Array;
          } catch (err) {
            throw transportError(err);
          }
        })(),
        discard: () => body.destroy(),
      };
    }
  }

  private transportError(err: unknown, shown: string, signal: AbortSignal | undefined): Error {
    if (err instanceof DomainError) return err;
    if (signal?.aborted) {
      const reason: unknown = signal.reason;
      if (reason instanceof DomainError) return reason;
      return new UnavailableError(
        `GET ${shown} was aborted: ${String((reason as Error)?.message ?? reason)}`,
        { cause: err },
      );
    }
    if (err instanceof PermissionDeniedError) return err;
    const e = err as { code?: string; message?: string; cause?: unknown };
    if (e.cause instanceof PermissionDeniedError) return e.cause;
    // a server that accepted the request but does not answer in time is a gateway timeout (504),
    // DEADLINE_EXCEEDED; one that cannot be reached at all is UNAVAILABLE
    if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
      const what =
        err instanceof undiciErrors.HeadersTimeoutError
          ? `no response headers within ${this.limits.headersTimeoutMs / 1000} s`
          : `the body paused for more than ${this.limits.bodyTimeoutMs / 1000} s`;
      return new DeadlineExceededError(
        `GET ${shown} timed out: ${what} (${e.message}); the server is too slow`,
        { cause: err },
      );
    }
    if (err instanceof undiciErrors.ConnectTimeoutError) {
      return new UnavailableError(
        `GET ${shown} timed out connecting (${e.message}); the server is unreachable`,
        { cause: err },
      );
    }
    if (e.code === 'UND_ERR_SOCKET') {
      return new UnavailableError(
        `GET ${shown} failed: the server closed the connection before the response was complete (${e.message}); try again`,
        { cause: err },
      );
    }
    return new UnavailableError(
      `GET ${shown} failed: ${e.code ?? ''} ${e.message ?? String(err)}`.replace(/ +/gu, ' '),
      {
        cause: err,
      },
    );
  }
}

function statusError(status: number, shown: string): Error {
  if (status === 404 || status === 410)
    return new NotFoundError(`GET ${shown} returned ${status}: no such file on the server`);
  if (status === 401 || status === 403) {
    return new PermissionDeniedError(
      `GET ${shown} returned ${status}: the server refused access (credentials missing or wrong)`,
    );
  }
  if (status >= 500 || status === 429 || status === 408) {
    return new UnavailableError(`GET ${shown} returned ${status}; the server failed, try again later`);
  }
  return new FailedPreconditionError(`GET ${shown} returned HTTP ${status}, not a 2xx success`);
}
