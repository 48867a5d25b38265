/**
 * TLS and mutual TLS for servers and for clients between services. A CA on the server turns on client
 * certificate verification (mTLS); a cert+key on the client presents one.
 */
import { readFileSync } from 'node:fs';
import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { FailedPreconditionError } from '../errors.ts';

export interface TlsFiles {
  /** PEM certificate chain of this side. */
  readonly certPath?: string;
  /** PEM private key of this side. */
  readonly keyPath?: string;
  /** PEM CA bundle that verifies the peer (server: client certs, making it mTLS; client: server cert). */
  readonly caPath?: string;
}

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new FailedPreconditionError(`cannot read the TLS ${what} at ${path}: ${(error as Error).message}`);
  }
}

export function isTlsConfigured(tls: TlsFiles | undefined): boolean {
  return Boolean(tls?.certPath || tls?.keyPath || tls?.caPath);
}

export function serverCredentials(tls: TlsFiles | undefined): ServerCredentials {
  if (!isTlsConfigured(tls)) return ServerCredentials.createInsecure();
  if (!tls?.certPath || !tls.keyPath) {
    throw new FailedPreconditionError('server TLS needs both a certificate (tls-cert) and a key (tls-key)');
  }
  const ca = tls.caPath ? read(tls.caPath, 'CA bundle') : null;
  return ServerCredentials.createSsl(
    ca,
    [{ cert_chain: read(tls.certPath, 'certificate'), private_key: read(tls.keyPath, 'key') }],
    ca !== null,
  );
}

export function createChannelCredentials(tls: TlsFiles | undefined): ChannelCredentials {
  if (!isTlsConfigured(tls)) return credentials.createInsecure();
  if (Boolean(tls?.certPath) !== Boolean(tls?.keyPath)) {
    throw new FailedPreconditionError('client TLS needs both a certificate and a key, or neither');
  }
  return credentials.createSsl(
    tls?.caPath ? read(tls.caPath, 'CA bundle') : null,
    tls?.keyPath ? read(tls.keyPath, 'key') : null,
    tls?.certPath ? read(tls.certPath, 'certificate') : null,
  );
}
