"""Promises the repository makes to the next person who clones it."""

import re

from support.paths import TESTS_DIR

ROOT = TESTS_DIR.parent


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_starts_with_the_server_and_the_test_command():
    serve, test = readme_commands()[:2]
    assert serve.endswith("run.py") and "requirements.txt" in serve
    assert "pytest" in test and "requirements-dev.txt" in test


def test_ci_runs_the_readme_test_command_verbatim():
    assert readme_commands()[1] in (ROOT / ".ci" / "run").read_text()


def test_readme_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    keys = re.findall(r"^([A-Z_]+) = ", (ROOT / "config.toml").read_text(), re.M)
    assert keys
    assert [k for k in keys if f"`{k}`" not in readme] == []
