exports.handler = async (event) => {
  return { statusCode: 200, body: "hello from node" };
};
