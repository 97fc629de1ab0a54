"""The `gust` CLI and the AWS CLI pointed at Gust with `gust env`."""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import textwrap
from pathlib import Path

import pytest

from conftest import FUNCTIONS, gust_bin, unique, wait_for


def base_env(tmp_path: Path) -> dict:
    """A clean environment: no AWS settings from the host, no ~/.aws files."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "LANG": "C.UTF-8",
    }


def run(args, env, cwd=None, check=True, timeout=60):
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def gust_cmd(gust, *args):
    return [str(gust_bin()), *args, "--data-dir", str(gust.data_dir)]


def aws_cli() -> str:
    candidate = Path(sys.executable).parent / "aws"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("aws")
    if not found:
        pytest.skip("the AWS CLI is not installed")
    return found


def binary_format_args(env) -> list[str]:
    """AWS CLI v2 base64-decodes blob arguments unless told otherwise; v1 (the PyPI
    `awscli` this suite pins) passes them raw and has no such option."""
    proc = run([aws_cli(), "--version"], env)
    version = proc.stdout + proc.stderr
    return ["--cli-binary-format", "raw-in-base64-out"] if "aws-cli/2" in version else []


def parse_exports(text: str) -> dict:
    env = {}
    for line in text.splitlines():
        m = re.match(r"^export ([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            env[m[1]] = m[2].strip("'\"")
    return env


@pytest.fixture
def aws_env(gust, tmp_path):
    out = run(gust_cmd(gust, "env"), base_env(tmp_path)).stdout
    exported = parse_exports(out)
    for var in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        assert var in exported, out
    assert exported["AWS_ENDPOINT_URL"].rstrip("/") == gust.endpoint
    assert exported["AWS_ACCESS_KEY_ID"] == gust.credentials()["access_key_id"]
    return {**base_env(tmp_path), **exported}


def test_gust_env_is_evaluable_by_a_shell(gust, tmp_path):
    script = f'eval "$({gust_bin()} env --data-dir {gust.data_dir})" && echo "$AWS_ENDPOINT_URL"'
    out = run(["sh", "-c", script], base_env(tmp_path)).stdout.strip()
    assert out.rstrip("/") == gust.endpoint


def test_gust_env_points_later_commands_at_its_data_dir(gust, lam, tmp_path):
    """After `eval "$(gust env --data-dir D)"`, `gust ls` finds the Gust of D without
    `--data-dir` (GUST_DATA_DIR), from any working directory, even with the AWS variables
    gone (it then reads D's endpoint and credentials)."""
    from conftest import create_function, zip_function

    create_function(lam, name="env-dir-fn", code=zip_function("py_basic"), handler="app.hello")
    script = (
        f'cd {tmp_path} && eval "$({gust_bin()} env --data-dir {gust.data_dir})" && '
        f"unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY && {gust_bin()} ls"
    )
    out = run(["sh", "-c", script], base_env(tmp_path)).stdout
    assert "env-dir-fn" in out, out


def test_aws_cli_list_functions(gust, lam, aws_env):
    from conftest import create_function, zip_function

    name = unique("cli-list")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello")
    out = run([aws_cli(), "lambda", "list-functions", "--output", "json"], aws_env).stdout
    assert name in [f["FunctionName"] for f in json.loads(out)["Functions"]]


def test_aws_cli_invoke(gust, lam, aws_env, tmp_path):
    from conftest import create_function, zip_function

    name = unique("cli-invoke")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.echo")
    outfile = tmp_path / "out.json"
    proc = run(
        [aws_cli(), "lambda", "invoke", "--function-name", name,
         *binary_format_args(aws_env), "--payload", '{"via": "aws-cli"}', str(outfile)],
        aws_env,
    )
    meta = json.loads(proc.stdout)
    assert meta["StatusCode"] == 200
    assert "FunctionError" not in meta
    assert json.loads(outfile.read_text())["event"] == {"via": "aws-cli"}


def test_aws_cli_create_function_from_zip_file(gust, aws_env, tmp_path):
    from conftest import zip_function

    zpath = tmp_path / "fn.zip"
    zpath.write_bytes(zip_function("py_basic"))
    name = unique("cli-create")
    run([aws_cli(), "lambda", "create-function", "--function-name", name,
         "--runtime", "python3.11", "--handler", "app.hello",
         "--role", "arn:aws:iam::000000000000:role/x", "--zip-file", f"fileb://{zpath}"], aws_env)
    out = tmp_path / "o.json"
    run([aws_cli(), "lambda", "invoke", "--function-name", name, str(out)], aws_env)
    assert json.loads(out.read_text()) == {"hello": "world"}


def write_manifest(tmp_path: Path, py: str, node: str) -> Path:
    proj = tmp_path / "proj"
    shutil.copytree(FUNCTIONS / "py_basic", proj / "py")
    shutil.copytree(FUNCTIONS / "node_cjs", proj / "node")
    manifest = proj / "gust.toml"
    manifest.write_text(textwrap.dedent(f"""\
        [functions.{py}]
        runtime = "python3.11"
        handler = "app.env"
        code = "py"
        timeout = 5
        memory = 256
        description = "python via gust deploy"

        [functions.{py}.environment]
        COLOR = "green"

        [functions.{node}]
        runtime = "nodejs20.x"
        handler = "index.printer"
        code = "node"
        """))
    return manifest


def test_deploy_invoke_ls_logs_rm(gust, lam, tmp_path):
    env = base_env(tmp_path)
    py, node = unique("deploy-py"), unique("deploy-node")
    manifest = write_manifest(tmp_path, py, node)

    run(gust_cmd(gust, "deploy", str(manifest)), env)
    cfg = lam.get_function_configuration(FunctionName=py)
    assert (cfg["Runtime"], cfg["Handler"], cfg["Timeout"], cfg["MemorySize"]) == ("python3.11", "app.env", 5, 256)
    assert cfg["Environment"]["Variables"] == {"COLOR": "green"}
    assert cfg["Description"] == "python via gust deploy"
    assert lam.get_function_configuration(FunctionName=node)["Runtime"] == "nodejs20.x"

    # Deploying again updates in place (no conflict).
    run(gust_cmd(gust, "deploy", str(manifest)), env)

    out = run(gust_cmd(gust, "invoke", py, "--payload", '{"k": 1}'), env).stdout
    assert json.loads(out)["environ"]["COLOR"] == "green"

    payload_file = tmp_path / "event.json"
    payload_file.write_text('{"marker": "from-file"}')
    out = run(gust_cmd(gust, "invoke", node, "--payload", f"@{payload_file}"), env).stdout
    assert json.loads(out) == {"printed": True}

    listing = run(gust_cmd(gust, "ls"), env).stdout
    assert py in listing and node in listing

    def logs_have_marker():
        return "gust-e2e-print-marker from-file" in run(gust_cmd(gust, "logs", node), env).stdout

    wait_for(logs_have_marker, 5, "the function's output in `gust logs`")
    logs = run(gust_cmd(gust, "logs", node), env).stdout
    assert "START RequestId" in logs and "REPORT RequestId" in logs, logs

    run(gust_cmd(gust, "rm", py), env)
    assert py not in run(gust_cmd(gust, "ls"), env).stdout
    assert node in run(gust_cmd(gust, "ls"), env).stdout


def test_logs_follow_streams_new_lines(gust, lam, tmp_path):
    from conftest import create_function, invoke, zip_function

    env = base_env(tmp_path)
    name = unique("follow")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.printer")
    proc = subprocess.Popen(gust_cmd(gust, "logs", name, "--follow"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        invoke(lam, name, {"marker": "followed"})
        wait_for(lambda: any("gust-e2e-print-marker followed" in l for l in lines), 10,
                 "the followed log line")
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_invoke_function_error_exits_1(gust, lam, tmp_path):
    from conftest import create_function, zip_function

    name = unique("cli-fail")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.fail")
    proc = run(gust_cmd(gust, "invoke", name, "--payload", '{"why": "cli"}'), base_env(tmp_path), check=False)
    assert proc.returncode == 1, proc
    both = proc.stdout + proc.stderr
    assert "boom: cli" in both and "GustTestError" in both, both


def test_invoke_unknown_function_fails(gust, tmp_path):
    proc = run(gust_cmd(gust, "invoke", unique("nobody")), base_env(tmp_path), check=False)
    assert proc.returncode != 0
    assert "ResourceNotFound" in proc.stdout + proc.stderr or "not found" in (proc.stdout + proc.stderr).lower()


def test_cli_uses_aws_environment_without_data_dir(gust, lam, tmp_path):
    """With AWS_ENDPOINT_URL and keys exported (and no data dir), the CLI still works."""
    env = {**base_env(tmp_path), **gust.env()}
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    from conftest import create_function, zip_function

    name = unique("cli-env")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello")
    out = run([str(gust_bin()), "ls"], env, cwd=empty).stdout
    assert name in out
    out = run([str(gust_bin()), "invoke", name], env, cwd=empty).stdout
    assert json.loads(out) == {"hello": "world"}


def test_manifest_syntax_error_names_file_and_line(gust, tmp_path):
    proj = tmp_path / "bad"
    proj.mkdir()
    manifest = proj / "gust.toml"
    manifest.write_text('[functions.x]\nruntime = "python3.11"\nhandler = = "app.hello"\n')
    proc = run(gust_cmd(gust, "deploy", str(manifest)), base_env(tmp_path), check=False)
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    assert re.search(r"gust\.toml:3\b", err) or ("gust.toml" in err and "line 3" in err), err


def test_manifest_semantic_error_names_file_and_line(gust, tmp_path):
    proj = tmp_path / "bad2"
    shutil.copytree(FUNCTIONS / "py_basic", proj / "py")
    manifest = proj / "gust.toml"
    manifest.write_text(
        '[functions.good]\nruntime = "python3.11"\nhandler = "app.hello"\ncode = "py"\n\n'
        '[functions.bad]\nruntime = "python3.11"\nhandler = "app.hello"\ncode = "py"\n'
        'memory = 9000000\n'
    )
    proc = run(gust_cmd(gust, "deploy", str(manifest)), base_env(tmp_path), check=False)
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    # Line 10 holds the bad value; line 6 opens the bad function's table.
    assert re.search(r"gust\.toml:(10|6)\b", err) or re.search(r"gust\.toml.*line (10|6)\b", err), err
    assert "memory" in err.lower(), err


def test_manifest_missing_code_dir(gust, tmp_path):
    proj = tmp_path / "bad3"
    proj.mkdir()
    manifest = proj / "gust.toml"
    manifest.write_text('[functions.ok]\nruntime = "python3.11"\nhandler = "app.hello"\ncode = "nowhere"\n')
    proc = run(gust_cmd(gust, "deploy", str(manifest)), base_env(tmp_path), check=False)
    assert proc.returncode != 0
    assert "nowhere" in proc.stdout + proc.stderr


def test_deploy_concurrency_settings(gust, lam, tmp_path):
    """reserved_concurrency is applied; provisioned_concurrency starts an environment
    before the first invoke, so that invoke has no Init Duration."""
    from test_lifecycle import function_processes_of

    proj = tmp_path / "conc"
    shutil.copytree(FUNCTIONS / "py_basic", proj / "py")
    name = unique("deploy-conc")
    manifest = proj / "gust.toml"
    manifest.write_text(textwrap.dedent(f"""\
        [functions.{name}]
        runtime = "python3.11"
        handler = "app.hello"
        code = "py"
        reserved_concurrency = 4
        provisioned_concurrency = 1
        """))
    run(gust_cmd(gust, "deploy", str(manifest)), base_env(tmp_path))
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 4
    # Deploying creates the function, then applies the concurrency settings, which may
    # replace the first provisioned environment: wait for one that stays.
    seen = []

    def settled():
        seen.append(function_processes_of(name))
        return len(seen) >= 5 and len(seen[-1]) == 1 and all(p == seen[-1] for p in seen[-5:])

    wait_for(settled, 5, lambda: f"one provisioned environment (saw {seen[-5:]})", interval=0.05)
    prewarmed = seen[-1]
    from conftest import invoke

    out = invoke(lam, name, LogType="Tail")
    assert out["payload"] == {"hello": "world"}
    assert function_processes_of(name) == prewarmed, "the invoke started another environment"
    # Lambda reports no Init Duration for invocations served by provisioned concurrency.
    assert "Init Duration" not in out["log"], out["log"]
