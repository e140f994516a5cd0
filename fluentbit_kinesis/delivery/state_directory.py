"""Where an instance keeps its durable state (the ledger and the hand-off
spool), chosen as system services choose theirs: `ledger_path` when set;
else systemd's STATE_DIRECTORY; else /var/lib/fluentbit-kinesis for root;
else the user's state directory ($XDG_STATE_HOME or ~/.local/state). The
first place that is (or can be made) a writable directory wins; it is
created 0700. `ledger_path off`, or no writable place, means no durable
state: flushes then wait for delivery (plugin.py), which cannot lose a
record either."""
import os

from .ledger import Ledger, LedgerError

OFF = "off"
SYSTEM_DIRECTORY = "/var/lib/fluentbit-kinesis"
APP = "fluentbit-kinesis"


def candidates(environ=os.environ, euid=None):
    """(directory, where it comes from) in the order they are tried."""
    euid = os.geteuid() if euid is None else euid
    systemd = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd:
        yield systemd, "STATE_DIRECTORY"
    if euid == 0:
        yield SYSTEM_DIRECTORY, "the system state directory"
    xdg = environ.get("XDG_STATE_HOME")
    home = environ.get("HOME") or os.path.expanduser("~")
    if xdg:
        yield os.path.join(xdg, APP), "XDG_STATE_HOME"
    elif home and home != "/":
        yield os.path.join(home, ".local", "state", APP), "the user's state directory"


def usable(directory):
    """True when `directory` is, or could be made, a writable directory (0700 when made)."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError:
        return False
    return os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK)


def choose(ledger_path, environ=os.environ, euid=None):
    """(directory or None, how it was chosen, for the start-up line)."""
    if ledger_path == OFF:
        return None, "ledger_path off"
    if ledger_path:
        return ledger_path, "ledger_path"
    tried = []
    for directory, source in candidates(environ, euid):
        if usable(directory):
            return directory, f"the default: {source}"
        tried.append(directory)
    return None, "no writable state directory (tried " + ", ".join(tried or ["none"]) + ")"


def open_ledger(ledger_path, name, log):
    """(Ledger, state directory or None): the ledger in the chosen directory,
    which also holds the hand-off spool; without one, in memory only."""
    directory, how = choose(ledger_path)
    if directory is not None:
        try:
            ledger = Ledger(directory, name, logger=log)
            log.info(f"durable state (ledger, hand-off spool) in {directory} ({how})")
            return ledger, directory
        except LedgerError as exc:
            if how == "ledger_path":
                raise  # a wrong option fails Init
            how = str(exc)
    log.warn(f"no durable state ({how}): a chunk Fluent Bit replays after a restart is sent whole "
             "again, and flushes on Fluent Bit's engine thread wait for their delivery")
    return Ledger(None, name, logger=log), None
