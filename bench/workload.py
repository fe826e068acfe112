#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The write-workload checker's command line; the checker itself is tests/kblab/workload.py (see bench/README.md)."""

from __future__ import absolute_import, division, print_function

import sys

import _paths  # noqa: F401  (tests/ on sys.path)
from kblab.workload import main

if __name__ == '__main__':
    sys.exit(main())
