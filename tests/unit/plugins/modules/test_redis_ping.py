# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.redis_ping against a real redis-server and a real redis-sentinel on loopback: an
accepted login, a refused one and a dead port are told apart, never fail the module, show no secret."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import socket

import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, SENTINEL_PASSWORD, start_server
from ansible_collections.keybuzz.redis_ha.plugins.modules import redis_ping as module


@pytest.fixture
def server(tmp_path):
    proc = start_server(tmp_path, 'ping')
    yield proc
    proc.stop()


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_accepted_refused_and_unreachable(server, run_module):
    args = dict(login_port=server.port, login_user=ADMIN_USER, connect_timeout=2)
    assert run_module(module, dict(args, login_password=ADMIN_PASSWORD)) == dict(changed=False, ok=True, refused=False,
                                                                                  reason='')
    refused = run_module(module, dict(args, login_password='Wrong-Password-0123'))
    assert refused['ok'] is False and refused['refused'] is True and refused['changed'] is False
    assert refused['reason'] == 'authentication failed on 127.0.0.1:%d: invalid username or password' % server.port
    port = free_port()
    dead = run_module(module, dict(args, login_port=port, login_password='Wrong-Password-0123'))
    assert dead == dict(changed=False, ok=False, refused=False, reason='cannot connect to 127.0.0.1:%d: connection refused' % port)


def test_a_sentinel_with_its_password(sentinel, run_module):
    res = run_module(module, dict(login_port=sentinel.port, login_password=SENTINEL_PASSWORD, connect_timeout=2,
                                  _ansible_check_mode=True))
    assert res['ok'] is True
    res = run_module(module, dict(login_port=sentinel.port, login_password='Not-The-Sentinel-Pw', connect_timeout=2))
    assert res['refused'] is True and 'Not-The-Sentinel-Pw' not in res['reason']
