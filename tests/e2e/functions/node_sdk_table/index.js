// A Node handler using the AWS SDK for JavaScript v3 the platform provides (not bundled):
// the document client, configured only by the environment Gust sets.
const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
const { DynamoDBDocumentClient, PutCommand, QueryCommand } = require("@aws-sdk/lib-dynamodb");

const doc = DynamoDBDocumentClient.from(new DynamoDBClient({}));

exports.handler = async (event, context) => {
  const TableName = process.env.TABLE_NAME;
  if (event.op === "put") {
    await doc.send(new PutCommand({ TableName, Item: { pk: event.pk, sk: event.sk, by: context.functionName } }));
    return { ok: true };
  }
  const out = await doc.send(new QueryCommand({
    TableName,
    KeyConditionExpression: "pk = :p",
    ExpressionAttributeValues: { ":p": event.pk },
  }));
  return {
    sdkFrom: require.resolve("@aws-sdk/client-dynamodb"),
    items: out.Items.map((i) => ({ sk: i.sk, by: i.by })),
  };
};
