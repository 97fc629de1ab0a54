// An ES module handler, with top-level await as Lambda's Node runtime allows.
const started = await Promise.resolve(Date.now());

export const handler = async (event, context) => ({
  flavour: "esm",
  event,
  function_name: context.functionName,
  aws_request_id: context.awsRequestId,
  module_loaded_at: started,
});
