/** Builds the OpenAPI YAML without a database: route handlers are never called, so the deps are inert. */
import { loadConfig } from "../../src/config.js";
import type { Store } from "../../src/db/client.js";
import { buildApp, openApiYaml } from "../../src/http/app.js";
import { createLogger } from "../../src/lib/logger.js";

export function documentOnlyYaml(): string {
  const inert = new Proxy({} as Store, {
    get: (_t, prop) => {
      if (prop === "db") return {};
      throw new Error(`the document-only app has no store (touched ${String(prop)})`);
    },
  });
  const app = buildApp({ store: inert, config: loadConfig({ LOG_LEVEL: "silent" }), logger: createLogger("silent") });
  return openApiYaml(app);
}
