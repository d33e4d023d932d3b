/**
 * PostgreSQL array literals for bulk statements (`unnest($1::text[], …)`), built by us so the
 * same text parameter works on postgres.js and PGlite alike (drizzle expands JS arrays into
 * lists of parameters, which is not what `unnest` needs).
 */
const SPECIAL = /["\\]/;

export function pgArray(values: readonly (string | number | boolean | null | undefined)[]): string {
  // One pass, and an element is only rewritten when it holds a quote or a backslash: this runs
  // for every column of every completion batch (hundreds of rows a statement).
  let out = "{";
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ",";
    if (v === null || v === undefined) out += "NULL";
    else {
      const s = typeof v === "string" ? v : String(v);
      out += SPECIAL.test(s) ? `"${s.replace(/["\\]/g, "\\$&")}"` : `"${s}"`;
    }
  }
  return out + "}";
}
