"""Fixed-window attempt counters in MongoDB's `rate_limits`, shared by every API replica.

An attempt is counted before it is tried (one atomic `$inc` per counter), and refused
when that makes the count exceed the limit: parallel requests cannot get more attempts than
the limit between them. An attempt that must not count (a login that succeeded) is given
back. Each counter document is one window of one subject (`<limit>:<sha256>:<window start>`;
emails and addresses are stored only hashed) and expires through a TTL index once its
window is over; its expiry is never needed for correctness, the window is in its id.
"""

import contextlib
import hashlib
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from transcode_api.errors import TooManyError
from transcode_api.settings import ApiSettings


@dataclass(frozen=True)
class Limit:
    name: str  # what is counted, e.g. "login-account"
    count: int  # attempts allowed per window
    seconds: int  # window length
    refusal: str  # the 429's message


def login_limits(settings: ApiSettings) -> tuple[Limit, Limit]:
    """Failed sign-ins per client address, and per account (whatever the address)."""
    window = settings.login_window_seconds
    return (
        Limit("login-address", settings.login_failures_per_address, window,
              "too many failed sign-ins from this address; try again later"),
        Limit("login-account", settings.login_failures_per_account, window,
              "too many failed sign-ins for this account; try again later"),
    )  # fmt: skip


def registration_limit(settings: ApiSettings) -> Limit:
    return Limit("register-address", settings.registrations_per_address,
                 settings.registration_window_seconds,
                 "too many accounts created from this address; try again later")  # fmt: skip


@dataclass(frozen=True)
class Window:
    start: int  # epoch seconds, a multiple of the limit's length
    retry_after: int  # whole seconds until the next window, at least 1


@dataclass(frozen=True)
class Taken:
    """A counted attempt, to give back if it must not count."""

    counter_id: str


class RateLimitedError(TooManyError):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


def window(now: float, seconds: int) -> Window:
    start = int(now // seconds) * seconds
    return Window(start=start, retry_after=max(1, math.ceil(start + seconds - now)))


def counter_id(limit: Limit, subject: str, start: int) -> str:
    digest = hashlib.sha256(f"{limit.name}\0{subject}".encode()).hexdigest()[:32]
    return f"{limit.name}:{digest}:{start}"


class RateLimits:
    def __init__(self, collection: Collection[dict[str, Any]]) -> None:
        self.collection = collection

    def ensure_indexes(self) -> None:
        self.collection.create_index("expiresAt", expireAfterSeconds=0, name="expiry")

    def take(self, limit: Limit, subject: str) -> Taken:
        """Count one attempt of `subject`; `RateLimitedError` if it is over the limit."""
        now = time.time()
        current = window(now, limit.seconds)
        key = counter_id(limit, subject, current.start)
        expires = datetime.fromtimestamp(current.start + limit.seconds, UTC)
        counter = self._increment(key, expires)
        if counter["count"] > limit.count:
            raise RateLimitedError(limit.refusal, current.retry_after)
        return Taken(counter_id=key)

    def _increment(self, key: str, expires: datetime) -> dict[str, Any]:
        """The counter after one more attempt.

        The counter is made to exist first, and then counted on without an upsert: concurrent
        upserts of one new document are where servers differ (MongoDB before 4.2 fails the
        loser with a duplicate key; SecantusDB counts but returns no document)."""
        with contextlib.suppress(DuplicateKeyError):  # another attempt created it
            self.collection.update_one(
                {"_id": key}, {"$setOnInsert": {"count": 0, "expiresAt": expires}}, upsert=True
            )
        counter = self.collection.find_one_and_update(
            {"_id": key}, {"$inc": {"count": 1}}, return_document=ReturnDocument.AFTER
        )
        if counter is None:  # expired between the two calls: the window is over anyway
            raise RuntimeError(f"the attempt counter {key} vanished")
        return counter

    def give_back(self, *taken: Taken) -> None:
        ids = [attempt.counter_id for attempt in taken]
        self.collection.update_many({"_id": {"$in": ids}}, {"$inc": {"count": -1}})
