"""Plain helpers the tests import, one module per concern; fixtures stay in
conftest.py. A module here may import chatserver and other modules here,
never a test module or conftest."""
