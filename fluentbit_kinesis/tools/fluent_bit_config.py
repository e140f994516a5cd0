"""Reads the kinesis [OUTPUT] sections of a Fluent Bit config, offline.

Classic format (INI-like, `@INCLUDE` with globs, `@SET KEY=VALUE`) and YAML
(`env:`, `includes:`, `pipeline: outputs:`). `${VAR}` and `${VAR:-default}` are
replaced from @SET / env: variables, then the process environment. As in
Fluent Bit, an empty variable counts as unset, and an unset one without a
default becomes empty and is reported as a warning.
"""
import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PLUGIN_NAME = "kinesis"
_VARIABLE = re.compile(r"\$\{([^}:]+)(?::-([^}]*))?\}")


@dataclass
class Section:
    where: str                                      # file:line
    properties: dict = field(default_factory=dict)  # lower-case key -> value text


@dataclass
class Parsed:
    outputs: list = field(default_factory=list)     # Section of every kinesis output
    warnings: list = field(default_factory=list)
    errors: list = field(default_factory=list)


class _Variables:
    def __init__(self, environ, parsed):
        self.defined = {}
        self.environ = environ
        self.parsed = parsed

    def expand(self, text, where):
        def one(match):
            name, default = match.groups()
            value = self.defined.get(name) or self.environ.get(name)
            if value:
                return value
            if default is not None:
                return default
            self.parsed.warnings.append(f"{where}: variable ${{{name}}} is not set; Fluent Bit uses an empty value")
            return ""
        return _VARIABLE.sub(one, text)


def read(path, environ=os.environ):
    path = Path(path)
    parsed = Parsed()
    variables = _Variables(environ, parsed)
    if path.suffix.lower() in (".yaml", ".yml"):
        _read_yaml(path, variables, parsed, set())
    else:
        sections = []
        _read_classic(path, variables, parsed, set(), sections, path.resolve().parent)
        parsed.outputs = [s for s in sections if _is_ours(s)]
    return parsed


def _is_ours(section):
    return section.properties.get("name", "").strip().lower() == PLUGIN_NAME


def _read_once(path, parsed, seen):
    """The text of a config file, or None (an error noted) when it cannot be
    read or was already included (an include loop)."""
    if path in seen:
        parsed.errors.append(f"{path}: included twice (include loop)")
        return None
    seen.add(path)
    try:
        return path.read_text()
    except OSError as exc:
        parsed.errors.append(f"cannot read {path}: {exc.strerror}")
        return None


# ---- classic -----------------------------------------------------------------------

def _read_classic(path, variables, parsed, seen, sections, root):
    """Relative @INCLUDE paths are relative to the main file's directory, as in Fluent Bit."""
    path = path.resolve()
    text = _read_once(path, parsed, seen)
    if text is None:
        return
    lines = text.splitlines()
    section = None
    for number, raw in enumerate(lines, 1):
        where = f"{path}:{number}"
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("@INCLUDE"):
            pattern = variables.expand(line[len("@INCLUDE"):].strip(), where)
            pattern = str(root / pattern) if not os.path.isabs(pattern) else pattern
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            for included in matches:
                _read_classic(Path(included), variables, parsed, seen, sections, root)
            section = None
            continue
        if line.upper().startswith("@SET"):
            name, sep, value = line[len("@SET"):].strip().partition("=")
            if not sep or not name.strip():
                parsed.errors.append(f"{where}: @SET needs KEY=VALUE")
            else:
                variables.defined[name.strip()] = variables.expand(value.strip(), where)
            continue
        if line.startswith("["):
            name = line.strip("[]").strip().upper()
            section = Section(where) if name == "OUTPUT" else None
            if section is not None:
                sections.append(section)
            continue
        if section is None:
            continue
        key, _, value = line.replace("\t", " ").partition(" ")
        section.properties.setdefault(key.lower(), variables.expand(value.strip(), where))


# ---- YAML --------------------------------------------------------------------------

def _read_yaml(path, variables, parsed, seen):
    path = path.resolve()
    text = _read_once(path, parsed, seen)
    if text is None:
        return
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        parsed.errors.append(f"{path}: not valid YAML: {exc}")
        return
    if not isinstance(document, dict):
        parsed.errors.append(f"{path}: the top level must be a map")
        return
    for name, value in (document.get("env") or {}).items():
        variables.defined[str(name)] = variables.expand(_text(value), f"{path}: env")
    for included in document.get("includes") or []:
        included = Path(variables.expand(str(included), f"{path}: includes"))
        _read_yaml(included if included.is_absolute() else path.parent / included, variables, parsed, seen)
    outputs = (document.get("pipeline") or {}).get("outputs") or []
    for index, output in enumerate(outputs):
        where = f"{path}: pipeline.outputs[{index}]"
        if not isinstance(output, dict):
            parsed.errors.append(f"{where}: must be a map")
            continue
        properties = {str(k).lower(): variables.expand(_text(v), where) for k, v in output.items()
                      if not isinstance(v, (dict, list))}  # processors: Fluent Bit's, not ours
        section = Section(where, properties)
        if _is_ours(section):
            parsed.outputs.append(section)


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
