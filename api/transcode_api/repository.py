"""MongoDB persistence of `users` and `videos` (pymongo).

Every video query is scoped by its owner here, so a route cannot forget the ownership check.
Filters are built from typed values only; free text is matched as an escaped regex. Documents
leave as records (`UserRecord`, the contract's `VideoRecord`) and writes take typed values.
"""

import re
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from transcode_api.records import UserCredentials, UserRecord
from videotranscode import OutputSpec, TranscodeRef, VideoPhase, VideoRecord, Visibility

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


def _video(document: Document | None) -> VideoRecord | None:
    return None if document is None else VideoRecord.model_validate(document)


def _video_set(**fields: Any) -> Document:
    """A `$set` of video fields given by their Python names, as the document stores them,
    with `updatedAt`; None values are left out."""
    partial = VideoRecord.model_construct(**fields)  # a few fields: nothing to validate
    stored = partial.model_dump(by_alias=True, exclude_none=True, include=set(fields))
    return {**stored, "updatedAt": now()}


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

    def create_user(self, *, email: str, password_hash: str, name: str | None) -> UserRecord:
        user = {"_id": new_id(), "email": email.lower(), "passwordHash": password_hash,
                "name": name, "createdAt": now()}  # fmt: skip
        try:
            self.users.insert_one(user)
        except DuplicateKeyError as exc:
            raise EmailTakenError(email) from exc
        return UserRecord.model_validate(user)

    def credentials(self, email: str) -> UserCredentials | None:
        """The user with this email and their password hash, for signing in."""
        user = self.users.find_one({"email": email.lower()})
        return None if user is None else UserCredentials.model_validate(user)

    def user_by_id(self, user_id: str) -> UserRecord | None:
        user = self.users.find_one({"_id": user_id})
        return None if user is None else UserRecord.model_validate(user)

    # --- videos --------------------------------------------------------------------------------

    def create_awaiting_upload(self, video: VideoRecord, *, limit: int) -> VideoRecord | None:
        """Insert a video awaiting its upload into one of its owner's `limit` upload slots;
        None when every slot is taken. The unique index over (owner, slot) of awaiting videos
        makes racing requests take different slots, and a video frees its slot by leaving
        `awaiting_upload` (or being deleted), with nothing to release and nothing to drift."""
        awaiting = {"owner": video.owner, "phase": VideoPhase.AWAITING_UPLOAD.value}
        taken = set(self.videos.distinct("uploadSlot", awaiting))
        for slot in range(limit):
            if slot in taken:
                continue
            slotted = video.model_copy(update={"upload_slot": slot})
            try:
                self.videos.insert_one(slotted.document())
            except DuplicateKeyError:
                continue  # another request took it since
            return slotted
        return None

    def video(self, *, owner: str, video_id: str) -> VideoRecord | None:
        return _video(self.videos.find_one({"_id": video_id, "owner": owner}))

    def viewable_video(self, video_id: str) -> VideoRecord | None:
        """A succeeded video anyone with its id may watch (public or unlisted)."""
        return _video(self.videos.find_one({
            "_id": video_id, "phase": VideoPhase.SUCCEEDED.value,
            "visibility": {"$in": [Visibility.PUBLIC.value, Visibility.UNLISTED.value]},
        }))  # fmt: skip

    def playable_video(self, video_id: str) -> VideoRecord | None:
        """A video whose playlists may be served: succeeded, or playable while it encodes."""
        video = _video(self.videos.find_one({"_id": video_id}))
        return video if video is not None and video.phase.playable(video.playable_at) else None

    def list_videos(
        self, *, owner: str, phase: VideoPhase | None, page: int, page_size: int
    ) -> tuple[list[VideoRecord], int]:
        query: Document = {"owner": owner}
        if phase is not None:
            query["phase"] = phase.value
        return self._page(query, page=page, page_size=page_size)

    def list_public(
        self, *, search: str | None, page: int, page_size: int
    ) -> tuple[list[VideoRecord], int]:
        query: Document = {"visibility": Visibility.PUBLIC.value,
                           "phase": VideoPhase.SUCCEEDED.value}  # fmt: skip
        if search:
            query["title"] = {"$regex": re.escape(search), "$options": "i"}
        return self._page(query, page=page, page_size=page_size)

    def _page(self, query: Document, *, page: int, page_size: int) -> tuple[list[VideoRecord], int]:
        found = self.videos.find(query).sort(NEWEST_FIRST).skip((page - 1) * page_size)
        items = [VideoRecord.model_validate(video) for video in found.limit(page_size)]
        return items, self.videos.count_documents(query)

    def count_awaiting_upload(self, owner: str) -> int:
        return self.videos.count_documents(
            {"owner": owner, "phase": VideoPhase.AWAITING_UPLOAD.value}
        )

    def update_details(
        self,
        *,
        owner: str,
        video_id: str,
        title: str | None = None,
        description: str | None = None,
        visibility: Visibility | None = None,
    ) -> VideoRecord | None:
        """Change what the owner may change; None leaves a field as it is."""
        return _video(self.videos.find_one_and_update(
            {"_id": video_id, "owner": owner},
            {"$set": _video_set(title=title, description=description, visibility=visibility)},
            return_document=ReturnDocument.AFTER,
        ))  # fmt: skip

    def mark_assembled(self, *, owner: str, video_id: str) -> None:
        """S3 holds the whole file of this video's multipart upload."""
        self.videos.update_one(
            {"_id": video_id, "owner": owner},
            {"$set": {"upload.completed": True, "updatedAt": now()}},
        )

    def move_phase(
        self,
        *,
        owner: str,
        video_id: str,
        before: VideoPhase,
        after: VideoPhase,
        error: str | None = None,
        transcode: TranscodeRef | None = None,
        output: OutputSpec | None = None,
    ) -> VideoRecord | None:
        """Move `before` → `after` only if the operator has not written to it yet, setting
        the fields given."""
        fields = _video_set(phase=after, error=error, transcode=transcode, output=output)
        return _video(self.videos.find_one_and_update(
            {"_id": video_id, "owner": owner, "phase": before.value,
             "transcodeSeq": {"$exists": False}},
            {"$set": fields},
            return_document=ReturnDocument.AFTER,
        ))  # fmt: skip

    def delete_video(self, *, owner: str, video_id: str) -> bool:
        return self.videos.delete_one({"_id": video_id, "owner": owner}).deleted_count == 1
