# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Connection options shared by every module of keybuzz.redis_ha
    DOCUMENTATION = r'''
options:
  login_host:
    description:
      - Host name or IP address of the Redis server (or Sentinel) to connect to.
    type: str
    default: 127.0.0.1
  login_port:
    description:
      - TCP port of the Redis server (or Sentinel) to connect to.
    type: int
    default: 6379
  login_user:
    description:
      - ACL user name to authenticate with (Redis 6 and later).
      - When omitted and O(login_password) is set, the C(default) user is used.
    type: str
  login_password:
    description:
      - Password to authenticate with.
      - It is never included in results or error messages.
    type: str
  connect_timeout:
    description:
      - Timeout in seconds for connecting and for every reply.
      - Retries are disabled, so an unresponsive server costs at most about this long.
    type: float
    default: 3.0
  tls:
    description:
      - Connect using TLS.
    type: bool
    default: false
  ca_certs:
    description:
      - Path of a PEM file with the CA certificates used to verify the server certificate when O(tls=true).
      - When omitted, the system trust store is used.
    type: path
  validate_certs:
    description:
      - When O(tls=true), verify the server certificate chain and that it matches O(login_host).
      - Set to V(false) only for testing.
    type: bool
    default: true
  client_cert_file:
    description:
      - Path of a PEM client certificate for TLS client authentication.
    type: path
  client_key_file:
    description:
      - Path of the PEM private key matching O(client_cert_file).
    type: path
'''
