/** Cursor pagination of id-ordered lists (SPEC.md "Lists": `{"data", "next_cursor"}`). */

/**
 * One page from rows fetched with `limit + 1` (newest first by id): the extra row only says
 * that another page exists; the cursor is the last shown id.
 */
export function pageById<R, V extends { id: string }>(rows: readonly R[], limit: number, view: (r: R) => V): { data: V[]; next_cursor: string | null } {
  const data = rows.slice(0, limit).map(view);
  return { data, next_cursor: rows.length > limit ? data[data.length - 1]!.id : null };
}
