"""The `users` documents as the repository returns them (the `videos` record is the
contract's `VideoRecord`: the operator writes those documents too)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class UserRecord(BaseModel):
    """A `users` document without its password hash, which only sign-in needs."""

    # Read back from documents of any earlier version; the hash, among others, is dropped.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    id: str = Field(alias="_id")
    email: str
    name: str | None = None
    created_at: datetime


class UserCredentials(UserRecord):
    """A user with the hash to check a password against."""

    password_hash: str = Field(repr=False)
