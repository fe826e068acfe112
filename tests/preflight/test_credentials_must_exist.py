"""The day-2 playbooks use the deployed stack's credentials and never generate new ones: with an
empty credentials directory, or a redis.env that lacks a password, they stop at once with a
message naming redis_credentials_must_exist, the file and the missing keys, and write nothing.

The inventory's hosts are this machine (ansible_connection: local) with loopback addresses, so
even a broken check could only reach loopback.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python3") if (VENV_BIN / "python3").exists() else sys.executable
PLAYBOOKS = ["validate.yml", "switchover.yml", "rolling_restart.yml", "rotate_credentials.yml",
             "examples/consumer.yml"]


def inventory(credentials_dir: pathlib.Path) -> dict:
    def host(index):
        return {"ansible_connection": "local", "ansible_python_interpreter": PYTHON,
                "redis_ha_private_ip": f"127.0.0.{10 + index}"}
    redis = {f"redis-0{i}": host(i) for i in (1, 2, 3)}
    return {"all": {"vars": {"redis_ha_credentials_dir": str(credentials_dir)},
                    "children": {"redis": {"hosts": redis}, "redis_sentinel": {"hosts": {h: {} for h in redis}},
                                 "haproxy": {"hosts": {"haproxy-01": host(4)}}}}}


def run(tmp_path: pathlib.Path, playbook: str, credentials_dir: pathlib.Path) -> subprocess.CompletedProcess:
    (tmp_path / "inventory").mkdir(exist_ok=True)
    hosts = tmp_path / "inventory" / "hosts.yml"
    hosts.write_text(json.dumps(inventory(credentials_dir)))
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp-local"), "ANSIBLE_REMOTE_TMP": str(tmp_path / "tmp-remote")}
    return subprocess.run(["ansible-playbook", "-i", str(hosts), str(REPO / "playbooks" / playbook)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_no_credentials_file_stops_before_anything(tmp_path, playbook):
    missing = tmp_path / "no-such-credentials"
    proc = run(tmp_path, playbook, missing)
    output = flat(proc.stdout + proc.stderr)
    assert proc.returncode != 0, output
    assert f"redis_credentials_must_exist: {missing}/redis.env does not exist or is empty" in output, output
    assert "run playbooks/site.yml first" in output
    assert not missing.exists(), "the playbook created the credentials directory"
    assert not re.search(r"changed=[1-9]", output), output


def test_a_missing_password_is_named_not_generated(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    env_file = creds / "redis.env"
    env_file.write_text("REDIS_PASSWORD=Aa0123456789012345678901234567890123456789\nREDIS_MASTER_NAME=kb-redis-master\n")
    env_file.chmod(0o600)
    before = env_file.read_text()
    proc = run(tmp_path, "validate.yml", creds)
    output = flat(proc.stdout + proc.stderr)
    assert proc.returncode != 0, output
    assert re.search(r"redis_credentials_must_exist: \S+/redis.env lacks REDIS_ADMIN_PASSWORD, "
                     r"REDIS_REPLICATION_PASSWORD, REDIS_SENTINEL_PASSWORD, REDIS_HEALTHCHECK_PASSWORD, "
                     r"SENTINEL_PASSWORD\.", output), output
    assert env_file.read_text() == before
    assert "Aa0123456789012345678901234567890123456789" not in output
