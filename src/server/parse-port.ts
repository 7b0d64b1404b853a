/** Strict `port` query parsing: exactly one value, plain decimal digits, 1..65535. */
export function parseTargetPort(search: URLSearchParams): number | undefined {
  const values = search.getAll('port');
  if (values.length !== 1) return undefined;
  const text = values[0] as string;
  if (!/^[1-9][0-9]{0,4}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}
