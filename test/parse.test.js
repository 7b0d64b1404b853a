// Table tests of everything the tool parses before it touches the network: port specs, sandbox
// names, the proxy URL, the credential headers, and the error-code to exit-code table.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  ErrorCodes,
  TunnelError,
  formatPortSpec,
  parseBindAddress,
  parsePortSpec,
  parsePortSpecs,
  parseSandboxName,
  resolveProxyTarget,
  tunnelUrl,
} from '../dist/index.js';
import { hostLabel } from '../dist/config/sandbox-name.js';
import { credentialHeaders } from '../dist/config/credentials.js';
import { EXIT_CODES, exitCodeFor } from '../dist/cli/exit-codes.js';
import { CANARY_KEY } from './helpers/index.js';

/** Asserts `fn` throws a TunnelError with `code` whose message matches every pattern. */
function throwsCode(fn, code, ...patterns) {
  let thrown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown, 'expected an error');
  assert.ok(thrown instanceof TunnelError, `expected a TunnelError, got ${thrown}`);
  assert.equal(thrown.code, code, thrown.message);
  for (const p of patterns) assert.match(thrown.message, p);
  return thrown;
}

const GOOD_SPECS = [
  ['5432', { address: undefined, localPort: 5432, remotePort: 5432 }],
  ['1', { address: undefined, localPort: 1, remotePort: 1 }],
  ['65535', { address: undefined, localPort: 65535, remotePort: 65535 }],
  ['15432:5432', { address: undefined, localPort: 15432, remotePort: 5432 }],
  [':5432', { address: undefined, localPort: 0, remotePort: 5432 }],
  ['0:5432', { address: undefined, localPort: 0, remotePort: 5432 }],
  ['65535:1', { address: undefined, localPort: 65535, remotePort: 1 }],
  ['127.0.0.1:15432:5432', { address: '127.0.0.1', localPort: 15432, remotePort: 5432 }],
  ['0.0.0.0:0:6379', { address: '0.0.0.0', localPort: 0, remotePort: 6379 }],
  ['[::1]:15432:5432', { address: '::1', localPort: 15432, remotePort: 5432 }],
  ['[::]:8080:80', { address: '::', localPort: 8080, remotePort: 80 }],
  ['localhost:15432:5432', { address: undefined, localPort: 15432, remotePort: 5432 }],
  // ssh -L's forms, whose host can only be the sandbox's own loopback here.
  ['5432:localhost:5432', { address: undefined, localPort: 5432, remotePort: 5432 }],
  ['15432:LocalHost:5432', { address: undefined, localPort: 15432, remotePort: 5432 }],
  ['5432:127.0.0.1:5432', { address: undefined, localPort: 5432, remotePort: 5432 }],
  [':localhost:5432', { address: undefined, localPort: 0, remotePort: 5432 }],
  ['127.0.0.1:15432:localhost:5432', { address: '127.0.0.1', localPort: 15432, remotePort: 5432 }],
  ['[::1]:15432:localhost:5432', { address: '::1', localPort: 15432, remotePort: 5432 }],
];

for (const [spec, expected] of GOOD_SPECS) {
  test(`port spec ${JSON.stringify(spec)} parses`, () => {
    assert.deepEqual(parsePortSpec(spec), expected);
    // The canonical form parses back to the same mapping.
    assert.deepEqual(parsePortSpec(formatPortSpec(expected)), expected);
  });
}

const BAD_SPECS = [
  ['0', /remote port 0/, /5432/],
  ['5432:0', /remote port 0/],
  ['127.0.0.1:1:0', /remote port 0/],
  ['65536', /65535/],
  ['99999:80', /local port 99999/, /65535/],
  ['80:70000', /remote port 70000/],
  ['123456', /remote port "123456"/],
  ['+80', /"\+80"/],
  ['-80', /"-80"/],
  ['80.0', /"80\.0"/],
  ['0x50', /"0x50"/],
  ['1e3', /"1e3"/],
  [' 80', /" 80"/],
  ['80 ', /"80 "/],
  ['٨٠', /port/], // Arabic-Indic digits are not ASCII digits
  ['', /Empty port spec/, /e\.g\./],
  [':', /remote port ""/],
  ['80:', /remote port ""/],
  ['abc', /"abc"/],
  ['http', /"http"/],
  ['1:2:3:4', /expected REMOTE, LOCAL:REMOTE/],
  ['::1:15432:5432', /put the IPv6 address in brackets, as in \[::1\]:15432:5432/],
  ['[::1]:5432', /\[::1\]:15432:5432/],
  ['[::1]15432:5432', /\[::1\]:LOCAL:REMOTE/],
  ['[::1:1:2', /\[::1\]:LOCAL:REMOTE/],
  ['[::1]:1:2:3', /LOCAL:REMOTE/],
  ['999.1.1.1:1:2', /bind address "999\.1\.1\.1"/],
  ['example.com:1:2', /bind address "example\.com"/],
  ['[127.0.0.1]:1:2', /bind address "\[127\.0\.0\.1\]"/],
  ['[localhost]:1:2', /bind address "\[localhost\]"/],
  ['[]:1:2', /bind address "\[\]"/],
  ['[zzz]:1:2', /bind address "\[zzz\]"/],
  ['5432:db.internal:5432', /only be localhost or 127\.0\.0\.1 \(not "db\.internal"\); write 5432:5432/],
  ['5432:10.0.0.1:5432', /not "10\.0\.0\.1"/],
  ['5432:[::1]:5432', /not "\[::1\]"/],
  ['0.0.0.0:1:example.com:2', /not "example\.com"\); write 0\.0\.0\.0:1:2/],
];

for (const [spec, ...patterns] of BAD_SPECS) {
  test(`port spec ${JSON.stringify(spec)} is a usage error`, () => {
    throwsCode(() => parsePortSpec(spec), ErrorCodes.USAGE, ...patterns);
  });
}

test('port-spec errors name the spec and give an example of the right form', () => {
  for (const spec of ['0', '65536', '+80', 'abc', '1:2:3:4']) {
    const err = throwsCode(() => parsePortSpec(spec), ErrorCodes.USAGE);
    assert.ok(err.message.includes(`"${spec}"`), err.message);
    assert.match(err.message, /e\.g\. 5432/);
  }
});

const DUPLICATES = [
  [['5432', '5432']],
  [['8080:1', '8080:2']],
  [['127.0.0.1:80:1', '80:2']],
  [['[::1]:80:1', '80:2']],
  [['0.0.0.0:80:1', '127.0.0.2:80:2']],
  [['80:1', '[::]:80:2']],
  [['1', '2', '2:3']],
];

for (const [specs] of DUPLICATES) {
  test(`duplicate local port in ${JSON.stringify(specs)} is a usage error`, () => {
    throwsCode(() => parsePortSpecs(specs), ErrorCodes.USAGE, /Local port \d+ is used twice/, /:\d+ for a free one/);
  });
}

test('specs sharing a local port on disjoint addresses, or choosing free ports, are accepted', () => {
  assert.equal(parsePortSpecs(['127.0.0.1:80:1', '[::1]:80:2']).length, 2);
  assert.equal(parsePortSpecs(['127.0.0.2:80:1', '80:2']).length, 2);
  assert.deepEqual(parsePortSpecs([':1', ':1', '0:1']).map((m) => m.localPort), [0, 0, 0]);
});

test('parsePortSpecs applies the default address and refuses an empty list', () => {
  assert.deepEqual(parsePortSpecs(['5432', '[::1]:1:2'], '0.0.0.0'), [
    { address: '0.0.0.0', localPort: 5432, remotePort: 5432 },
    { address: '::1', localPort: 1, remotePort: 2 },
  ]);
  throwsCode(() => parsePortSpecs([]), ErrorCodes.USAGE, /Missing port spec/);
});

test('bind addresses: IP literals and localhost; anything else names the option', () => {
  assert.equal(parseBindAddress('127.0.0.1', '--address'), '127.0.0.1');
  assert.equal(parseBindAddress('[::1]', '--address'), '::1');
  assert.equal(parseBindAddress('::', '--address'), '::');
  assert.equal(parseBindAddress('localhost', '--address'), undefined);
  for (const bad of ['', 'example.com', '256.0.0.1', '[127.0.0.1]', '1.2.3']) {
    throwsCode(() => parseBindAddress(bad, '--address'), ErrorCodes.USAGE, /--address/);
  }
});

const GOOD_NAMES = [
  ['sbx-1', 'sbx-1'],
  ['SBX-ABC', 'sbx-abc'],
  ['a', 'a'],
  ['0', '0'],
  ['my-sandbox-2', 'my-sandbox-2'],
  ['a--b', 'a--b'],
  ['x'.repeat(63), 'x'.repeat(63)],
];

for (const [input] of GOOD_NAMES) {
  test(`sandbox name ${JSON.stringify(input.length > 20 ? `${input.slice(0, 8)}…(${input.length})` : input)} is accepted as typed`, () => {
    assert.equal(parseSandboxName(input), input);
  });
}

// Passed to the control plane as typed (it judges them, as upstream lets it), but never part of a
// host name: anything but a DNS label could move the request, and the key, to another host.
const NOT_LABELS = ['x'.repeat(64), '-sbx', 'sbx-', '-', 'a.b', 'sbx.evil.com', 'a@b', 'user@evil.com', 'a:443', 'a_b', 'xn--80ak6aa92e'];

for (const input of NOT_LABELS) {
  test(`sandbox name ${JSON.stringify(input.length > 20 ? `${input.slice(0, 8)}…(${input.length})` : input)} is sent as typed, never as a host name`, () => {
    assert.equal(parseSandboxName(input), input);
    throwsCode(() => hostLabel(input), ErrorCodes.USAGE, /cannot be part of a host name/);
  });
}

// Refused: what would change the lookup's path or cannot travel in a header.
const BAD_NAMES = [
  '',
  'x'.repeat(129),
  'a/b',
  'a b',
  ' a',
  'a\n',
  'a\u0000',
  'sañdbox',
  'é',
  '\u212a', // Kelvin sign: lower-cases to an ASCII "k"
  'sbx-\u212aey',
  '\u017f', // long s: upper-cases to an ASCII "S"
  'ｓｂｘ', // full-width letters
  'a%2eb',
  'a?b',
  'a#b',
  'a\\b',
];

for (const input of BAD_NAMES) {
  test(`sandbox name ${JSON.stringify(input.length > 20 ? `${input.slice(0, 8)}…(${input.length})` : input)} is a usage error`, () => {
    throwsCode(() => parseSandboxName(input), ErrorCodes.USAGE, /Invalid sandbox/, /e\.g\. sbx-123/);
  });
}

test('non-string sandbox names are refused', () => {
  for (const input of [undefined, null, 42, {}]) throwsCode(() => parseSandboxName(input), ErrorCodes.USAGE, /Invalid sandbox/);
});

const GOOD_PROXIES = [
  [undefined, 'wss://sbx-1.sandbox.tensorlake.ai', 'sbx-1.sandbox.tensorlake.ai', true, true],
  ['https://sandbox.us-east-1.aws.tensorlake.ai', 'wss://sandbox.us-east-1.aws.tensorlake.ai', 'sandbox.us-east-1.aws.tensorlake.ai', true, false],
  ['https://sandbox.us-east-1.aws.tensorlake.ai/', 'wss://sandbox.us-east-1.aws.tensorlake.ai', 'sandbox.us-east-1.aws.tensorlake.ai', true, false],
  ['HTTPS://Proxy.Example:8443', 'wss://proxy.example:8443', 'proxy.example', true, false],
  ['https://proxy.example:443', 'wss://proxy.example', 'proxy.example', true, false],
  ['wss://proxy.example:8443', 'wss://proxy.example:8443', 'proxy.example', true, false],
  ['http://localhost:9443', 'ws://localhost:9443', 'localhost', false, false],
  ['http://127.0.0.1:9443', 'ws://127.0.0.1:9443', '127.0.0.1', false, false],
  ['http://127.1.2.3:9443', 'ws://127.1.2.3:9443', '127.1.2.3', false, false],
  ['http://[::1]:9443', 'ws://[::1]:9443', '::1', false, false],
  ['ws://localhost:1', 'ws://localhost:1', 'localhost', false, false],
];

for (const [url, origin, hostname, secure, perSandboxHost] of GOOD_PROXIES) {
  test(`proxy URL ${JSON.stringify(url)} derives ${origin}`, () => {
    const target = resolveProxyTarget('sbx-1', url);
    assert.deepEqual(target, { origin, hostname, secure, perSandboxHost });
    assert.equal(tunnelUrl(target, 5432), `${origin}/api/v1/tunnels/tcp?port=5432`);
  });
}

const BAD_PROXIES = [
  ['http://example.com', /clear text to example\.com/, /--allow-insecure/],
  ['ws://example.com:80', /clear text/],
  ['http://10.0.0.1:9443', /clear text to 10\.0\.0\.1:9443/],
  ['http://0.0.0.0:9443', /clear text/],
  ['http://localhost.evil.example', /clear text/],
  ['http://127.0.0.1.nip.io', /clear text/],
  ['https://user:secret@proxy.example', /user name or password/],
  ['https://user@proxy.example', /user name or password/],
  ['http://u:p@localhost:1', /user name or password/],
  ['https://proxy.example/api', /only the scheme, host and port/],
  ['https://proxy.example/api/v1/tunnels/tcp', /only the scheme, host and port/],
  ['https://proxy.example?port=1', /only the scheme, host and port/],
  ['https://proxy.example/?', /only the scheme, host and port/],
  ['https://proxy.example#x', /only the scheme, host and port/],
  ['ftp://proxy.example', /scheme "ftp:"/],
  ['file:///etc/passwd', /scheme "file:"/],
  ['javascript:alert(1)', /scheme/],
  ['proxy.example', /Invalid proxy URL/],
  ['not a url', /Invalid proxy URL/],
  ['', /Invalid proxy URL: it is empty/],
];

for (const [url, ...patterns] of BAD_PROXIES) {
  test(`proxy URL ${JSON.stringify(url)} is refused`, () => {
    const err = throwsCode(() => resolveProxyTarget('sbx-1', url), ErrorCodes.USAGE, ...patterns);
    assert.ok(!err.message.includes('secret'), err.message);
  });
}

test('--allow-insecure permits clear text to another host, and nothing else', () => {
  const target = resolveProxyTarget('sbx-1', 'http://proxy.example:8080', true);
  assert.deepEqual(target, { origin: 'ws://proxy.example:8080', hostname: 'proxy.example', secure: false, perSandboxHost: false });
  throwsCode(() => resolveProxyTarget('sbx-1', 'http://u:p@proxy.example', true), ErrorCodes.USAGE, /user name or password/);
  throwsCode(() => resolveProxyTarget('sbx-1', 'http://proxy.example/x', true), ErrorCodes.USAGE, /only the scheme/);
});

test('credentialHeaders: API key wins over PAT; ids become headers; no key is TL_ERR_NO_CREDENTIALS', () => {
  assert.deepEqual(credentialHeaders({ apiKey: CANARY_KEY }), { authorization: `Bearer ${CANARY_KEY}` });
  assert.deepEqual(credentialHeaders({ apiKey: CANARY_KEY, pat: 'tl_pat_other0000' }), { authorization: `Bearer ${CANARY_KEY}` });
  assert.deepEqual(credentialHeaders({ pat: 'tl_pat_token0000', organizationId: 'org-1', projectId: 'proj-1' }), {
    authorization: 'Bearer tl_pat_token0000',
    'x-forwarded-organization-id': 'org-1',
    'x-forwarded-project-id': 'proj-1',
  });
  assert.deepEqual(credentialHeaders({ apiKey: CANARY_KEY, organizationId: '', projectId: undefined }), { authorization: `Bearer ${CANARY_KEY}` });
  for (const creds of [{}, { apiKey: '' }, { pat: '' }, { apiKey: '', pat: '' }]) {
    throwsCode(() => credentialHeaders(creds), ErrorCodes.NO_CREDENTIALS, /TENSORLAKE_API_KEY/, /--api-key/);
  }
});

test('credentialHeaders refuses header injection without quoting the secret', () => {
  for (const apiKey of [`${CANARY_KEY}\r\nX-Evil: 1`, `${CANARY_KEY} x`, `${CANARY_KEY}\u0000`, `${CANARY_KEY}é`]) {
    const err = throwsCode(() => credentialHeaders({ apiKey }), ErrorCodes.USAGE, /API key/);
    assert.ok(!err.message.includes(CANARY_KEY.slice(10)), err.message);
  }
  throwsCode(() => credentialHeaders({ pat: 'tok en-123456' }), ErrorCodes.USAGE, /access token/);
  throwsCode(() => credentialHeaders({ apiKey: CANARY_KEY, organizationId: 'org\r\nx: y' }), ErrorCodes.USAGE, /organization id/);
  throwsCode(() => credentialHeaders({ apiKey: CANARY_KEY, projectId: 'p j' }), ErrorCodes.USAGE, /project id/);
});

test('every error code has an exit code, and the documented ones are right', () => {
  for (const code of Object.values(ErrorCodes)) {
    assert.ok(Object.hasOwn(EXIT_CODES, code), `${code} has no exit code`);
    assert.ok(Number.isInteger(EXIT_CODES[code]) && EXIT_CODES[code] >= 1 && EXIT_CODES[code] <= 7, `${code} -> ${EXIT_CODES[code]}`);
    assert.equal(exitCodeFor(code), EXIT_CODES[code]);
  }
  assert.deepEqual(Object.keys(EXIT_CODES).sort(), Object.values(ErrorCodes).sort());
  const documented = {
    USAGE: 2, NO_CREDENTIALS: 2, BAD_PORT: 2,
    AUTH: 3,
    SANDBOX_NOT_FOUND: 4,
    LISTEN: 5,
    UNREACHABLE: 6, TLS: 6, TIMEOUT: 6,
    NO_SUCH_TUNNEL: 7,
    CONTROL: 1,
    INTERNAL: 1,
  };
  for (const [name, exit] of Object.entries(documented)) assert.equal(EXIT_CODES[ErrorCodes[name]], exit, name);
  assert.equal(exitCodeFor(undefined), 1);
  assert.equal(exitCodeFor('TL_ERR_SOMETHING_NEW'), 1);
});
