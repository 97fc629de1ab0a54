// The DynamoDB-compatible tables service driven by the real AWS SDK for JavaScript v3
// (@aws-sdk/client-dynamodb and @aws-sdk/lib-dynamodb, from `gust sdk install`'s directory
// through NODE_PATH). Run by tests/e2e/test_sdk.py, one case per process:
//
//   node dynamodb_v3.cjs <case>        prints {"ok":true,...} or exits 1 with the failure
//
// The client is configured only by the environment (AWS_ENDPOINT_URL, credentials, region),
// exactly as application code would be.
"use strict";

const assert = require("node:assert/strict");
const ddb = require("@aws-sdk/client-dynamodb");
const lib = require("@aws-sdk/lib-dynamodb");

const client = new ddb.DynamoDBClient({ maxAttempts: 1 });
const doc = lib.DynamoDBDocumentClient.from(client, {
  marshallOptions: { removeUndefinedValues: true },
});
const send = (Cmd, input) => client.send(new ddb[Cmd](input));
const name = (p) => `${p}-js-${Math.random().toString(36).slice(2, 10)}`;

async function expectError(promise, errorName, messagePart) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.name, errorName, `expected ${errorName}, got ${e.name}: ${e.message}`);
    if (messagePart) assert.ok(e.message.includes(messagePart), `message was: ${e.message}`);
    assert.equal(e.$metadata.httpStatusCode, 400);
    return e;
  }
  assert.fail(`expected ${errorName}, but the call succeeded`);
}

async function table(prefix, { sk = "N", gsi = false, lsi = false } = {}) {
  const TableName = name(prefix);
  const defs = [{ AttributeName: "pk", AttributeType: "S" }];
  const keys = [{ AttributeName: "pk", KeyType: "HASH" }];
  if (sk) {
    defs.push({ AttributeName: "sk", AttributeType: sk });
    keys.push({ AttributeName: "sk", KeyType: "RANGE" });
  }
  const input = { TableName, AttributeDefinitions: defs, KeySchema: keys, BillingMode: "PAY_PER_REQUEST" };
  if (gsi) {
    defs.push({ AttributeName: "owner", AttributeType: "S" });
    input.GlobalSecondaryIndexes = [{
      IndexName: "by-owner",
      KeySchema: [{ AttributeName: "owner", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }],
      Projection: { ProjectionType: "ALL" },
    }];
  }
  if (lsi) {
    defs.push({ AttributeName: "rank", AttributeType: "N" });
    input.LocalSecondaryIndexes = [{
      IndexName: "by-rank",
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "rank", KeyType: "RANGE" }],
      Projection: { ProjectionType: "KEYS_ONLY" },
    }];
  }
  await send("CreateTableCommand", input);
  await ddb.waitUntilTableExists({ client, maxWaitTime: 10, minDelay: 1 }, { TableName });
  return TableName;
}

const cases = {
  async tables() {
    const a = await table("tbl", { gsi: true, lsi: true });
    const d = (await send("DescribeTableCommand", { TableName: a })).Table;
    assert.equal(d.TableStatus, "ACTIVE");
    assert.equal(d.TableArn, `arn:aws:dynamodb:us-east-1:000000000000:table/${a}`);
    assert.equal(d.GlobalSecondaryIndexes[0].IndexName, "by-owner");
    assert.equal(d.LocalSecondaryIndexes[0].IndexName, "by-rank");
    assert.equal(d.BillingModeSummary.BillingMode, "PAY_PER_REQUEST");

    const listed = [];
    for await (const page of ddb.paginateListTables({ client, pageSize: 1 }, {})) listed.push(...page.TableNames);
    assert.ok(listed.includes(a));

    await expectError(send("CreateTableCommand", {
      TableName: a,
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
    }), "ResourceInUseException");
    await expectError(send("DescribeTableCommand", { TableName: "no-such-table-js" }), "ResourceNotFoundException");

    const upd = await send("UpdateTableCommand", {
      TableName: a,
      AttributeDefinitions: [{ AttributeName: "kind", AttributeType: "S" }],
      GlobalSecondaryIndexUpdates: [{ Create: {
        IndexName: "by-kind",
        KeySchema: [{ AttributeName: "kind", KeyType: "HASH" }],
        Projection: { ProjectionType: "KEYS_ONLY" },
      } }],
    });
    assert.ok(upd.TableDescription.GlobalSecondaryIndexes.some((g) => g.IndexName === "by-kind"));

    await send("TagResourceCommand", { ResourceArn: d.TableArn, Tags: [{ Key: "team", Value: "js" }, { Key: "x", Value: "y" }] });
    await send("UntagResourceCommand", { ResourceArn: d.TableArn, TagKeys: ["x"] });
    const tags = await send("ListTagsOfResourceCommand", { ResourceArn: d.TableArn });
    assert.deepEqual(tags.Tags, [{ Key: "team", Value: "js" }]);

    await send("UpdateTimeToLiveCommand", { TableName: a, TimeToLiveSpecification: { AttributeName: "expires", Enabled: true } });
    const ttl = await send("DescribeTimeToLiveCommand", { TableName: a });
    assert.equal(ttl.TimeToLiveDescription.AttributeName, "expires");
    assert.ok(["ENABLED", "ENABLING"].includes(ttl.TimeToLiveDescription.TimeToLiveStatus));

    await send("DeleteTableCommand", { TableName: a });
    await ddb.waitUntilTableNotExists({ client, maxWaitTime: 10, minDelay: 1 }, { TableName: a });
    return { tables: listed.length };
  },

  async items() {
    const t = await table("items", { sk: "S" });
    const bytes = Uint8Array.from([0, 1, 2, 250, 255]);
    const Item = {
      pk: { S: "p" }, sk: { S: "all-types" },
      s: { S: "héllo ✓" }, n: { N: "12345678901234567890123456789012345678" }, neg: { N: "-0.000001" },
      b: { B: bytes }, t: { BOOL: true }, nul: { NULL: true },
      m: { M: { inner: { L: [{ S: "x" }, { N: "1" }, { M: {} }] } } },
      ss: { SS: ["a", "b"] }, ns: { NS: ["1", "2.5"] }, bs: { BS: [Uint8Array.from([1]), Uint8Array.from([2])] },
    };
    const put = await send("PutItemCommand", { TableName: t, Item, ReturnConsumedCapacity: "TOTAL" });
    assert.equal(put.ConsumedCapacity.TableName, t);
    assert.equal(put.ConsumedCapacity.CapacityUnits, 1);
    const got = (await send("GetItemCommand", { TableName: t, Key: { pk: { S: "p" }, sk: { S: "all-types" } }, ConsistentRead: true })).Item;
    assert.equal(got.s.S, "héllo ✓");
    assert.equal(got.n.N, "12345678901234567890123456789012345678");
    assert.equal(got.neg.N, "-0.000001");
    assert.deepEqual(Array.from(got.b.B), Array.from(bytes));
    assert.equal(got.t.BOOL, true);
    assert.equal(got.nul.NULL, true);
    assert.equal(got.m.M.inner.L[0].S, "x");
    assert.deepEqual([...got.ss.SS].sort(), ["a", "b"]);
    assert.deepEqual([...got.ns.NS].sort(), ["1", "2.5"]);
    assert.equal(got.bs.BS.length, 2);

    const old = await send("PutItemCommand", { TableName: t, Item: { pk: { S: "p" }, sk: { S: "all-types" }, v: { N: "1" } }, ReturnValues: "ALL_OLD" });
    assert.equal(old.Attributes.s.S, "héllo ✓");
    const del = await send("DeleteItemCommand", { TableName: t, Key: { pk: { S: "p" }, sk: { S: "all-types" } }, ReturnValues: "ALL_OLD" });
    assert.equal(del.Attributes.v.N, "1");
    assert.equal((await send("GetItemCommand", { TableName: t, Key: { pk: { S: "p" }, sk: { S: "all-types" } } })).Item, undefined);

    await expectError(send("GetItemCommand", { TableName: t, Key: { pk: { S: "p" } } }), "ValidationException",
      "The provided key element does not match the schema");
    await expectError(send("PutItemCommand", { TableName: t, Item: { pk: { S: "p" }, sk: { S: "big" }, blob: { S: "x".repeat(410 * 1024) } } }),
      "ValidationException", "Item size has exceeded the maximum allowed size");
    await expectError(send("PutItemCommand", { TableName: "no-such-table-js", Item: { pk: { S: "p" } } }), "ResourceNotFoundException");
    return {};
  },

  async conditions_and_updates() {
    const t = await table("cond", { sk: null });
    const Key = { pk: { S: "counter" } };
    await send("PutItemCommand", { TableName: t, Item: { pk: { S: "counter" }, n: { N: "1" }, tags: { SS: ["a", "b"] }, lst: { L: [{ N: "1" }] }, gone: { S: "x" } } });
    const e = await expectError(send("PutItemCommand", {
      TableName: t, Item: { pk: { S: "counter" } },
      ConditionExpression: "attribute_not_exists(pk)",
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    }), "ConditionalCheckFailedException", "The conditional request failed");
    assert.equal(e.Item.n.N, "1");

    const u = await send("UpdateItemCommand", {
      TableName: t, Key,
      UpdateExpression: "SET n = n + :one, #c = if_not_exists(#c, :zero), lst = list_append(lst, :more) REMOVE gone ADD hits :one DELETE tags :a",
      ConditionExpression: "n < :ten AND contains(tags, :astr) AND size(lst) = :one",
      ExpressionAttributeNames: { "#c": "created" },
      ExpressionAttributeValues: { ":one": { N: "1" }, ":zero": { N: "0" }, ":ten": { N: "10" }, ":more": { L: [{ N: "2" }] }, ":a": { SS: ["a"] }, ":astr": { S: "a" } },
      ReturnValues: "ALL_NEW",
    });
    assert.equal(u.Attributes.n.N, "2");
    assert.equal(u.Attributes.created.N, "0");
    assert.equal(u.Attributes.hits.N, "1");
    assert.deepEqual(u.Attributes.tags.SS, ["b"]);
    assert.deepEqual(u.Attributes.lst.L.map((x) => x.N), ["1", "2"]);
    assert.equal(u.Attributes.gone, undefined);

    const upd = await send("UpdateItemCommand", { TableName: t, Key, UpdateExpression: "SET n = :v", ExpressionAttributeValues: { ":v": { N: "7" } }, ReturnValues: "UPDATED_OLD" });
    assert.deepEqual(upd.Attributes, { n: { N: "2" } });

    await expectError(send("UpdateItemCommand", { TableName: t, Key, UpdateExpression: "SET n = n + :s", ExpressionAttributeValues: { ":s": { S: "x" } } }),
      "ValidationException", "Incorrect operand type for operator or function; operator or function: +, operand type: S");
    await expectError(send("UpdateItemCommand", { TableName: t, Key, UpdateExpression: "SET #missing = :v", ExpressionAttributeValues: { ":v": { N: "1" } } }),
      "ValidationException", "#missing");
    return {};
  },

  async query_and_scan() {
    const t = await table("qs", { gsi: true });
    const items = [];
    for (let i = 0; i < 40; i++) {
      items.push({ PutRequest: { Item: { pk: { S: i < 30 ? "a" : "b" }, sk: { N: String(i) }, owner: { S: i % 2 ? "odd" : "even" }, body: { S: `item-${i}` } } } });
    }
    for (let i = 0; i < items.length; i += 25) {
      const r = await send("BatchWriteItemCommand", { RequestItems: { [t]: items.slice(i, i + 25) } });
      assert.deepEqual(r.UnprocessedItems, {});
    }
    const seen = [];
    for await (const page of ddb.paginateQuery({ client, pageSize: 7 }, {
      TableName: t, KeyConditionExpression: "pk = :p AND sk BETWEEN :lo AND :hi",
      ExpressionAttributeValues: { ":p": { S: "a" }, ":lo": { N: "5" }, ":hi": { N: "24" } },
      ScanIndexForward: false,
    })) {
      assert.ok(page.Items.length <= 7);
      seen.push(...page.Items.map((x) => Number(x.sk.N)));
    }
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => 24 - i));

    const filtered = await send("QueryCommand", {
      TableName: t, KeyConditionExpression: "pk = :p", FilterExpression: "begins_with(body, :b) AND #o IN (:o1, :o2)",
      ProjectionExpression: "sk, #b", ExpressionAttributeNames: { "#b": "body", "#o": "owner" },
      ExpressionAttributeValues: { ":p": { S: "a" }, ":b": { S: "item-1" }, ":o1": { S: "odd" }, ":o2": { S: "none" } },
    });
    assert.deepEqual(filtered.Items.map((x) => x.body.S), ["item-1", "item-11", "item-13", "item-15", "item-17", "item-19"]);
    assert.equal(filtered.ScannedCount, 30);
    assert.deepEqual(Object.keys(filtered.Items[0]).sort(), ["body", "sk"]);

    const count = await send("QueryCommand", { TableName: t, IndexName: "by-owner", KeyConditionExpression: "#o = :o", ExpressionAttributeNames: { "#o": "owner" }, ExpressionAttributeValues: { ":o": { S: "even" } }, Select: "COUNT" });
    assert.equal(count.Count, 20);
    assert.equal(count.Items, undefined);

    const segs = await Promise.all([0, 1, 2].map(async (Segment) => {
      const got = [];
      for await (const page of ddb.paginateScan({ client, pageSize: 5 }, { TableName: t, Segment, TotalSegments: 3 })) got.push(...page.Items);
      return got.map((x) => `${x.pk.S}/${x.sk.N}`);
    }));
    const all = segs.flat();
    assert.equal(all.length, 40);
    assert.equal(new Set(all).size, 40);

    await expectError(send("QueryCommand", { TableName: t, KeyConditionExpression: "sk = :s", ExpressionAttributeValues: { ":s": { N: "1" } } }),
      "ValidationException", "Query condition missed key schema element");
    return { pages: seen.length };
  },

  async batch_and_transactions() {
    const t = await table("tx", { sk: null });
    const Keys = Array.from({ length: 30 }, (_, i) => ({ pk: { S: `k${i}` } }));
    for (let i = 0; i < 30; i += 15) {
      await send("BatchWriteItemCommand", { RequestItems: { [t]: Keys.slice(i, i + 15).map((k) => ({ PutRequest: { Item: { ...k, v: { N: "0" } } } })) } });
    }
    const got = await send("BatchGetItemCommand", { RequestItems: { [t]: { Keys, ProjectionExpression: "pk" } } });
    assert.equal(got.Responses[t].length, 30);
    await expectError(send("BatchWriteItemCommand", { RequestItems: { [t]: Array.from({ length: 26 }, (_, i) => ({ PutRequest: { Item: { pk: { S: `x${i}` } } } })) } }),
      "ValidationException");

    await send("TransactWriteItemsCommand", { TransactItems: [
      { Put: { TableName: t, Item: { pk: { S: "new" }, v: { N: "1" } }, ConditionExpression: "attribute_not_exists(pk)" } },
      { Update: { TableName: t, Key: { pk: { S: "k0" } }, UpdateExpression: "SET v = v + :1", ExpressionAttributeValues: { ":1": { N: "1" } } } },
      { Delete: { TableName: t, Key: { pk: { S: "k1" } } } },
      { ConditionCheck: { TableName: t, Key: { pk: { S: "k2" } }, ConditionExpression: "attribute_exists(pk)" } },
    ] });
    const e = await expectError(send("TransactWriteItemsCommand", { TransactItems: [
      { Update: { TableName: t, Key: { pk: { S: "k3" } }, UpdateExpression: "SET v = :9", ExpressionAttributeValues: { ":9": { N: "9" } } } },
      { Put: { TableName: t, Item: { pk: { S: "new" } }, ConditionExpression: "attribute_not_exists(pk)", ReturnValuesOnConditionCheckFailure: "ALL_OLD" } },
    ] }), "TransactionCanceledException", "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]");
    assert.deepEqual(e.CancellationReasons.map((r) => r.Code), ["None", "ConditionalCheckFailed"]);
    assert.equal(e.CancellationReasons[1].Item.v.N, "1");

    const tg = await send("TransactGetItemsCommand", { TransactItems: ["k0", "k1", "k3", "new"].map((k) => ({ Get: { TableName: t, Key: { pk: { S: k } } } })) });
    assert.deepEqual(tg.Responses.map((r) => r.Item && r.Item.v.N), ["1", undefined, "0", "1"]);
    return {};
  },

  async document_client() {
    const t = await table("doc", { sk: "N" });
    await doc.send(new lib.PutCommand({ TableName: t, Item: { pk: "u", sk: 1, name: "Ada", tags: new Set(["x", "y"]), nested: { a: [1, "two", null, true] }, ratio: 0.25 } }));
    const got = (await doc.send(new lib.GetCommand({ TableName: t, Key: { pk: "u", sk: 1 } }))).Item;
    assert.equal(got.name, "Ada");
    assert.ok(got.tags instanceof Set && got.tags.has("x") && got.tags.size === 2);
    assert.deepEqual(got.nested, { a: [1, "two", null, true] });
    assert.equal(got.ratio, 0.25);

    const upd = await doc.send(new lib.UpdateCommand({ TableName: t, Key: { pk: "u", sk: 1 }, UpdateExpression: "SET visits = if_not_exists(visits, :z) + :one", ExpressionAttributeValues: { ":z": 0, ":one": 1 }, ReturnValues: "ALL_NEW" }));
    assert.equal(upd.Attributes.visits, 1);

    await doc.send(new lib.BatchWriteCommand({ RequestItems: { [t]: [2, 3, 4].map((sk) => ({ PutRequest: { Item: { pk: "u", sk, name: `n${sk}` } } })) } }));
    const q = await doc.send(new lib.QueryCommand({ TableName: t, KeyConditionExpression: "pk = :p AND sk > :s", ExpressionAttributeValues: { ":p": "u", ":s": 1 } }));
    assert.deepEqual(q.Items.map((i) => i.sk), [2, 3, 4]);

    await assert.rejects(doc.send(new lib.PutCommand({ TableName: t, Item: { pk: "u", sk: 1 }, ConditionExpression: "attribute_not_exists(pk)" })),
      (err) => err.name === "ConditionalCheckFailedException");
    return {};
  },

  async bad_credentials() {
    const bad = new ddb.DynamoDBClient({ maxAttempts: 1, credentials: { accessKeyId: "AKIDNOTREAL000000000", secretAccessKey: "nope" } });
    try {
      await bad.send(new ddb.ListTablesCommand({}));
      assert.fail("a request with unknown credentials succeeded");
    } catch (e) {
      assert.equal(e.name, "UnrecognizedClientException", e.message);
    }
    const creds = await client.config.credentials();
    const wrongSecret = new ddb.DynamoDBClient({ maxAttempts: 1, credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: "wrong" } });
    try {
      await wrongSecret.send(new ddb.ListTablesCommand({}));
      assert.fail("a request with a wrong secret succeeded");
    } catch (e) {
      assert.equal(e.name, "InvalidSignatureException", e.message);
    }
    return {};
  },
};

const which = process.argv[2];
if (!cases[which]) {
  console.error(`unknown case ${which}; cases: ${Object.keys(cases).join(", ")}`);
  process.exit(2);
}
cases[which]().then(
  (extra) => console.log(JSON.stringify({ ok: true, ...extra })),
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(1);
  },
);
