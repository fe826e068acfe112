# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""module_utils/redis_connection.py: every failure gets one kind and one message naming the address,
never the password. Real redis-py exceptions from real servers (a refused login, NOPERM, a closed
port, a frozen server, an error reply) first, then the texts that only other setups produce, and the
password scrubbed from a message that carries it."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import socket
import ssl

import pytest
import redis

from kblab.processes import ADMIN_PASSWORD, ADMIN_USER, NOINFO_PASSWORD, NOINFO_USER, free_port
from ansible_collections.keybuzz.redis_ha.plugins.module_utils.redis_connection import (error_kind, error_message,
                                                                                     redis_client)


def raised(func):
    try:
        func()
    except Exception as exc:  # the exception a real server made redis-py raise
        return exc
    raise AssertionError('no exception')


def client(proc_or_port, username=None, password=None):
    """The modules' own client (redis_client), as a module builds it from its options."""
    return redis_client(dict(login_host='127.0.0.1', login_port=getattr(proc_or_port, 'port', proc_or_port),
                             login_user=username, login_password=password, connect_timeout=1.0))


def test_real_failures_from_real_servers(cluster, paused_server):
    master = cluster.master
    cases = [
        (raised(lambda: client(master, username=ADMIN_USER, password='Wrong-Pw-123').ping()), 'refused',
         'authentication failed on 127.0.0.1:%d: invalid username or password' % master.port),
        (raised(lambda: client(master).set('k', 'v')), 'refused',
         'authentication required by 127.0.0.1:%d: no password or a wrong password was given' % master.port),
        (raised(lambda: client(master, username=NOINFO_USER, password=NOINFO_PASSWORD).info()), 'refused', None),
        (raised(lambda: client(free_port()).ping()), 'unreachable', None),
        (raised(lambda: client(paused_server, username=ADMIN_USER, password=ADMIN_PASSWORD).ping()), 'timeout', None),
        (raised(lambda: client(master, username=ADMIN_USER, password=ADMIN_PASSWORD).execute_command('NOSUCHCMD')),
         'reply', None),
    ]
    for exc, kind, message in cases:
        assert error_kind(exc) == kind, (exc, kind)
        assert '127.0.0.1:6379' in error_message(exc, '127.0.0.1', 6379)
        if message is not None:
            assert error_message(exc, '127.0.0.1', master.port) == message
    assert error_message(cases[2][0], 'h', 1).startswith('permission denied on h:1 (NOPERM): ')
    assert error_message(cases[3][0], 'h', 1) == 'cannot connect to h:1: connection refused'


@pytest.mark.parametrize('exc, kind, message', [
    (ssl.SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number'), 'tls',
     'TLS error with h:1: [SSL: WRONG_VERSION_NUMBER] wrong version number'),
    (redis.exceptions.ConnectionError('Connection reset by peer'), 'closed',
     'cannot talk to h:1: connection closed by the server'),
    (redis.exceptions.ConnectionError('Error -2 connecting to nohost:1. Name or service not known.'), 'unreachable',
     'cannot connect to h:1: cannot resolve host name'),
    (socket.timeout('timed out'), 'timeout', 'timeout talking to h:1: no answer within the connect_timeout'),
    (ValueError('100% odd, secret-Pw-1 inside'), 'other', 'error talking to h:1: 100% odd, ******** inside'),
    # A server's error reply is read for its code, not for words of the connection's own failures.
    (redis.exceptions.ResponseError('ERR timeout is not an integer or out of range'), 'reply',
     'h:1 replied with an error: ERR timeout is not an integer or out of range'),
    (redis.exceptions.ResponseError('ERR certificate file missing'), 'reply', 'h:1 replied with an error: ERR certificate file missing'),
])
def test_texts_only_other_setups_produce(exc, kind, message):
    assert error_kind(exc) == kind
    assert error_message(exc, 'h', 1, password='secret-Pw-1') == message
