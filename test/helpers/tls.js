// Throwaway certificates for TLS tests, made with the openssl command line tool (.ci/run installs
// it; a missing openssl fails the test that needs it).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

function openssl(args) {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    if (err.code === 'ENOENT') throw new Error('openssl not found: install the Debian package openssl (.ci/run does)');
    throw err;
  }
}

const SUBJECT_ALT = 'subjectAltName=DNS:localhost,IP:127.0.0.1';

function tempDir() {
  const dir = mkdtempSync(path.join(tmpdir(), 'tl-cert-'));
  return { dir, file: (name) => path.join(dir, name), close: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A CA and a server certificate it signed for localhost and 127.0.0.1:
 * { cert, key } for the server, `caFile` for NODE_EXTRA_CA_CERTS, and close() to remove the files.
 */
export function makeTestCa() {
  const t = tempDir();
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', t.file('ca.key'), '-out', t.file('ca.pem'), '-subj', '/CN=tl-tunnel test CA', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', t.file('server.key'), '-out', t.file('server.csr'), '-subj', '/CN=localhost']);
  const ext = t.file('ext.cnf');
  writeFileSync(ext, `${SUBJECT_ALT}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl(['x509', '-req', '-in', t.file('server.csr'), '-CA', t.file('ca.pem'), '-CAkey', t.file('ca.key'), '-CAcreateserial', '-out', t.file('server.pem'), '-days', '2', '-extfile', ext]);
  return { cert: readFileSync(t.file('server.pem')), key: readFileSync(t.file('server.key')), caFile: t.file('ca.pem'), close: t.close };
}

/**
 * A self-signed certificate for localhost and 127.0.0.1: { cert, key }, and `caFile` (the
 * certificate itself) for clients that should trust it, until close().
 */
export function selfSignedCert() {
  const t = tempDir();
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', t.file('k.pem'), '-out', t.file('c.pem'), '-subj', '/CN=localhost', '-days', '2', '-addext', SUBJECT_ALT]);
  return { cert: readFileSync(t.file('c.pem')), key: readFileSync(t.file('k.pem')), caFile: t.file('c.pem'), close: t.close };
}

export const makeSelfSigned = selfSignedCert;
