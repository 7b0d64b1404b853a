// The bulk-transfer table against `ssh -L`: throughput and client CPU per GiB each way, as the
// median over runs with its range (min-max), and the ratio of each median to ssh -L's.
import { median } from './proc.js';

const COLUMNS = [
  ['upMBps', 'up MB/s', 0],
  ['downMBps', 'down MB/s', 0],
  ['cpuUp', 'CPU s/GiB up', 2],
  ['cpuDown', 'CPU s/GiB down', 2],
];

const values = (runs, variant, key) => runs.map((r) => r.variants[variant]?.[key]).filter((x) => typeof x === 'number' && Number.isFinite(x));

/** { median, min, max } of one figure over the runs, or undefined when no run has it. */
export function spread(runs, variant, key) {
  const xs = values(runs, variant, key);
  if (xs.length === 0) return undefined;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

const pad = (s, n, right = false) => (right ? String(s).padStart(n) : String(s).padEnd(n));

/** The printed table, or '' when the runs have no ssh -L throughput to compare with. */
export function printVersusSsh(runs, variants, labels) {
  if (!variants.includes('ssh') || spread(runs, 'ssh', 'upMBps') === undefined) return '';
  const lines = [`bulk transfer vs ssh -L (default cipher): median [min-max] of ${runs.length} run(s), (ratio of medians to ssh -L)`];
  const w0 = 16;
  const w = 30;
  lines.push(`${pad('', w0)}${COLUMNS.map(([, title]) => pad(title, w, true)).join('')}`);
  for (const v of variants) {
    const cells = COLUMNS.map(([key, , digits]) => {
      const s = spread(runs, v, key);
      if (s === undefined) return '-';
      const ref = spread(runs, 'ssh', key)?.median;
      const ratio = ref ? ` (${(s.median / ref).toFixed(2)})` : '';
      return `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}-${s.max.toFixed(digits)}]${ratio}`;
    });
    if (cells.every((c) => c === '-')) continue;
    lines.push(`${pad(labels[v], w0)}${cells.map((c) => pad(c, w, true)).join('')}`);
  }
  return lines.join('\n');
}
