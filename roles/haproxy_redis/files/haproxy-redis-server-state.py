#!/usr/bin/python3
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""haproxy-redis-server-state: carry HAProxy's server states across a reload.

HAProxy starts every server UP before its first check, so haproxy.cfg routes nothing during the
start-up grace (acl "started"). A reload would reject new clients for that long too; instead,
haproxy.service (drop-in keybuzz-redis-state.conf of keybuzz.redis_ha.haproxy_redis) runs

  ExecStartPre  haproxy-redis-server-state clear ...   a (re)start, boot or crash: empty files,
                                                       the new process waits the grace;
  ExecReload    haproxy -c ...                         the new configuration is valid,
                haproxy-redis-server-state save ...    the running process's server states,
                kill -USR2 $MAINPID                    the master re-executes itself.

"save" writes ``show servers state`` of the running process to the server-state file that the
new process loads (server-state-file / load-server-state-from-file global), and, only when that
state can replace the grace, ``saved_ms <now in ms>`` to the map file (haproxy.cfg: a process that
starts within the grace after that time routes at once). The grace still applies when:

* the running process's own checks may not have run yet (it started less than the grace ago and
  did not itself load a state that replaced its grace);
* a server of the new configuration is missing from the state, or its address, port or TLS
  setting changed (HAProxy would start it UP, unchecked; it would also keep the old port);
* a server is in maintenance (the watcher's fence): the state is saved WITHOUT it, as a reload
  always lifted it (a fence carried over could outlive the watcher's own release of it);
* the runtime API does not answer.

Both files are emptied first: whatever fails afterwards, the new process waits the grace. The
only failure that fails the reload (exit 1) is being unable to empty them.
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import re
import socket
import sys
import tempfile
import time

# Server admin-state flags (HAProxy's enum srv_admin).
FMAINT, IMAINT, CMAINT, FDRAIN, IDRAIN, RMAINT, HMAINT = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40
# What HAProxy accepts in a state file once it has masked the inherited/resolution flags.
ACCEPTED_ADMIN = (0, FMAINT, CMAINT, CMAINT | FMAINT, CMAINT | FDRAIN, FDRAIN)
# Fields of a version-1 line: be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
F_BACKEND, F_SERVER, F_ADDR, F_OP, F_ADMIN, F_PORT, F_USE_SSL = 1, 3, 4, 5, 6, 18, 20
MIN_FIELDS = 19
SECTIONS = ('global', 'defaults', 'frontend', 'backend', 'listen', 'peers', 'resolvers', 'userlist', 'mailers',
            'program', 'http-errors', 'ring', 'cache', 'crt-store', 'traces', 'log-forward')


# The same few lines as the watcher's haproxy_command(), on purpose: this script runs inside
# haproxy.service's ExecReload, so it imports nothing beyond the standard library (a reload must
# never depend on the watcher's file or on python3-redis).
def haproxy_command(path, command, timeout=2.0):
    """Send one command to the HAProxy runtime API (non-interactive) and return its answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(command.encode() + b'\n')
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b''.join(chunks).decode('utf-8', 'replace')
    finally:
        sock.close()


def parse_var(answer):
    """``get var`` answer -> int, or None (unknown variable, older HAProxy)."""
    match = re.search(r'value=<(-?\d+)>', answer or '')
    return int(match.group(1)) if match else None


def split_address(text):
    """'10.0.0.1:6379' / '[::1]:6379' -> ('10.0.0.1', '6379'); no port -> (address, None)."""
    if text.startswith('['):
        host, _, rest = text[1:].partition(']')
        return host, (rest[1:] if rest.startswith(':') else None)
    if text.count(':') == 1:
        host, port = text.split(':')
        return host, port
    return text, None


def config_servers(text):
    """haproxy.cfg text -> {(backend, server): (address, port or None, uses TLS)}."""
    servers, section = {}, None
    for raw in text.splitlines():
        words = raw.split('#', 1)[0].split()
        if not words:
            continue
        if words[0] in SECTIONS:
            section = words[1] if words[0] in ('backend', 'listen') and len(words) > 1 else None
        elif words[0] == 'server' and section and len(words) >= 3:
            host, port = split_address(words[2])
            servers[(section, words[1])] = (host, port, 'ssl' in words[3:])
    return servers


def plan_state(state_text, servers, settled):
    """What to save: (lines of the state file, [reasons why the grace must still apply]).

    ``state_text``: ``show servers state`` of the running process; ``servers``: config_servers()
    of the NEW configuration; ``settled``: the running process's checks have run (or it loaded a
    state that replaced its grace).
    """
    reasons = [] if settled else ['the running process is within its start-up grace']
    lines = (state_text or '').splitlines()
    if not lines or lines[0].strip() != '1':
        return [], ['unexpected "show servers state" answer (no version 1 header)']
    kept, covered = [lines[0]], set()
    for line in lines[1:]:
        if not line.strip():
            continue
        if line.lstrip().startswith('#'):
            kept.append(line)
            continue
        fields = line.split()
        if len(fields) < MIN_FIELDS:
            reasons.append('unreadable state line: %s' % line)
            continue
        key = (fields[F_BACKEND], fields[F_SERVER])
        if key not in servers:
            continue  # removed from the configuration
        host, port, tls = servers[key]
        try:
            op_state, admin = int(fields[F_OP]), int(fields[F_ADMIN])
        except ValueError:
            reasons.append('unreadable state of %s/%s' % key)
            continue
        if host != fields[F_ADDR] or (port is not None and port != fields[F_PORT]) \
                or (len(fields) > F_USE_SSL and fields[F_USE_SSL] != ('1' if tls else '0')):
            reasons.append('%s/%s: address, port or TLS changed' % key)
            continue
        if admin & FMAINT:
            reasons.append('%s/%s is in maintenance (fence): lifted by the reload' % key)
            admin &= ~FMAINT
            fields[F_ADMIN] = str(admin)
        if op_state not in (0, 1, 2, 3) or (admin & ~(IMAINT | IDRAIN | RMAINT | HMAINT)) not in ACCEPTED_ADMIN:
            reasons.append('%s/%s: state HAProxy would not load (op %d, admin %d)' % (key + (op_state, admin)))
            continue
        kept.append(' '.join(fields))
        covered.add(key)
    missing = sorted(set(servers) - covered)
    if missing:
        reasons.append('no usable state for %s' % ', '.join('%s/%s' % k for k in missing))
    return kept, reasons


def write_atomic(path, text):
    """Replace ``path`` with ``text`` (mode 0640, the directory's group) in one rename."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'w') as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o640)
        try:
            os.chown(tmp, -1, os.stat(directory).st_gid)
        except OSError:
            pass
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def clear(args):
    for path in (args.map_file, args.state_file):
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o750)
    write_atomic(args.map_file, '')
    write_atomic(args.state_file, '')


def save(args):
    """Returns the process exit code."""
    try:
        clear(args)
    except OSError as exc:
        print('cannot empty %s / %s (%s): reload refused' % (args.state_file, args.map_file, exc))
        return 1
    now_ms = int(time.time() * 1000)
    try:
        state_text = haproxy_command(args.socket, 'show servers state', args.timeout)
        boot_ms = parse_var(haproxy_command(args.socket, 'get var proc.boot_ms', args.timeout))
        saved_ms = parse_var(haproxy_command(args.socket, 'get var proc.state_saved_ms', args.timeout))
        with open(args.config) as fh:
            servers = config_servers(fh.read())
    except (OSError, socket.error) as exc:
        print('no server state saved (%s): the new process waits its start-up grace' % exc)
        return 0
    grace = args.grace_ms
    checked = boot_ms is not None and now_ms - boot_ms >= grace
    loaded = boot_ms is not None and saved_ms is not None and 0 <= boot_ms - saved_ms <= grace
    lines, reasons = plan_state(state_text, servers, checked or loaded)
    try:
        if lines:
            write_atomic(args.state_file, '\n'.join(lines) + '\n')
        if not reasons:
            write_atomic(args.map_file, 'saved_ms %d\n' % now_ms)
    except OSError as exc:
        print('cannot write %s / %s (%s): the new process waits its start-up grace' % (
            args.state_file, args.map_file, exc))
        clear(args)
        return 0
    count = sum(1 for line in lines[1:] if not line.lstrip().startswith('#'))
    if reasons:
        print('server states of %d servers saved; the new process waits its start-up grace: %s' % (
            count, '; '.join(reasons)))
    else:
        print('server states of %d servers saved: the new process routes at once' % count)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='action')
    sub.required = True
    for name in ('save', 'clear'):
        cmd = sub.add_parser(name)
        cmd.add_argument('--state-file', required=True)
        cmd.add_argument('--map-file', required=True)
        if name == 'save':
            cmd.add_argument('--socket', required=True, help='admin-level runtime API socket')
            cmd.add_argument('--config', required=True, help='the configuration the new process loads')
            cmd.add_argument('--grace-ms', type=int, required=True, help='haproxy_redis_startup_grace_ms')
            cmd.add_argument('--timeout', type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.action == 'clear':
        clear(args)
        return 0
    return save(args)


if __name__ == '__main__':
    sys.exit(main())
