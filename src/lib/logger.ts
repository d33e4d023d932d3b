/** The process logger. Structured JSON lines; secrets and bodies are never passed to it, and the redact list is a second guard. */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: "postline" },
    redact: {
      paths: ["authorization", "headers.authorization", "*.authorization", "key", "*.key", "secret", "*.secret", "password", "*.password"],
      censor: "[redacted]",
    },
  });
}

/**
 * An error as it may be logged. Driver errors (drizzle's "Failed query … params: …") carry the
 * statement's parameters — message bodies, addresses — so only the underlying cause's message
 * and code and the stack frames are kept, never the first error's own text.
 */
export function safeError(err: unknown): { type: string; message: string; code?: string; frames?: string } {
  if (!(err instanceof Error)) return { type: typeof err, message: "non-Error thrown" };
  const cause = (err as { cause?: unknown }).cause;
  const isQuery = "params" in err || "query" in err;
  const shown = cause instanceof Error ? cause : err;
  const code = (shown as { code?: unknown }).code;
  return {
    type: err.name,
    message: isQuery && !(cause instanceof Error) ? "database query failed" : shown.message.slice(0, 300),
    ...(typeof code === "string" ? { code } : {}),
    frames: (err.stack ?? "")
      .split("\n")
      .filter((l) => l.trimStart().startsWith("at "))
      .slice(0, 8)
      .join("\n"),
  };
}
