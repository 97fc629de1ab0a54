"""The DynamoDB-compatible tables service with the real boto3: the low-level
client and the `Table` resource (with `boto3.dynamodb.conditions`, Decimal
numbers, batch_writer, paginators and waiters), errors as DynamoDB words them,
concurrency (conditional increments and transactions from 8 threads lose
nothing) and durability across `kill -9`.
"""

from __future__ import annotations

import signal
import threading
import time
from decimal import Decimal

import pytest
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from conftest import wait_for
from dynamodb_fixtures import ddb, ddb_resource, make_table, resource_for, table_name  # noqa: F401


def code_and_message(excinfo) -> tuple[str, str]:
    err = excinfo.value.response["Error"]
    return err["Code"], err["Message"]


# ---------------------------------------------------------------------------
# tables


def test_table_lifecycle_with_waiters_and_pagination(ddb):
    names = sorted(table_name("life") for _ in range(3))
    for name in names:
        resp = ddb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
            Tags=[{"Key": "suite", "Value": "e2e"}],
        )
        assert resp["TableDescription"]["TableName"] == name
    ddb.get_waiter("table_exists").wait(TableName=names[0], WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    desc = ddb.describe_table(TableName=names[0])["Table"]
    assert desc["TableStatus"] == "ACTIVE"
    assert desc["TableArn"] == f"arn:aws:dynamodb:us-east-1:000000000000:table/{names[0]}"
    assert desc["ItemCount"] == 0
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 1

    listed = []
    for page in ddb.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 1}):
        listed += page["TableNames"]
    assert [n for n in listed if n in names] == names

    tags = ddb.list_tags_of_resource(ResourceArn=desc["TableArn"])["Tags"]
    assert tags == [{"Key": "suite", "Value": "e2e"}]

    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName=names[0],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    assert code_and_message(e) == ("ResourceInUseException", f"Table already exists: {names[0]}")

    for name in names:
        ddb.delete_table(TableName=name)
    ddb.get_waiter("table_not_exists").wait(TableName=names[0], WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ddb.describe_table(TableName=names[0])


def test_create_table_validation_messages(ddb):
    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName=table_name(),
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    assert code_and_message(e) == (
        "ValidationException",
        "One or more parameter values were invalid: Some index key attributes are not defined in "
        "AttributeDefinitions. Keys: [id], AttributeDefinitions: [pk]",
    )


# ---------------------------------------------------------------------------
# items through the resource


def test_put_get_update_delete_with_the_table_resource(make_table):
    table = make_table()
    item = {
        "pk": "user#1",
        "name": "Ada",
        "age": 36,
        "balance": Decimal("12345678901234567890.123456789012345678"),
        "tags": {"math", "engines"},
        "nested": {"list": [1, "two", None, True, b"\x00\x01"]},
        "blob": b"\xff\xfe",
    }
    table.put_item(Item=item)
    got = table.get_item(Key={"pk": "user#1"}, ConsistentRead=True)["Item"]
    assert got["balance"] == Decimal("12345678901234567890.123456789012345678")
    assert got["tags"] == {"math", "engines"}
    assert got["nested"]["list"][0] == Decimal(1)
    assert got["blob"].value == b"\xff\xfe"

    resp = table.update_item(
        Key={"pk": "user#1"},
        UpdateExpression="SET age = age + :one, #n = :n REMOVE nested ADD tags :t",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":one": 1, ":n": "Ada L.", ":t": {"poetry"}},
        ConditionExpression=Attr("age").eq(36) & Attr("name").begins_with("Ad"),
        ReturnValues="ALL_NEW",
    )
    new = resp["Attributes"]
    assert new["age"] == 37 and new["name"] == "Ada L." and "nested" not in new
    assert new["tags"] == {"math", "engines", "poetry"}

    got = table.get_item(Key={"pk": "user#1"}, ProjectionExpression="age, tags")["Item"]
    assert set(got) == {"age", "tags"}

    with pytest.raises(ClientError) as e:
        table.put_item(Item={"pk": "user#1"}, ConditionExpression=Attr("pk").not_exists())
    assert code_and_message(e) == ("ConditionalCheckFailedException", "The conditional request failed")

    with pytest.raises(ClientError) as e:
        table.delete_item(
            Key={"pk": "user#1"},
            ConditionExpression=Attr("age").lt(10),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert e.value.response["Item"]["age"] == {"N": "37"}

    old = table.delete_item(Key={"pk": "user#1"}, ReturnValues="ALL_OLD")["Attributes"]
    assert old["name"] == "Ada L."
    assert "Item" not in table.get_item(Key={"pk": "user#1"})


def test_item_validation_errors(make_table, ddb):
    table = make_table(sk="N")
    cases = [
        (dict(Item={"sk": 1}), "One or more parameter values were invalid: Missing the key pk in the item"),
        (
            dict(Item={"pk": 5, "sk": 1}),
            "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
        ),
        (
            dict(Item={"pk": "", "sk": 1}),
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot "
            "contain an empty string value. Key: pk",
        ),
        (dict(Item={"pk": "a", "sk": 1, "big": "x" * (400 * 1024)}), "Item size has exceeded the maximum allowed size"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ClientError) as e:
            table.put_item(**kwargs)
        assert code_and_message(e) == ("ValidationException", message)
    with pytest.raises(ClientError) as e:
        table.get_item(Key={"pk": "a"})
    assert code_and_message(e) == ("ValidationException", "The provided key element does not match the schema")
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=table_name("missing"), Key={"pk": {"S": "a"}})
    assert code_and_message(e) == ("ResourceNotFoundException", "Requested resource not found")


# ---------------------------------------------------------------------------
# query, scan, pagination


def test_query_with_conditions_pagination_and_filters(make_table, ddb):
    table = make_table(sk="N")
    with table.batch_writer() as batch:
        for i in range(120):
            batch.put_item(Item={"pk": "a" if i < 100 else "b", "sk": i, "even": i % 2 == 0, "pad": "x" * 50})

    resp = table.query(KeyConditionExpression=Key("pk").eq("a") & Key("sk").between(10, 19))
    assert [it["sk"] for it in resp["Items"]] == list(range(10, 20))

    resp = table.query(KeyConditionExpression=Key("pk").eq("a"), ScanIndexForward=False, Limit=5)
    assert [it["sk"] for it in resp["Items"]] == [99, 98, 97, 96, 95]
    assert resp["LastEvaluatedKey"] == {"pk": "a", "sk": 95}

    resp = table.query(
        KeyConditionExpression=Key("pk").eq("a"),
        FilterExpression=Attr("even").eq(True),
        Limit=10,
    )
    assert resp["Count"] == 5 and resp["ScannedCount"] == 10

    pages = ddb.get_paginator("query").paginate(
        TableName=table.name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "a"}},
        PaginationConfig={"PageSize": 7},
    )
    sks = [int(it["sk"]["N"]) for page in pages for it in page["Items"]]
    assert sks == list(range(100))

    count = table.query(KeyConditionExpression=Key("pk").eq("b"), Select="COUNT")
    assert count["Count"] == 20 and "Items" not in count

    resp = table.query(
        KeyConditionExpression=Key("pk").eq("a") & Key("sk").lt(3),
        ProjectionExpression="sk",
        ReturnConsumedCapacity="TOTAL",
    )
    assert resp["Items"] == [{"sk": 0}, {"sk": 1}, {"sk": 2}]
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 0.5

    # Scan with the paginator and a filter; parallel segments cover every item once.
    scanned = [
        it for page in ddb.get_paginator("scan").paginate(TableName=table.name, PaginationConfig={"PageSize": 13})
        for it in page["Items"]
    ]
    assert len(scanned) == 120
    seen = []
    for seg in range(3):
        kwargs = dict(Segment=seg, TotalSegments=3, FilterExpression=Attr("sk").gte(50))
        while True:
            resp = table.scan(**kwargs)
            seen += [it["sk"] for it in resp["Items"]]
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    assert sorted(seen) == list(range(50, 120))


def test_legacy_parameters(make_table, ddb):
    table = make_table(sk="S")
    for sk in ["apple", "apricot", "banana"]:
        ddb.put_item(TableName=table.name, Item={"pk": {"S": "f"}, "sk": {"S": sk}, "n": {"N": "1"}})
    resp = ddb.query(
        TableName=table.name,
        KeyConditions={
            "pk": {"AttributeValueList": [{"S": "f"}], "ComparisonOperator": "EQ"},
            "sk": {"AttributeValueList": [{"S": "ap"}], "ComparisonOperator": "BEGINS_WITH"},
        },
        AttributesToGet=["sk"],
    )
    assert [it["sk"]["S"] for it in resp["Items"]] == ["apple", "apricot"]
    ddb.update_item(
        TableName=table.name,
        Key={"pk": {"S": "f"}, "sk": {"S": "banana"}},
        AttributeUpdates={"n": {"Action": "ADD", "Value": {"N": "5"}}},
        Expected={"n": {"Value": {"N": "1"}}},
    )
    got = ddb.get_item(TableName=table.name, Key={"pk": {"S": "f"}, "sk": {"S": "banana"}})
    assert got["Item"]["n"] == {"N": "6"}
    resp = ddb.scan(
        TableName=table.name, ScanFilter={"n": {"AttributeValueList": [{"N": "5"}], "ComparisonOperator": "GT"}}
    )
    assert resp["Count"] == 1


# ---------------------------------------------------------------------------
# indexes


def test_secondary_indexes_and_update_table(make_table, ddb):
    table = make_table(
        sk="S",
        ExtraAttributeDefinitions=[
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "created", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_status",
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "created", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by_created",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "created", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    for i, status in enumerate(["open", "done", "open", "open"]):
        table.put_item(Item={"pk": "u", "sk": f"o{i}", "status": status, "created": 100 - i, "body": "b"})
    resp = table.query(IndexName="by_status", KeyConditionExpression=Key("status").eq("open"))
    assert [it["sk"] for it in resp["Items"]] == ["o3", "o2", "o0"]
    assert set(resp["Items"][0]) == {"pk", "sk", "status", "created"}
    resp = table.query(IndexName="by_created", KeyConditionExpression=Key("pk").eq("u") & Key("created").gt(97))
    assert [it["sk"] for it in resp["Items"]] == ["o2", "o1", "o0"]

    with pytest.raises(ClientError) as e:
        table.query(IndexName="by_status", KeyConditionExpression=Key("status").eq("open"), ConsistentRead=True)
    assert code_and_message(e) == ("ValidationException", "Consistent reads are not supported on global secondary indexes")

    ddb.update_table(
        TableName=table.name,
        AttributeDefinitions=[{"AttributeName": "body", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "by_body",
                    "KeySchema": [{"AttributeName": "body", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            }
        ],
    )
    desc = ddb.describe_table(TableName=table.name)["Table"]
    assert {g["IndexName"]: g["IndexStatus"] for g in desc["GlobalSecondaryIndexes"]} == {
        "by_status": "ACTIVE",
        "by_body": "ACTIVE",
    }
    assert table.query(IndexName="by_body", KeyConditionExpression=Key("body").eq("b"))["Count"] == 4
    ddb.update_table(TableName=table.name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_body"}}])
    with pytest.raises(ClientError):
        table.query(IndexName="by_body", KeyConditionExpression=Key("body").eq("b"))


# ---------------------------------------------------------------------------
# batches and transactions


def test_batches(make_table, ddb, ddb_resource):
    t1 = make_table()
    t2 = make_table()
    with t1.batch_writer() as batch:
        for i in range(60):
            batch.put_item(Item={"pk": f"k{i}", "v": i})
    resp = ddb_resource.batch_get_item(
        RequestItems={
            t1.name: {"Keys": [{"pk": f"k{i}"} for i in range(50)], "ProjectionExpression": "v"},
            t2.name: {"Keys": [{"pk": "none"}]},
        }
    )
    assert sorted(it["v"] for it in resp["Responses"][t1.name]) == list(range(50))
    assert resp["Responses"][t2.name] == []
    assert resp["UnprocessedKeys"] == {}
    with t1.batch_writer() as batch:
        for i in range(60):
            batch.delete_item(Key={"pk": f"k{i}"})
    assert t1.scan(Select="COUNT")["Count"] == 0
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={t1.name: {"Keys": [{"pk": {"S": f"k{i}"}} for i in range(101)]}})
    assert code_and_message(e) == ("ValidationException", "Too many items requested for the BatchGetItem call")


def test_transactions_are_all_or_nothing(make_table, ddb):
    table = make_table()
    table.put_item(Item={"pk": "alice", "balance": 100})
    table.put_item(Item={"pk": "bob", "balance": 0})

    def transfer(amount: int):
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table.name,
                        "Key": {"pk": {"S": "alice"}},
                        "UpdateExpression": "SET balance = balance - :a",
                        "ConditionExpression": "balance >= :a",
                        "ExpressionAttributeValues": {":a": {"N": str(amount)}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                {
                    "Update": {
                        "TableName": table.name,
                        "Key": {"pk": {"S": "bob"}},
                        "UpdateExpression": "SET balance = balance + :a",
                        "ExpressionAttributeValues": {":a": {"N": str(amount)}},
                    }
                },
                {
                    "Put": {
                        "TableName": table.name,
                        "Item": {"pk": {"S": f"log-{amount}-{time.monotonic_ns()}"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    transfer(70)
    with pytest.raises(ClientError) as e:
        transfer(70)
    err = e.value.response
    assert err["Error"]["Code"] == "TransactionCanceledException"
    reasons = err["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["ConditionalCheckFailed", "None", "None"]
    assert reasons[0]["Item"]["balance"] == {"N": "30"}
    got = ddb.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": table.name, "Key": {"pk": {"S": "alice"}}}},
            {"Get": {"TableName": table.name, "Key": {"pk": {"S": "bob"}}, "ProjectionExpression": "balance"}},
        ]
    )["Responses"]
    assert got[0]["Item"]["balance"] == {"N": "30"}
    assert got[1]["Item"] == {"balance": {"N": "70"}}


def test_concurrent_conditional_increments_and_transactions_lose_nothing(gust, make_table):
    table = make_table()
    table.put_item(Item={"pk": "counter", "n": 0})
    table.put_item(Item={"pk": "a", "n": 1000})
    table.put_item(Item={"pk": "b", "n": 0})
    per_thread = 25
    errors: list[BaseException] = []

    def worker(i: int):
        try:
            client = gust.client("dynamodb")
            done = 0
            while done < per_thread:
                cur = int(client.get_item(TableName=table.name, Key={"pk": {"S": "counter"}}, ConsistentRead=True)[
                    "Item"]["n"]["N"])
                try:
                    client.update_item(
                        TableName=table.name,
                        Key={"pk": {"S": "counter"}},
                        UpdateExpression="SET n = :new",
                        ConditionExpression="n = :old",
                        ExpressionAttributeValues={":new": {"N": str(cur + 1)}, ":old": {"N": str(cur)}},
                    )
                    done += 1
                except client.exceptions.ConditionalCheckFailedException:
                    pass
            for _ in range(per_thread):
                client.transact_write_items(
                    TransactItems=[
                        {"Update": {"TableName": table.name, "Key": {"pk": {"S": "a"}},
                                    "UpdateExpression": "SET n = n - :one",
                                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                        {"Update": {"TableName": table.name, "Key": {"pk": {"S": "b"}},
                                    "UpdateExpression": "SET n = n + :one",
                                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                    ]
                )
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert table.get_item(Key={"pk": "counter"})["Item"]["n"] == 8 * per_thread
    a = table.get_item(Key={"pk": "a"})["Item"]["n"]
    b = table.get_item(Key={"pk": "b"})["Item"]["n"]
    assert (a, b) == (1000 - 8 * per_thread, 8 * per_thread)


# ---------------------------------------------------------------------------
# TTL, tags, capacity


def test_ttl_deletes_expired_items_in_the_background(make_table, ddb):
    table = make_table()
    now = int(time.time())
    table.put_item(Item={"pk": "expired", "exp": now - 10})
    table.put_item(Item={"pk": "alive", "exp": now + 3600})
    assert ddb.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"
    ddb.update_time_to_live(TableName=table.name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    desc = ddb.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
    assert desc == {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}
    wait_for(lambda: "Item" not in table.get_item(Key={"pk": "expired"}), 10, "expired item deleted")
    assert "Item" in table.get_item(Key={"pk": "alive"})


def test_tags_and_consumed_capacity(make_table, ddb):
    table = make_table()
    arn = ddb.describe_table(TableName=table.name)["Table"]["TableArn"]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "test"}, {"Key": "x", "Value": "y"}])
    ddb.untag_resource(ResourceArn=arn, TagKeys=["x"])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "test"}]
    resp = table.put_item(Item={"pk": "a", "data": "x" * 1500}, ReturnConsumedCapacity="TOTAL")
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 2.0
    resp = table.get_item(Key={"pk": "a"}, ReturnConsumedCapacity="TOTAL", ConsistentRead=True)
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 1.0


# ---------------------------------------------------------------------------
# durability


def test_acknowledged_writes_survive_kill_9(gust_factory):
    server = gust_factory()
    client = server.client("dynamodb")
    name = table_name("durable")
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    table = resource_for(server).Table(name)
    for i in range(50):
        table.put_item(Item={"pk": f"k{i}", "v": i})
    server.kill()
    assert server.proc.returncode == -signal.SIGKILL
    server.start()
    table = resource_for(server).Table(name)
    for i in range(50):
        assert table.get_item(Key={"pk": f"k{i}"})["Item"]["v"] == i
