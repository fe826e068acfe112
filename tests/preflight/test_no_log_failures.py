"""A failure inside a no_log task says what failed, never only "censored", and prints no secret.

The redis_node role's "Reload redis ACL users" handler (users.acl changed: ACL SETUSER per user) is
run for real, through the role's own auth_apply.yml (it flushes the handlers first, as
playbooks/site.yml and playbooks/rotate_credentials.yml do), against a redis-server this test
starts on loopback. A two-task playbook in tmp_path notifies the handler and imports the role with
tasks_from: auth_apply; the inventory's only Redis node is this machine (ansible_connection: local)
at 127.0.0.1, the credentials directory is in tmp_path and redis_credentials_override supplies the
passwords, so the test knows every secret and checks that none appears in the output.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python3") if (VENV_BIN / "python3").exists() else sys.executable
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
CREDS = {
    "REDIS_PASSWORD": "AppPw0123456789abcdefghij",
    "REDIS_ADMIN_PASSWORD": "AdminPw0123456789abcdefgh",
    "REDIS_REPLICATION_PASSWORD": "ReplPw0123456789abcdefghi",
    "REDIS_SENTINEL_PASSWORD": "SentUserPw0123456789abcde",
    "REDIS_HEALTHCHECK_PASSWORD": "HealthPw0123456789abcdefg",
    "SENTINEL_PASSWORD": "SentinelPw0123456789abcde",
}
WRONG_ADMIN_PASSWORD = "NotTheAdminPw0123456789ab"

PLAYBOOK = """\
- name: Reload the ACL users of one node, as the redis_node role does
  hosts: redis
  gather_facts: false
  tasks:
    - name: Pretend that users.acl changed (as the role's credential files call reports it)
      ansible.builtin.command: /bin/true
      changed_when: true
      register: _redis_node_auth_files
      notify: Reload redis ACL users

    - name: The call's list of files written
      ansible.builtin.set_fact:
        _redis_node_auth_files: {content_changed: ["{{ redis_node_conf_dir }}/{{ kb_changed_file | default('users.acl') }}"]}

    - name: Apply the credentials at run time (flushes the handlers first)
      ansible.builtin.import_role:
        name: keybuzz.redis_ha.redis_node
        tasks_from: auth_apply
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """redis-server on loopback whose kb-admin user has the given password."""

    def __init__(self, workdir: pathlib.Path, admin_password: str):
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--user", "kb-admin", "on", f">{admin_password}", "~*", "&*", "+@all"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while self.cli("PING", password=admin_password) != ["PONG"]:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)

    def cli(self, *args, password=CREDS["REDIS_ADMIN_PASSWORD"]) -> list[str]:
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--user", "kb-admin", "--askpass",
                              "--no-auth-warning", *args], input=password + "\n", capture_output=True, text=True,
                             timeout=10)
        return out.stdout.splitlines()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def run(tmp_path: pathlib.Path, port: int, **host_vars) -> tuple[int, str]:
    (tmp_path / "inventory").mkdir(parents=True, exist_ok=True)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    host = {"ansible_connection": "local", "ansible_python_interpreter": PYTHON, "redis_ha_private_ip": "127.0.0.1",
            "redis_node_port": port, "redis_node_conf_dir": str(tmp_path / "etc-redis"), **host_vars}
    inventory = {"all": {"vars": {"redis_ha_credentials_dir": str(tmp_path / "credentials"),
                                  "redis_credentials_override": CREDS},
                         "children": {"redis": {"hosts": {"redis-01": host}}}}}
    hosts = tmp_path / "inventory" / "hosts.yml"
    hosts.write_text(json.dumps(inventory))
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp-local"), "ANSIBLE_REMOTE_TMP": str(tmp_path / "tmp-remote")}
    proc = subprocess.run(["ansible-playbook", "-i", str(hosts), str(tmp_path / "play.yml")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def assert_no_secret(output: str):
    for secret in [*CREDS.values(), WRONG_ADMIN_PASSWORD]:
        assert secret not in output, "a password appears in the output"
        assert hashlib.sha256(secret.encode()).hexdigest() not in output, "a password hash appears in the output"


def failure(output: str) -> str:
    """The one failure's message (flattened), which must not be the no_log placeholder."""
    assert len(re.findall(r"FAILED! =>", output)) == 1, output
    # (An ok loop item of a no_log task reads "(item=(censored due to no_log))": not a failure.)
    assert not re.search(r"(?s)FAILED! =>.{0,200}censored", output), output
    assert not re.search(r"fatal: .*censored", output), output
    match = re.search(r"FAILED! =>.*?msg: (.*?)(?:\n\S|\nPLAY RECAP)", output, re.S)
    assert match, output
    # The yaml callback folds the message and doubles its quotes.
    return re.sub(r"\s+", " ", match.group(1)).strip("'\" ").replace("''", "'")


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "redis", CREDS["REDIS_ADMIN_PASSWORD"])
    yield srv
    srv.stop()


def test_handler_applies_the_users(tmp_path, server):
    rc, output = run(tmp_path, server.port)
    assert rc == 0, output
    users = server.cli("ACL", "USERS")
    assert {"default", "kb-admin", "kb-replication", "kb-sentinel", "kb-healthcheck"} <= set(users), users
    assert server.cli("CONFIG", "GET", "masteruser") == ["masteruser", "kb-replication"]
    assert "FAILED!" not in output
    assert_no_secret(output)


def test_handler_applies_nothing_when_only_another_credential_file_changed(tmp_path, server):
    """The credential files are written by one call: a change of redis-auth.conf alone loads no ACL user."""
    rc, output = run(tmp_path, server.port, kb_changed_file="redis-auth.conf")
    assert re.search(r"RUNNING HANDLER \[keybuzz.redis_ha.redis_node : Reload redis ACL users \| Apply each user with ACL SETUSER\]"
                     r"\s*\**\s*skipping: \[redis-01\]", output), output
    assert set(server.cli("ACL", "USERS")) == {"default", "kb-admin"}
    assert_no_secret(output)


def test_handler_failure_names_the_host_and_the_refused_login(tmp_path):
    srv = Server(tmp_path / "redis", WRONG_ADMIN_PASSWORD)
    try:
        rc, output = run(tmp_path, srv.port)
    finally:
        srv.stop()
    assert rc != 0, output
    msg = failure(output)
    assert msg.startswith(f"Reload redis ACL users failed on redis-01 for 6 of the 6 users of {tmp_path / 'etc-redis'}/users.acl "
                          "(default, kb-admin, kb-replication, kb-sentinel, kb-healthcheck, kb-exporter), logged in as kb-admin: "
                          f"ACL GETUSER default on 127.0.0.1:{srv.port} failed: authentication failed on 127.0.0.1:{srv.port}: "
                          "invalid username or password."), msg
    assert_no_secret(output)


def test_handler_failure_shows_the_refused_rule(tmp_path, server):
    # The application user's rules, with one the module refuses: its line also carries the password's hash.
    rc, output = run(tmp_path, server.port, redis_node_app_acl="~* &* +@all nosuchrule")
    assert rc != 0, output
    msg = failure(output)
    assert "Reload redis ACL users failed on redis-01 for 1 of the 6 users of" in msg and "(default), logged in as" in msg, msg
    assert "rules: 'nosuchrule' is not a key (~, %R~, allkeys), channel (&, allchannels) or command (+, -) rule" in msg, msg
    assert_no_secret(output)
    # Nothing after the failed handler ran: masterauth untouched.
    assert server.cli("CONFIG", "GET", "masteruser") == ["masteruser", ""]


def test_handler_failure_says_nothing_listens(tmp_path):
    port = free_port()
    rc, output = run(tmp_path, port)
    assert rc != 0, output
    msg = failure(output)
    assert msg.endswith(f"cannot connect to 127.0.0.1:{port}: connection refused. users.acl is written but "
                        "the running node keeps its previous users (it loads the file at its next start): fix the cause "
                        "and re-run."), msg
    assert_no_secret(output)


# --- playbooks/validate.yml: every check of a stack where nothing answers (modules with no_log passwords) ---
def test_validate_says_why_each_check_failed(tmp_path):
    """validate.yml against an inventory whose hosts are this machine at 127.0.0.1x, where nothing
    listens: each check's FAIL line gives the module's reason (the address and the cause), no failure is
    "censored" and no password is printed."""
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    (creds / "redis.env").write_text("".join(f"{key}={value}\n" for key, value in CREDS.items())
                                     + "REDIS_MASTER_NAME=kb-redis-master\nREDIS_ADMIN_USER=kb-admin\n")
    (creds / "redis.env").chmod(0o600)

    def host(i):
        return {"ansible_connection": "local", "ansible_python_interpreter": PYTHON, "redis_ha_private_ip": f"127.0.0.{10 + i}"}
    redis = {f"redis-0{i}": host(i) for i in (1, 2, 3)}
    inventory = {"all": {"vars": {"redis_ha_credentials_dir": str(creds)},
                         "children": {"redis": {"hosts": redis}, "redis_sentinel": {"hosts": {h: {} for h in redis}},
                                      "haproxy": {"hosts": {"haproxy-01": host(4)}}}}}
    (tmp_path / "inventory").mkdir()
    hosts = tmp_path / "inventory" / "hosts.yml"
    hosts.write_text(json.dumps(inventory))
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp-local"), "ANSIBLE_REMOTE_TMP": str(tmp_path / "tmp-remote")}
    proc = subprocess.run(["ansible-playbook", "-i", str(hosts), str(REPO / "playbooks" / "validate.yml")], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    flat = re.sub(r"\s+", " ", output)
    for name in ("redis-01", "redis-02", "redis-03"):
        address = f"127.0.0.{10 + int(name[-1])}"
        assert f"FAIL PING {name}: cannot connect to {address}:6379: connection refused" in flat, flat
        assert f"FAIL role {name}: cannot connect to {address}:6379: connection refused" in flat, flat
    assert ("FAIL routes to the Sentinel master haproxy-01: cannot connect to 127.0.0.14:6379: "
            "connection refused") in flat, flat
    assert "FAIL write through haproxy-01: cannot connect to 127.0.0.14:6379: connection refused" in flat, flat
    # One failure, the report's, not a task's.
    assert len(re.findall(r"FAILED! =>", output)) == 1 and "check(s) failed: PING redis-01" in flat, output
    assert not re.search(r"fatal: .*censored", output) and not re.search(r"(?s)FAILED! =>.{0,200}censored", output)
    assert_no_secret(output)
