"""A handler inside a package: handler = "pkg.mod.handler"."""

from pkg import helper_value


def handler(event, context):
    return {"where": __name__, "helper": helper_value()}
