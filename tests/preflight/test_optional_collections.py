"""playbooks/hetzner_lb_healthcheck.yml is the only user of hetzner.hcloud, which the collection does
not depend on: without it, the playbook stops before any Hetzner task with a message naming the
collection and the requirements file. The missing collection is simulated with an ansible-galaxy
on PATH that answers as the real one does for a collection it cannot find (the venv's ansible
package always bundles hetzner.hcloud, so a real run cannot lack it). No Hetzner API is contacted:
the playbook stops first."""
from __future__ import annotations

import os
import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def run(tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    fake = tmp_path / "bin"
    fake.mkdir()
    galaxy = fake / "ansible-galaxy"
    galaxy.write_text("#!/bin/sh\necho 'ERROR! - None of the provided paths were usable.' >&2\n"
                      "echo 'Unable to find hetzner.hcloud' >&2\nexit 1\n")
    galaxy.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "HCLOUD_TOKEN": "not-a-token"}
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={VENV_BIN / 'python3'}",
                           "-e", "redis_ha_hcloud_load_balancer=kb-lb", "playbooks/hetzner_lb_healthcheck.yml"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_missing_hetzner_collection_stops_with_the_fix(tmp_path):
    proc = run(tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "This playbook needs the collection hetzner.hcloud" in output, output
    assert "ansible-galaxy collection install -r playbooks/hetzner/requirements.yml" in output, output
    assert "Unable to find hetzner.hcloud" in output, output
    assert "Route TCP 6379" not in output, "a Hetzner task ran"
