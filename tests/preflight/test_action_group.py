"""meta/runtime.yml's action group `redis`: module_defaults set once for a play reach both status
modules (here a login port on which nothing listens on loopback: each module reports it in its reason)."""
from __future__ import annotations

import os
import pathlib
import socket
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"

PLAY = """\
- name: module_defaults through the action group
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/keybuzz.redis_ha.redis:
      login_port: {port}
  tasks:
    - name: A node status, its port from the group
      keybuzz.redis_ha.redis_replication_info:
        login_host: 127.0.0.1
      register: node

    - name: A Sentinel status, its port from the group
      keybuzz.redis_ha.sentinel_master_status:
        sentinels: [127.0.0.1]
        master_name: kb-redis-master
      register: sentinel

    - name: Both used the group's port
      ansible.builtin.assert:
        that:
          - not node.healthy and node.reason is search('127.0.0.1:{port}')
          - not sentinel.healthy and sentinel.reason is search('127.0.0.1:{port}')
        fail_msg: "{{{{ node.reason }}}} / {{{{ sentinel.reason }}}}"
"""


def test_module_defaults_group_reaches_both_status_modules(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    play = tmp_path / "play.yml"
    play.write_text(PLAY.format(port=port))
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={VENV_BIN / 'python3'}", str(play)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
