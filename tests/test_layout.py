"""The package's layout rules, checked by reading the source: the route table
lives in app.py, each table's SQL in its data module, and lower layers never
reach up into the handlers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chatserver"
TABLES = sorted(set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)",
                               "\n".join(p.read_text() for p in (ROOT / "migrations").glob("*.sql")))))
# a statement naming a table: the keyword, then the table name
NAMES_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+(" + "|".join(TABLES) + r")\b")
LOWER_LAYERS = ("data", "live", "jobs", "ai", "files", "portable")
# top-level modules that wire the layers together; the others are infrastructure
WIRING = ("app.py", "job_table.py")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


# Parsed once, at collection: CPython 3.11 can refuse ast.parse later in a
# process where a RecursionError happened (the deep-JSON tests cause some).
TREES = {path: ast.parse(path.read_text()) for path in modules()}


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


SAMPLE = ast.parse('QUERY = """\n    SELECT id FROM messages WHERE chat_id = %s\n"""\n')


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


def test_jobs_import_only_infrastructure():
    allowed = ("chatserver.jobs.", *(f"chatserver.{p.stem}." for p in PACKAGE.glob("*.py") if p.name not in WIRING))
    offenders = {name(p): sorted(i for i in chatserver_imports(p) if not f"{i}.".startswith(allowed))
                 for p in (PACKAGE / "jobs").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_app_py_imports_the_wiring():
    wiring = tuple(f"chatserver.{Path(module).stem}." for module in WIRING)
    offenders = {name(p): sorted(i for i in chatserver_imports(p) if f"{i}.".startswith(wiring))
                 for p in modules() if p.name != "app.py"}
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
