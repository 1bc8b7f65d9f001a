"""The package's layout rules, checked by reading the source: the route table
lives in app.py, each table's SQL in its data module, lower layers never
reach up into the handlers, and only chatserver/ai/ knows the AI backends' names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from chatserver.ai.registry import BACKENDS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chatserver"
TABLES = sorted(set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)",
                               "\n".join(p.read_text() for p in (ROOT / "migrations").glob("*.sql")))))
# a statement naming a table: the keyword, then the table name
NAMES_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+(" + "|".join(TABLES) + r")\b")
LOWER_LAYERS = ("data", "live", "jobs", "ai", "files", "portable")
BACKEND_NAMES = {backend.name for backend in BACKENDS}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


# Parsed once, at collection: CPython 3.11 can refuse ast.parse later in a
# process where a RecursionError happened (the deep-JSON tests cause some).
TREES = {path: ast.parse(path.read_text()) for path in modules()}


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


SAMPLE = ast.parse('QUERY = """\n    SELECT id FROM messages WHERE chat_id = %s\n"""\n')
BACKEND_SAMPLE = ast.parse(
    'if settings.AI_BACKEND == "openai": pass\n'
    'KNOWN = ("", "callback", "builtin")\n'
    'match backend:\n    case "callback": pass\n'
    'tag = "openai"\n'
)


def string_constants(tree: ast.AST) -> list[str]:
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def chatserver_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(TREES[path]):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chatserver"):
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("chatserver")}
    return found


def test_the_migrations_name_the_tables_the_check_knows():
    assert {"users", "chats", "messages", "files"} <= set(TABLES)


def test_every_route_is_registered_in_app_py():
    registering = re.compile(r"\.(?:router\.)?add_(?:get|post|put|patch|delete|route|static|view|routes)\(")
    offenders = [name(p) for p in modules() if p.name != "app.py" and registering.search(p.read_text())]
    assert offenders == []


@pytest.mark.parametrize("table", TABLES)
def test_sql_naming_a_table_lives_in_that_tables_data_module(table):
    home = PACKAGE / "data" / f"{table}.py"
    assert home.exists(), f"table {table} has no data module"
    offenders = [name(p) for p in modules() if p != home
                 and any(table in NAMES_TABLE.findall(text) for text in string_constants(TREES[p]))]
    assert offenders == []


@pytest.mark.parametrize("layer", LOWER_LAYERS)
def test_lower_layers_never_import_the_handlers(layer):
    offenders = {name(p): sorted(i for i in chatserver_imports(p) if i.startswith("chatserver.api"))
                 for p in (PACKAGE / layer).rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_infrastructure_modules_never_import_the_handlers():
    top = [p for p in PACKAGE.glob("*.py") if p.name != "app.py"]
    offenders = {name(p): sorted(i for i in chatserver_imports(p) if i.startswith("chatserver.api"))
                 for p in top}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_data_modules_import_only_the_database_helper():
    offenders = {name(p): sorted(i for i in chatserver_imports(p) if not i.startswith("chatserver.db"))
                 for p in (PACKAGE / "data").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_scan_finds_sql_in_a_string():
    assert NAMES_TABLE.findall(string_constants(SAMPLE)[0]) == ["messages"]


def test_module_names_are_unique_across_the_package():
    """A name says what a module holds: no two modules share one, and none is
    named like a package (data/ modules are named for their tables)."""
    stems = [p.stem for p in modules() if p.name != "__init__.py"]
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    reused = sorted({s for s in stems if stems.count(s) > 1})
    like_a_package = sorted(name(p) for p in modules()
                            if p.stem in packages and p.parent.name != "data")
    assert (reused, like_a_package) == ([], [])


def backend_name_uses(tree: ast.AST) -> list[int]:
    """Lines that compare a value with a backend's name (`==`, `in`, `case`)
    or list two or more of the names (a tuple to check against, a Literal)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            items = [item for operand in operands
                     for item in (operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand])]
            if any(isinstance(item, ast.Constant) and item.value in BACKEND_NAMES for item in items):
                found.append(node.lineno)
        elif isinstance(node, ast.MatchValue):
            if isinstance(node.value, ast.Constant) and node.value.value in BACKEND_NAMES:
                found.append(node.lineno)
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            names = {item.value for item in node.elts if isinstance(item, ast.Constant)} & BACKEND_NAMES
            if len(names) >= 2:
                found.append(node.lineno)
    return sorted(set(found))


def test_only_the_ai_folder_compares_backend_names():
    """A new backend touches its module, the registry and the docs: nothing
    else may branch on which backend runs; it asks the chosen one instead."""
    offenders = {name(p): backend_name_uses(TREES[p]) for p in modules() if PACKAGE / "ai" not in p.parents}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_scan_finds_backend_name_comparisons():
    assert backend_name_uses(BACKEND_SAMPLE) == [1, 2, 4]
