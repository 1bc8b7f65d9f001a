"""One module per table: its columns, its status sets and every query on it.

A data module imports only `chatserver.db` (and the standard library). No
other module writes SQL naming a table (tests/test_layout.py checks it);
functions take the `Database` or, inside a caller's transaction, a cursor.
"""
