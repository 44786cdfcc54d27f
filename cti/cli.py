"""`cti` command line: serve, check-config, prompts, passwd, worker, phone."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from cti.config import ConfigError, Settings, load_settings

DEFAULT_CONFIG = Path("config/cti.yaml")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


async def _serve(settings: Settings) -> int:
    from cti.controller.gateway import Gateway

    gw = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await gw.start()
    except (ConfigError, asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as e:  # start() has already stopped whatever it had started
        print(f"cti: cannot start: {e}", file=sys.stderr, flush=True)
        return 1
    print(f"cti: {settings.gateway_name} is running", flush=True)
    for line in gw.listening():
        print(f"  {line}", flush=True)
    print("  Ctrl-C stops everything.", flush=True)
    await stop.wait()
    print("cti: stopping", flush=True)
    await gw.stop()
    print("cti: stopped", flush=True)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from cti.procutil import raise_open_files_limit

    _setup_logging(args.log_level)
    settings = load_settings(args.config)
    before, after = raise_open_files_limit()
    # Debug only: a config error found later must stay the one line on stderr.
    logging.getLogger("cti").debug("open files limit %d -> %d", before, after)
    return asyncio.run(_serve(settings))


def cmd_check_config(args: argparse.Namespace) -> int:
    from cti.controller.gateway import prepare

    settings = load_settings(args.config)
    prepare(settings)
    print(f"{args.config}: ok ({len(settings.advisors)} advisors, "
          f"{settings.workers.count} media workers)")
    return 0


def cmd_prompts(args: argparse.Namespace) -> int:
    from cti.plugins import PluginHost
    from cti.prompts import main_build

    settings = load_settings(args.config)
    argv = ["build", "--texts", str(settings.path(settings.prompts.texts)),
            "--cache", str(settings.path(settings.prompts.cache_dir)),
            "--override", str(settings.path(settings.prompts.override_dir))]
    host = PluginHost()
    host.load(settings.plugins, str(settings.source))
    prompts = {name: p.manifest.prompts for name, p in host.plugins.items()}
    if args.installed:
        prompts |= _installed_prompts(set(host.plugins))
    for name, path in prompts.items():
        if path is not None:
            argv += ["--plugin", f"{name}={path}"]
    return main_build(argv)


def _installed_prompts(enabled: set[str]) -> dict[str, Any]:
    """The prompt files of installed plugins that are not enabled (from their
    manifests), so enabling one later needs no rebuild."""
    from cti.plugins import available_plugins

    out: dict[str, Any] = {}
    for name, ep in available_plugins().items():
        if name in enabled:
            continue
        try:
            manifest = ep.load()().cti_plugin_manifest()
        except Exception as e:  # a broken plugin does not stop the others' prompts
            print(f"plugin {name}: no prompts built ({type(e).__name__}: {e})",
                  file=sys.stderr)
            continue
        out[name] = getattr(manifest, "prompts", None)
    return out


def cmd_plugins(args: argparse.Namespace) -> int:
    """Installed plugins, and for the enabled ones: hooks, routes, events, settings."""
    from cti.plugins import PluginHost, available_plugins
    from cti.plugins.describe import describe_plugins

    settings = load_settings(args.config)
    host = PluginHost()
    host.load(settings.plugins, str(settings.source))
    for line in describe_plugins(host, available_plugins()):
        print(line)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from cti.media.worker import main

    return main(args.rest)


def cmd_phone(args: argparse.Namespace) -> int:
    from cti.media.phone import main

    return main(args.rest)


def _config_realm(path: Path) -> str:
    """sip.realm of the config without validating it (it may lack this very hash)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return str(data["sip"]["realm"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return "cti.local"


def cmd_passwd(args: argparse.Namespace) -> int:
    """Print the two config lines of an advisor's password: argon2id and SIP HA1."""
    import getpass

    from cti.api.auth import hash_password, sip_ha1
    from cti.config import NAME_RE

    if not NAME_RE.match(args.name):
        print(f"cti: invalid advisor name {args.name!r} (letters, digits, '.', '_', '-')",
              file=sys.stderr)
        return 2
    password = args.password
    if password is None:
        if sys.stdin.isatty():
            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("again: ") != password:
                print("cti: the passwords differ", file=sys.stderr)
                return 1
        else:  # scripts: the first line of stdin
            password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("cti: a password needs at least 8 characters", file=sys.stderr)
        return 1
    realm = args.realm or _config_realm(args.config)
    print(f"    password_hash: \"{hash_password(password)}\"")
    print(f"    sip_ha1: \"{sip_ha1(args.name, realm, password)}\"   # realm {realm}")
    return 0


def cmd_softphone(args: argparse.Namespace) -> int:
    from cti.softphone.main import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cti", description="SIP CTI gateway for contact centres")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG,
                        help="gateway config file (default: config/cti.yaml)")

    s = sub.add_parser("serve", help="run the gateway: SIP edge, media workers, API")
    with_config(s)
    s.add_argument("--log-level", default="info")
    s.set_defaults(fn=cmd_serve)

    c = sub.add_parser("check-config", help="validate the config and prompts, then exit")
    with_config(c)
    c.set_defaults(fn=cmd_check_config)

    pr = sub.add_parser("prompts", help="prompt files")
    with_config(pr)
    pr.add_argument("action", choices=["build"])
    pr.add_argument("--installed", action="store_true",
                    help="also the prompts of installed plugins that are not enabled")
    pr.set_defaults(fn=cmd_prompts)

    pl = sub.add_parser("plugins", help="list installed and enabled plugins: hooks, "
                        "routes, events, settings")
    with_config(pl)
    pl.set_defaults(fn=cmd_plugins)

    pw = sub.add_parser("passwd", help="print an advisor's password_hash and sip_ha1 "
                        "config lines (the password is read without echo, or from stdin)")
    with_config(pw)
    pw.add_argument("name", help="the advisor's name (the SIP user name)")
    pw.add_argument("--realm", help="SIP digest realm (default: sip.realm of the config, "
                    "else cti.local)")
    pw.add_argument("--password", help="for scripts; visible in the process list")
    pw.set_defaults(fn=cmd_passwd)

    for name, fn, text in (("worker", cmd_worker, "a media worker (started by serve)"),
                           ("phone", cmd_phone, "a headless scripted SIP phone (JSON lines)")):
        w = sub.add_parser(name, help=text, add_help=False)
        w.add_argument("rest", nargs=argparse.REMAINDER)
        w.set_defaults(fn=fn)

    from cti.softphone.main import add_arguments

    sp = sub.add_parser("softphone", help="a terminal softphone for advisors")
    add_arguments(sp)
    sp.set_defaults(fn=cmd_softphone)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # `worker` and `phone` hand their options to the media engine's own parser.
    args, extra = parser.parse_known_args(argv)
    if args.fn in (cmd_worker, cmd_phone):
        args.rest = extra + args.rest
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.fn(args) or 0)
    except ConfigError as e:
        msg, config = str(e), getattr(args, "config", None)
        if config is not None and not msg.startswith((str(config), str(config.resolve()))):
            msg = f"{config}: {msg}"  # e.g. the HTTP port is taken: still name the file
        print(f"cti: config error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
