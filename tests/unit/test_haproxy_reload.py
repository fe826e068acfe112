# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Role haproxy_redis: a reload keeps routing, a start waits until the checks ran.

HAProxy starts every server UP before its first check, so haproxy.cfg routes nothing during
haproxy_redis_startup_grace_ms after a start (acl "started"). A reload through haproxy.service
(the role's drop-in templates/haproxy.service.state.conf.j2) saves the running process's server
states first (files/haproxy-redis-server-state.py) and the new process loads them instead.

Pure functions of the script first, then a real loopback lab (tests/kblab/loopback.py: 3
Redis nodes, 3 Sentinels, haproxy -Ws from the role's template) where the drop-in's ExecStartPre
and ExecReload lines are run as systemd runs them. The lab tests run in file order and share one
lab (module scope).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from kblab.processes import DEFAULT_PASSWORD, wait_for
from kblab.loopback import HAPROXY, ROLE_DIR, Lab, make_state_dir, make_tls_files, render, role_defaults

SCRIPT = os.path.join(ROLE_DIR, 'files', 'haproxy-redis-server-state.py')
GRACE_MS = int(role_defaults()['haproxy_redis_startup_grace_ms'])
GRACE = GRACE_MS / 1000.0


def load_script():
    spec = importlib.util.spec_from_file_location('haproxy_redis_server_state', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


S = load_script()


# --- pure functions ----------------------------------------------------------------------------

HEADER = ('1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight '
          'srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state '
          'srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port '
          'srv_check_addr srv_agent_addr srv_agent_port\n')


def state_line(be_id, backend, srv_id, server, addr, port, op=2, admin=0, ssl=0):
    # The layout of HAProxy 2.6's "show servers state" (version 1, 25 fields).
    return '%d %s %d %s %s %d %d 0 0 5 15 3 1 6 0 0 0 - %d - %d 0 - - 0\n' % (
        be_id, backend, srv_id, server, addr, op, admin, port, ssl)


CONFIG = {('bk_redis', 'redis-01'): ('10.0.0.1', '6379', False),
          ('bk_redis', 'redis-02'): ('10.0.0.2', '6379', False),
          ('chk_redis-01', 's1'): ('10.0.1.1', '26379', False)}


def state(*lines):
    return HEADER + ''.join(lines)


OK_LINES = (state_line(3, 'bk_redis', 1, 'redis-01', '10.0.0.1', 6379),
            state_line(3, 'bk_redis', 2, 'redis-02', '10.0.0.2', 6379, op=0),
            state_line(4, 'chk_redis-01', 1, 's1', '10.0.1.1', 26379))


def test_plan_state_keeps_a_complete_settled_state():
    lines, reasons = S.plan_state(state(*OK_LINES), CONFIG, settled=True)
    assert reasons == []
    assert lines[0] == '1' and lines[1].startswith('# be_id')
    assert lines[2:] == [line.strip() for line in OK_LINES]


def test_plan_state_wants_the_grace_when_the_old_process_had_not_checked():
    lines, reasons = S.plan_state(state(*OK_LINES), CONFIG, settled=False)
    assert len(lines) == 5 and reasons == ['the running process is within its start-up grace']


def test_plan_state_wants_the_grace_for_a_new_or_changed_server():
    # A server the old process did not have starts UP, unchecked.
    _, reasons = S.plan_state(state(*OK_LINES[:2]), CONFIG, settled=True)
    assert reasons == ['no usable state for chk_redis-01/s1']
    # HAProxy would keep the state file's port: the line is dropped.
    moved = state(OK_LINES[0], state_line(3, 'bk_redis', 2, 'redis-02', '10.0.0.2', 6380), OK_LINES[2])
    lines, reasons = S.plan_state(moved, CONFIG, settled=True)
    assert len(lines) == 4 and not any(' redis-02 ' in line for line in lines)
    assert reasons[0] == 'bk_redis/redis-02: address, port or TLS changed'
    readdressed = state(OK_LINES[0], state_line(3, 'bk_redis', 2, 'redis-02', '10.0.0.9', 6379), OK_LINES[2])
    assert S.plan_state(readdressed, CONFIG, settled=True)[1][0] == 'bk_redis/redis-02: address, port or TLS changed'
    tls = state(OK_LINES[0], state_line(3, 'bk_redis', 2, 'redis-02', '10.0.0.2', 6379, ssl=1), OK_LINES[2])
    assert S.plan_state(tls, CONFIG, settled=True)[1][0] == 'bk_redis/redis-02: address, port or TLS changed'
    # A server removed from the configuration is left out, silently.
    extra = state(*(OK_LINES + (state_line(3, 'bk_redis', 3, 'redis-03', '10.0.0.3', 6379),)))
    lines, reasons = S.plan_state(extra, CONFIG, settled=True)
    assert reasons == [] and len(lines) == 5


def test_plan_state_lifts_a_fence_and_wants_the_grace():
    fenced = state(state_line(3, 'bk_redis', 1, 'redis-01', '10.0.0.1', 6379, admin=S.FMAINT), *OK_LINES[1:])
    lines, reasons = S.plan_state(fenced, CONFIG, settled=True)
    assert reasons == ['bk_redis/redis-01 is in maintenance (fence): lifted by the reload']
    assert lines[2].split()[S.F_ADMIN] == '0' and len(lines) == 5


def test_plan_state_refuses_an_unexpected_answer():
    assert S.plan_state('Unknown command\n', CONFIG, settled=True) == (
        [], ['unexpected "show servers state" answer (no version 1 header)'])
    assert S.plan_state('', CONFIG, settled=True)[0] == []
    lines, reasons = S.plan_state(state(OK_LINES[0], '3 bk_redis 2 redis-02\n', OK_LINES[2]), CONFIG, settled=True)
    assert reasons[0].startswith('unreadable state line') and reasons[-1] == 'no usable state for bk_redis/redis-02'
    weird = state(OK_LINES[0],
                  state_line(3, 'bk_redis', 2, 'redis-02', '10.0.0.2', 6379, admin=S.FDRAIN | S.CMAINT | 0x80),
                  OK_LINES[2])
    assert 'state HAProxy would not load' in S.plan_state(weird, CONFIG, settled=True)[1][0]


def test_parse_var():
    assert S.parse_var('proc.boot_ms: type=sint value=<1795676341115>\n') == 1795676341115
    assert S.parse_var('Variable not found.\n') is None


def prod_variables(tls=None):
    variables = dict(
        haproxy_redis_nodes=[{'name': 'redis-0%d' % i, 'address': '10.0.0.12%d' % (i + 2)} for i in (1, 2, 3)],
        haproxy_redis_sentinels=[{'name': 'sentinel-01', 'address': '10.0.1.1'},
                                 {'name': 'sentinel-02', 'address': '10.0.1.2', 'port': 26380}],
        haproxy_redis_master_name='kb-redis-master', haproxy_redis_sentinel_port=26379,
        haproxy_redis_bind_address='127.0.0.1', haproxy_redis_health_bind_address='127.0.0.1',
        haproxy_redis_healthcheck_user='kb-healthcheck', haproxy_redis_healthcheck_password='hc-Pw-1234567890',
        haproxy_redis_sentinel_password='sentinel-Pw-1234567890', haproxy_redis_maxconn=1000,
        haproxy_redis_chroot='', haproxy_redis_process_user='', haproxy_redis_process_group='',
        haproxy_redis_admin_socket='/tmp/never-used.sock', haproxy_redis_tls=bool(tls))
    if tls:
        variables.update(haproxy_redis_tls_dir=tls['dir'], haproxy_redis_tls_ca_file=tls['ca'])
    return variables


@pytest.mark.parametrize('tls', [False, True])
def test_template_loads_server_states_with_and_without_tls(tmp_path, tls):
    if tls and not shutil.which('openssl'):
        pytest.skip('openssl not available')
    names = ['redis-01', 'redis-02', 'redis-03', 'sentinel-01', 'sentinel-02']
    files = make_tls_files(tmp_path, names) if tls else None
    state_dir = make_state_dir(str(tmp_path / 'state'))
    text = render('haproxy.cfg.j2', haproxy_redis_state_dir=state_dir, **prod_variables(files))
    conf = tmp_path / 'haproxy.cfg'
    conf.write_text(text)
    subprocess.check_call([HAPROXY, '-c', '-q', '-f', str(conf)])
    assert '    server-state-file %s/server-state\n' % state_dir in text
    assert '    load-server-state-from-file global\n' in text
    assert 'map_str_int(%s/server-state.map,0)' % state_dir in text
    # Where the routing rules are evaluated: the Redis frontend and the health endpoint.
    assert text.count('acl started var(proc.boot_ms),sub(proc.state_saved_ms) -m int 0:%d\n' % GRACE_MS) == 2
    # What the script compares with the saved states: every server, its address, port and TLS.
    servers = S.config_servers(text)
    assert len(servers) == 13  # 3 in bk_redis, 3 in fo_redis, 2 Sentinels in each of the 3 chk_ backends, the watcher
    assert servers[('bk_watcher', 'watcher')] == ('127.0.0.1', '8406', False)
    assert servers[('bk_redis', 'redis-02')] == ('10.0.0.124', '6379', tls)
    assert servers[('fo_redis', 'redis-02')] == ('10.0.0.124', '6379', tls)
    assert servers[('chk_redis-03', 'sentinel-02')] == ('10.0.1.2', '26380', tls)


def test_unit_drop_in_saves_between_the_check_and_the_signal():
    text = render('haproxy.service.state.conf.j2', _haproxy_redis_state_script='/usr/local/lib/x/state',
                  haproxy_redis_config_file='/etc/haproxy/haproxy.cfg',
                  haproxy_redis_state_dir=role_defaults()['haproxy_redis_state_dir'])
    units = unit_commands(text)
    assert units['ExecStartPre'] == [
        '/usr/local/lib/x/state clear --state-file /var/lib/keybuzz-haproxy-redis/server-state '
        '--map-file /var/lib/keybuzz-haproxy-redis/server-state.map']
    reload = units['ExecReload']
    assert len(reload) == 3 and reload[0] == '/usr/sbin/haproxy -Ws -f $CONFIG -c -q $EXTRAOPTS'
    assert reload[1].startswith('/usr/local/lib/x/state save --socket /run/haproxy/admin.sock '
                                '--config /etc/haproxy/haproxy.cfg --grace-ms %d ' % GRACE_MS)
    assert reload[2] == '/bin/kill -USR2 $MAINPID'
    assert '\nExecReload=\n' in text  # replaces Debian's ExecReload lines


def test_clear_creates_empty_files(tmp_path):
    state_file, map_file = str(tmp_path / 'd' / 'server-state'), str(tmp_path / 'd' / 'server-state.map')
    assert S.main(['clear', '--state-file', state_file, '--map-file', map_file]) == 0
    with open(map_file, 'w') as fh:
        fh.write('saved_ms 1\n')
    assert S.main(['clear', '--state-file', state_file, '--map-file', map_file]) == 0
    assert open(state_file).read() == '' and open(map_file).read() == ''
    assert oct(os.stat(map_file).st_mode & 0o777) == '0o640'


def test_save_without_haproxy_leaves_the_grace(tmp_path, capsys):
    conf = tmp_path / 'haproxy.cfg'
    conf.write_text('backend b\n    server s 10.0.0.1:1\n')
    state_file, map_file = tmp_path / 'server-state', tmp_path / 'server-state.map'
    map_file.write_text('saved_ms 1\n')
    state_file.write_text(HEADER)
    assert S.main(['save', '--socket', str(tmp_path / 'none.sock'), '--config', str(conf), '--grace-ms', '2500',
                   '--state-file', str(state_file), '--map-file', str(map_file)]) == 0
    assert map_file.read_text() == '' and state_file.read_text() == ''
    assert 'no server state saved' in capsys.readouterr().out


# --- the unit's commands, run as systemd runs them ------------------------------------------------

def unit_commands(text):
    """ExecStartPre / ExecReload lines of a drop-in (an empty assignment resets the list)."""
    commands = {'ExecStartPre': [], 'ExecReload': []}
    for line in text.splitlines():
        key, sep, value = line.partition('=')
        if sep and key in commands:
            commands[key] = commands[key] + [value] if value else []
    return commands


class Unit(object):
    """haproxy.service for the lab's haproxy: Debian's unit with the role's drop-in."""

    def __init__(self, lab):
        self.lab = lab
        variables = dict(lab.variables, _haproxy_redis_state_script=SCRIPT, haproxy_redis_config_file=lab.haproxy.conf)
        self.commands = unit_commands(render('haproxy.service.state.conf.j2', **variables))
        self.outputs = []

    def run(self, kind):
        env = {'$MAINPID': str(self.lab.haproxy.popen.pid) if self.lab.haproxy.popen else '',
               '$CONFIG': self.lab.haproxy.conf, '$EXTRAOPTS': ''}
        for line in self.commands[kind]:
            ignore_failure = line.startswith('-')
            for name, value in env.items():
                line = line.replace(name, value)
            argv = shlex.split(line.lstrip('-'))
            if argv[0] == '/usr/sbin/haproxy':
                argv[0] = HAPROXY
            elif argv[0] == SCRIPT:
                argv.insert(0, sys.executable)
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            self.outputs.append(out.stdout + out.stderr)
            assert out.returncode == 0 or ignore_failure, (line, out.stdout, out.stderr)
        return self.outputs[-len(self.commands[kind]):]

    def worker_pid(self):
        info = self.lab.watcher_mod.haproxy_command(self.lab.admin_socket, 'show info')
        return int(info.split('\nPid: ', 1)[1].split('\n', 1)[0])

    def start(self):
        """systemctl start: ExecStartPre, then haproxy -Ws. Returns the time just before the start."""
        self.run('ExecStartPre')
        if os.path.exists(self.lab.admin_socket):
            os.unlink(self.lab.admin_socket)
        started = time.monotonic()
        self.lab.haproxy.start(self.lab.admin_socket)
        wait_for(self.worker_pid, timeout=10, interval=0.02, what='haproxy worker')
        return started

    def restart(self):
        self.lab.haproxy.stop()
        return self.start()

    def reload(self, config_text=None):
        """systemctl reload (after the role's template task wrote ``config_text``): returns the save
        script's output once the new worker answers on the runtime API."""
        if config_text is not None:
            with open(self.lab.haproxy.conf, 'w') as fh:
                fh.write(config_text)
        old = self.worker_pid()
        outputs = self.run('ExecReload')
        wait_for(lambda: self.worker_pid() != old, timeout=10, interval=0.02, what='the new haproxy worker')
        return outputs[1]

    def signal_only(self):
        """A reload that bypasses the unit (kill -USR2 by hand): no state saved now."""
        old = self.worker_pid()
        subprocess.check_call(['kill', '-USR2', str(self.lab.haproxy.popen.pid)])
        wait_for(lambda: self.worker_pid() != old, timeout=10, interval=0.02, what='the new haproxy worker')


def reached(lab, timeout=0.5):
    """Name of the node one NEW connection through HAProxy reaches (its INFO tcp_port), or None when
    HAProxy rejects it. A plain socket: redis-py would retry a rejected connection (and hide it)."""
    try:
        sock = socket.create_connection(('127.0.0.1', lab.frontend_port), timeout=timeout)
    except OSError:
        return None
    try:
        sock.sendall(('AUTH %s\r\nINFO server\r\nQUIT\r\n' % DEFAULT_PASSWORD).encode())
        data = b''
        while True:  # until Redis closes after QUIT, or HAProxy closes a rejected connection
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        sock.close()
    match = re.search(br'\r\ntcp_port:(\d+)\r\n', data)
    return lab.node_by_port(int(match.group(1))) if match else None


class Prober(threading.Thread):
    """A client opening a new connection through HAProxy every ~20 ms (INFO server tells which node
    answered). ``results``: [(monotonic time, node name or None when rejected)]."""

    def __init__(self, lab, interval=0.02):
        threading.Thread.__init__(self, name='prober', daemon=True)
        self.lab, self.interval = lab, interval
        self.results = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            now = time.monotonic()
            self.results.append((now, reached(self.lab)))
            self.halt.wait(self.interval)

    def stop(self):
        self.halt.set()
        self.join(5)
        return self.results


def probe(lab, seconds):
    prober = Prober(lab)
    prober.start()
    time.sleep(seconds)
    return prober.stop()


def first_routed(results, master):
    return next((t for t, node in results if node == master), None)


# --- the loopback lab ----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    obj = Lab(tmp_path_factory.mktemp('reload_lab'))
    try:
        obj.unit = Unit(obj)
        obj.master = obj.majority_master()
        assert obj.master == 'redis-01'
        yield obj
    finally:
        obj.stop()


def read(path):
    with open(path) as fh:
        return fh.read()


def state_files(lab):
    return read(os.path.join(lab.state_dir, 'server-state')), read(os.path.join(lab.state_dir, 'server-state.map'))


def test_a_fresh_start_routes_nothing_until_the_checks_ran(lab):
    started = lab.unit.start() if lab.haproxy.popen is None else lab.unit.restart()
    assert state_files(lab) == ('', '')
    prober = Prober(lab)
    prober.start()
    time.sleep(1.0)
    assert lab.health_status() == 503  # the load balancer is told too
    time.sleep(GRACE + 1.5 - 1.0)
    results = prober.stop()
    first = first_routed(results, lab.master)
    assert first is not None, results[-5:]
    assert first - started >= GRACE  # HAProxy counts from its own start, after ``started``
    before = [node for t, node in results if t < first]
    # Rejected by HAProxy itself (tcp-request content reject), not only refused before it listened.
    assert set(before) == {None} and len([t for t, _ in results if started + 1.0 < t < first]) >= 20
    assert all(node == lab.master for t, node in results if t >= first)


def test_a_reload_through_the_unit_keeps_routing_every_new_client(lab):
    wait_for(lambda: reached(lab) == lab.master, what='routing after the start-up grace')
    prober = Prober(lab)
    prober.start()
    time.sleep(0.3)
    outputs, reloads = [], []
    # Three reloads in a row, each with a changed configuration as the role's template task writes
    # it: the second and third replace a process that had itself loaded the states.
    for hours in (11, 10, 9):
        text = render('haproxy.cfg.j2', **dict(lab.variables, haproxy_redis_timeout_client='%dh' % hours))
        reloads.append(time.monotonic())
        outputs.append(lab.unit.reload(text))
        assert lab.health_status() == 200  # reload.yml's wait passes at once
        time.sleep(0.3)
    time.sleep(GRACE + 0.5)  # longer than the window a start-up grace would have rejected
    results = prober.stop()
    for output in outputs:
        assert 'server states of 15 servers saved: the new process routes at once' in output, outputs
    assert 'timeout client 9h' in read(lab.haproxy.conf)
    during = [node for t, node in results if t >= reloads[0]]
    assert len(during) >= 100
    assert [(round(t - reloads[0], 3), node) for t, node in results if node != lab.master] == []
    state, grace_map = state_files(lab)
    assert state.startswith('1\n') and len(state.splitlines()) == 2 + 15  # 3 bk_redis, 3 fo_redis, 3 x 3 chk_
    assert grace_map.startswith('saved_ms ')
    W = lab.watcher_mod
    boot = S.parse_var(W.haproxy_command(lab.admin_socket, 'get var proc.boot_ms'))
    saved = S.parse_var(W.haproxy_command(lab.admin_socket, 'get var proc.state_saved_ms'))
    assert saved == int(grace_map.split()[1]) and 0 <= boot - saved <= GRACE_MS


def test_without_fresh_saved_states_the_grace_applies_again(lab):
    # 1. A reload that bypasses the unit (kill -USR2 by hand) long after the last save: the saved
    #    states are older than the grace, the new process waits.
    assert state_files(lab)[1].startswith('saved_ms ')
    time.sleep(max(0.0, GRACE + 0.2 - (time.time() * 1000 - int(state_files(lab)[1].split()[1])) / 1000.0))
    prober = Prober(lab)
    prober.start()
    time.sleep(0.3)
    signalled = time.monotonic()
    lab.unit.signal_only()
    time.sleep(GRACE + 1.0)
    results = prober.stop()
    rejected = [t for t, node in results if node is None]
    assert rejected and min(rejected) >= signalled
    first = first_routed([r for r in results if r[0] > max(rejected)], lab.master)
    assert first is not None and first - signalled >= GRACE
    assert all(node in (None, lab.master) for _, node in results)

    # 2. A restart (start, boot, crash: ExecStartPre) empties the saved states: the grace applies.
    #    3. A reload soon after (the old process's checks may not have run): it still applies.
    started = lab.unit.restart()
    assert state_files(lab) == ('', '')
    prober = Prober(lab)
    prober.start()
    time.sleep(0.5)
    reloaded = time.monotonic()
    output = lab.unit.reload()
    time.sleep(GRACE + 1.0)
    results = prober.stop()
    assert 'the new process waits its start-up grace: the running process is within its start-up grace' in output
    assert state_files(lab)[1] == ''
    first = first_routed(results, lab.master)
    assert first is not None and first - reloaded >= GRACE and first - started >= GRACE + 0.5
    assert all(node is None for t, node in results if t < first)


def test_a_reload_during_a_fence_lifts_it_and_waits_the_grace(lab):
    """The watcher's fence (bk_redis server in maintenance) is not carried to the new process, as a
    reload always did: a fence carried over could outlive the watcher's own release of it. The new
    process then waits the grace (the fenced master is routable again only after it)."""
    W = lab.watcher_mod
    wait_for(lambda: reached(lab) == lab.master, what='routing after the start-up grace')
    time.sleep(GRACE)  # the running process's own checks ran: only the fence keeps the grace
    W.haproxy_command(lab.admin_socket, 'set server bk_redis/%s state maint' % lab.master)
    assert lab.routable() == [] and reached(lab) is None
    reloaded = time.monotonic()
    output = lab.unit.reload()
    assert 'bk_redis/%s is in maintenance (fence): lifted by the reload' % lab.master in output
    assert lab.show_stat()[('bk_redis', lab.master)]['status'] != 'MAINT'
    results = probe(lab, GRACE + 0.5)
    first = first_routed(results, lab.master)
    assert first is not None and first - reloaded >= GRACE
    # The watcher releasing its fence later ("state ready" on a server not in maintenance) is harmless.
    assert W.haproxy_command(lab.admin_socket, 'set server bk_redis/%s state ready' % lab.master).strip() == ''
    assert reached(lab) == lab.master
