#!/usr/bin/python3
"""Start-up guard for redis-server (keybuzz.redis_ha).

Runs as ExecStartPre. Decides whether this node starts as master or as a replica:
  1. the master named by a majority of the configured Sentinels, or, when no majority
     answers, by every Sentinel that answers (they persist their view across restarts);
  2. otherwise the bootstrap master from the inventory (first deploy, no Sentinel yet).
Writes REDIS_ROLE_ARGS for ExecStart to /run/redis/start-role.env, and the checksum of the
configuration it starts with to the state file (Ansible compares it to decide on restarts).
Never blocks the start for long and never fails it: on any doubt it logs and falls back.
"""
import hashlib
import json
import os
import sys
from collections import Counter

try:
    import redis
except ImportError:  # pragma: no cover - python3-redis is installed by the role
    redis = None


def log(msg):
    sys.stderr.write("redis-start-role: %s\n" % msg)


def sentinel_passwords(cfg):
    """The Sentinel password, then the one being rotated out (both are accepted during a rotation)."""
    passwords = []
    for key in ("sentinel_password", "sentinel_previous_password"):
        value = cfg.get(key) or None
        if value not in passwords and (value is not None or not passwords):
            passwords.append(value)
    return passwords


def is_auth_error(exc):
    text = str(exc).upper()
    return type(exc).__name__ == "AuthenticationError" or "WRONGPASS" in text or "NOAUTH" in text


def tls_options(cfg):
    """redis-py options for TLS ("tls": true): verify the Sentinel's certificate and address with the CA."""
    if not cfg.get("tls"):
        return {}
    return dict(ssl=True, ssl_ca_certs=cfg.get("tls_ca_file"), ssl_cert_reqs="required", ssl_check_hostname=True)


def ask_sentinels(cfg):
    """Return {sentinel address: 'ip:port' or None} for every configured Sentinel."""
    answers = {}
    for address in cfg.get("sentinels", []):
        host, _, port = address.rpartition(":")
        answers[address] = None
        for password in sentinel_passwords(cfg):
            try:
                client = redis.Redis(host=host, port=int(port), password=password,
                                     socket_timeout=cfg.get("timeout", 1.5),
                                     socket_connect_timeout=cfg.get("timeout", 1.5), decode_responses=True,
                                     **tls_options(cfg))
                reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", cfg["master_name"])
                answers[address] = "%s:%s" % (reply[0], reply[1]) if reply else None
                break
            except Exception as exc:  # noqa: BLE001 - any failure means "no answer"
                if is_auth_error(exc):
                    continue  # during a rotation: try the other password
                log("sentinel %s: no answer (%s)" % (address, type(exc).__name__))
                break
        else:
            log("sentinel %s: no answer (authentication refused)" % address)
    return answers


def decide(cfg, answers):
    """Return (master 'ip:port', why)."""
    votes = Counter(a for a in answers.values() if a)
    total = len(cfg.get("sentinels", []))
    if votes:
        master, count = votes.most_common(1)[0]
        if count > total // 2:
            return master, "named by %d of %d Sentinels" % (count, total)
        if len(votes) == 1:
            return master, "named by every Sentinel that answered (%d of %d)" % (count, total)
        log("Sentinels disagree: %s" % dict(votes))
    return "%s:%s" % (cfg["bootstrap_master"], cfg["port"]), "bootstrap master from the inventory"


def config_checksum(paths):
    digests = []
    for path in paths:
        with open(path, "rb") as handle:
            digests.append(hashlib.sha1(handle.read()).hexdigest())
    return hashlib.sha1("".join(digests).encode()).hexdigest()


def main():
    with open(sys.argv[1]) as handle:
        cfg = json.load(handle)
    answers = ask_sentinels(cfg) if redis is not None else {}
    master, why = decide(cfg, answers)
    me = "%s:%s" % (cfg["self"], cfg["port"])
    if master == me:
        args = ""
        log("starting as master (%s)" % why)
    else:
        host, _, port = master.rpartition(":")
        args = "--replicaof %s %s" % (host, port)
        log("starting as replica of %s (%s)" % (master, why))
    run_dir = os.path.dirname(cfg["state_file"])
    with open(os.path.join(run_dir, "start-role.env"), "w") as handle:
        handle.write("REDIS_ROLE_ARGS=%s\n" % args)
    state = {"master": master, "why": why, "config_checksum": config_checksum(cfg["config_files"])}
    with open(cfg["state_file"], "w") as handle:
        json.dump(state, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
