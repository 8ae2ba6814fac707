"""``ambry-server [config-file] [--directive value ...]``: what redis-server accepts.

Start-up follows redis-server's: parse the command line into config text,
load the file (``-`` reads stdin) and the options, report a bad directive
with Redis's fatal text and exit code 1, daemonize if asked, write the pid
file, then serve on uvloop until SIGTERM/SIGINT or SHUTDOWN.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys

from .config import Config, ConfigError
from .log import log

AMBRY_VERSION = "0.1.0"


def _daemonize() -> None:
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    fd = os.open(os.devnull, os.O_RDWR)
    for i in (0, 1, 2):
        os.dup2(fd, i)


def build_config(argv: list[str]) -> Config:
    """The configuration from the command line (and the files it names);
    ``user`` lines are checked as they are read, as Redis does."""
    from .acl import validate_user_directive

    cfg = Config()
    cfg.validate_user = lambda a: validate_user_directive(a, cfg.users)
    cfg.apply_args(argv)
    return cfg


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-v", "--version"):
        print(f"Ambry server v={AMBRY_VERSION} (Redis 7.0.15 compatible) bits=64")
        return
    if argv and argv[0] in ("-h", "--help"):
        print(
            "Usage: ambry-server [/path/to/redis.conf] [options] [-]\n"
            "       ambry-server - (read config from stdin)\n"
            "       ambry-server -v or --version\n"
            "       ambry-server -h or --help\n\n"
            "Examples:\n"
            "       ambry-server (run the server with default conf)\n"
            "       ambry-server /etc/redis/6379.conf\n"
            "       ambry-server --port 7777\n"
            "       ambry-server /etc/myredis.conf --loglevel verbose -\n"
        )
        return
    try:
        cfg = build_config(argv)
    except ConfigError as e:
        if e.fatal_log:
            # Redis reports an unreadable config file through its log.
            log.role = "C"
            log.warning(str(e).strip())
        else:
            sys.stderr.write(str(e))
            sys.stderr.flush()
        sys.exit(1)

    if cfg.daemonize:
        _daemonize()
    log.configure(cfg.loglevel, cfg.logfile)
    pid = os.getpid()
    log.role = "C"
    log.warning("oO0OoO0OoO0Oo Ambry is starting oO0OoO0OoO0Oo")
    log.warning(
        f"Ambry version={AMBRY_VERSION}, Redis version=7.0.15, bits=64, commit=00000000, modified=0, "
        f"pid={pid}, just started"
    )
    if cfg.config_file is None:
        log.warning(
            "Warning: no config file specified, using the default config. In order to specify a config "
            "file use ambry-server /path/to/redis.conf"
        )
    else:
        log.warning("Configuration loaded")
    log.role = "M"
    if cfg.pidfile:
        try:
            with open(cfg.pidfile, "w") as f:
                f.write(f"{pid}\n")
        except OSError as e:
            log.warning(f"Failed to write PID file: {e.strerror}")

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        pass

    from . import commands  # noqa: F401  (registers every command)
    from .core import Server

    srv = Server(cfg)
    commands.install(srv)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    log.notice(f"Running mode=standalone, port={cfg.port}.")
    log.warning("Server initialized")
    # Signal handlers go in before the listeners open: a client may see the
    # server ready (and a supervisor send SIGTERM) before start() returns.
    srv.loop = loop
    srv.install_signal_handlers()
    try:
        loop.run_until_complete(srv.start())
    except SystemExit as e:
        sys.exit(e.code)
    # The modules, the command table and the config live as long as the
    # process: keep them out of the cyclic collector's generations, so its
    # full passes only walk the dataset and clients.
    gc.freeze()
    try:
        loop.run_forever()
    finally:
        for s in srv.servers:
            s.close()
        loop.close()
    sys.exit(srv.exit_code)


if __name__ == "__main__":
    main()
