# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Day-2 playbooks against the lab, with the write workload running where clients could notice:
validate.yml (OK and FAIL), switchover.yml and rolling_restart.yml (zero acknowledged writes
lost), the consumer example, and site.yml in --check --diff mode on the converged lab."""

from __future__ import absolute_import, division, print_function

import re

from kblab.labctl import assert_invariants, assert_no_secret, assert_nothing_changed, recap, show

def report_lines(text):
    """The lines of validate.yml's report ("OK    <check>: <why>" / "FAIL  <check>: <why>")."""
    lines = [re.sub(r'^\s*-\s*[\'"]?', '', line).rstrip('\'"') for line in text.splitlines()]
    return [line for line in lines if re.match(r'^(OK|FAIL)\s{2,}\S', line)]


def test_validate_reports_ok_and_leaves_no_key(steady_lab):
    lab = steady_lab
    master = lab.steady()
    result = lab.playbook('validate.yml')
    lines = report_lines(result.stdout)
    print('\n'.join(lines))
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(lines) >= 10 and all(line.startswith('OK') for line in lines), lines
    assert 'REDIS HA VALIDATION: 0 of %d checks failed' % len(lines) in result.stdout
    assert_no_secret(lab, result.stdout)
    client = lab.node(master)
    assert client.keys('kb:validate:*') == []
    client.close()


def test_validate_fails_and_names_the_broken_check(steady_lab):
    lab = steady_lab
    master = lab.steady()
    down = [s for s in lab.sentinels if s != master][0]
    lab.systemctl(down, 'stop', 'redis-sentinel')
    result = lab.playbook('validate.yml')
    lines = report_lines(result.stdout)
    print('\n'.join(lines))
    assert result.returncode != 0
    failed = [line for line in lines if line.startswith('FAIL')]
    assert failed and all('entinel' in line for line in failed), failed
    assert 'sentinel unreachable' in failed[0]
    assert 'cannot connect to %s:26379' % lab.ip[down] in re.sub(r'\s+', ' ', result.stdout)
    assert any(line.startswith('OK') for line in lines), 'validate stopped at the first failure'


def test_switchover_moves_the_master_without_losing_writes(steady_lab):
    lab = steady_lab
    old = lab.steady()
    target = [n for n in lab.nodes if n != old][-1]
    work = lab.workload().start()
    result = lab.playbook('switchover.yml', '-e', 'redis_switchover_target=%s' % target)
    report = lab.finish(work, 'switchover.yml')
    assert result.returncode == 0, result.stdout[-3000:]
    assert lab.steady(60) == target
    assert_invariants(report)
    assert_no_secret(lab, result.stdout)


def test_rolling_restart_restarts_everything_without_losing_writes(steady_lab):
    lab = steady_lab
    old = lab.steady()
    before = lab.pids()
    work = lab.workload().start()
    result = lab.playbook('rolling_restart.yml')
    work.stop()
    report = lab.report(work)
    after = lab.pids()
    show('rolling_restart.yml', report)
    assert result.returncode == 0, result.stdout[-3000:]
    new = lab.steady(60)
    assert new != old, 'the master was restarted without a switchover first'
    assert [unit for unit in before if before[unit] == after[unit]] == [], 'services not restarted'
    # The one pause is the switchover's (< 1.5 s measured); both HAProxy nodes restarted together
    # would add ~2.7 s (keybuzz.redis_ha.rolling_restart waits for each one to serve again).
    longest = report['unavailability']['overall']['longest']
    assert longest < 2.0, 'no HAProxy node acknowledged a write for %.2f s' % longest
    assert_invariants(report)


def test_consumer_example_connects_through_the_url(steady_lab):
    lab = steady_lab
    lab.steady()
    result = lab.playbook('examples/consumer.yml')
    assert result.returncode == 0, result.stdout[-3000:]
    assert 'answered PONG from the master' in result.stdout
    assert_no_secret(lab, result.stdout)
    mode = lab.sh(lab.haproxies[0], 'stat -c "%a %U" /etc/keybuzz/api-redis.env').split()
    lab.sh(lab.haproxies[0], 'rm -f /etc/keybuzz/api-redis.env')
    assert mode == ['600', 'root']


def test_site_check_diff_on_the_converged_lab_changes_nothing(steady_lab):
    lab = steady_lab
    lab.steady()
    result = lab.playbook('site.yml', '--check', '--diff')
    print(recap(result))
    assert_nothing_changed(lab, result)
    assert_no_secret(lab, result.stdout)
