"""What the default path (no aggregation) keeps out of memory: its code is
loaded only when configured (every imported module is memory for the life of
Fluent Bit)."""
import subprocess
import sys


def test_the_plugin_imports_no_kpl_code_until_aggregation_is_configured():
    code = ("import sys, fluentbit_kinesis.plugin\n"
            "print(sorted(m for m in sys.modules if m.startswith('fluentbit_kinesis.pipeline.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "fluentbit_kinesis.pipeline.shaping" in loaded  # the check sees the package's modules
    for module in ("aggregation", "kpl_native", "kpl_table"):
        assert f"fluentbit_kinesis.pipeline.{module}'" not in loaded
