/**
 * `s` cut to at most `max` UTF-16 code units, never between the two halves of a surrogate
 * pair: a lone half (an emoji cut in two) makes the JSON that carries it unreadable to
 * PostgreSQL's jsonb, so a report holding one could never be stored (the listener answered 451
 * for ever). Pure.
 */
export function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const last = s.charCodeAt(max - 1);
  return s.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}
