"""The `fluentbit-kinesis` command.

    fluentbit-kinesis build --output DIR      compile kinesis.so for this Python environment
    fluentbit-kinesis check -c fluent-bit.conf validate the kinesis outputs of a config, offline
"""
import argparse
import difflib
import os
import sys
from pathlib import Path

from .. import __version__, config
from . import fluent_bit_config
from ..telemetry.redact import redact

# keys of an [OUTPUT] that Fluent Bit itself reads; the plugin never sees them
FLUENT_BIT_KEYS = frozenset({
    "name", "match", "match_regex", "alias", "log_level", "log_suppress_interval", "host", "port",
    "retry_limit", "workers", "tls", "storage.total_limit_size", "event_type", "processors",
})
FLUENT_BIT_PREFIXES = ("tls.", "net.", "_debug.", "storage.")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fluentbit-kinesis", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="compile kinesis.so for this Python environment")
    build.add_argument("--output", "-o", default=".", help="directory (or .so path) to write; default: .")
    check = commands.add_parser("check", help="validate the kinesis outputs of a Fluent Bit config")
    check.add_argument("-c", "--config", required=True, help="fluent-bit.conf or fluent-bit.yaml")
    args = parser.parse_args(argv)
    if args.command == "build":
        return run_build(args.output)
    return run_check(args.config)


def run_build(output):
    from . import build  # needs cffi and a compiler: only for this command
    target = Path(output)
    if target.suffix != ".so":
        target = target / "kinesis.so"
    built = build.build(target)
    print(built)
    print(f"load it with: fluent-bit -e {built} -o kinesis -p stream=NAME -p region=REGION ...",
          file=sys.stderr)
    return 0


def run_check(path, environ=os.environ, out=sys.stdout):
    parsed = fluent_bit_config.read(path, environ)
    errors = list(parsed.errors)
    for warning in parsed.warnings:
        print(f"warning: {redact(warning, limit=None)}", file=out)
    if not parsed.outputs and not errors:
        errors.append(f"{path}: no [OUTPUT] with name {fluent_bit_config.PLUGIN_NAME}")
    for section in parsed.outputs:
        errors.extend(check_section(section, environ, out))
    for error in errors:  # an error may quote a value: a proxy URL, a line of the file
        print(f"error: {redact(error, limit=None)}", file=out)
    verdict = f"{len(parsed.outputs)} kinesis output(s), {len(errors)} error(s)"
    print(("FAILED: " if errors else "OK: ") + verdict, file=out)
    return 1 if errors else 0


def check_section(section, environ, out):
    """Validates one output with config.load, the same rules as Init; returns errors."""
    properties = section.properties
    match = properties.get("match") or properties.get("match_regex") or "(no match: receives nothing)"
    print(f"{section.where}: output kinesis, match {match}", file=out)
    errors = []
    for key in sorted(properties):
        if key in config.OPTIONS_BY_NAME or key in FLUENT_BIT_KEYS or key.startswith(FLUENT_BIT_PREFIXES):
            continue
        hint = difflib.get_close_matches(key, list(config.OPTIONS_BY_NAME), 1, 0.75)
        errors.append(f"{section.where}: unknown option '{key}'" + (f"; did you mean '{hint[0]}'?" if hint else ""))
    try:
        # as Fluent Bit does, a value that is empty after ${VAR} substitution is unset
        settings = config.load(lambda name: properties.get(name) or None, environ)
    except config.ConfigError as exc:
        errors.append(f"{section.where}: {exc}")
        return errors
    for name, value in settings.masked().items():
        if name in settings.explicitly_set:
            mark = ""
        elif getattr(settings, name) == config.OPTIONS_BY_NAME[name].default:
            mark = "  (default)"
        else:
            mark = "  (derived)"
        print(f"    {name:34} {_shown(name, value)}{mark}", file=out)
    return errors


def _shown(name, value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ("->" if name == "partition_key" else ",").join(value)
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
