"""Handler run by the official awslambdaric client as a provided.al2023 bootstrap."""

import os


def handler(event, context):
    return {
        "client": "awslambdaric",
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
    }


def list_functions(event, context):
    """Calls back into Gust with the credentials and endpoint the function was given."""
    import boto3

    client = boto3.client("lambda")
    names = [
        f["FunctionName"]
        for page in client.get_paginator("list_functions").paginate()
        for f in page["Functions"]
    ]
    return {"names": names, "endpoint": os.environ.get("AWS_ENDPOINT_URL")}
