"""A deployed cluster keeps its credentials: run from a controller that lacks the deploying
controller's redis.env (a fresh CI runner, another operator), playbooks/site.yml must stop in its
preflight, before any host is changed, instead of generating new passwords and writing them to
every node. A first deploy (nothing of this collection on the hosts) still generates them.

"Deployed" is this collection's file that holds the passwords' hashes on a host: users.acl on a
Redis node (redis_node_conf_dir), the watcher's settings on an HAProxy node. The cases point those
paths into tmp_path, so the hosts are this machine (ansible_connection: local) and nothing
outside tmp_path is read or written.

Preflight cases run ONLY playbooks/preflight.yml with --check, limited to one host, like
test_preflight.py: that host gets this machine's address (so that it has no other problem), the
others an address from TEST-NET-2. The second line of defence, the redis_credentials role itself,
is run by a two-line playbook written into tmp_path (the role only reads and writes tmp_path).
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
from test_preflight import problem_lines

REPO = pathlib.Path(__file__).resolve().parents[2]
PREFLIGHT = REPO / "playbooks" / "preflight.yml"
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python3") if (VENV_BIN / "python3").exists() else sys.executable
TEST_NET = "198.51.100."
PASSWORD_KEYS = ["REDIS_PASSWORD", "REDIS_ADMIN_PASSWORD", "REDIS_REPLICATION_PASSWORD", "REDIS_SENTINEL_PASSWORD",
                 "REDIS_HEALTHCHECK_PASSWORD", "SENTINEL_PASSWORD"]
VAULTED = {key: f"Vaulted{i}Pw0123456789abcdef" for i, key in enumerate(PASSWORD_KEYS)}
KEPT_PASSWORD = "Kept0123456789012345678901234567890123456"   # in a partial redis.env; never printed


def machine_address() -> str | None:
    """A non-loopback IPv4 address of a stable interface of this machine (see test_preflight.py)."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        ifname, address = fields[1], fields[3].split("/")[0]
        if not address.startswith("127.") and not ifname.startswith(("br-", "veth", "vnet", "virbr")):
            return address
    return None


ADDRESS = machine_address()


def inventory(root: pathlib.Path, host_under_test: str, **host_vars) -> dict:
    """redis-01..03 (Sentinels too) and haproxy-01; the host under test gets this machine's address."""
    names = ["redis-01", "redis-02", "redis-03", "haproxy-01"]

    def host(name):
        address = ADDRESS if name == host_under_test and ADDRESS else f"{TEST_NET}{10 + names.index(name)}"
        extra = host_vars if name == host_under_test else {}
        return {"redis_ha_private_ip": address, **({"redis_node_initial_role": "master"} if name == "redis-01" else {}),
                **extra}
    return {"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": PYTHON,
                 "redis_ha_credentials_dir": str(root / "credentials")},
        "children": {
            "redis": {"hosts": {name: host(name) for name in names[:3]}},
            "redis_sentinel": {"children": {"redis": {}}},
            "haproxy": {"hosts": {"haproxy-01": host("haproxy-01")}},
        }}}


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, root: pathlib.Path):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.root = root

    @property
    def problems(self) -> list[str]:
        """The problem lines of the preflight's single failure."""
        return problem_lines(self.output)

    def deployed_problems(self) -> list[str]:
        return [line for line in self.problems if line.startswith("redis_ha_credentials_dir: ")]


def run_playbook(root: pathlib.Path, inv: dict, playbook: pathlib.Path, *args: str) -> Run:
    (root / "inventory").mkdir(parents=True, exist_ok=True)
    hosts = root / "inventory" / "hosts.yml"
    hosts.write_text(json.dumps(inv, indent=2))
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(root / "tmp-local"), "ANSIBLE_REMOTE_TMP": str(root / "tmp-remote")}
    proc = subprocess.run(["ansible-playbook", "-i", str(hosts), str(playbook), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    return Run(proc, root)


def deployed_node(root: pathlib.Path) -> dict:
    """A Redis node this collection deployed: its users.acl exists (hashes only)."""
    conf = root / "etc-redis"
    conf.mkdir()
    (conf / "users.acl").write_text("user default on #" + "0" * 64 + " ~* +@all\n")
    return {"redis_node_conf_dir": str(conf)}


def partial_env(root: pathlib.Path) -> None:
    creds = root / "credentials"
    creds.mkdir(mode=0o700)
    (creds / "redis.env").write_text(f"REDIS_PASSWORD={KEPT_PASSWORD}\nREDIS_MASTER_NAME=kb-redis-master\n")
    (creds / "redis.env").chmod(0o600)


# case -> (host under test, prepare(root) -> host vars of the host under test, all-hosts vars)
def case_deployed_no_env(root):
    return "redis-01", deployed_node(root), {}


def case_deployed_env_lacks_keys(root):
    partial_env(root)
    return "redis-01", deployed_node(root), {}


def release_1_0_env(root):
    """redis.env as collection 1.0.0 wrote it: every password but REDIS_EXPORTER_PASSWORD (added in 1.1.0)."""
    creds = root / "credentials"
    creds.mkdir(mode=0o700)
    (creds / "redis.env").write_text("".join(f"{k}={VAULTED[k]}\n" for k in PASSWORD_KEYS) + "REDIS_MASTER_NAME=kb-redis-master\n")
    (creds / "redis.env").chmod(0o600)


def case_deployed_by_1_0(root):
    release_1_0_env(root)
    return "redis-01", deployed_node(root), {}


def case_deployed_override_every_key(root):
    return "redis-01", deployed_node(root), {"redis_credentials_override": VAULTED}


def case_deployed_override_some_keys(root):
    return "redis-01", deployed_node(root), {"redis_credentials_override": {k: VAULTED[k] for k in PASSWORD_KEYS[:4]}}


def case_not_deployed_no_env(root):
    (root / "etc-redis").mkdir()        # redis-server installed, say, but no users.acl
    return "redis-01", {"redis_node_conf_dir": str(root / "etc-redis")}, {}


def case_cannot_check(root):
    (root / "not-a-dir").write_text("")  # stat fails (Not a directory), as it would without permission
    return "redis-01", {"redis_node_conf_dir": str(root / "not-a-dir")}, {}


def case_deployed_haproxy_only(root):
    """--limit to an HAProxy node: its watcher settings tell that the cluster is deployed."""
    (root / "redis-watcher.json").write_text("{}\n")
    return "haproxy-01", {"haproxy_redis_watcher_config_file": str(root / "redis-watcher.json")}, {}


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}


def run_case(root: pathlib.Path, case: str) -> Run:
    root.mkdir(parents=True, exist_ok=True)
    host, host_vars, all_extra = CASES[case](root)
    inv = inventory(root, host, **host_vars)
    inv["all"]["vars"].update(all_extra)
    return run_playbook(root, inv, PREFLIGHT, "--check", "--limit", host)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("deployed")
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        futures = {case: pool.submit(run_case, root / case, case) for case in CASES}
        return {case: future.result() for case, future in futures.items()}


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def assert_nothing_changed(run: Run):
    assert "changed=0" in run.output and not re.search(r"changed=[1-9]", run.output), run.output
    assert len(re.findall(r"FAILED! =>", run.output)) <= 1, run.output
    for secret in [KEPT_PASSWORD, *VAULTED.values()]:
        assert secret not in run.output


def assert_only_other_problems(run: Run):
    """The deployed check did not fire; without a real address the address check is all that remains."""
    assert run.deployed_problems() == [], run.output
    if ADDRESS:
        assert run.rc == 0, run.output
        assert "Preflight: no problem found" in run.output
    else:
        assert all(line.startswith("redis_ha_private_ip: ") for line in run.problems), run.output


# --- preflight ---------------------------------------------------------------------------------
def test_deployed_without_redis_env_fails_naming_file_and_fix(runs):
    run = runs["deployed_no_env"]
    env_file = run.root / "credentials" / "redis.env"
    acl = run.root / "etc-redis" / "users.acl"
    assert run.rc != 0, run.output
    [line] = run.deployed_problems()
    assert line.startswith(f"redis_ha_credentials_dir: {env_file} does not exist, but the cluster is already deployed "
                           f"(found {acl} on redis-01): this run would generate new "
                           + ", ".join(PASSWORD_KEYS) + " and write them to every host"), line
    assert (f"Fix: copy redis.env (mode 0600) from the controller that deployed the cluster to {env_file} "
            f"(or point redis_ha_credentials_dir at the directory that holds it), or pass "
            + ", ".join(PASSWORD_KEYS) + " in redis_credentials_override (e.g. from Ansible Vault).") in line, line
    # Listed with the other problems, in the preflight's one format, by its one failure.
    assert all(re.match(r"^[A-Za-z_][\w.]*: .+\. Fix: .+", problem) for problem in run.problems), run.problems
    assert_nothing_changed(run)
    assert not (run.root / "credentials").exists()


def test_deployed_with_an_incomplete_redis_env_names_the_missing_keys(runs):
    run = runs["deployed_env_lacks_keys"]
    assert run.rc != 0, run.output
    [line] = run.deployed_problems()
    missing = ", ".join(PASSWORD_KEYS[1:])
    assert f"redis.env lacks {missing}, but the cluster is already deployed" in line, line
    assert f"or pass {missing} in redis_credentials_override" in line, line
    assert_nothing_changed(run)
    assert (run.root / "credentials" / "redis.env").read_text().startswith(f"REDIS_PASSWORD={KEPT_PASSWORD}\n")


def test_deployed_with_every_key_in_the_override_passes(runs):
    run = runs["deployed_override_every_key"]
    assert_only_other_problems(run)
    # Nothing would be generated: not even the stat ran.
    assert re.search(r"Look for this collection's credentials on the host.*\*+\nskipping: \[redis-01\]", run.output), run.output
    assert_nothing_changed(run)


def test_deployed_with_some_keys_in_the_override_names_the_others(runs):
    run = runs["deployed_override_some_keys"]
    assert run.rc != 0, run.output
    [line] = run.deployed_problems()
    assert "this run would generate new REDIS_HEALTHCHECK_PASSWORD, SENTINEL_PASSWORD and write" in line, line
    assert_nothing_changed(run)


def test_a_cluster_deployed_by_1_0_may_get_the_exporter_password(runs):
    """REDIS_EXPORTER_PASSWORD is a redis_credentials_added_keys key: no host uses it before site.yml creates
    its user, so generating it locks nobody out; the preflight lets the upgrade run."""
    run = runs["deployed_by_1_0"]
    assert_only_other_problems(run)
    assert_nothing_changed(run)


def test_first_deploy_is_not_stopped(runs):
    run = runs["not_deployed_no_env"]
    assert_only_other_problems(run)
    assert re.search(r"Look for this collection's credentials on the host.*\*+\nok: \[redis-01\]", run.output), run.output
    assert not (run.root / "credentials").exists()


def test_a_host_that_cannot_be_checked_is_named(runs):
    run = runs["cannot_check"]
    assert run.rc != 0, run.output
    [line] = run.deployed_problems()
    assert re.search(r"does not exist, and whether the cluster is already deployed could not be checked on redis-01 "
                     r"\(\S+/not-a-dir/users\.acl: Not a directory\).* Fix: run with --become", line), line
    assert_nothing_changed(run)


def test_an_haproxy_node_alone_tells_the_cluster_is_deployed(runs):
    run = runs["deployed_haproxy_only"]
    assert run.rc != 0, run.output
    [line] = run.deployed_problems()
    assert f"(found {run.root / 'redis-watcher.json'} on haproxy-01)" in line, line
    assert_nothing_changed(run)


# --- the redis_credentials role (second line of defence) -----------------------------------------
CREDENTIALS_ONLY = """\
- name: Credentials only (what every role of the collection runs first)
  hosts: redis
  gather_facts: false
  roles:
    - role: keybuzz.redis_ha.redis_credentials
"""


def run_role(root: pathlib.Path, deployed: bool, **all_vars) -> Run:
    root.mkdir(parents=True, exist_ok=True)
    playbook = root / "credentials.yml"
    playbook.write_text(CREDENTIALS_ONLY)
    host_vars = deployed_node(root) if deployed else {"redis_node_conf_dir": str(root / "etc-redis")}
    inv = inventory(root, "redis-01", **host_vars)
    inv["all"]["vars"].update(all_vars)
    return run_playbook(root, inv, playbook)


def test_role_refuses_to_generate_for_a_deployed_cluster(tmp_path):
    run = run_role(tmp_path, deployed=True)
    output = flat(run.output)
    env_file = tmp_path / "credentials" / "redis.env"
    assert run.rc != 0, output
    assert (f"{env_file} does not exist or is empty, but the cluster is already deployed "
            f"(found {tmp_path / 'etc-redis' / 'users.acl'} on redis-01): new " + ", ".join(PASSWORD_KEYS)) in output, output
    assert f"Copy redis.env (mode 0600) from the controller that deployed the cluster to {env_file}" in output, output
    assert not (tmp_path / "credentials").exists(), "the role created the credentials directory"
    assert not re.search(r"changed=[1-9]", output), output


def test_role_generates_for_a_first_deploy(tmp_path):
    run = run_role(tmp_path, deployed=False)
    assert run.rc == 0, run.output
    env_file = tmp_path / "credentials" / "redis.env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    keys = re.findall(r"(?m)^([A-Z_]+)=.{40}$", env_file.read_text())
    assert set(PASSWORD_KEYS) <= set(keys), env_file.read_text()
    # A later run finds every key in redis.env: it looks for nothing on the hosts (now deployed).
    again = run_playbook(tmp_path, inventory(tmp_path, "redis-01", **deployed_node(tmp_path)), tmp_path / "credentials.yml")
    assert again.rc == 0, again.output
    assert re.search(r"Look for a deployed cluster before generating passwords\] \*+\nskipping:", again.output), again.output


@pytest.mark.parametrize("must_exist", [False, True])
def test_role_adds_the_exporter_password_to_a_1_0_redis_env(tmp_path, must_exist):
    """site.yml (and a day-2 playbook, redis_credentials_must_exist) on a cluster deployed by 1.0.0: the one
    added key is generated and stored, every other password is kept as it was."""
    release_1_0_env(tmp_path)
    before = (tmp_path / "credentials" / "redis.env").read_text()
    run = run_role(tmp_path, deployed=True, redis_credentials_must_exist=must_exist)
    assert run.rc == 0, run.output
    after = (tmp_path / "credentials" / "redis.env").read_text()
    values = dict(re.findall(r"(?m)^([A-Z_]+)=(.*)$", after))
    assert {k: values[k] for k in PASSWORD_KEYS} == {k: VAULTED[k] for k in PASSWORD_KEYS}
    assert re.fullmatch(r"[A-Za-z0-9]{40}", values["REDIS_EXPORTER_PASSWORD"])
    assert values["REDIS_EXPORTER_USER"] == "kb-exporter"
    assert (tmp_path / "credentials" / "redis.env").stat().st_mode & 0o777 == 0o600
    assert after != before
    for secret in VAULTED.values():
        assert secret not in run.output

