"""Lambda function URLs through boto3: CreateFunctionUrlConfig, GetFunctionUrlConfig,
UpdateFunctionUrlConfig, DeleteFunctionUrlConfig and ListFunctionUrlConfigs, their errors,
their durability, and (when this build runs a gateway) a request through the URL."""

import json
import re
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import REGION, create_function, unique, zip_function

URL_ID = r"[a-z0-9]{32}"


def error_of(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    err = e.value.response["Error"]
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"], err["Code"], err.get("Message", "")


def new_function(lam, prefix="url"):
    name = unique(prefix)
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.echo")
    return name


def url_pattern(gust) -> str:
    if gust.gateway:
        return re.escape(gust.gateway) + "/lambda-url/" + URL_ID + "/"
    return "https://" + URL_ID + re.escape(f".lambda-url.{REGION}.on.aws/")


def test_create_get_update_list_delete(gust, lam):
    name = new_function(lam)
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]

    created = lam.create_function_url_config(
        FunctionName=name,
        AuthType="NONE",
        Cors={"AllowOrigins": ["https://example.com"], "AllowMethods": ["GET", "POST"], "MaxAge": 120},
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    url = created["FunctionUrl"]
    assert re.fullmatch(url_pattern(gust), url), url
    assert created["FunctionArn"] == arn
    assert created["AuthType"] == "NONE"
    assert created["Cors"]["AllowOrigins"] == ["https://example.com"]
    assert created["Cors"]["MaxAge"] == 120
    assert created["InvokeMode"] == "BUFFERED"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", created["CreationTime"])

    got = lam.get_function_url_config(FunctionName=name)
    assert got["FunctionUrl"] == url
    assert got["CreationTime"] == created["CreationTime"]
    assert got["LastModifiedTime"] == created["CreationTime"]

    # By ARN too.
    assert lam.get_function_url_config(FunctionName=arn)["FunctionUrl"] == url

    updated = lam.update_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    assert updated["AuthType"] == "AWS_IAM"
    assert updated["FunctionUrl"] == url, "an update keeps the URL"
    assert updated["Cors"]["MaxAge"] == 120, "members not named stay"
    assert updated["LastModifiedTime"] >= updated["CreationTime"]

    updated = lam.update_function_url_config(FunctionName=name, Cors={"AllowOrigins": ["*"]})
    assert updated["Cors"]["AllowOrigins"] == ["*"]
    assert updated["AuthType"] == "AWS_IAM"

    listed = lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]
    assert [c["FunctionUrl"] for c in listed] == [url]
    pages = list(lam.get_paginator("list_function_url_configs").paginate(FunctionName=name))
    assert sum(len(p["FunctionUrlConfigs"]) for p in pages) == 1

    resp = lam.delete_function_url_config(FunctionName=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    status, code, message = error_of(lam.get_function_url_config, FunctionName=name)
    assert (status, code, message) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    assert lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"] == []

    # A new URL gets a new id.
    again = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    assert again != url


def test_errors(lam):
    missing = unique("url-missing")
    assert error_of(lam.create_function_url_config, FunctionName=missing, AuthType="NONE") == (
        404,
        "ResourceNotFoundException",
        "Function does not exist",
    )
    assert error_of(lam.get_function_url_config, FunctionName=missing)[:2] == (404, "ResourceNotFoundException")
    assert error_of(lam.list_function_url_configs, FunctionName=missing)[:2] == (404, "ResourceNotFoundException")
    assert error_of(lam.delete_function_url_config, FunctionName=missing)[:2] == (404, "ResourceNotFoundException")

    name = new_function(lam, "url-errors")
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    status, code, message = error_of(lam.create_function_url_config, FunctionName=name, AuthType="NONE")
    assert (status, code) == (409, "ResourceConflictException")
    assert message == (
        f"Failed to create function url config for [functionArn = {arn}]. "
        "Error message:  FunctionUrlConfig exists for this Lambda function"
    )

    # Gust has no aliases: a qualifier names one that does not exist.
    assert error_of(lam.get_function_url_config, FunctionName=name, Qualifier="live")[:2] == (
        404,
        "ResourceNotFoundException",
    )
    assert error_of(lam.create_function_url_config, FunctionName=name, Qualifier="live", AuthType="NONE") == (
        404,
        "ResourceNotFoundException",
        "Function does not exist",
    )
    for qualifier in ["$LATEST", "7"]:
        status, code, _ = error_of(lam.get_function_url_config, FunctionName=name, Qualifier=qualifier)
        assert (status, code) == (400, "ValidationException"), qualifier

    status, code, message = error_of(lam.update_function_url_config, FunctionName=name, AuthType="PUBLIC")
    assert (status, code) == (400, "ValidationException")
    assert "authType" in message and "[AWS_IAM, NONE]" in message
    status, code, _ = error_of(lam.update_function_url_config, FunctionName=name, InvokeMode="FAST")
    assert (status, code) == (400, "ValidationException")
    status, code, _ = error_of(
        lam.update_function_url_config, FunctionName=name, Cors={"AllowOrigins": ["*"], "AllowCredentials": True}
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    # The refused updates changed nothing.
    assert lam.get_function_url_config(FunctionName=name)["AuthType"] == "NONE"


def test_delete_function_deletes_its_url(lam):
    name = new_function(lam, "url-del")
    lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    lam.delete_function(FunctionName=name)
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.echo")
    status, code, _ = error_of(lam.get_function_url_config, FunctionName=name)
    assert (status, code) == (404, "ResourceNotFoundException")
    assert lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"] == []


def test_url_survives_restart(gust_factory):
    server = gust_factory()
    lam = server.client()
    name = new_function(lam, "url-restart")
    created = lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM", InvokeMode="BUFFERED")
    url_id = re.search(URL_ID, created["FunctionUrl"]).group(0)
    server.stop()
    server.start()
    got = server.client().get_function_url_config(FunctionName=name)
    assert url_id in got["FunctionUrl"]
    assert got["AuthType"] == "AWS_IAM"
    assert got["CreationTime"] == created["CreationTime"]


def test_url_answers_through_the_gateway(gust, lam):
    if not gust.gateway:
        pytest.skip("this build of gust up runs no gateway")
    name = new_function(lam, "url-http")
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    assert url.startswith(gust.gateway + "/lambda-url/")
    req = urllib.request.Request(url + "hello?x=1", data=b'{"a": 1}', method="POST")
    with urllib.request.urlopen(req, timeout=20) as resp:
        assert resp.status == 200
        body = json.loads(resp.read())
    event = body["event"]
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/hello"
    assert event["rawQueryString"] == "x=1"
    assert event["requestContext"]["http"]["method"] == "POST"

    # Deleting the URL takes it off the gateway.
    lam.delete_function_url_config(FunctionName=name)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=20)
    assert e.value.code in (403, 404)


def test_permission_for_a_public_url(lam):
    """The AWS docs' steps for a public URL: AddPermission with lambda:InvokeFunctionUrl.
    Gust stores the statement (GetPolicy shows it) but does not require it."""
    name = new_function(lam, "url-perm")
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    added = lam.add_permission(
        FunctionName=name,
        StatementId="FunctionURLAllowPublicAccess",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    statement = json.loads(added["Statement"])
    assert statement["Resource"] == arn
    assert statement["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}

    got = lam.get_policy(FunctionName=name)
    policy = json.loads(got["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["FunctionURLAllowPublicAccess"]
    assert got["RevisionId"] == lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]

    status, code, _ = error_of(
        lam.add_permission,
        FunctionName=name,
        StatementId="FunctionURLAllowPublicAccess",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
    )
    assert (status, code) == (409, "ResourceConflictException")

    lam.remove_permission(FunctionName=name, StatementId="FunctionURLAllowPublicAccess")
    status, code, _ = error_of(lam.get_policy, FunctionName=name)
    assert (status, code) == (404, "ResourceNotFoundException")
    status, code, message = error_of(lam.remove_permission, FunctionName=name, StatementId="gone")
    assert (status, code) == (404, "ResourceNotFoundException")
