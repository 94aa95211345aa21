"""MongoDB persistence of `users` and `videos` (pymongo).

Every video query is scoped by its owner here, so a route cannot forget the ownership check.
Filters are built from typed values only; free text is matched as an escaped regex.
"""

import re
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from transcode_api.models import Visibility
from videotranscode import VideoPhase

Document = dict[str, Any]
NEWEST_FIRST = [("createdAt", DESCENDING), ("_id", DESCENDING)]


class EmailTakenError(Exception):
    """A user with this email already exists."""


def new_id() -> str:
    """A new document id: an ObjectId as 24 hex characters (time-ordered, URL- and
    Kubernetes-name-safe)."""
    return str(ObjectId())


def now() -> datetime:
    return datetime.now(UTC)


class Repository:
    def __init__(self, client: MongoClient[Document], database: str) -> None:
        self.client = client
        self.db: Database[Document] = client[database]
        self.users = self.db["users"]
        self.videos = self.db["videos"]

    def ensure_indexes(self) -> None:
        self.users.create_index([("email", ASCENDING)], unique=True, name="email_unique")
        self.videos.create_index([("owner", ASCENDING), *NEWEST_FIRST], name="owner_newest")
        self.videos.create_index(
            [("visibility", ASCENDING), ("phase", ASCENDING), *NEWEST_FIRST], name="public_newest"
        )
        self.videos.create_index(
            [("owner", ASCENDING), ("uploadSlot", ASCENDING)], name="upload_slot_unique",
            unique=True, partialFilterExpression={
                "phase": VideoPhase.AWAITING_UPLOAD.value, "uploadSlot": {"$exists": True},
            },
        )  # fmt: skip

    def ping(self) -> None:
        self.client.admin.command("ping")

    # --- users ---------------------------------------------------------------------------------

    def create_user(self, *, email: str, password_hash: str, name: str | None) -> Document:
        user = {"_id": new_id(), "email": email.lower(), "passwordHash": password_hash,
                "name": name, "createdAt": now()}  # fmt: skip
        try:
            self.users.insert_one(user)
        except DuplicateKeyError as exc:
            raise EmailTakenError(email) from exc
        return user

    def user_by_email(self, email: str) -> Document | None:
        return self.users.find_one({"email": email.lower()})

    def user_by_id(self, user_id: str) -> Document | None:
        return self.users.find_one({"_id": user_id})

    # --- videos --------------------------------------------------------------------------------

    def create_awaiting_upload(self, video: Document, *, limit: int) -> Document | None:
        """Insert a video awaiting its upload into one of its owner's `limit` upload slots;
        None when every slot is taken. The unique index over (owner, slot) of awaiting videos
        makes racing requests take different slots, and a video frees its slot by leaving
        `awaiting_upload` (or being deleted), with nothing to release and nothing to drift."""
        awaiting = {"owner": video["owner"], "phase": VideoPhase.AWAITING_UPLOAD.value}
        taken = set(self.videos.distinct("uploadSlot", awaiting))
        for slot in range(limit):
            if slot in taken:
                continue
            try:
                self.videos.insert_one({**video, "uploadSlot": slot})
            except DuplicateKeyError:
                continue  # another request took it since
            return {**video, "uploadSlot": slot}
        return None

    def video(self, *, owner: str, video_id: str) -> Document | None:
        return self.videos.find_one({"_id": video_id, "owner": owner})

    def viewable_video(self, video_id: str) -> Document | None:
        """A succeeded video anyone with its id may watch (public or unlisted)."""
        return self.videos.find_one({
            "_id": video_id, "phase": VideoPhase.SUCCEEDED.value,
            "visibility": {"$in": [Visibility.PUBLIC.value, Visibility.UNLISTED.value]},
        })  # fmt: skip

    def playable_video(self, video_id: str) -> Document | None:
        return self.videos.find_one({"_id": video_id, "phase": VideoPhase.SUCCEEDED.value})

    def list_videos(
        self, *, owner: str, phase: VideoPhase | None, page: int, page_size: int
    ) -> tuple[list[Document], int]:
        query: Document = {"owner": owner}
        if phase is not None:
            query["phase"] = phase.value
        return self._page(query, page=page, page_size=page_size)

    def list_public(
        self, *, search: str | None, page: int, page_size: int
    ) -> tuple[list[Document], int]:
        query: Document = {"visibility": Visibility.PUBLIC.value,
                           "phase": VideoPhase.SUCCEEDED.value}  # fmt: skip
        if search:
            query["title"] = {"$regex": re.escape(search), "$options": "i"}
        return self._page(query, page=page, page_size=page_size)

    def _page(self, query: Document, *, page: int, page_size: int) -> tuple[list[Document], int]:
        items = list(self.videos.find(query).sort(NEWEST_FIRST).skip((page - 1) * page_size)
                     .limit(page_size))  # fmt: skip
        return items, self.videos.count_documents(query)

    def count_awaiting_upload(self, owner: str) -> int:
        return self.videos.count_documents(
            {"owner": owner, "phase": VideoPhase.AWAITING_UPLOAD.value}
        )

    def update_video(self, *, owner: str, video_id: str, fields: Document) -> Document | None:
        return self.videos.find_one_and_update(
            {"_id": video_id, "owner": owner},
            {"$set": {**fields, "updatedAt": now()}},
            return_document=ReturnDocument.AFTER,
        )

    def move_phase(
        self,
        *,
        owner: str,
        video_id: str,
        before: VideoPhase,
        after: VideoPhase,
        fields: Document | None = None,
    ) -> Document | None:
        """Move `before` → `after` only if the operator has not written to it yet."""
        return self.videos.find_one_and_update(
            {"_id": video_id, "owner": owner, "phase": before.value,
             "transcodeSeq": {"$exists": False}},
            {"$set": {**(fields or {}), "phase": after.value, "updatedAt": now()}},
            return_document=ReturnDocument.AFTER,
        )  # fmt: skip

    def delete_video(self, *, owner: str, video_id: str) -> bool:
        return self.videos.delete_one({"_id": video_id, "owner": owner}).deleted_count == 1
