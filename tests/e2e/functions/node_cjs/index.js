// CommonJS handlers for the end-to-end suite.
let cold = true;

exports.hello = async () => ({ hello: "world", flavour: "cjs" });

exports.echo = async (event, context) => {
  const wasCold = cold;
  cold = false;
  return {
    event,
    cold: wasCold,
    function_name: context.functionName,
    function_version: context.functionVersion,
    memory_limit_in_mb: context.memoryLimitInMB,
    aws_request_id: context.awsRequestId,
    invoked_function_arn: context.invokedFunctionArn,
    log_group_name: context.logGroupName,
    remaining_ms: context.getRemainingTimeInMillis(),
  };
};

exports.env = async () => ({ environ: { ...process.env }, cwd: process.cwd(), argv: process.argv });

exports.tmp = async (event, context) => {
  const fs = require("fs");
  const path = `/tmp/gust-e2e-${context.awsRequestId}.txt`;
  fs.writeFileSync(path, "written");
  const data = fs.readFileSync(path, "utf8");
  fs.unlinkSync(path);
  return { tmp: data };
};

class GustTestError extends Error {
  constructor(message) {
    super(message);
    this.name = "GustTestError";
  }
}

exports.fail = async (event) => {
  throw new GustTestError(`boom: ${event.why || "no reason"}`);
};

exports.printer = async (event) => {
  console.log("gust-e2e-print-marker", event.marker || "");
  return { printed: true };
};

exports.callback = (event, context, callback) => {
  setTimeout(() => callback(null, { via: "callback", event }), 5);
};

exports.callbackError = (event, context, callback) => {
  callback(new Error("callback failure"));
};
