"""What users run beside Fluent Bit: the `fluentbit-kinesis` command (cli),
building kinesis.so (build) and reading Fluent Bit config files
(fluent_bit_config). Not loaded by the plugin at run time.

May import anything of the package.
"""
