// Medians of the runs, the ratios against the targets, the printed tables and results.json.
import os from 'node:os';
import { median } from './proc.js';

const round = (x, digits) => (x === null || x === undefined ? null : Number(x.toFixed(digits)));

/** The median over runs of `pick(run)`, ignoring runs where it is missing. */
function over(runs, pick) {
  return median(runs.map((r) => {
    try {
      return pick(r);
    } catch {
      return undefined;
    }
  }));
}

export const FIGURES = [
  ['upMBps', 'throughput up (MB/s)', 0],
  ['downMBps', 'throughput down (MB/s)', 0],
  ['cpuUp', 'client CPU s/GiB up', 2],
  ['cpuDown', 'client CPU s/GiB down', 2],
  ['rttUs', 'ping-pong RTT (µs)', 1],
  ['connP50', 'new connection p50 (ms)', 2],
  ['connP99', 'new connection p99 (ms)', 2],
  ['idleKiB', 'client RSS per idle conn (KiB)', 1],
];

export function summarise(runs, variants) {
  const medians = {};
  for (const v of variants) {
    medians[v] = {};
    for (const [key, , digits] of FIGURES) medians[v][key] = round(over(runs, (r) => r.variants[v][key]), digits);
  }
  const slow = {};
  for (const key of ['down256', 'downBig', 'up256', 'upBig']) slow[key] = round(over(runs, (r) => r.slow[key]), 1);
  const version = { cliMs: round(over(runs, (r) => r.version.cliMs), 1), nodeMs: round(over(runs, (r) => r.version.nodeMs), 1) };
  return { medians, slow, version };
}

/** Each target as { figure, value, target, pass }; ratios are medians of per-run ratios. */
export function checkTargets(runs, summary, has) {
  const ratio = (a, b, key) => over(runs, (r) => r.variants[a][key] / r.variants[b][key]);
  const rows = [];
  const add = (figure, value, target, pass, note = '') => rows.push({ figure, value: value === null || value === undefined ? null : round(value, 3), target, pass: value === null || value === undefined ? null : pass(value), note });
  const m = summary.medians;
  if (has('ws') && has('node')) {
    add('ws throughput up / 2 Node relays', ratio('ws', 'node', 'upMBps'), '>= 0.90', (x) => x >= 0.9);
    add('ws throughput down / 2 Node relays', ratio('ws', 'node', 'downMBps'), '>= 0.90', (x) => x >= 0.9);
  }
  if (has('wss') && has('node')) {
    add('wss throughput up / 2 Node relays', ratio('wss', 'node', 'upMBps'), '(info)', () => true);
    add('wss throughput down / 2 Node relays', ratio('wss', 'node', 'downMBps'), '(info)', () => true);
  }
  if (has('ws')) {
    add('ws client CPU per GiB, up (s)', m.ws.cpuUp, '<= 0.7', (x) => x <= 0.7);
    add('ws client CPU per GiB, down (s)', m.ws.cpuDown, '<= 0.7', (x) => x <= 0.7);
  }
  // Against ssh -L with its default cipher: at least as fast both ways, at most 1.2x its client CPU.
  if (has('wss') && has('ssh')) {
    add('wss throughput up / ssh -L', ratio('wss', 'ssh', 'upMBps'), '>= 1.00', (x) => x >= 1);
    add('wss throughput down / ssh -L', ratio('wss', 'ssh', 'downMBps'), '>= 1.00', (x) => x >= 1);
    add('wss client CPU per GiB up / ssh -L', ratio('wss', 'ssh', 'cpuUp'), '<= 1.20', (x) => x <= 1.2);
    add('wss client CPU per GiB down / ssh -L', ratio('wss', 'ssh', 'cpuDown'), '<= 1.20', (x) => x <= 1.2);
  }
  if (has('ws') && has('node')) add('ws ping-pong RTT / 2 Node relays', ratio('ws', 'node', 'rttUs'), '<= 1.15', (x) => x <= 1.15);
  if (has('ws')) add('ws new connection p50 (ms)', m.ws.connP50, '<= 1', (x) => x <= 1);
  if (has('ws') && has('wss')) add('wss new connection p50 / ws p50', ratio('wss', 'ws', 'connP50'), '<= 2', (x) => x <= 2);
  if (has('ws')) add('ws RSS per idle tunnel (KiB)', m.ws.idleKiB, '<= 40', (x) => x <= 40);
  if (has('wss')) add('wss RSS per idle tunnel (KiB)', m.wss.idleKiB, '(info)', () => true);
  const s = summary.slow;
  if (s.down256 !== null) {
    add('slow local reader peak RSS, small (MiB)', s.down256, '<= 100', (x) => x <= 100);
    add('slow local reader peak RSS, large (MiB)', s.downBig, '<= 100', (x) => x <= 100);
    add('slow local reader peak large / small', ratio2(runs, 'downBig', 'down256'), '<= 1.10', (x) => x <= 1.1);
    add('slow remote reader peak RSS, small (MiB)', s.up256, '<= 100', (x) => x <= 100);
    add('slow remote reader peak RSS, large (MiB)', s.upBig, '<= 100', (x) => x <= 100);
    add('slow remote reader peak large / small', ratio2(runs, 'upBig', 'up256'), '<= 1.10', (x) => x <= 1.1);
  }
  if (summary.version.cliMs !== null) add('tl-tunnel --version / node -e 0', over(runs, (r) => r.version.cliMs / r.version.nodeMs), '<= 2.0', (x) => x <= 2);
  return rows;
}

function ratio2(runs, a, b) {
  return over(runs, (r) => r.slow[a] / r.slow[b]);
}

const pad = (s, n, right = false) => (right ? String(s).padStart(n) : String(s).padEnd(n));

export function printTables(summary, checks, variants, labels, sizes) {
  const w0 = 28;
  const w = 15;
  const fmt = (x) => (x === null || x === undefined ? '-' : String(x));
  const lines = [];
  lines.push(`${pad('figure (median)', w0)}${variants.map((v) => pad(labels[v], w, true)).join('')}`);
  for (const [key, title] of FIGURES) {
    const cells = variants.map((v) => summary.medians[v][key]);
    if (cells.every((c) => c === null)) continue;
    lines.push(`${pad(title, w0)}${cells.map((c) => pad(fmt(c), w, true)).join('')}`);
  }
  lines.push('');
  lines.push(`slow-reader peak RSS of the tl-tunnel client over ws (MiB), ${sizes.slowSmallLabel} / ${sizes.slowLargeLabel}:`);
  lines.push(`  fast remote source, local reader at 40 MB/s:  ${fmt(summary.slow.down256)} / ${fmt(summary.slow.downBig)}`);
  lines.push(`  fast local writer, remote reader at 40 MB/s:  ${fmt(summary.slow.up256)} / ${fmt(summary.slow.upBig)}`);
  lines.push(`startup: tl-tunnel --version ${fmt(summary.version.cliMs)} ms, node -e 0 ${fmt(summary.version.nodeMs)} ms`);
  lines.push('');
  lines.push(`${pad('target', 44)}${pad('value', 10, true)}  ${pad('target', 9)} result`);
  for (const c of checks) lines.push(`${pad(c.figure, 44)}${pad(fmt(c.value), 10, true)}  ${pad(c.target, 9)} ${c.pass === null ? '-' : c.target === '(info)' ? '' : c.pass ? 'PASS' : 'MISS'}`);
  return lines.join('\n');
}

export function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    ramGiB: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadavg: os.loadavg().map((x) => Number(x.toFixed(2))),
    date: new Date().toISOString(),
  };
}
