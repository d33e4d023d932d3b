/** What the HTTP layer is given (dependencies) and what middleware puts on each request. */
import type { Config } from "../config.js";
import type { Store } from "../db/client.js";
import type { Principal } from "../keys/keys.js";
import type { Logger } from "../lib/logger.js";

export interface AppDeps {
  store: Store;
  config: Config;
  logger: Logger;
}

export type AppEnv = {
  Variables: {
    requestId: string;
    principal: Principal;
  };
};
