"""playbooks/preflight.yml (role keybuzz.redis_ha.preflight): every bad input fails the run with a
line naming the variable, a good inventory passes, and site.yml runs the preflight first.

Every case writes a small inventory into tmp_path whose hosts are this machine
(ansible_connection: local, the venv's python) and runs ONLY playbooks/preflight.yml, with
--check as a second safety net (the preflight changes nothing anyway). site.yml is never run.
The runs are started together, in parallel, the first time a test needs one. Reading the facts
costs about a second of CPU per host, so each bad case runs with --limit to one host: the
inventory checks cover the whole inventory whatever the limit (that is how they are built, and
what these cases show), and the host checks run on the host concerned.

Addresses (the good case). The bind-address check compares redis_ha_private_ip with the
host's ansible_facts.all_ipv4_addresses, which never lists loopback: 127.0.0.1 (or 127.0.0.x)
is no private address that the other nodes could reach, so the check rejects it, and no address
is created for the tests. Four hosts (3 Redis nodes, 1 HAProxy node) need four distinct
addresses that really are on this machine; the test takes them from `ip -4 -o addr` (stable
interfaces only: the lab's bridges and veths come and go) and gives the hosts it cannot serve an
address from TEST-NET-2 (198.51.100.0/24, never on a machine). So the good case is two runs:
  - the whole inventory: the run must list EXACTLY one problem per host that got a TEST-NET
    address ("redis_ha_private_ip: ... is not an address of ...") and nothing else; with
    enough addresses on this machine, no problem at all and exit code 0;
  - the same inventory with --limit to the hosts that have a real address: exit code 0 and "no
    problem found" (inventory checks still cover every host of the inventory under --limit).
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
PREFLIGHT = REPO / "playbooks" / "preflight.yml"
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python3") if (VENV_BIN / "python3").exists() else sys.executable
ANSIBLE_PLAYBOOK = str(VENV_BIN / "ansible-playbook") if (VENV_BIN / "ansible-playbook").exists() \
    else shutil.which("ansible-playbook")
TEST_NET = "198.51.100."   # TEST-NET-2 (RFC 5737): on no machine
# In the order they get this machine's addresses (haproxy-01 and redis-01 first: see above).
HOSTS = ["haproxy-01", "redis-01", "redis-02", "redis-03"]
WEAK_PASSWORD = "Tiny7pw"    # must never appear in the output
SPACE_PASSWORD = "sixteen chars and a space"
UNSAFE_PASSWORD = "Sixteen$chars|and<more"


# --- This machine ------------------------------------------------------------------------------
def machine_addresses() -> list[str]:
    """Non-loopback IPv4 addresses of this machine's stable interfaces."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        ifname, address = fields[1], fields[3].split("/")[0]
        if address.startswith("127."):
            continue
        if ifname.startswith(("br-", "veth", "vnet", "virbr")):
            continue            # the lab's bridges come and go while other tests run
        found.append(address)
    return list(dict.fromkeys(found))


def machine_distribution() -> str:
    """"<distribution> <major>" as Ansible reports it (Debian: ID and VERSION_ID)."""
    release = dict(
        line.split("=", 1) for line in pathlib.Path("/etc/os-release").read_text().splitlines() if "=" in line
    )
    name = release.get("NAME", "").strip('"').split()[0]
    return f"{name} {release.get('VERSION_ID', '').strip(chr(34)).split('.')[0]}"


def machine_redis_major() -> int | None:
    """Major version of redis-server here: installed, else apt's candidate (what the role reads)."""
    try:
        out = subprocess.run(["apt-cache", "policy", "redis-server"], capture_output=True, text=True,
                             env={**os.environ, "LC_ALL": "C"}, check=False).stdout
    except FileNotFoundError:
        return None
    for key in ("Installed", "Candidate"):
        match = re.search(rf"^\s+{key}: (?:\d+:)?(\d+)\.", out, re.M)
        if match:
            return int(match.group(1))
    return None


ADDRESSES = machine_addresses()
REAL = {host: ADDRESSES[i] for i, host in enumerate(HOSTS) if i < len(ADDRESSES)}
ADDRESS = {host: REAL.get(host, f"{TEST_NET}{10 + i}") for i, host in enumerate(HOSTS)}
DISTRIBUTION = machine_distribution()
REDIS_MAJOR = machine_redis_major()


# --- Inventories -------------------------------------------------------------------------------
def base_inventory() -> dict:
    """A valid topology: redis-01..03 (Sentinels too), haproxy-01, one initial master."""
    def host(name, **extra):
        return {"redis_ha_private_ip": ADDRESS[name], **extra}
    return {
        "all": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": PYTHON},
            "children": {
                "redis": {"hosts": {
                    "redis-01": host("redis-01", redis_node_initial_role="master"),
                    "redis-02": host("redis-02"),
                    "redis-03": host("redis-03"),
                }},
                "redis_sentinel": {"children": {"redis": {}}},
                "haproxy": {"hosts": {"haproxy-01": host("haproxy-01")}},
            },
        }
    }


def groups(inv):
    return inv["all"]["children"]


def redis_hosts(inv):
    return groups(inv)["redis"]["hosts"]


def all_vars(inv):
    return inv["all"]["vars"]


def too_few_redis(inv):
    del redis_hosts(inv)["redis-03"]


def sentinels_even(inv):
    groups(inv)["redis_sentinel"] = {"hosts": {"redis-01": {}, "redis-02": {}, "redis-03": {}, "haproxy-01": {}}}


def sentinels_too_few(inv):
    groups(inv)["redis_sentinel"] = {"hosts": {"redis-01": {}}}


def quorum_minority(inv):
    groups(inv)["redis_sentinel"]["vars"] = {"redis_sentinel_quorum": 1}


def no_master(inv):
    del redis_hosts(inv)["redis-01"]["redis_node_initial_role"]


def two_masters(inv):
    redis_hosts(inv)["redis-02"]["redis_node_initial_role"] = "master"


def duplicate_address(inv):
    redis_hosts(inv)["redis-02"]["redis_ha_private_ip"] = ADDRESS["redis-01"]


def address_not_on_host(inv):
    redis_hosts(inv)["redis-01"]["redis_ha_private_ip"] = f"{TEST_NET}200"


def no_haproxy(inv):
    groups(inv)["haproxy"] = {"hosts": {}}


def weak_password(inv):
    all_vars(inv)["redis_credentials_override"] = {"REDIS_PASSWORD": WEAK_PASSWORD}


def empty_password(inv):
    all_vars(inv)["redis_credentials_override"] = {"REDIS_ADMIN_PASSWORD": ""}


def unsupported_os(inv):
    all_vars(inv)["preflight_supported_distributions"] = [
        d for d in ("Debian 12", "Debian 13", "Debian 14") if d != DISTRIBUTION]


def unsupported_redis(inv):
    all_vars(inv)["preflight_supported_redis_majors"] = [m for m in (6, 7, 8, 9) if m != REDIS_MAJOR]


def fence_after_election(inv):
    """The old default: an isolated master would accept writes for up to 12 s, the election comes at 5 s."""
    redis_hosts(inv)["redis-02"]["redis_node_min_replicas_max_lag"] = 10


def five_nodes_one_replica_to_write(inv):
    """5 nodes and 5 Sentinels: a master followed by 1 replica carries 2 of 5 Sentinels, the other side 3."""
    for i in (4, 5):
        redis_hosts(inv)["redis-0%d" % i] = {"redis_ha_private_ip": f"{TEST_NET}1{i}"}
    groups(inv)["redis_sentinel"]["vars"] = {"redis_sentinel_quorum": 3}


def fence_disabled(inv):
    all_vars(inv)["redis_node_min_replicas_to_write"] = 0


def nine_nodes(inv):
    """9 Redis nodes (and so 9 Sentinels): more than the 7 the collection is tested with."""
    for i in range(4, 10):
        redis_hosts(inv)["redis-0%d" % i] = {"redis_ha_private_ip": f"{TEST_NET}1{i}"}
    groups(inv)["redis_sentinel"]["vars"] = {"redis_sentinel_quorum": 5}
    all_vars(inv)["redis_node_min_replicas_to_write"] = 4


def bad_retired_group(inv):
    """redis_retired (playbooks/scale_in.yml): one host still in redis, one without an address, one reusing one."""
    groups(inv)["redis_retired"] = {"hosts": {"redis-02": {}, "redis-07": {}, "redis-08": {
        "redis_ha_private_ip": redis_hosts(inv)["redis-03"]["redis_ha_private_ip"]}}}


def bad_listeners(inv):
    """HAProxy's metrics: a network that is not one, and the exporter on the health endpoint's port."""
    all_vars(inv).update(haproxy_redis_metrics_allowed_networks=["10.0.0.0/16", "10.0.0.0/33", "prometheus"],
                         haproxy_redis_metrics_port=8405)


def networks_string(inv):
    """One network given as a string, not a list (HAProxy's ACL would get its characters)."""
    all_vars(inv).update(haproxy_redis_metrics_allowed_networks="10.0.0.0/16")


def bad_exporter(inv):
    """The Sentinel's exporter on the Redis exporter's port, and a port that is not one."""
    redis_hosts(inv)["redis-02"].update(redis_exporter_sentinel_port=9121)
    redis_hosts(inv)["redis-03"].update(redis_exporter_port="metrics")


def tls_on(inv):
    all_vars(inv)["redis_ha_tls"] = True


def controller_collections(workdir: pathlib.Path, crypto_version: str | None) -> dict:
    """A collections path holding this collection and, unless None, a community.crypto reporting
    crypto_version (its MANIFEST.json only: the preflight loads nothing from it). The venv's own
    collections (the ansible package, in site-packages) are hidden from this run."""
    root = workdir / "collections" / "ansible_collections"
    (root / "keybuzz").mkdir(parents=True, exist_ok=True)
    link = root / "keybuzz" / "redis_ha"
    if not link.exists():
        link.symlink_to(REPO)
    if crypto_version is not None:
        crypto = root / "community" / "crypto"
        crypto.mkdir(parents=True, exist_ok=True)
        (crypto / "MANIFEST.json").write_text(json.dumps(
            {"collection_info": {"namespace": "community", "name": "crypto", "version": crypto_version}}))
    return {"ANSIBLE_COLLECTIONS_PATH": str(workdir / "collections"), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false"}


def bad_cluster_lock(inv):
    all_vars(inv).update(cluster_lock_ttl=30, cluster_lock_hosts=["redis-01", "redis-09"], cluster_lock_break="not an id!")


def many_problems(inv):
    """Several bad inputs at once: all are listed by one failure."""
    redis_hosts(inv)["redis-03"]["redis_node_initial_role"] = "primary"
    redis_hosts(inv)["redis-02"]["redis_ha_private_ip"] = "10.0.0.999"
    del groups(inv)["haproxy"]["hosts"]["haproxy-01"]["redis_ha_private_ip"]
    all_vars(inv)["redis_credentials_override"] = {
        "REDIS_SENTINEL_PASSWORD": SPACE_PASSWORD,
        "SENTINEL_PASSWORD": UNSAFE_PASSWORD,
    }
    # Nothing listens on port 1 of loopback: the host cannot be reached.
    groups(inv)["haproxy"]["hosts"]["haproxy-02"] = {
        "redis_ha_private_ip": f"{TEST_NET}99", "ansible_connection": "ssh",
        "ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_ssh_common_args": "-o ConnectTimeout=3",
    }


# case -> (change to the good inventory, --limit, lines that must be in the problem list (regex)).
# Inventory checks always cover the whole inventory: those cases limit the run to one host with a
# real address (haproxy-01) only to keep the suite fast; host checks run on the host concerned.
BAD_CASES = {
    "fewer_than_3_redis_nodes": (too_few_redis, "haproxy-01", [r"^groups\.redis: 2 Redis host\(s\) .* at least 3 .*Fix: "]),
    "even_number_of_sentinels": (sentinels_even, "haproxy-01", [
        r"^groups\.redis_sentinel: 4 Sentinel host\(s\) .*odd number.*Fix: ",
        r"^groups\.redis_sentinel: the Sentinel hosts \(haproxy-01, redis-01, redis-02, redis-03\) are not exactly the "
        r"Redis hosts .*Fix: run one Sentinel on every Redis host"]),
    "fewer_than_3_sentinels": (sentinels_too_few, "haproxy-01", [r"^groups\.redis_sentinel: 1 Sentinel host\(s\) .*at least 3.*Fix: "]),
    "quorum_not_a_majority": (quorum_minority, "haproxy-01", [r"^redis_sentinel_quorum: 1 .*not a majority of the 3 Sentinels.*"
                                                r"Fix: set redis_sentinel_quorum to 2"]),
    "no_initial_master": (no_master, "haproxy-01", [r"^redis_node_initial_role: no host .*initial master\. Fix: "]),
    "two_initial_masters": (two_masters, "haproxy-01", [r"^redis_node_initial_role: master is set on 2 hosts "
                                          r"\(redis-01, redis-02\)\. Fix: "]),
    "duplicate_address": (duplicate_address, "haproxy-01", [r"^redis_ha_private_ip: \S+ is set on 2 hosts \(redis-01, redis-02\)\. Fix: "]),
    "address_not_on_host": (address_not_on_host, "redis-01", [r"^redis_ha_private_ip: 198\.51\.100\.200 \(redis-01\) is not an "
                                                  r"address of redis-01 .*Fix: "]),
    "no_haproxy_node": (no_haproxy, "redis-01", [r"^groups\.haproxy: 0 HAProxy host\(s\).*Fix: "]),
    "weak_password": (weak_password, "haproxy-01", [r"^redis_credentials_override\.REDIS_PASSWORD: is shorter than 16 characters\. Fix: "]),
    "empty_password": (empty_password, "haproxy-01", [r"^redis_credentials_override\.REDIS_ADMIN_PASSWORD: is empty\. Fix: "]),
    "unsupported_os": (unsupported_os, "haproxy-01", [rf"^preflight_supported_distributions: haproxy-01 runs {DISTRIBUTION} .*not one of: "
                                        r".*Fix: "]),
    "unsupported_redis_major": (unsupported_redis, "redis-01", [rf"^preflight_supported_redis_majors: redis-01 would run redis-server "
                                                    rf"\S+ \((installed|apt candidate)\), major {REDIS_MAJOR}, not one of: "
                                                    r".*Fix: "]),
    "fence_after_election": (fence_after_election, "haproxy-01", [
        r"^redis_node_min_replicas_max_lag: 10 \(redis-02\): min-replicas-max-lag 10s lets "
        r"an isolated master accept writes up to 12s after the cut .* elect another master 5\.0s after it .*"
        r"Fix: set redis_node_min_replicas_to_write >= 1 and redis_node_min_replicas_max_lag <= 2 .*"
        r"preflight_allow_unfenced_master: true"]),
    "five_nodes_one_replica_to_write": (five_nodes_one_replica_to_write, "haproxy-01", [
        r"^redis_node_min_replicas_to_write: 1 \(redis-0[1-5]\): min-replicas-to-write is 1: a master followed by that "
        r"many replicas carries only 2 of the 5 Sentinels.*Fix: set redis_node_min_replicas_to_write to at least 2"]),
    "fence_disabled": (fence_disabled, "haproxy-01", [
        rf"^redis_node_min_replicas_to_write: 0 \({h}\): min-replicas-to-write is 0: "
        r"an isolated master never refuses writes.*Fix: " for h in ("redis-01", "redis-02", "redis-03")]),
    "nine_nodes": (nine_nodes, "haproxy-01", [
        r"^groups\.redis: 9 Redis hosts, more than the 7 the collection is tested with\. Fix: ",
        r"^groups\.redis_sentinel: 9 Sentinels, more than the 7 .*Fix: "]),
    "bad_retired_group": (bad_retired_group, "haproxy-01", [
        r"^redis_retired: redis-02 is also in the group\(s\) redis, redis_sentinel\. Fix: a host being removed must be in no other group",
        r"^redis_retired: redis-07 has no redis_ha_private_ip\. Fix: ",
        r"^redis_retired: redis-08 has the address \S+ of a host that stays\. Fix: "]),
    "bad_listeners": (bad_listeners, "haproxy-01", [
        r'^haproxy_redis_metrics_allowed_networks: \["10\.0\.0\.0/33", "prometheus"\] \(haproxy-01\) not IPv4 networks\. Fix: ',
        r"^haproxy_redis_metrics_port: 8405 \(haproxy-01\) is also the port of haproxy_redis_health_port\. Fix: "]),
    "networks_not_a_list": (networks_string, "haproxy-01", [
        r'^haproxy_redis_metrics_allowed_networks: "10\.0\.0\.0/16" \(haproxy-01\) is not a list\. Fix: give a list ']),
    "bad_exporter_ports": (bad_exporter, "haproxy-01", [
        r"^redis_exporter_sentinel_port: 9121 \(redis-02\) is also the port of redis_exporter_port\. Fix: ",
        r"^redis_exporter_port: metrics \(redis-03\) is not a TCP port\. Fix: "]),
    "tls_without_community_crypto": (tls_on, "haproxy-01", [
        r"^redis_ha_tls: TLS is on \((redis-0[123]|haproxy-01)(, (redis-0[123]|haproxy-01)){3}\) and needs the collection community\.crypto "
        r">=2\.10\.0 on this controller, which is not installed .*Fix: ansible-galaxy collection install "
        r"'community\.crypto:>=2\.10\.0'"]),
    "tls_with_old_community_crypto": (tls_on, "haproxy-01", [
        r"^redis_ha_tls: TLS is on \(.*\) and needs the collection community\.crypto >=2\.10\.0 on this controller, "
        r"which has 2\.9\.1\. Fix: "]),
    "bad_cluster_lock": (bad_cluster_lock, "haproxy-01", [
        r"^cluster_lock_ttl: 30 is not a number of seconds of at least 60\. Fix: ",
        r"^cluster_lock_hosts: redis-09 not in the inventory\. Fix: ",
        r"^cluster_lock_break: \"not an id!\" is not a lock id\. Fix: "]),
    "many_problems_at_once": (many_problems, "haproxy-02", [
        r"^redis_node_initial_role: primary \(redis-03\) is neither master nor replica\. Fix: ",
        r"^redis_ha_private_ip: \"10\.0\.0\.999\" \(redis-02\) is not an IPv4 address\. Fix: ",
        r"^redis_ha_private_ip: not set for haproxy-01\. Fix: ",
        r"^redis_credentials_override\.REDIS_SENTINEL_PASSWORD: contains a space.*Fix: ",
        r"^redis_credentials_override\.SENTINEL_PASSWORD: contains a character that haproxy\.cfg .*Fix: ",
        r"^ansible_host: haproxy-02 could not be reached .*Fix: ",
    ]),
}
# Cases run with another controller: case -> environment made in the case's work directory.
CASE_ENV = {
    "tls_without_community_crypto": lambda workdir: controller_collections(workdir, None),
    "tls_with_old_community_crypto": lambda workdir: controller_collections(workdir, "2.9.1"),
}
GOOD_CASES = {"good_whole_inventory": [], "good_limited_to_real_addresses": ["--limit", ",".join(REAL) or "none"]}


# --- Running preflight.yml -------------------------------------------------------------------
class Run:
    def __init__(self, proc: subprocess.CompletedProcess, inventory: dict):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.inventory = inventory

    @property
    def problems(self) -> list[str]:
        return problem_lines(self.output)


def problem_lines(output: str) -> list[str]:
    """The problem lines of the preflight's (single) failure: the block after its last header line."""
    lines = output.splitlines()
    headers = [i for i, line in enumerate(lines) if re.search(r"Preflight found \d+ problem\(s\)", line)]
    if not headers:
        return []
    count = int(re.search(r"Preflight found (\d+) problem", lines[headers[-1]]).group(1))
    block = []
    for line in lines[headers[-1] + 1:]:
        if not line.strip():
            break
        block.append(line.strip())
    assert len(block) == count, f"expected {count} problem lines, parsed {block}"
    return block


def run_preflight(workdir: pathlib.Path, inventory: dict, extra_args: list[str], case_env=None) -> Run:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "hosts.yml").write_text(json.dumps(inventory, indent=2))
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp-local"),
        "ANSIBLE_REMOTE_TMP": str(workdir / "tmp-remote"),
    }
    if case_env is not None:
        env.update(case_env(workdir))
    playbook = PREFLIGHT
    assert playbook.name == "preflight.yml"      # the tests never run anything else
    cmd = [ANSIBLE_PLAYBOOK, "-i", str(workdir / "hosts.yml"), str(playbook), "--check", *extra_args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return Run(proc, inventory)


def build(case: str) -> tuple[dict, list[str]]:
    inventory = base_inventory()
    if case in BAD_CASES:
        change, limit, _ = BAD_CASES[case]
        change(inventory)
        return inventory, ["--limit", limit]
    return inventory, GOOD_CASES[case]


@pytest.fixture(scope="session")
def runs(request, tmp_path_factory):
    """All the selected cases, run in parallel once per session."""
    wanted = sorted({item.callspec.params["case"] for item in request.session.items
                     if hasattr(item, "callspec") and "case" in item.callspec.params})
    root = tmp_path_factory.mktemp("preflight")
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(wanted))) as pool:
        futures = {case: pool.submit(run_preflight, root / case, *build(case), CASE_ENV.get(case)) for case in wanted}
        return {case: future.result() for case, future in futures.items()}


# --- Tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_fails_naming_the_variable(case, runs):
    if case == "unsupported_redis_major" and REDIS_MAJOR is None:
        pytest.skip("redis-server has no installed or candidate version on this machine")
    run = runs[case]
    assert run.rc != 0, run.output
    problems = run.problems
    for pattern in BAD_CASES[case][2]:
        assert any(re.search(pattern, line) for line in problems), f"{pattern!r} not in {problems}\n{run.output}"
    # One failure, every problem on one line "<variable>: <what is wrong>. Fix: <what to do>".
    assert len(re.findall(r"FAILED! =>", run.output)) == 1, run.output
    assert all(re.match(r"^[A-Za-z_][\w.]*: .+\. Fix: .+", line) for line in problems), problems
    # Nothing ran after the failure, nothing was changed.
    assert "changed=0" in run.output and not re.search(r"changed=[1-9]", run.output)


@pytest.mark.parametrize("case", ["weak_password", "many_problems_at_once"])
def test_passwords_are_never_printed(case, runs):
    output = runs[case].output
    for secret in (WEAK_PASSWORD, SPACE_PASSWORD, UNSAFE_PASSWORD):
        assert secret not in output, f"{case}: a password value appears in the output"


@pytest.mark.parametrize("case", ["good_whole_inventory"])
def test_good_inventory_lists_only_the_missing_addresses(case, runs):
    """See the module docstring: hosts without a real address on this machine are the only problems."""
    run = runs[case]
    expected = sorted(
        f"redis_ha_private_ip: {ADDRESS[host]} ({host}) is not an address of {host}"
        for host in HOSTS if host not in REAL)
    if not expected:
        assert run.rc == 0, run.output
        assert "Preflight: no problem found" in run.output
    else:
        assert run.rc != 0, run.output
        assert sorted(line.split(" (it has ")[0] for line in run.problems) == expected, run.output
    assert not re.search(r"changed=[1-9]", run.output), run.output


@pytest.mark.parametrize("case", ["good_limited_to_real_addresses"])
def test_good_inventory_passes(case, runs):
    if not REAL:
        pytest.skip("this machine has no non-loopback IPv4 address")
    run = runs[case]
    assert run.rc == 0, run.output
    assert "Preflight: no problem found in the inventory (4 hosts)" in run.output, run.output
    assert "Preflight found" not in run.output
    assert not re.search(r"changed=[1-9]", run.output), run.output


def test_site_imports_preflight_as_its_first_play():
    plays = yaml.safe_load((REPO / "playbooks" / "site.yml").read_text())
    first = plays[0]
    target = first.get("ansible.builtin.import_playbook", first.get("import_playbook"))
    assert target is not None, f"the first play of site.yml is not an import_playbook: {first}"
    assert (REPO / "playbooks" / target).resolve() == PREFLIGHT.resolve()
    # ... and preflight.yml covers every group site.yml deploys.
    preflight_hosts = set(yaml.safe_load(PREFLIGHT.read_text())[0]["hosts"].split(":"))
    site_hosts = {group for play in plays[1:] if "hosts" in play for group in play["hosts"].split(":")}
    assert site_hosts <= preflight_hosts, (site_hosts, preflight_hosts)
