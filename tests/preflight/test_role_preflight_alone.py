# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A role's own preflight, for a play that runs the role alone, refuses bad ports by the rule the
preflight play uses (keybuzz.redis_ha.port_problems: the same sentences, naming the role's own
variables): the exporter's ports, on this machine, in check mode. Nothing is installed (the
preflight comes first and fails)."""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python3") if (VENV_BIN / "python3").exists() else sys.executable

PLAY = """
- name: The exporter role's preflight alone
  hosts: redis
  gather_facts: false
  tasks:
    - name: Run the preflight of keybuzz.redis_ha.redis_exporter
      ansible.builtin.include_role:
        name: keybuzz.redis_ha.redis_exporter
        tasks_from: preflight
"""


def test_the_exporter_role_names_a_shared_and_an_invalid_port(tmp_path):
    inventory = {"all": {"children": {"redis": {"hosts": {"redis-01": {
        "ansible_connection": "local", "ansible_python_interpreter": PYTHON, "redis_ha_private_ip": "127.0.0.1",
        "redis_exporter_sentinel_port": 9121, "redis_exporter_redis_port": "six"}}}}}}
    (tmp_path / "hosts.yml").write_text(json.dumps(inventory))
    (tmp_path / "play.yml").write_text(PLAY)
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp-local"), "ANSIBLE_REMOTE_TMP": str(tmp_path / "tmp-remote")}
    proc = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"), "--check"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    flat = re.sub(r"\s+", " ", proc.stdout + proc.stderr)
    assert proc.returncode != 0, flat
    assert "redis_exporter_redis_port: six (redis-01) is not a TCP port. Fix: a number from 1 to 65535." in flat, flat
    assert ("redis_exporter_sentinel_port: 9121 (redis-01) is also the port of redis_exporter_port. "
            "Fix: give each exporter its own port.") in flat, flat
