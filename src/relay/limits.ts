// The relay's numbers: when to pause a producer.

export const DEFAULT_HIGH_WATER_MARK = 256 * 1024;
/**
 * Writes waiting on either side before reading pauses, whatever their size: each queued write
 * costs memory of its own, so a flood of 1-byte frames must stop the reader as bytes would.
 */
export const MAX_QUEUED_WRITES = 1024;
export const LOW_QUEUED_WRITES = MAX_QUEUED_WRITES >>> 2;
/** Pieces smaller than this on average are joined into one buffer before they are written. */
export const SMALL_PIECE = 4096;
/** What all tunnels of a process may hold, together, for the end of a turn of the event loop. */
export const TURN_BUDGET = 4 * 1024 * 1024;
