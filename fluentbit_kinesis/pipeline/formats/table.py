"""field_formats.csv, read once: the cells of each schema as key paths, and
the value rows (severity:info, outcome:success, ...) both ways.

A cell is a field name; `a|b` lists names read (the first is written); in the
nested schemas (fluentbit, ecs, udm, ocsf) dots are levels of JSON objects;
in otel, `attributes/KEY` and `resource/KEY` are keys of the LogRecord's and
the resource's attribute lists; a `:list` suffix writes the value as an
array, `:str` and `:int` as text or number."""
import csv
import io
from dataclasses import dataclass, field
from importlib import resources

NESTED = frozenset({"fluentbit", "ecs", "udm", "ocsf"})
TABLE_FILE = "field_formats.csv"


@dataclass(frozen=True)
class Cell:
    path: tuple  # keys from the record's top
    suffix: str = ""  # "", "list", "str" or "int"


@dataclass
class Table:
    schemas: list
    concepts: list  # (concept, type) in the table's order
    cells: dict = field(default_factory=dict)  # schema -> concept -> [Cell] (first: the one written)
    values: dict = field(default_factory=dict)  # (kind, schema) -> {value name: cell text}
    reverse: dict = field(default_factory=dict)  # (kind, schema) -> {cell text lower: value name}
    settings: dict = field(default_factory=dict)  # (row, schema) -> text, e.g. ("time:format", "ecs")


def _cell(schema, text):
    name, _, suffix = text.partition(":")
    path = tuple(name.split(".")) if schema in NESTED else (name,)
    return Cell(path, suffix)


def parse(text):
    rows = list(csv.DictReader(io.StringIO(text)))
    schemas = [name for name in rows[0] if name not in ("concept", "type")]
    table = Table(schemas, [])
    for row in rows:
        concept, kind = row["concept"], row["type"]
        if kind:  # a concept
            table.concepts.append((concept, kind))
            for schema in schemas:
                cells = [_cell(schema, part) for part in row[schema].split("|") if part]
                table.cells.setdefault(schema, {})[concept] = cells
            continue
        group, _, name = concept.partition(":")
        for schema in schemas:
            cell = row[schema]
            if group in ("case", "time"):
                table.settings[(concept, schema)] = cell
            elif cell:
                table.values.setdefault((group, schema), {})[name] = cell
                table.reverse.setdefault((group, schema), {}).setdefault(cell.lower(), name)
    return table


def load():
    return parse(resources.files(__package__).joinpath(TABLE_FILE).read_text(encoding="utf-8"))
