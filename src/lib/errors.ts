// What a caught value says, as text: the message of an Error, else the value itself. Anything
// may be thrown (a string, an object from a library), and `(e as Error).message` would print
// "undefined" for those.
export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === "object" && e !== null && typeof (e as { message?: unknown }).message === "string") return (e as { message: string }).message;
  return String(e);
}

/** errorText on one line (what the CLI prints). */
export const oneLineError = (e: unknown): string => errorText(e).replace(/\s*\n\s*/g, " ");
