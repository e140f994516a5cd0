"""fluentbit-kinesis: a Fluent Bit output plugin for Amazon Kinesis Data Streams."""
__version__ = "0.1.0"
