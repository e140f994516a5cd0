"""What operators see: log lines (log, through Fluent Bit's own log via
fluent_bit), metrics (Fluent Bit's endpoint, the optional listener, summary
lines), and redact, the one redaction every message passes through.

May import nothing of the plugin's other packages: everything may use it.
"""
