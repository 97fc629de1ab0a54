// ESM in a .js file, selected by "type": "module" in package.json.
import { helper } from "./lib.js";

export const handler = async (event) => ({ flavour: "esm-pkg", doubled: helper(event.n ?? 0) });
