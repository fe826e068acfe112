# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.failure_cause: what a failed no_log task says instead of "censored".

The results are real: redis-cli run against a redis-server on loopback exactly as the roles run it
(password on standard input, commands on the following lines), and haproxy -c on a configuration
with an error on the line that holds a password. Every cause must say what went wrong and hold no
secret (nor its hash)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import shutil
import subprocess

import pytest

from kblab.processes import ADMIN_PASSWORD, ADMIN_USER, DEFAULT_PASSWORD, free_port, start_server
from ansible_collections.keybuzz.redis_ha.plugins.filter.failure_cause import failure_cause

SECRET = 'Xk3v9QpL2mN8rT5wY7zB1cD4fG6hJ0sA'     # 32 letters and digits, like a generated password
SHORT_SECRET = 'short-Pw!9'                       # an operator-supplied one, not password-shaped
CREDS = {'REDIS_PASSWORD': DEFAULT_PASSWORD, 'REDIS_ADMIN_PASSWORD': ADMIN_PASSWORD, 'REDIS_ADMIN_USER': ADMIN_USER,
         'SENTINEL_PASSWORD': SECRET, 'REDIS_HEALTHCHECK_PASSWORD_PREVIOUS': SHORT_SECRET}
HAPROXY = shutil.which('haproxy') or '/usr/sbin/haproxy'


def command_result(argv, stdin):
    """What ansible.builtin.command registers (the keys failure_cause reads)."""
    proc = subprocess.run(argv, input=stdin + '\n', capture_output=True, text=True, timeout=20)
    return {'rc': proc.returncode, 'stdout': proc.stdout.rstrip('\n'), 'stderr': proc.stderr.rstrip('\n'),
            'stdout_lines': proc.stdout.splitlines(), 'stderr_lines': proc.stderr.splitlines(),
            'changed': True, 'failed': False}


def admin_cli(port, password, *commands):
    """redis-cli as the roles run it: the admin password, then one command a line."""
    return command_result(['redis-cli', '-h', '127.0.0.1', '-p', str(port), '--user', ADMIN_USER, '--askpass',
                           '--no-auth-warning'], '\n'.join((password,) + commands))


def assert_no_secret(cause):
    for secret in (SECRET, SHORT_SECRET, DEFAULT_PASSWORD, ADMIN_PASSWORD):
        assert secret not in cause, cause
        assert hashlib.sha256(secret.encode()).hexdigest() not in cause, cause


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    proc = start_server(tmp_path_factory.mktemp('failure-cause'), 'node')
    yield proc
    proc.stop()


def test_wrong_admin_password_says_auth_failed(server):
    result = admin_cli(server.port, SECRET, 'ACL SETUSER someone reset on >%s ~* +@all' % SECRET)
    cause = failure_cause(result, CREDS)
    assert cause.startswith('AUTH failed: WRONGPASS'), cause
    assert_no_secret(cause)


@pytest.mark.parametrize('command, expected', [
    # The password in a rule Redis refuses to parse: Redis names the rule, not the password ...
    ('ACL SETUSER someone reset on >%s ~* +@all badrule' % SECRET, "modifier 'badrule': Syntax error"),
    # ... but it quotes a bad hash whole (here the password itself), and any argument of an unknown command.
    ('ACL SETUSER someone reset on #%s' % SECRET, "modifier '#********': The password hash must be exactly 64"),
    ('NOSUCHCOMMAND %s' % SHORT_SECRET, "unknown command 'NOSUCHCOMMAND', with args beginning with: (not shown)"),
    ('CONFIG SET port %s' % SECRET, "argument 'port') - argument couldn't be parsed into an integer"),
])
def test_error_reply_is_shown_masked(server, command, expected):
    result = admin_cli(server.port, ADMIN_PASSWORD, 'PING', command)
    assert result['rc'] == 0 and result['stdout_lines'][0] == 'PONG'      # rc 0: redis-cli's stdin mode
    cause = failure_cause(result, CREDS)
    assert cause.startswith('ERR ') and expected in cause, cause
    assert_no_secret(cause)


def test_data_replies_are_never_shown(server):
    """A read whose reply holds a password (CONFIG GET masterauth) and did not look as expected."""
    result = admin_cli(server.port, ADMIN_PASSWORD, 'CONFIG GET masterauth', 'ACL GETUSER %s' % ADMIN_USER)
    assert any(ADMIN_PASSWORD not in line for line in result['stdout_lines'])
    cause = failure_cause(result, CREDS)
    assert cause.startswith('no error message (') and 'reply line(s)' in cause, cause
    assert_no_secret(cause)
    assert 'repl-Pw-4' not in cause     # the fixture's masterauth


def test_nothing_listening():
    port = free_port()
    cause = failure_cause(admin_cli(port, ADMIN_PASSWORD, 'PING'), CREDS)
    assert cause == 'Could not connect to Redis at 127.0.0.1:%d: Connection refused' % port


def test_module_messages_and_return_codes():
    cause = failure_cause({'failed': True, 'rc': 2, 'msg': "[Errno 2] No such file or directory: b'redis-cli'",
                           'stdout': '', 'stderr': ''}, CREDS)
    assert cause == "[Errno 2] No such file or directory: b'redis-cli' (rc 2)"
    # Ansible's generic message says nothing: the return code does.
    assert failure_cause({'rc': 1, 'msg': 'non-zero return code', 'stdout': '', 'stderr': ''}) == \
        'no error message (0 reply line(s)) (rc 1)'
    assert failure_cause({'msg': 'chown failed: failed to look up user redis'}) == 'chown failed: failed to look up user redis'
    assert failure_cause({'skipped': True}) == 'the task was skipped'
    assert failure_cause(None) == 'no result (the task did not run)'


def test_secrets_from_mappings_and_lists():
    result = {'rc': 0, 'stdout_lines': ["ERR Invalid argument '%s' for CONFIG SET 'masterauth'" % SHORT_SECRET]}
    # The values of the PASSWORD keys of a mapping (user names stay), of a list, or of mappings in a list.
    for secrets in (CREDS, [SHORT_SECRET], [{'X_PASSWORD': SHORT_SECRET}, 'other']):
        assert failure_cause(result, secrets) == "ERR Invalid argument '********' for CONFIG SET 'masterauth'"
    assert ADMIN_USER in failure_cause({'stderr': 'user %s refused' % ADMIN_USER}, CREDS)
    # Unknown to the filter, but shaped like a generated password (24+ letters and digits): masked anyway.
    assert failure_cause({'stderr': 'token %s' % SECRET}) == 'token ********'


def test_haproxy_check_names_the_lines_without_the_passwords(tmp_path):
    """What the haproxy_redis role prints when haproxy -c rejects the new haproxy.cfg."""
    conf = tmp_path / 'source.cfg'
    conf.write_text(
        'global\n    maxconn 100\n'
        'defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n'
        'backend redis\n    option tcp-check\n'
        '    tcp-check send AUTH\\ kb-healthcheck\\ %s\\r\\n\n'      # line 10: fine
        '    tcp-check sendd AUTH\\ kb-healthcheck\\ %s\\r\\n\n'     # line 11: a typo on a line with a password
        '    server redis-01 127.0.0.1:6379 check %s\n'              # line 12: a password where a keyword goes
        % (SECRET, SECRET, SHORT_SECRET))
    # As the template module's validate runs it: the file is a copy under Ansible's temporary directory.
    tmp = tmp_path / 'ansible-tmp-1700000000.1-42-1' / '.source.cfg'
    tmp.parent.mkdir()
    shutil.copy(str(conf), str(tmp))
    proc = subprocess.run([HAPROXY, '-c', '-f', str(tmp)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert SECRET in proc.stderr or SHORT_SECRET in proc.stderr      # haproxy itself echoes them
    result = {'failed': True, 'msg': 'failed to validate', 'exit_status': proc.returncode,
              'stdout': proc.stdout, 'stderr': proc.stderr}
    cause = failure_cause(result, [CREDS, SHORT_SECRET], lines=5, file='haproxy.cfg (new)')
    assert '[haproxy.cfg (new):11]' in cause and '[haproxy.cfg (new):12]' in cause, cause
    assert "unknown keyword '********'" in cause, cause
    assert 'ansible-tmp' not in cause and '[NOTICE]' not in cause and '[ALERT]' not in cause, cause
    assert cause.endswith('(rc %d)' % proc.returncode), cause
    assert_no_secret(cause)
