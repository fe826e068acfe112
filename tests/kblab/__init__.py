# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab helpers shared by the tests (tests/unit, tests/lab) and the benchmarks (bench/):

- processes: real redis-server / redis-sentinel processes on loopback, the test credentials;
- loopback:  a loopback lab of 3 nodes, 3 Sentinels, HAProxy and the role's watcher, as the roles
             configure them, and the benchmarks' helpers on it (settle, +switch-master listener);
- workload:  the write-workload checker (acknowledged-write ledger, lost writes, split routing);
- labctl:    the container lab Molecule built (inventory, credentials, faults, playbook runs).

Put the directory holding this package (tests/) on sys.path and import ``kblab.<module>``. Importing
the package also makes the collection importable as ``ansible_collections.keybuzz.redis_ha``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import atexit
import os
import shutil
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if os.path.basename(os.path.dirname(os.path.dirname(REPO_ROOT))) == 'ansible_collections':
    _COLLECTIONS = os.path.dirname(os.path.dirname(os.path.dirname(REPO_ROOT)))
else:
    _COLLECTIONS = tempfile.mkdtemp(prefix='redis_ha_coll_')
    atexit.register(shutil.rmtree, _COLLECTIONS, True)
    os.makedirs(os.path.join(_COLLECTIONS, 'ansible_collections', 'keybuzz'))
    os.symlink(REPO_ROOT, os.path.join(_COLLECTIONS, 'ansible_collections', 'keybuzz', 'redis_ha'))
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
