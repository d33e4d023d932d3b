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
