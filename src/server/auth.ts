import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh token for a server started without one. */
export function generateToken(): string {
  return `tlt_${randomBytes(24).toString('base64url')}`;
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * Checks `Authorization: Bearer <token>` in constant time: both sides are hashed first so neither
 * the length nor the content of the expected token leaks through timing.
 */
export function makeAuthChecker(token: string): (header: string | undefined) => boolean {
  const expected = digest(token);
  return (header) => {
    const match = /^Bearer (.+)$/i.exec(header ?? '');
    return timingSafeEqual(digest(match?.[1] ?? ''), expected) && match !== null;
  };
}
