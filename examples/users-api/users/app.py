"""The users API from the classic serverless tutorial: API Gateway (HTTP API, payload 2.0)
in front of one Lambda function that keeps users in a DynamoDB table through boto3.

    GET    /users          list users
    POST   /users          create a user from {"name": ..., "email": ...}
    GET    /users/{id}     one user
    DELETE /users/{id}     delete a user

Nothing here is Gust-specific: the same file deploys to AWS Lambda unchanged. boto3 finds
the endpoint, region and credentials in the environment the platform sets.
"""

import base64
import json
import os
import time
import uuid

import boto3
from botocore.exceptions import ClientError

TABLE = boto3.resource("dynamodb").Table(os.environ.get("USERS_TABLE", "users"))


def response(status, body=None, headers=None):
    out = {"statusCode": status, "headers": {"content-type": "application/json", **(headers or {})}}
    if body is not None:
        out["body"] = json.dumps(body)
    return out


def read_json(event):
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    try:
        doc = json.loads(body) if body else {}
    except json.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def list_users():
    users, kwargs = [], {}
    while True:
        page = TABLE.scan(**kwargs)
        users += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    users.sort(key=lambda u: (u.get("created", 0), u["id"]))
    return response(200, [public(u) for u in users])


def create_user(event):
    doc = read_json(event)
    if doc is None:
        return response(400, {"message": "the body must be a JSON object"})
    name, email = doc.get("name"), doc.get("email")
    if not isinstance(name, str) or not name.strip():
        return response(400, {"message": "name is required"})
    if email is not None and (not isinstance(email, str) or "@" not in email):
        return response(400, {"message": "email must look like an email address"})
    user = {"id": uuid.uuid4().hex, "name": name.strip(), "created": int(time.time() * 1000)}
    if email:
        user["email"] = email
    TABLE.put_item(Item=user, ConditionExpression="attribute_not_exists(id)")
    return response(201, public(user), {"location": f"/users/{user['id']}"})


def get_user(user_id):
    item = TABLE.get_item(Key={"id": user_id}).get("Item")
    if item is None:
        return response(404, {"message": f"no user {user_id}"})
    return response(200, public(item))


def delete_user(user_id):
    try:
        TABLE.delete_item(Key={"id": user_id}, ConditionExpression="attribute_exists(id)")
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return response(404, {"message": f"no user {user_id}"})
        raise
    return {"statusCode": 204}


def public(user):
    # DynamoDB numbers come back as Decimal; JSON wants int.
    return {k: int(v) if k == "created" else v for k, v in user.items()}


def handler(event, context):
    route = event.get("routeKey")
    params = event.get("pathParameters") or {}
    if route == "GET /users":
        return list_users()
    if route == "POST /users":
        return create_user(event)
    if route == "GET /users/{id}":
        return get_user(params["id"])
    if route == "DELETE /users/{id}":
        return delete_user(params["id"])
    return response(404, {"message": "Not Found"})
