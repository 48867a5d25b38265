/**
 * TLS and mutual TLS for servers and for clients between services. A CA on the server turns on client
 * certificate verification (mTLS); a cert+key on the client presents one.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
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

/**
 * Parses the PEM files now, naming the one that is wrong: grpc-js would only fail later, at bind time
 * or on the first connection, with a bare OpenSSL message ("PEM routines::no start line").
 */
function checkPem(files: { cert?: [Buffer, string]; key?: [Buffer, string]; ca?: [Buffer, string] }): void {
  const check = (what: string, path: string, options: Parameters<typeof createSecureContext>[0]): void => {
    try {
      createSecureContext(options);
    } catch (error) {
      throw new FailedPreconditionError(`the TLS ${what} at ${path} is not usable: ${(error as Error).message}`);
    }
  };
  if (files.cert) check('certificate', files.cert[1], { cert: files.cert[0] });
  if (files.key) check('key', files.key[1], { key: files.key[0] });
  // OpenSSL skips what it cannot parse in a CA bundle, so each certificate is parsed here.
  if (files.ca) {
    const [bundle, path] = files.ca;
    const certificates = bundle.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (certificates.length === 0) throw new FailedPreconditionError(`the TLS CA bundle at ${path} holds no PEM certificate`);
    for (const certificate of certificates) {
      try {
        new X509Certificate(certificate);
      } catch (error) {
        throw new FailedPreconditionError(`the TLS CA bundle at ${path} is not usable: ${(error as Error).message}`);
      }
    }
  }
  if (files.cert && files.key) {
    check(`certificate and key`, `${files.cert[1]} and ${files.key[1]}`, { cert: files.cert[0], key: files.key[0] });
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
  const cert = read(tls.certPath, 'certificate');
  const key = read(tls.keyPath, 'key');
  checkPem({ cert: [cert, tls.certPath], key: [key, tls.keyPath], ...(ca && tls.caPath ? { ca: [ca, tls.caPath] } : {}) });
  return ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], ca !== null);
}

export function createChannelCredentials(tls: TlsFiles | undefined): ChannelCredentials {
  if (!isTlsConfigured(tls)) return credentials.createInsecure();
  if (Boolean(tls?.certPath) !== Boolean(tls?.keyPath)) {
    throw new FailedPreconditionError('client TLS needs both a certificate and a key, or neither');
  }
  const ca = tls?.caPath ? read(tls.caPath, 'CA bundle') : null;
  const key = tls?.keyPath ? read(tls.keyPath, 'key') : null;
  const cert = tls?.certPath ? read(tls.certPath, 'certificate') : null;
  checkPem({
    ...(cert && tls?.certPath ? { cert: [cert, tls.certPath] } : {}),
    ...(key && tls?.keyPath ? { key: [key, tls.keyPath] } : {}),
    ...(ca && tls?.caPath ? { ca: [ca, tls.caPath] } : {}),
  });
  return credentials.createSsl(ca, key, cert);
}
