exports.handler = async (event, context) => {
  const name = (event && event.name) || "world";
  console.log(`greeting ${name} from ${context.functionName}`);
  return {
    message: `${process.env.GREETING || "Hello"}, ${name}!`,
    requestId: context.awsRequestId,
    remainingMs: context.getRemainingTimeInMillis(),
  };
};
