#!/usr/bin/python3
"""Poll the Sentinels every 50 ms until a majority names a master other than OLD.

usage: wait_new_master.py MASTER_NAME OLD_IP TIMEOUT_S SENTINEL_HOST:PORT...  (password on stdin)
Prints one JSON line: {"master": "ip", "seen_at": <epoch seconds>} and exits 0, or exits 1 on timeout.
"""
import json
import sys
import time
from collections import Counter

import redis


def main():
    name, old, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    sentinels = [a.rpartition(":") for a in sys.argv[4:]]
    password = sys.stdin.readline().strip()
    clients = [redis.Redis(host=h, port=int(p), password=password, socket_timeout=0.2,
                           socket_connect_timeout=0.2, decode_responses=True) for h, _, p in sentinels]
    deadline = time.time() + timeout
    while time.time() < deadline:
        votes = Counter()
        for client in clients:
            try:
                reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
                if reply:
                    votes[reply[0]] += 1
            except redis.RedisError:
                pass
        if votes:
            master, count = votes.most_common(1)[0]
            if master != old and count > len(clients) // 2:
                print(json.dumps({"master": master, "seen_at": time.time()}))
                return 0
        time.sleep(0.05)
    return 1


if __name__ == "__main__":
    sys.exit(main())
