/**
 * stdout and stderr may go away while the tunnels run: `tl-tunnel ... 2>&1 | head -1`, a log reader
 * that exits (EPIPE), a closed terminal (EIO), a full disk. Forwarding must not depend on anyone
 * reading what we say, so a failed write makes that stream silent instead of ending the process.
 * Every error counts: nothing can be reported on a stream that has just failed, and the other
 * stream's reader does not need it either. With --stdio, stdout's errors also reach the tunnel,
 * which handles them as the end of its data.
 */
const gone = new Set<NodeJS.WriteStream>();
let guarded = false;

export function guardStdStreams(): void {
  if (guarded) return;
  guarded = true;
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => void gone.add(stream));
}

/** Whether writing to `stream` can still reach someone. */
export function isOpen(stream: NodeJS.WriteStream): boolean {
  return !gone.has(stream) && !stream.destroyed;
}

/** Writes unless the stream is gone; `done` runs either way. */
export function writeTo(stream: NodeJS.WriteStream, text: string, done?: () => void): void {
  if (!isOpen(stream)) {
    if (done) queueMicrotask(done);
    return;
  }
  stream.write(text, done === undefined ? undefined : () => done());
}
