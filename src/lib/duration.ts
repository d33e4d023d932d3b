/** Parses a duration such as `500ms`, `30s`, `5m`, `2h`, `5d` (or a bare number of seconds) into milliseconds; null when malformed. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit as "ms" | "s" | "m" | "h" | "d"];
  const ms = Math.round(n * factor);
  return Number.isFinite(ms) ? ms : null;
}

/** Parses a byte size such as `20MB`, `512KB`, `1048576` into bytes; null when malformed. Units are binary (1 MB = 1024 KB). */
export function parseBytes(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(text);
  if (!m) return null;
  const unit = (m[2] ?? "b").toLowerCase() as "b" | "kb" | "mb" | "gb";
  const factor = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[unit];
  return Math.floor(Number(m[1]) * factor);
}
