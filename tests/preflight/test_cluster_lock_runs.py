"""The cluster lock end to end: real ansible-playbook runs (role keybuzz.redis_ha.cluster_lock, its
action plugin and module, the lock_outcome filter) on three "lock hosts" that are this machine
(ansible_connection: local), each with its own record file in tmp_path.

Proves: a second run is refused with the holder's name while the first holds the lock, and gets it
once the first gave it back; a run that failed leaves its lock, which the next run of the same
controller takes over (its process is gone); a lock of another controller is refused until broken
by its id; a run whose lock was broken stops at its next renewal; one lock host down still leaves a
majority, two do not.
"""
from __future__ import annotations

import getpass
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python3") if (VENV_BIN / "python3").exists() else sys.executable
HOSTS = ["lock-1", "lock-2", "lock-3"]

PLAYBOOK = """\
- name: Take the cluster lock
  ansible.builtin.import_playbook: {repo}/playbooks/cluster_lock.yml
  vars:
    cluster_lock_purpose: "{{{{ kb_purpose }}}}"

- name: Work while holding the lock
  hosts: redis
  gather_facts: false
  tasks:
    - name: Wait until the test lets the run go on
      ansible.builtin.wait_for:
        path: "{{{{ kb_go_file }}}}"
        timeout: 60
      when: kb_go_file | default('') | length > 0
      run_once: true

    - name: Fail, as a run can
      ansible.builtin.fail:
        msg: this run failed on purpose
      when: kb_fail | default(false) | bool

- name: Renew the cluster lock (the next play of a playbook)
  ansible.builtin.import_playbook: {repo}/playbooks/cluster_lock.yml

- name: Give the cluster lock back
  ansible.builtin.import_playbook: {repo}/playbooks/cluster_lock.yml
  vars:
    cluster_lock_state: absent
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup(tmp_path: pathlib.Path, down=()) -> pathlib.Path:
    (tmp_path / "play.yml").write_text(PLAYBOOK.format(repo=REPO))
    hosts = {}
    for name in HOSTS:
        host = {"ansible_connection": "local", "ansible_python_interpreter": PYTHON, "ansible_become": False}
        if name in down:  # nothing listens there: unreachable
            host = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": closed_port(),
                    "ansible_ssh_common_args": "-o ConnectTimeout=2 -o StrictHostKeyChecking=no"}
        hosts[name] = host
    inventory = {"all": {"vars": {"cluster_lock_path": str(tmp_path / "locks" / "{{ inventory_hostname }}" / "cluster.lock")},
                         "children": {"redis": {"hosts": hosts}}}}
    path = tmp_path / "hosts.yml"
    path.write_text(json.dumps(inventory))
    return path


def start(tmp_path: pathlib.Path, hosts: pathlib.Path, purpose: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp-local"), "ANSIBLE_REMOTE_TMP": str(tmp_path / "tmp-remote")}
    return subprocess.Popen(["ansible-playbook", "-i", str(hosts), str(tmp_path / "play.yml"),
                             "-e", "kb_purpose=" + purpose, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run(tmp_path, hosts, purpose, *args) -> tuple[int, str]:
    proc = start(tmp_path, hosts, purpose, *args)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, " ".join(out.split())


def records(tmp_path) -> dict:
    found = {}
    for name in HOSTS:
        path = tmp_path / "locks" / name / "cluster.lock"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def test_a_second_run_is_refused_with_the_holders_name_then_gets_the_lock(tmp_path):
    hosts = setup(tmp_path)
    go = tmp_path / "go"
    first = start(tmp_path, hosts, "site.yml", "-e", f"kb_go_file={go}")
    deadline = time.monotonic() + 120
    while len(records(tmp_path)) < 3:
        assert time.monotonic() < deadline and first.poll() is None, "the first run did not take the lock"
        time.sleep(0.2)
    rc, out = run(tmp_path, hosts, "switchover.yml")
    assert rc != 0
    lock_id = records(tmp_path)["lock-1"]["id"]
    assert "switchover.yml changed nothing and stops" in out
    assert f"site.yml run by {getpass.getuser()}@{socket.gethostname()} (pid {first.pid}" in out
    assert f"lock id {lock_id}" in out and "held on 0 of 3 lock hosts" in out
    assert all(r["id"] == lock_id for r in records(tmp_path).values()), "the refused run changed a record"
    # Tags select tasks, never the lock away (include_role applies the tag "always" to the role's tasks).
    rc, out = run(tmp_path, hosts, "switchover.yml", "--tags", "configure")
    assert rc != 0 and "switchover.yml changed nothing and stops" in out, out[-2000:]
    go.write_text("go")
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert records(tmp_path) == {}, "the first run did not give the lock back"
    rc, out = run(tmp_path, hosts, "switchover.yml")
    assert rc == 0, out[-2000:]
    assert "switchover.yml holds the cluster lock on lock-1, lock-2, lock-3" in out


def test_a_failed_run_leaves_its_lock_and_the_next_run_here_takes_it_over(tmp_path):
    hosts = setup(tmp_path)
    rc, out = run(tmp_path, hosts, "site.yml", "-e", "kb_fail=true")
    assert rc != 0 and "this run failed on purpose" in out
    left = records(tmp_path)
    assert sorted(left) == HOSTS and left["lock-1"]["purpose"] == "site.yml"
    rc, out = run(tmp_path, hosts, "rolling_restart.yml")
    assert rc == 0, out[-2000:]
    assert (f"rolling_restart.yml holds the cluster lock on lock-1, lock-2, lock-3; it replaced a stale lock: "
            f"the run that held the lock (site.yml run by {getpass.getuser()}@{socket.gethostname()}") in out
    assert f"lock id {left['lock-1']['id']}) is over" in out
    assert records(tmp_path) == {}


def test_a_lock_of_another_controller_is_refused_until_broken_by_its_id(tmp_path):
    hosts = setup(tmp_path)
    now = time.time()
    for name in HOSTS:
        (tmp_path / "locks" / name).mkdir(parents=True)
        (tmp_path / "locks" / name / "cluster.lock").write_text(json.dumps(
            {"id": "0123456789abcdef", "holder": "bob@laptop", "controller": "laptop", "pid": os.getpid(),
             "purpose": "rotate_credentials.yml", "started": now, "started_text": "then", "expires": now + 900}))
    rc, out = run(tmp_path, hosts, "site.yml")
    assert rc != 0
    assert "rotate_credentials.yml run by bob@laptop" in out and "lock id 0123456789abcdef" in out
    assert "cluster_lock_break" in out
    rc, out = run(tmp_path, hosts, "site.yml", "-e", "cluster_lock_break=fedcba9876543210")
    assert rc != 0, "a lock was broken with another lock's id"
    rc, out = run(tmp_path, hosts, "site.yml", "-e", "cluster_lock_break=0123456789abcdef")
    assert rc == 0, out[-2000:]
    assert records(tmp_path) == {}


def wait_records(tmp_path, proc, lock_id=None, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        found = records(tmp_path)
        if len(found) == 3 and (lock_id is None or all(r["id"] != lock_id for r in found.values())):
            return found["lock-1"]["id"]
        assert time.monotonic() < deadline and proc.poll() is None, "the run did not take the lock"
        time.sleep(0.2)


def test_a_run_whose_lock_was_broken_stops_at_its_next_renewal(tmp_path):
    hosts = setup(tmp_path)
    go_a, go_b = tmp_path / "go-a", tmp_path / "go-b"
    first = start(tmp_path, hosts, "site.yml", "-e", f"kb_go_file={go_a}")
    first_id = wait_records(tmp_path, first)
    second = start(tmp_path, hosts, "switchover.yml", "-e", f"kb_go_file={go_b}", "-e", f"cluster_lock_break={first_id}")
    wait_records(tmp_path, second, lock_id=first_id)
    go_a.write_text("go")
    out, _ = first.communicate(timeout=120)
    out = " ".join(out.split())
    assert first.returncode != 0
    assert "site.yml lost the cluster lock and stops before its next play" in out and "held by switchover.yml run by" in out, out[-2000:]
    go_b.write_text("go")
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out[-2000:]
    assert f"broken on request (cluster_lock_break={first_id})" in " ".join(out.split())
    assert records(tmp_path) == {}


def test_one_lock_host_down_leaves_a_majority_two_do_not(tmp_path):
    rc, out = run(tmp_path, setup(tmp_path, down=["lock-3"]), "site.yml")
    assert rc == 0, out[-2000:]
    assert "holds the cluster lock on lock-1, lock-2" in out
    rc, out = run(tmp_path, setup(tmp_path, down=["lock-2", "lock-3"]), "site.yml")
    assert rc != 0
    assert "held on 1 of 3 lock hosts (lock-1), 2 needed" in out and "not asked: lock-2" in out
    assert records(tmp_path) == {}, "the partial lock was not given back"
