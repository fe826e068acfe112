# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared connection options, client factory, error messages and parsers.

Works with redis-py 4.3 (Debian 12 python3-redis) and redis-py 8.x: only
APIs present in both are used, and replies are read raw (no redis-py
response callbacks) so that parsing does not depend on the library version.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import inspect
import socket
import ssl
import traceback

from ansible.module_utils.basic import missing_required_lib

REDIS_IMP_ERR = None
try:
    import redis
    from redis import exceptions as redis_exceptions
    HAS_REDIS = True
except ImportError:
    redis = None
    redis_exceptions = None
    HAS_REDIS = False
    REDIS_IMP_ERR = traceback.format_exc()

SCRUBBED = '********'


def connection_argument_spec(default_port=6379):
    """Return the argument spec shared by every module of the collection."""
    return dict(
        login_host=dict(type='str', default='127.0.0.1'),
        login_port=dict(type='int', default=default_port),
        login_user=dict(type='str'),
        login_password=dict(type='str', no_log=True),
        connect_timeout=dict(type='float', default=3.0),
        tls=dict(type='bool', default=False),
        ca_certs=dict(type='path'),
        validate_certs=dict(type='bool', default=True),
        client_cert_file=dict(type='path'),
        client_key_file=dict(type='path'),
    )


def check_redis_lib(module):
    """Fail the module with the standard message when redis-py is missing."""
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib('redis'), exception=REDIS_IMP_ERR)


def redis_client(params, host=None, port=None, reconnect=False, socket_timeout=None):
    """Build a redis.Redis client from the module parameters.

    ``host``/``port`` override ``login_host``/``login_port``; ``socket_timeout`` the time a command may
    take (by default ``connect_timeout``), for a command that waits on purpose such as WAIT. Retries are
    disabled so that a dead server costs at most ``connect_timeout``; with
    ``reconnect``, a command whose connection was closed (a ConnectionError,
    not a timeout) is sent once more on a new connection: Sentinel closes a
    node's normal clients when it reconfigures it (CLIENT KILL TYPE normal),
    and redis-py notices a closed TLS connection only when it uses it.
    """
    kwargs = dict(
        host=host or params['login_host'],
        port=port or params['login_port'],
        username=params.get('login_user') or None,
        password=params.get('login_password') or None,
        socket_timeout=socket_timeout or params['connect_timeout'],
        socket_connect_timeout=params['connect_timeout'],
        retry=None,
        decode_responses=True,
    )
    if reconnect:
        kwargs['retry_on_error'] = [redis_exceptions.ConnectionError]
    if _supports_protocol():
        # redis-py >= 5 may default to RESP3; 4.3 only speaks RESP2. Same replies everywhere.
        kwargs['protocol'] = 2
    if params.get('tls'):
        validate = params.get('validate_certs', True)
        kwargs.update(
            ssl=True,
            ssl_ca_certs=params.get('ca_certs'),
            ssl_certfile=params.get('client_cert_file'),
            ssl_keyfile=params.get('client_key_file'),
            ssl_cert_reqs='required' if validate else 'none',
            ssl_check_hostname=bool(validate),
        )
    return redis.Redis(**kwargs)


def _supports_protocol():
    try:
        return 'protocol' in inspect.signature(redis.Redis.__init__).parameters
    except (TypeError, ValueError):
        return False


def raw_command(client, *args):
    """Run a command and return the reply without redis-py post-processing."""
    client.set_response_callback(args[0], _identity)
    return client.execute_command(*args)


def _identity(response, **dummy):
    return response


def format_address(host, port):
    if host is not None and ':' in str(host):
        return '[%s]:%s' % (host, port)
    return '%s:%s' % (host, port)


def parse_address(text, default_port):
    """Split ``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` into a tuple.

    Raises ValueError on a malformed port.
    """
    text = text.strip()
    if text.startswith('['):
        host, sep, rest = text[1:].partition(']')
        if not sep or (rest and not rest.startswith(':')):
            raise ValueError('invalid address %r' % text)
        port = rest[1:] if rest else None
    elif text.count(':') == 1:
        host, port = text.split(':')
    else:
        host, port = text, None
    if not host:
        raise ValueError('invalid address %r' % text)
    if port in (None, ''):
        return host, int(default_port)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError('invalid port in address %r' % text)
    return host, int(port)


def scrub(text, secrets):
    """Replace every secret (password) found in ``text``."""
    text = str(text)
    for secret in secrets:
        if secret:
            text = text.replace(str(secret), SCRUBBED)
    return text


def _is(exc, name):
    """isinstance() against a redis-py exception class that may not exist in every version."""
    kind = getattr(redis_exceptions, name, None)
    return kind is not None and isinstance(exc, kind)


def _find(exc, kind):
    """Walk the exception chain looking for an instance of ``kind``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def error_kind(exc):
    """What went wrong, as one word: ``timeout``, ``refused`` (the server answered and refused the login or the
    command: wrong password, no password, NOPERM), ``unreachable``, ``tls``, ``closed``, ``reply`` (another error
    reply) or ``other``."""
    return _classify(exc)[0]


def _classify(exc):
    """(kind, message with a ``%s`` for the address) for an exception."""
    text = str(exc).strip()
    low = text.lower()
    # An error reply is the server's text: read for its code (WRONGPASS, NOAUTH, NOPERM), never for words
    # such as "timeout" or "certificate" that belong to the connection's own failures.
    reply = _is(exc, 'ResponseError') and not _is(exc, 'NoPermissionError')
    if _is(exc, 'TimeoutError') or isinstance(exc, socket.timeout) or (not reply and ('timed out' in low or 'timeout' in low)):
        return 'timeout', 'timeout talking to %s: no answer within the connect_timeout'
    if _is(exc, 'NoPermissionError') or low.startswith('noperm') or 'no permissions to' in low:
        detail = text[6:].strip() if text.upper().startswith('NOPERM') else text
        return 'refused', 'permission denied on %s (NOPERM): ' + detail.replace('%', '%%')
    if 'wrongpass' in low or 'invalid username-password' in low or 'invalid password' in low:
        return 'refused', 'authentication failed on %s: invalid username or password'
    if 'without any password configured' in low:
        return 'refused', ('authentication failed on %s: a password was given but the server '
                           'has no password configured for this user')
    if 'noauth' in low or 'authentication required' in low:
        return 'refused', 'authentication required by %s: no password or a wrong password was given'
    if _is(exc, 'AuthenticationError'):
        return 'refused', 'authentication failed on %s: ' + text.replace('%', '%%')
    if reply:
        return 'reply', '%s replied with an error: ' + text.replace('%', '%%')
    if 'connection refused' in low or 'errno 111' in low or 'error 111' in low:
        return 'unreachable', 'cannot connect to %s: connection refused'
    if 'name or service not known' in low or 'nodename nor servname' in low \
            or 'temporary failure in name resolution' in low:
        return 'unreachable', 'cannot connect to %s: cannot resolve host name'
    if _find(exc, ssl.SSLError) or '[ssl' in low or 'ssl:' in low or 'certificate' in low:
        return 'tls', 'TLS error with %s: ' + text.replace('%', '%%')
    if 'connection reset' in low or 'closed by server' in low:
        return 'closed', 'cannot talk to %s: connection closed by the server'
    if _is(exc, 'ConnectionError'):
        return 'unreachable', 'cannot connect to %s: ' + text.replace('%', '%%')
    return 'other', 'error talking to %s: ' + (text or type(exc).__name__).replace('%', '%%')


def error_message(exc, host, port, password=None):
    """Turn an exception into a short message that never contains the password."""
    return scrub(_classify(exc)[1] % format_address(host, port), [password])


def _number(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return float(value)
        except (TypeError, ValueError):
            return value


def parse_replica_line(value):
    """Parse ``ip=...,port=...,state=...,offset=...,lag=...`` into a dict."""
    entry = dict(ip=None, port=None, state=None, offset=None, lag=None)
    if isinstance(value, dict):
        items = value.items()
    else:
        items = (item.split('=', 1) for item in str(value).split(',') if '=' in item)
    for key, val in items:
        key = key.strip()
        entry[key] = str(val) if key in ('ip', 'state') else _number(val)
    return entry


def parse_info(text):
    """Parse raw INFO text into a dict of strings; slaveN lines become dicts."""
    info = {}
    for line in str(text).splitlines():
        line = line.strip()
        if not line or line.startswith('#') or ':' not in line:
            continue
        key, value = line.split(':', 1)
        if key.startswith('slave') and key[5:].isdigit():
            info[key] = parse_replica_line(value)
        else:
            info[key] = value
    return info


def info_replication(client):
    """Return INFO replication as a dict, independent of the redis-py version."""
    reply = raw_command(client, 'INFO', 'replication')
    if isinstance(reply, dict):  # defensive: already parsed by the library
        return dict((k, parse_replica_line(v) if k.startswith('slave') and k[5:].isdigit() else str(v))
                    for k, v in reply.items())
    if isinstance(reply, bytes):
        reply = reply.decode('utf-8', 'replace')
    return parse_info(reply)


def info_server(client):
    """Return INFO server as a dict of strings (run_id, redis_version, ...)."""
    reply = raw_command(client, 'INFO', 'server')
    if isinstance(reply, dict):
        return dict((k, str(v)) for k, v in reply.items())
    if isinstance(reply, bytes):
        reply = reply.decode('utf-8', 'replace')
    return parse_info(reply)


def replicas_from_info(info):
    """Return the slaveN entries of a parsed INFO replication, in order."""
    keys = sorted((k for k in info if k.startswith('slave') and k[5:].isdigit()), key=lambda k: int(k[5:]))
    return [info[k] for k in keys]


def pairs_to_dict(reply):
    """Turn a flat ``[key, value, key, value...]`` reply into a dict."""
    if isinstance(reply, dict):
        return dict(reply)
    reply = list(reply or [])
    return dict(zip(reply[0::2], reply[1::2]))


def to_int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def sentinel_master_address(client, master_name):
    """What the Sentinel of ``client`` names as ``master_name``'s address: ``'host:port'``, or
    ``None`` when it cannot be asked or does not know the master (one entry of the input of
    ``ha_rules.sentinel_majority``)."""
    try:
        reply = raw_command(client, 'SENTINEL', 'get-master-addr-by-name', master_name)
        return '%s:%s' % (reply[0], reply[1]) if reply else None
    except Exception:  # unreachable, refused, unknown master: counts against the majority
        return None


def sentinel_master_addresses(params, sentinels, master_name, password):
    """What each Sentinel of ``sentinels`` (``[(host, port)]``) names as ``master_name``'s address
    (``sentinel_master_address``), one new connection each. ``params`` gives the TLS options;
    ``password`` is the Sentinels'."""
    views = []
    for host, port in sentinels:
        client = redis_client(dict(params, login_user=None, login_password=password), host=host, port=port)
        try:
            views.append(sentinel_master_address(client, master_name))
        finally:
            try:
                client.close()
            except Exception:
                pass
    return views


def settings_result(wanted, live, normalize, diff, secret=()):
    """The result of a settings module (redis_config, sentinel_config): which settings of ``wanted``
    differ from ``live`` once both are put through ``normalize``, the values before, and the diff.
    The values of the settings named in ``secret`` (masterauth, auth-pass) are never shown: a set one
    shows as ********, an unset one as empty (that it is set is not a secret, its value is)."""
    def shown(name, value):
        return SCRUBBED if name in secret and value else value

    changed = sorted(name for name, value in wanted.items() if normalize(value) != normalize(live.get(name, '')))
    result = dict(changed=bool(changed), changed_settings=changed,
                  before=dict((name, shown(name, value)) for name, value in live.items()))
    if diff:
        result['diff'] = dict(before=''.join('%s %s\n' % (n, shown(n, live[n])) for n in changed),
                              after=''.join('%s %s\n' % (n, shown(n, normalize(wanted[n]))) for n in changed))
    return result
