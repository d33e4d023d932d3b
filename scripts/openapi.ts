/** Writes openapi.yaml from the route schemas: `npm run openapi`. test/http/openapi.test.ts fails when the file and the code disagree. */
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { documentOnlyYaml } from "../test/helpers/openapi.js";

const target = fileURLToPath(new URL("../openapi.yaml", import.meta.url));
fs.writeFileSync(target, documentOnlyYaml());
console.log(`wrote ${target}`);
