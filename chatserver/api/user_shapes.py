"""An account as its owner (User) and as an administrator (AdminUser) sees it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

import pydantic


class User(pydantic.BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    created_at: dt.datetime
    role: Literal["admin", "user"]


class Quota(pydantic.BaseModel):
    """A user's own daily limits; null where the server's defaults hold."""
    tokens_per_day: int | None
    messages_per_day: int | None


class AdminUser(User):
    disabled: bool
    quota: Quota
    last_active_at: dt.datetime | None


def user_of(row: dict) -> User:
    return User(**{name: row[name] for name in User.model_fields})


def admin_user_of(row: dict, last_active_at: dt.datetime | None) -> AdminUser:
    return AdminUser(**user_of(row).model_dump(), disabled=row["disabled_at"] is not None,
                     quota=Quota(tokens_per_day=row["quota_tokens_per_day"],
                                 messages_per_day=row["quota_messages_per_day"]),
                     last_active_at=last_active_at)


class Allowance(pydantic.BaseModel):
    limit: int | None = pydantic.Field(description="per UTC day; null: no limit")
    used: int
    left: int | None = pydantic.Field(description="null: no limit")


class QuotaToday(pydantic.BaseModel):
    tokens: Allowance
    messages: Allowance
    resets_at: dt.datetime = pydantic.Field(description="when the UTC day ends")


class Me(User):
    quota: QuotaToday


def allowance(limit: int, used: int) -> Allowance:
    return Allowance(limit=limit or None, used=used, left=max(0, limit - used) if limit else None)
