"""The package's layout (ARCHITECTURE.md) holds in the code: imports only go
down between the subpackages, and every module and function stays short
enough to read in one sitting; the C side is split by concern, with one
header for what the shim's files share."""
import re
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fluentbit_kinesis"
# what each part may import of the package (itself always)
ALLOWED = {
    "telemetry": set(),
    "pipeline": {"telemetry", "_fastjson"},
    "delivery": {"pipeline", "telemetry"},
    "config": {"telemetry"},
    "plugin": {"config", "pipeline", "delivery", "telemetry"},
    "tools": {"config", "plugin", "pipeline", "delivery", "telemetry", "__init__"},
    "__init__": set(),
}
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def part_of(module_path):
    """pipeline, delivery, telemetry, tools, or a top module's name."""
    relative = module_path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_parts(module_path):
    """(line, part) for every import of the package in a module."""
    tree = ast.parse(module_path.read_text())
    package = module_path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]  # e.g. (fluentbit_kinesis, delivery)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] + tuple((node.module or "").split(".") if node.module else ())
                names = [base + (alias.name,) for alias in node.names] if not node.module else [base]
            else:
                names = [tuple(node.module.split("."))]
        elif isinstance(node, ast.Import):
            names = [tuple(alias.name.split(".")) for alias in node.names]
        else:
            continue
        for name in names:
            if name[0] == "fluentbit_kinesis":
                found.append((node.lineno, _part_named(name[1] if len(name) > 1 else "__init__")))
    return found


def _part_named(name):
    """A module or subpackage of the package, or a name that fluentbit_kinesis/__init__.py defines."""
    exists = (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").exists() or list(PACKAGE.glob(f"{name}.*.so"))
    return name if exists else "__init__"


def test_the_parts_are_there_with_what_they_own():
    for part in ("pipeline", "delivery", "telemetry", "tools"):
        doc = ast.get_docstring(ast.parse((PACKAGE / part / "__init__.py").read_text()))
        assert doc and "import" in doc, f"{part}/__init__.py must say what it owns and may import"
    assert {part_of(p) for p in modules()} == {"__init__", "config", "plugin", "pipeline", "delivery",
                                               "telemetry", "tools"}


def test_the_checker_sees_imports():
    # so the rule below cannot pass by reading nothing
    assert {part for _, part in imported_parts(PACKAGE / "plugin.py")} >= {"config", "pipeline", "delivery",
                                                                          "telemetry"}
    assert {part for _, part in imported_parts(PACKAGE / "pipeline" / "shaping.py")} == {"pipeline"}
    assert "pipeline" in {part for _, part in imported_parts(PACKAGE / "delivery" / "acknowledgements.py")}


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path):
    part = part_of(path)
    allowed = ALLOWED.get(part, set()) | {part}
    wrong = [(line, target) for line, target in imported_parts(path) if target not in allowed]
    assert not wrong, f"{path.relative_to(ROOT)} ({part}) may import only {sorted(allowed)}: {wrong}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_short_modules_and_functions(path):
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)}: over {MAX_MODULE_LINES} lines"
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.relative_to(ROOT)}: functions over {MAX_FUNCTION_LINES} lines: {long}"


CSRC = ROOT / "csrc"


@pytest.mark.parametrize("path", sorted(CSRC.glob("*.[ch]")), ids=lambda p: p.name)
def test_short_c_files(path):
    assert path.read_text().count("\n") <= MAX_MODULE_LINES, f"csrc/{path.name}: over {MAX_MODULE_LINES} lines"


def test_the_shim_shares_one_header_and_architecture_names_every_c_file():
    shim = [p for p in CSRC.glob("*.c") if not p.name.startswith("fastjson")]
    assert len(shim) >= 5
    for path in shim:  # the header before system headers (Python.h may come first, as Python asks)
        includes = [name for name in re.findall(r'^#include [<"]([^>"]+)[>"]', path.read_text(), re.M)
                    if name != "Python.h"]
        assert includes and includes[0] == "fbk.h", path.name
    architecture = (ROOT / "ARCHITECTURE.md").read_text()
    missing = [p.name for p in CSRC.glob("*.[ch]") if p.name not in architecture]
    assert not missing, f"ARCHITECTURE.md does not say what these own: {missing}"
