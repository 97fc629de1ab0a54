require("gust-e2e-module-that-does-not-exist");
exports.handler = async () => ({ unreachable: true });
