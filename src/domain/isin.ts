// ISIN (ISO 6166): a 2-letter country code, a 9-character national number (letters or digits)
// and a check digit. No price provider we read publishes it, so it comes from users' instrument
// lists; the check digit catches the typo or the shifted column before it is stored.

const SHAPE = /^[A-Z]{2}[A-Z0-9]{9}[0-9]$/;

/**
 * The check digit of the first 11 characters: letters become two digits (A = 10 … Z = 35), then
 * Luhn over the digits, doubling every other one from the rightmost.
 */
export function isinCheckDigit(first11: string): number {
  let digits = "";
  for (const c of first11) digits += c >= "A" && c <= "Z" ? String(c.charCodeAt(0) - 55) : c;
  let sum = 0;
  let double = true;
  for (let i = digits.length - 1; i >= 0; i--, double = !double) {
    const d = Number(digits[i]) * (double ? 2 : 1);
    sum += d > 9 ? d - 9 : d;
  }
  return (10 - (sum % 10)) % 10;
}

/** Why `isin` is not a valid ISIN, or null when it is (upper case expected: callers normalise). */
export function isinProblem(isin: string): string | null {
  if (!SHAPE.test(isin)) return `ISIN "${isin}" is not 2 letters, 9 letters or digits and a check digit`;
  const expected = isinCheckDigit(isin.slice(0, 11));
  if (Number(isin[11]) !== expected) return `ISIN ${isin} has check digit ${isin[11]}, expected ${expected} (a typo, or another column?)`;
  return null;
}
