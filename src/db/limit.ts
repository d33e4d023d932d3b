/**
 * A LIMIT written into a statement's text rather than passed as a parameter, for statements
 * planned once per connection (plan_cache_mode force_generic_plan, db/client.ts): a generic
 * plan knows a constant LIMIT exactly, where a parameter's is a guess. `n` is rounded down to one
 * of a few sizes (each ~7/8 of the next, from `max` down to 1), so a connection prepares a few
 * dozen texts and a claim takes at least 7/8 of what it could.
 */
import { sql, type SQL } from "drizzle-orm";

export function limitSize(n: number, max: number): number {
  const want = Math.max(1, Math.min(max, Math.floor(n)));
  let size = max;
  while (size > want) size = Math.floor((size * 7) / 8);
  return size;
}

/** `limitSize(n, max)` as SQL text (an integer literal, never a parameter). */
export function limitLiteral(n: number, max: number): SQL {
  return sql.raw(String(limitSize(n, max)));
}
