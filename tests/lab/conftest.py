# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the lab suite: one Lab for the session, and a steady lab before and after each test.

When a test fails, its report gets the Sentinels' events and the start-up guards' decisions since
the test began, one "EVENT <node> <line>" per line (the Molecule side effect keeps those lines), so
that a failure seen only in CI can be read afterwards."""

from __future__ import absolute_import, division, print_function

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for kblab

from kblab import labctl  # noqa: E402

SENTINEL_EVENTS = (r'[+-](sdown|odown|try-failover|elected-leader|failover|selected-slave|promoted-slave|'
                   r'slave-reconf|switch-master|fix-slave-config|convert-to-slave|tilt|reboot|role-change)')
EVENTS_MAX = 80  # lines per node at most (the newest)


@pytest.fixture(scope='session')
def lab():
    lab = labctl.Lab()
    lab.restore()
    lab.steady_since_teardown = True
    return lab


@pytest.fixture
def steady_lab(lab, request):
    # The previous test's teardown left the lab steady (restore() returned): nothing happened since,
    # so only a test after a failed teardown (or the first one) restores before it starts.
    if not lab.steady_since_teardown:
        lab.restore()
    lab.steady_since_teardown = False
    request.node.kb_lab_since = time.time()
    yield lab
    lab.restore()
    lab.steady_since_teardown = True


def events(lab, since):
    lines = []
    for node in lab.nodes:
        found = lab.redis_log(node, labctl.SENTINEL_LOG, SENTINEL_EVENTS, since - 1)
        found += lab.journal(node, 'redis-server', 'redis-start-role', since - 1)
        for wall, text in sorted(found)[-EVENTS_MAX:]:
            lines.append('EVENT %s %+.1f s %s' % (node, wall - since, text.strip()[:200]))
    return lines


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    since = getattr(item, 'kb_lab_since', None)
    if report.when != 'call' or not report.failed or since is None:
        return
    try:
        lines = events(item.funcargs['steady_lab'], since)
    except Exception as exc:  # noqa: BLE001 - the report must not hide the test's own failure
        lines = ['EVENT - cannot read the events: %s' % exc]
    report.sections.append(('Sentinel events and start-up guard decisions', '\n'.join(lines)))
