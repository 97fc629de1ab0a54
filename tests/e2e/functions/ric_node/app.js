// Handler run by the official aws-lambda-ric client as a provided.al2023 bootstrap.
exports.handler = async (event, context) => ({
  client: "aws-lambda-ric",
  event,
  request_id: context.awsRequestId,
  function_name: context.functionName,
});
