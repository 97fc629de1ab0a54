"""A classic handler: boto3's Table resource, configured only by the environment
Gust gives every function (AWS_ENDPOINT_URL, credentials, AWS_REGION)."""

import os
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Key

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def handler(event, context):
    if event.get("op") == "put":
        table.put_item(Item={"pk": event["pk"], "sk": Decimal(event["sk"]), "by": context.function_name})
        return {"ok": True}
    items = table.query(KeyConditionExpression=Key("pk").eq(event["pk"]))["Items"]
    return {
        "boto3": boto3.__version__,
        "boto3_from": os.path.dirname(boto3.__file__),
        "items": [{"sk": int(i["sk"]), "by": i["by"]} for i in items],
    }
