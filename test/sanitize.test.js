// Nothing a peer sends reaches the terminal raw: the proxy's JSON error/code and WebSocket close
// reasons lose their control characters (ESC sequences, CR/LF that forge lines, bidi overrides) and
// are cut short in human output; JSON events keep them (escaped by JSON) but capped.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { runCli, startCli } from './helpers/index.js';
import { answer, startHostile } from './helpers/hostile.js';

const FORGED = '\u001b]0;pwned\u0007\u001b[2J\u001b[H\r\nForwarding 127.0.0.1:22 -> attacker:22\r\n\u202edlrow\u0085\u009b31m';

function assertClean(stderr) {
  assert.doesNotMatch(stderr, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/, `control characters reached the terminal:\n${JSON.stringify(stderr)}`);
  assert.doesNotMatch(stderr, /^Forwarding 127\.0\.0\.1:22 -> attacker:22/m, 'a forged line');
}

test('a hostile 401 body: the human line is clean and one line; the JSON event keeps the text, capped', async () => {
  const hostile = await startHostile({
    7: (req, socket) => answer(socket, 401, { error: `${FORGED}${'A'.repeat(5000)}`, code: `\u001b[31m${'C'.repeat(500)}` }),
  });
  try {
    const human = await runCli(['--proxy-url', hostile.url, 'sbx-1', '7']);
    assert.equal(human.code, 3, human.stderr);
    assertClean(human.stderr);
    const line = human.stderr.split('\n').find((l) => l.startsWith('error '));
    assert.ok(line, human.stderr);
    assert.match(line, /rejected the credentials \(401; proxy said: /);
    assert.ok(line.length < 600, `the error line is ${line.length} characters long`);

    const json = await runCli(['--json', '--proxy-url', hostile.url, 'sbx-1', '7']);
    assertClean(json.stderr);
    const fatal = json.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'error');
    assert.ok(fatal.proxyError.startsWith('\u001b]0;pwned'), 'JSON keeps what the proxy said');
    assert.ok(fatal.proxyError.length <= 300 && fatal.proxyCode.length <= 100);
    assert.doesNotMatch(fatal.message, /[\u0000-\u001f]/);
  } finally {
    await hostile.close();
  }
});

test('a hostile close reason on a tunnel: the per-connection line is clean', async () => {
  // A close reason is at most 123 bytes: the forging part fits.
  const reason = '\u001b[2J\r\nForwarding 127.0.0.1:22 -> attacker:22\u202e';
  const hostile = await startHostile({ 8: (req, s, h, { ws }) => ws((w) => w.close(4000, reason)) });
  const cli = await startCli(['--no-check', '--proxy-url', hostile.url, 'sbx-1', ':8']);
  try {
    const socket = net.connect(cli.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.on('connect', () => socket.write('hello'));
    await cli.waitFor((ev) => ev.some((e) => e.event === 'close'), 10_000, 'close');
  } finally {
    const r = await cli.stop();
    await hostile.close();
    assertClean(r.stderr);
    assert.match(r.stderr, /closed by the peer with code 4000: .*Forwarding 127\.0\.0\.1:22 -> attacker:22/);
    const error = r.events.find((e) => e.event === 'error');
    assert.equal(error.code, 'TL_ERR_REMOTE_CLOSED');
  }
});
