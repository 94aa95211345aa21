"""The repository returns records and stores them as they are read (SecantusDB on loopback)."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import MongoClient

from transcode_api.models import UserPublic
from transcode_api.records import UserCredentials
from transcode_api.repository import Repository, new_id
from videotranscode import (
    OutputSpec,
    PostUploadState,
    StoredObject,
    TranscodeRef,
    VideoPhase,
    VideoRecord,
    Visibility,
)

# MongoDB keeps milliseconds: a record meant to compare equal after a round trip has no more.
CREATED = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


@pytest.fixture
def repo(mongodb_uri: str) -> Iterator[Repository]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri, tz_aware=True)
    client.drop_database("hlsforge_repository_test")
    repository = Repository(client, "hlsforge_repository_test")
    repository.ensure_indexes()
    yield repository
    client.close()


def awaiting(owner: str = "u1") -> VideoRecord:
    video_id = new_id()
    return VideoRecord(
        id=video_id, owner=owner, title="cat", filename="cat.mp4", content_type="video/mp4",
        size=1234, source=StoredObject(bucket="uploads", key=f"uploads/{owner}/{video_id}.mp4"),
        upload=PostUploadState(), phase=VideoPhase.AWAITING_UPLOAD, created_at=CREATED,
        updated_at=CREATED,
    )  # fmt: skip


def test_a_video_is_stored_as_its_record_and_read_back_equal(repo: Repository) -> None:
    video = awaiting()
    created = repo.create_awaiting_upload(video, limit=2)
    assert created == video.model_copy(update={"upload_slot": 0})
    stored = repo.videos.find_one({"_id": video.id})
    assert stored == created.document()
    assert repo.video(owner="u1", video_id=video.id) == created
    assert repo.video(owner="someone else", video_id=video.id) is None
    assert repo.list_videos(owner="u1", phase=None, page=1, page_size=10) == ([created], 1)


def test_the_upload_slots_hold_with_records(repo: Repository) -> None:
    slots = [repo.create_awaiting_upload(awaiting(), limit=2) for _ in range(3)]
    assert [video and video.upload_slot for video in slots] == [0, 1, None]


def test_typed_writes_are_stored_under_the_records_names(repo: Repository) -> None:
    video = repo.create_awaiting_upload(awaiting(), limit=1)
    assert video is not None
    transcode = TranscodeRef(namespace="media", name=f"video-{video.id}")
    output = OutputSpec(bucket="media", prefix=f"videos/{video.id}", cleanup_on_delete=True)
    queued = repo.move_phase(
        owner="u1", video_id=video.id, before=VideoPhase.AWAITING_UPLOAD,
        after=VideoPhase.QUEUED, transcode=transcode, output=output,
    )  # fmt: skip
    assert queued is not None
    assert (queued.phase, queued.transcode, queued.output) == (
        VideoPhase.QUEUED, transcode, output
    )  # fmt: skip
    stored = repo.videos.find_one({"_id": video.id})
    assert stored is not None
    assert stored["output"] == {"bucket": "media", "prefix": f"videos/{video.id}",
                                "cleanupOnDelete": True}  # fmt: skip
    assert "error" not in stored  # None is not written
    assert queued.updated_at > CREATED

    changed = repo.update_details(owner="u1", video_id=video.id, visibility=Visibility.PUBLIC)
    assert changed is not None
    assert (changed.title, changed.visibility) == ("cat", Visibility.PUBLIC)
    # Once the operator has written to it, the API's phase moves no longer apply.
    repo.videos.update_one({"_id": video.id}, {"$set": {"transcodeSeq": 1}})
    assert repo.move_phase(owner="u1", video_id=video.id, before=VideoPhase.QUEUED,
                           after=VideoPhase.FAILED, error="late") is None  # fmt: skip


def test_the_password_hash_stays_in_the_credentials(repo: Repository) -> None:
    user = repo.create_user(email="Ann@Example.com", password_hash="$argon2id$x", name="Ann")
    assert user.email == "ann@example.com"
    assert not hasattr(user, "password_hash")
    found = repo.user_by_id(user.id)
    assert found is not None
    assert (found.id, found.email, found.name) == (user.id, user.email, "Ann")
    credentials = repo.credentials("ANN@example.com")
    assert isinstance(credentials, UserCredentials)
    assert credentials.password_hash == "$argon2id$x"
    assert "argon2" not in repr(credentials)
    public = UserPublic.from_record(credentials).model_dump(by_alias=True)
    assert "argon2" not in str(public)
    assert repo.credentials("nobody@example.com") is None
