#!/usr/bin/python3
"""Start-up guard for redis-server (keybuzz.redis_ha).

Runs as ExecStartPre and decides whether this node starts as master or as a replica, with the
rule ha_rules.startup_role() (installed beside this script; docs/failover.md, "Start-up guard"):
  1. the master a majority of the configured Sentinels names;
  2. on a first deploy only (never deployed here, no Sentinel answers or refuses us): the
     bootstrap master from the inventory;
  3. otherwise the newest view known (highest config epoch) among the answering Sentinels, this
     host's Sentinel configuration file and the guard's own record of its last decision;
  4. no view at all: exit 1 (systemd retries): never start as master on a guess.
While no majority answers on a deployed node it asks again for up to "sentinel_wait" seconds
(a whole-site power cycle: the Sentinels come up a moment after Redis).
Writes REDIS_ROLE_ARGS for ExecStart to /run/redis/start-role.env, the checksum of the
configuration it starts with to the state file (Ansible compares it to decide on restarts), and
its decision to "record_file" (data directory: it survives a reboot).
"""
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# In the repository the rules live in plugins/module_utils (tests import this file from there).
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'plugins', 'module_utils'))
import ha_rules  # noqa: E402  (installed beside this script by the redis_node role)

from concurrent.futures import ThreadPoolExecutor

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - python3-redis is installed by the role
    redis = None


def log(msg):
    sys.stderr.write("redis-start-role: %s\n" % msg)
    sys.stderr.flush()


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


def master_view(reply, source):
    """SENTINEL MASTER reply (flat list or dict) -> {'master', 'epoch', 'source'}."""
    if isinstance(reply, (list, tuple)):
        reply = dict(zip(reply[::2], reply[1::2]))
    epoch = reply.get("config-epoch")
    return {"master": "%s:%s" % (reply["ip"], reply["port"]),
            "epoch": int(epoch) if epoch is not None else None, "source": source}


def ask_sentinel(cfg, address):
    """('view', {...}) | ('unknown', None) (answers, no such master) | ('refused', None) | ('down', reason)."""
    host, _, port = address.rpartition(":")
    for password in sentinel_passwords(cfg):
        try:
            # One try per round (redis-py 6+ retries by default): the guard's own loop asks again.
            client = redis.Redis(host=host, port=int(port), password=password,
                                 socket_timeout=cfg.get("timeout", 1.5),
                                 socket_connect_timeout=cfg.get("timeout", 1.5), decode_responses=True,
                                 retry=Retry(NoBackoff(), 0), **tls_options(cfg))
            try:
                reply = client.execute_command("SENTINEL", "MASTER", cfg["master_name"])
            finally:
                client.close()
            return "view", master_view(reply, "Sentinel %s" % address)
        except Exception as exc:  # noqa: BLE001 - any failure means "no answer"
            if is_auth_error(exc):
                continue  # during a rotation: try the other password
            if "No such master" in str(exc):
                return "unknown", None
            return "down", type(exc).__name__
    return "refused", None


def ask_sentinels(cfg, quiet=False):
    """Views of the answering Sentinels, and how many refused our password (``quiet``: log nothing)."""
    answers, refused = [], 0
    addresses = cfg.get("sentinels", [])
    if redis is None:
        replies = [("down", "no redis-py")] * len(addresses)
    else:  # all at once: a round costs one timeout, also when a partition drops every packet
        with ThreadPoolExecutor(max_workers=max(1, len(addresses))) as pool:
            replies = list(pool.map(lambda a: ask_sentinel(cfg, a), addresses))
    for address, (status, view) in zip(addresses, replies):
        if status == "view":
            answers.append(view)
        elif status == "unknown":
            answers.append({"master": None, "epoch": None, "source": "Sentinel %s" % address})
        elif status == "refused":
            refused += 1
            if not quiet:
                log("sentinel %s refused the password: something runs there, with other credentials" % address)
        elif not quiet:
            log("sentinel %s: no answer (%s)" % (address, view))
    return answers, refused


def sentinel_file_view(path, name):
    """The master this host's Sentinel last recorded (its configuration file), or None."""
    master, epoch = None, None
    try:
        with open(path) as handle:
            for line in handle:
                words = line.split()
                if len(words) >= 5 and words[:3] == ["sentinel", "monitor", name]:
                    master = "%s:%s" % (words[3], words[4])
                elif len(words) == 4 and words[:3] == ["sentinel", "config-epoch", name]:
                    epoch = int(words[3])
    except (OSError, ValueError):
        return None
    return {"master": master, "epoch": epoch, "source": "this host's Sentinel configuration"} if master else None


def read_record(path):
    try:
        with open(path) as handle:
            record = json.load(handle)
        return {"master": record["master"], "epoch": record.get("epoch"), "source": "this node's last start"}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(path, master, epoch):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump({"master": master, "epoch": epoch, "at": int(time.time())}, handle)
    os.rename(tmp, path)


def deployed(cfg, local_views):
    """The node ran under the collection before: marker, AOF data, or a recorded master. Not an
    RDB file: the distribution's own instance (appendonly no) leaves one when the package's unit
    is stopped on a first deploy."""
    data_dir = cfg.get("data_dir", "/var/lib/redis")
    marks = [cfg.get("deployed_marker"), os.path.join(data_dir, "appendonlydir")]
    return bool(local_views) or any(path and os.path.exists(path) for path in marks)


def config_checksum(paths):
    digests = []
    for path in paths:
        with open(path, "rb") as handle:
            digests.append(hashlib.sha1(handle.read()).hexdigest())
    return hashlib.sha1("".join(digests).encode()).hexdigest()


def decide(cfg):
    """Ask, retrying while a deployed node sees no majority; returns ha_rules.startup_role()."""
    local = [v for v in (sentinel_file_view(cfg.get("sentinel_config", ""), cfg["master_name"]),
                         read_record(cfg.get("record_file", ""))) if v]
    was_deployed = deployed(cfg, local)
    me = "%s:%s" % (cfg["self"], cfg["port"])
    bootstrap = "%s:%s" % (cfg["bootstrap_master"], cfg["port"])
    wait = float(cfg.get("sentinel_wait", 10))
    deadline = time.monotonic() + wait
    rounds = 0
    while True:
        last = time.monotonic() >= deadline
        answers, refused = ask_sentinels(cfg, quiet=rounds > 0 and not last)
        role, master, why = ha_rules.startup_role(me, len(cfg.get("sentinels", [])), answers, local,
                                                  was_deployed, bootstrap, refused)
        if why.startswith("named by") or not was_deployed or last:
            return role, master, why, (answers, local)
        if rounds == 0:
            log("%s; asking again every second for up to %.0f s" % (why.partition(":")[0], wait))
        rounds += 1
        time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))


def main():
    with open(sys.argv[1]) as handle:
        cfg = json.load(handle)
    role, master, why, (answers, local) = decide(cfg)
    if role == "wait":
        log("not starting: %s" % why)
        return 1
    master_text = ha_rules.text(master)
    if role == "master":
        args = ""
        log("starting as master (%s)" % why)
    else:
        host, port = master
        args = "--replicaof %s %s" % (host, port)
        log("starting as replica of %s (%s)" % (master_text, why))
    run_dir = os.path.dirname(cfg["state_file"])
    with open(os.path.join(run_dir, "start-role.env"), "w") as handle:
        handle.write("REDIS_ROLE_ARGS=%s\n" % args)
    state = {"master": master_text, "role": role, "why": why, "config_checksum": config_checksum(cfg["config_files"])}
    with open(cfg["state_file"], "w") as handle:
        json.dump(state, handle)
    if cfg.get("record_file"):
        record(cfg["record_file"], master, answers, local)
    return 0


def record(path, master, answers, local):
    """Keep the decision for the next cold start. Never fails the start."""
    def epochs_in(views):
        return [v["epoch"] for v in views if ha_rules.address(v.get("master")) == master and v["epoch"] is not None]
    try:
        # The epoch the answering Sentinels give this master; a local record's only when none of them
        # names it (a hand-written or old record's epoch is not carried over once the Sentinels speak).
        epochs = epochs_in(answers) or epochs_in(local)
        write_record(path, ha_rules.text(master), max(epochs) if epochs else None)
    except Exception as exc:  # noqa: BLE001 - the record is a hint for later, not a condition to start
        log("cannot record the decision in %s: %s" % (path, exc))


if __name__ == "__main__":
    sys.exit(main())
