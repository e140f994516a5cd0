"""field_format: records normalized to the schema a consumer speaks (ECS,
Splunk CIM, Microsoft ASIM, Google SecOps UDM, OCSF, ArcSight CEF, IBM QRadar
LEEF, Sentinel CommonSecurityLog, OpenTelemetry logs).

The mapping is data: field_formats.csv, one row per concept (event time,
message, severity, addresses, ...), one column per schema, plus rows of the
values that differ between schemas (severity scales, outcomes, directions).
table.py reads it; values.py converts a value into and out of a schema's type;
normalizer.py detects a record's source schema, reads its concepts and writes
the target; ocsf.py and otel.py hold what only those two schemas need;
compiled.py makes one Python function per record shape; plans.py makes the
plan per record shape that the native path (../fastformat.py) runs.

Owns no I/O and no state across records. May import: the standard library,
orjson. Never ..delivery.
"""
from .normalizer import FORMATS, NotNormalized, Normalizer  # noqa: F401
