"""Fixtures for the DynamoDB end-to-end tests (imported by test_dynamodb.py).

Clients come from the shared session server in conftest.py; tables get unique
names so tests never see each other's data.
"""

from __future__ import annotations

import uuid
from typing import Callable

import boto3
import pytest
from botocore.config import Config

from conftest import REGION, GustServer


def resource_for(server: GustServer, **config):
    creds = server.credentials()
    cfg = dict(region_name=REGION, retries={"max_attempts": 1, "mode": "standard"}, read_timeout=30)
    cfg.update(config)
    return boto3.session.Session().resource(
        "dynamodb",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        config=Config(**cfg),
    )


@pytest.fixture(scope="session")
def ddb(gust):
    """A low-level boto3 DynamoDB client."""
    return gust.client("dynamodb")


@pytest.fixture(scope="session")
def ddb_resource(gust):
    """The boto3 DynamoDB service resource."""
    return resource_for(gust)


def table_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_table(ddb, ddb_resource) -> Callable[..., object]:
    """Creates a table (pk: S [+ sk: N|S]) and returns its boto3 `Table`; deletes it after."""
    made: list[str] = []

    def make(sk: str | None = None, prefix: str = "t", **extra):
        name = table_name(prefix)
        defs = [{"AttributeName": "pk", "AttributeType": "S"}]
        keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
        if sk:
            defs.append({"AttributeName": "sk", "AttributeType": sk})
            keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        for d in extra.pop("ExtraAttributeDefinitions", []):
            defs.append(d)
        ddb.create_table(
            TableName=name,
            AttributeDefinitions=defs,
            KeySchema=keys,
            BillingMode="PAY_PER_REQUEST",
            **extra,
        )
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
        made.append(name)
        return ddb_resource.Table(name)

    yield make
    for name in made:
        try:
            ddb.delete_table(TableName=name)
        except ddb.exceptions.ResourceNotFoundException:
            pass
