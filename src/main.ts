/** Process entry: load config, start, print the first admin key once, stop cleanly on SIGTERM/SIGINT. */
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./lib/logger.js";
import { start } from "./server.js";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`postline: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.LOG_LEVEL);
  const running = await start(config, logger);
  if (running.generatedAdminKey) {
    // Printed once, to stdout, outside the structured log: it is the only copy.
    // A worker serves no HTTP: the account is created through an API process (ROLE=api or all).
    const api = running.port !== null ? `http://${config.HOST}:${running.port}` : "http://<an API process>";
    process.stdout.write(
      `\nPostline admin API key (shown once, store it now):\n  ${running.generatedAdminKey}\n` +
        `Create an account: curl -X POST ${api}/accounts ` +
        `-H "Authorization: Bearer ${running.generatedAdminKey}" -H "Content-Type: application/json" -d '{"name":"my app"}'\n\n`,
    );
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    const timer = setTimeout(() => process.exit(1), 30_000).unref();
    await running.stop();
    clearTimeout(timer);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((err: unknown) => {
  process.stderr.write(`postline: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
