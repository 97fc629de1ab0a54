"""Python handlers for the end-to-end suite; one module, many entry points."""

import json
import os
import sys
import time

COLD = True


def hello(event, context):
    return {"hello": "world"}


def echo(event, context):
    global COLD
    cold, COLD = COLD, False
    return {
        "event": event,
        "cold": cold,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": getattr(context, "log_group_name", None),
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


def env(event, context):
    return {"environ": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv}


def tmp(event, context):
    path = "/tmp/gust-e2e-%s.txt" % context.aws_request_id
    with open(path, "w") as f:
        f.write("written")
    with open(path) as f:
        data = f.read()
    os.unlink(path)
    return {"tmp": data}


class GustTestError(Exception):
    pass


def fail(event, context):
    raise GustTestError("boom: %s" % event.get("why", "no reason"))


def printer(event, context):
    print("gust-e2e-print-marker", event.get("marker", ""))
    sys.stdout.flush()
    return {"printed": True}


def sleep(event, context):
    """Sleeps event['seconds']; writes OUT_DIR/<id>.started and <id>.done when given."""
    out = os.environ.get("OUT_DIR")
    ident = str(event.get("id", context.aws_request_id))
    if out:
        open(os.path.join(out, ident + ".started"), "w").close()
    time.sleep(float(event.get("seconds", 1)))
    if out:
        open(os.path.join(out, ident + ".done"), "w").close()
    return {"slept": event.get("seconds", 1), "id": ident}


def action(event, context):
    """One function, many behaviours: the limits tests switch on event['action']."""
    what = event.get("action", "hello")
    if what == "hello":
        return {"hello": "world"}
    if what == "loop":
        while True:
            pass
    if what == "exit":
        os._exit(int(event.get("code", 3)))
    if what == "alloc":
        mb = int(event.get("mb", 300))
        # Multiplying a bytes object fills every page, so the memory is resident.
        hog = b"\x01" * (mb * 1024 * 1024)
        return {"allocated_mb": len(hog) // (1024 * 1024)}
    if what == "rendezvous":
        # Waits (up to event['wait'] s) until event['n'] invocations have arrived here:
        # only invocations running at the same time can all meet.
        out = os.environ["OUT_DIR"]
        open(os.path.join(out, "arrived-" + context.aws_request_id), "w").close()
        deadline = time.time() + float(event.get("wait", 4))
        while time.time() < deadline:
            if len([p for p in os.listdir(out) if p.startswith("arrived-")]) >= int(event["n"]):
                return {"met": True}
            time.sleep(0.01)
        return {"met": False}
    if what == "sleep":
        time.sleep(float(event.get("seconds", 1)))
        return {"slept": event.get("seconds", 1)}
    raise ValueError("unknown action %r" % what)


def write_file(event, context):
    """Event-invocation side effect: writes OUT_DIR/<event id>."""
    out = os.environ["OUT_DIR"]
    time.sleep(float(event.get("seconds", 0)))
    path = os.path.join(out, str(event["id"]))
    with open(path + ".tmp", "w") as f:
        json.dump({"event": event, "request_id": context.aws_request_id}, f)
    os.rename(path + ".tmp", path)
    return {"wrote": path}


def flaky(event, context):
    """Fails until it has been attempted event['succeed_on'] times (counted in OUT_DIR)."""
    out = os.environ["OUT_DIR"]
    n = len([p for p in os.listdir(out) if p.startswith("attempt-")]) + 1
    open(os.path.join(out, "attempt-%d" % n), "w").close()
    succeed_on = int(event.get("succeed_on", 3))
    if succeed_on and n >= succeed_on:
        open(os.path.join(out, "success"), "w").close()
        return {"attempt": n}
    raise RuntimeError("attempt %d fails on purpose" % n)
