"""What an account's email and password may be, and how passwords are kept:
shared by the REST handlers and `python run.py user add`."""

from __future__ import annotations

import re
from typing import Annotated

import pydantic
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# verified against when the email is unknown, so both failures cost the same
DUMMY_HASH = _hasher.hash("not-a-real-password")
# An address as sent may have whitespace around it, stripped once it is checked: the schema's
# pattern and length hold for what is sent (pydantic's strip_whitespace strips before checking).
_EMAIL = re.compile(r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$")

Email = Annotated[str, pydantic.StringConstraints(max_length=254, pattern=_EMAIL.pattern),
                  pydantic.AfterValidator(str.strip)]
Password = Annotated[str, pydantic.StringConstraints(min_length=8, max_length=1024)]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
