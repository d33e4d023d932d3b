/**
 * PostgreSQL array literals for bulk statements (`unnest($1::text[], …)`), built by us so the
 * same text parameter works on postgres.js and PGlite alike (drizzle expands JS arrays into
 * lists of parameters, which is not what `unnest` needs).
 */
export function pgArray(values: readonly (string | number | boolean | null | undefined)[]): string {
  const items = values.map((v) => {
    if (v === null || v === undefined) return "NULL";
    const s = String(v);
    return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  });
  return `{${items.join(",")}}`;
}
