"""The package's layout rules, checked by reading the source: the route table
lives in app.py, each table's SQL in its data module, lower layers never
reach up into the handlers, handler modules share nothing with each other
(shared checks and shapes live in modules of their own), error codes are
written only in the catalogue (chatserver/errors.py), and only chatserver/ai/
knows the AI backends' names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from chatserver.ai.registry import BACKENDS
from chatserver.errors import catalogue

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chatserver"
TABLES = sorted(set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)",
                               "\n".join(p.read_text() for p in (ROOT / "migrations").glob("*.sql")))))
# a statement naming a table: the keyword, then the table name
NAMES_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+(" + "|".join(TABLES) + r")\b")
LOWER_LAYERS = ("data", "live", "jobs", "ai", "files", "portable")
BACKEND_NAMES = {backend.name for backend in BACKENDS}
CATALOGUE = PACKAGE / "errors.py"
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


# the data modules holding a statement that writes two tables, the other one named here, where one round
# trip replaces six on every /v1 answer's path: an API call stores its chat and its messages at once
# (chats.insert_asked); reads across tables go through functions of the other table's (migrations)
ACROSS = {"messages": {"chats.py"}}


@pytest.mark.parametrize("table", TABLES)
def test_sql_naming_a_table_lives_in_that_tables_data_module(table):
    home = PACKAGE / "data" / f"{table}.py"
    assert home.exists(), f"table {table} has no data module"
    allowed = {PACKAGE / "data" / module for module in ACROSS.get(table, ())}
    offenders = [name(p) for p in modules() if p != home and p not in allowed
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


def handler_modules() -> set[str]:
    """The api modules whose functions app.py puts in the route table (or runs at start-up)."""
    app = TREES[PACKAGE / "app.py"]
    from_api = {alias.asname or alias.name for node in ast.walk(app)
                if isinstance(node, ast.ImportFrom) and node.module == "chatserver.api" for alias in node.names}
    used = {node.value.id for node in ast.walk(app)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)}
    return from_api & used


def test_the_route_table_names_the_handler_modules():
    assert {"chat_routes", "message_routes", "auth", "ws", "v1", "ops"} <= handler_modules()


def test_no_handler_module_is_imported_by_another_api_module():
    """What two handler modules share (ownership checks, shapes, the
    credential check) lives in a module that serves no route."""
    handlers = {f"chatserver.api.{module}" for module in handler_modules()}
    offenders = {name(p): sorted(i for i in chatserver_imports(p) if i.rsplit(".", 1)[0] in handlers or i in handlers)
                 for p in (PACKAGE / "api").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def written_codes(tree: ast.AST) -> list[str]:
    """Error codes written as strings: `{"code": "..."}`, `code="..."`, a class's `code = "..."`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            values = [v for k, v in zip(node.keys, node.values, strict=True)
                      if isinstance(k, ast.Constant) and k.value == "code"]
        elif isinstance(node, ast.Call):
            values = [kw.value for kw in node.keywords if kw.arg == "code"]
        elif isinstance(node, ast.Assign):
            values = [node.value] if any(isinstance(t, ast.Name) and t.id == "code" for t in node.targets) else []
        else:
            continue
        found += [v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return found


def test_error_codes_are_written_only_in_the_catalogue():
    offenders = {name(p): written_codes(TREES[p]) for p in modules() if p != CATALOGUE}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_code_scan_finds_a_written_code():
    sample = ast.parse('raise_it(code="nope")\nframe = {"error": "x", "code": "nope"}\n')
    assert written_codes(sample) == ["nope", "nope"]


def test_nothing_raises_the_bare_base_of_the_catalogue():
    offenders = [name(p) for p in modules() for node in ast.walk(TREES[p])
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                 and node.func.id in ("ApiError", "OpenAIError")]
    assert offenders == []


def test_every_error_of_the_catalogue_is_used():
    used = {node.id for tree in TREES.values() for node in ast.walk(tree) if isinstance(node, ast.Name)}
    used |= {node.attr for tree in TREES.values() for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert [kind.__name__ for kind in catalogue() if kind.__name__ not in used] == []


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


# What code outside live/ may take from it: the objects each caller needs, the
# codec's producer and follower types; never the scripts, the published
# format or a subscription of its own (docs/frames.md)
LIVE_SURFACE = {
    "answers": {"ANSWERS", "Answers", "AlreadyFinished"},
    "chat_events": {"CHAT_EVENTS"},
    "follow": {"FOLLOWERS"},
    "reads": {"live_content"},
    "state": {"ANSWER_STATE"},
    "fanout": {"FANOUT"},
    "wire": {"Event", "Text", "Status", "Step", "End", "Item"},
    "lifetime": {"live_ctx"},
    "revocation": {"REVOCATIONS", "Credential", "announce", "settle"},
    "quotas": {"QUOTAS", "Limits", "seconds_left_today", "day_ends_at"},
}


def test_code_outside_live_uses_only_its_public_objects():
    live = PACKAGE / "live"
    offenders = {}
    for path in modules():
        if live in path.parents:
            continue
        wrong = sorted(i for i in chatserver_imports(path) if i.startswith("chatserver.live")
                       and i.split(".")[-1] not in LIVE_SURFACE.get(i.split(".")[-2], set()))
        if wrong:
            offenders[name(path)] = wrong
    assert offenders == {}


def test_only_the_fan_out_holds_a_pub_sub_connection():
    offenders = [name(p) for p in modules() if p.name != "fanout.py" and ".pubsub(" in p.read_text()]
    assert offenders == []


@pytest.mark.parametrize("path", sorted((PACKAGE / "live").glob("*.py")), ids=lambda p: p.name)
def test_each_live_module_stays_small(path):
    assert len(path.read_text().splitlines()) <= 250
TESTS = ROOT / "tests"


def imported_test_modules(path: Path) -> set[str]:
    """The modules of tests/ that a file imports and that are not helper modules:
    conftest, a test module, or one of the old *_support modules."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
    return {m for m in found if m == "conftest" or m.startswith("test_") or m.endswith("_support")}


def test_tests_take_helpers_from_support_never_from_conftest_or_other_tests():
    offenders = {p.relative_to(ROOT).as_posix(): sorted(imported_test_modules(p)) for p in TESTS.rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}
