# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures starting real redis-server / redis-sentinel processes on loopback (tests/kblab), and
run_module, which runs a module of the collection in-process.

Run with: .venv/bin/pytest tests/unit
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil
import sys
from unittest import mock

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for kblab

from kblab.processes import (REDIS_SERVER, SERVER_CONFIG, Proc, admin, make_ca_and_cert,  # noqa: E402
                             sentinel_cluster, start_sentinel, start_server, wait_for, wait_replicas_online, Cluster)
from ansible.module_utils import basic  # noqa: E402  (kblab makes the collection importable first)


@pytest.fixture
def sentinel(tmp_path):
    """One Sentinel monitoring a lone master (quorum 2, down-after 5 s), for tests that change it."""
    master = start_server(tmp_path, 'master')
    proc = start_sentinel(tmp_path, 'sentinel', master, down_after_ms=5000)
    yield proc
    proc.stop()
    master.stop()


@pytest.fixture(scope='session')
def cluster(tmp_path_factory):
    """Master with two replicas and three Sentinels, shared and never disturbed."""
    with sentinel_cluster(tmp_path_factory.mktemp('cluster'), 2, down_after_ms=5000) as obj:
        yield obj


@pytest.fixture
def disposable_cluster(tmp_path):
    """Master without replicas and three Sentinels that a test may kill."""
    with sentinel_cluster(tmp_path, 0, down_after_ms=1000) as obj:
        yield obj


@pytest.fixture
def replication_pair(tmp_path):
    """Master and one replica, not watched by Sentinels: the master may be killed."""
    master = start_server(tmp_path, 'master')
    obj = Cluster(master, [])
    try:
        obj.replicas = [start_server(tmp_path, 'replica', master)]
        wait_replicas_online(master, 1)
        yield obj
    finally:
        obj.stop()


@pytest.fixture
def paused_server(tmp_path):
    """A redis-server stopped with SIGSTOP: the kernel accepts connections, nothing answers."""
    proc = start_server(tmp_path, 'paused')
    proc.pause()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope='session')
def tls_server(tmp_path_factory):
    """A TLS-only redis-server; returns (proc, ca_file_of_server, ca_file_of_an_unrelated_ca)."""
    if not shutil.which('openssl'):
        pytest.skip('openssl not available')
    workdir = tmp_path_factory.mktemp('tls')
    good = make_ca_and_cert(workdir, 'good')
    other = make_ca_and_cert(workdir, 'other')
    config = SERVER_CONFIG + 'tls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients no\n' % (
        good['cert'], good['key'], good['ca'])
    proc = Proc(REDIS_SERVER, workdir, 'tls', config, tls=True)
    try:
        wait_for(lambda: admin(proc, ssl=True, ssl_ca_certs=good['ca']).ping(), what='TLS server to answer PING')
        yield proc, good['ca'], other['ca']
    finally:
        proc.stop()


# --- running modules in-process ---------------------------------------------

class AnsibleExitJson(Exception):
    pass


class AnsibleFailJson(Exception):
    pass


def _exit_json(self, **kwargs):
    kwargs.setdefault('changed', False)
    raise AnsibleExitJson(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs['failed'] = True
    kwargs['msg'] = msg
    raise AnsibleFailJson(kwargs)


def _module_args(args):
    try:
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core < 2.19
        return mock.patch.object(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode())
    return patch_module_args(args)


def _run(module, args, expect_fail=False):
    expected = AnsibleFailJson if expect_fail else AnsibleExitJson
    with _module_args(args), \
            mock.patch.object(basic.AnsibleModule, 'exit_json', _exit_json), \
            mock.patch.object(basic.AnsibleModule, 'fail_json', _fail_json):
        with pytest.raises(expected) as excinfo:
            module.main()
    return excinfo.value.args[0]


@pytest.fixture
def run_module():
    """run_module(module, args, expect_fail=False) -> result dict given to exit_json/fail_json."""
    return _run
