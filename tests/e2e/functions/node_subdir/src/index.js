// A handler in a subdirectory: handler = "src/index.handler".
const path = require("path");
exports.handler = async () => ({ where: path.basename(__dirname) });
