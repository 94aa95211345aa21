"""The `videos` record: read from documents of any version, stored as it is read, and the
operator's transcode fields are fields of the same record."""

from datetime import UTC, datetime
from typing import Any

import pytest

from videotranscode import (
    MultipartUploadState,
    OutputSpec,
    Phase,
    PostUploadState,
    RenditionPhase,
    RenditionStatus,
    StoredObject,
    TranscodedVideo,
    TranscodeRef,
    VideoPhase,
    VideoRecord,
    VideoTranscodeStatus,
    Visibility,
    stored_fields,
    transcode_fields,
)

CREATED = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
STORED_NAMES = {field.alias or name for name, field in VideoRecord.model_fields.items()}


def old_document() -> dict[str, Any]:
    """What the first API versions stored: no upload state, slot, output or transcode yet."""
    return {
        "_id": "65f0c0ffee0000000000abcd", "owner": "u1", "title": "cat", "visibility": "public",
        "filename": "cat.mp4", "contentType": "video/mp4", "size": 1234,
        "source": {"bucket": "uploads", "key": "uploads/u1/cat.mp4"}, "phase": "succeeded",
        "createdAt": CREATED, "updatedAt": CREATED, "someRetiredField": True,
    }  # fmt: skip


def a_record(**changes: Any) -> VideoRecord:
    record = VideoRecord(
        id="65f0c0ffee0000000000abce", owner="u1", title="dog", description="a dog",
        visibility=Visibility.UNLISTED, filename="dog.mov", content_type="video/quicktime",
        size=5 * 1024 * 1024, source=StoredObject(bucket="uploads", key="uploads/u1/dog.mov"),
        upload=MultipartUploadState(upload_id="up-1", part_size=5 * 1024 * 1024),
        upload_slot=0, phase=VideoPhase.AWAITING_UPLOAD, created_at=CREATED, updated_at=CREATED,
    )  # fmt: skip
    return record.model_copy(update=changes)


def test_an_old_document_without_the_newer_fields_parses_with_their_defaults() -> None:
    record = VideoRecord.model_validate(old_document())
    assert (record.id, record.phase, record.visibility) == (
        "65f0c0ffee0000000000abcd", VideoPhase.SUCCEEDED, Visibility.PUBLIC
    )  # fmt: skip
    assert (record.description, record.progress, record.renditions) == ("", 0, [])
    assert (record.error, record.playback, record.upload, record.upload_slot) == (None,) * 4
    assert (record.output, record.transcode, record.transcode_seq) == (None,) * 3


def test_nulls_of_older_versions_parse_as_absent() -> None:
    nulls = dict.fromkeys(("description", "progress", "renditions", "error", "playback"))
    record = VideoRecord.model_validate({**old_document(), **nulls})
    assert record == VideoRecord.model_validate(old_document())


@pytest.mark.parametrize(
    "record",
    [
        a_record(),
        a_record(upload=PostUploadState(), upload_slot=None),
        a_record(
            phase=VideoPhase.TRANSCODING, upload_slot=None, progress=40.5,
            transcode=TranscodeRef(namespace="media", name="video-x"), transcode_seq=7,
            output=OutputSpec(bucket="media", prefix="videos/x", cleanup_on_delete=True),
            renditions=[RenditionStatus(name="720p", phase=RenditionPhase.RUNNING, progress=40.5,
                                        job_name="video-x-720p")],
        ),
    ],
    ids=["multipart", "post", "operated"],
)  # fmt: skip
def test_a_record_round_trips_through_its_document(record: VideoRecord) -> None:
    document = record.document()
    assert VideoRecord.model_validate(document) == record
    assert set(document) <= STORED_NAMES
    # Absent, not null: the repository's queries and its partial index test `$exists`.
    assert None not in document.values()


def test_the_document_spells_the_fields_as_stored() -> None:
    document = a_record().document()
    assert document["_id"] == "65f0c0ffee0000000000abce"
    assert document["contentType"] == "video/quicktime"
    assert document["upload"] == {"method": "multipart", "uploadId": "up-1",
                                  "partSize": 5 * 1024 * 1024, "completed": False}  # fmt: skip
    assert (document["uploadSlot"], document["createdAt"]) == (0, CREATED)
    assert "transcodeSeq" not in document


def failed_status() -> VideoTranscodeStatus:
    return VideoTranscodeStatus.model_validate({
        "phase": "Failed", "progress": 60, "message": "the source is truncated",
        "renditions": [{"name": "360p", "phase": "Succeeded", "progress": 100, "bandwidth": 9},
                       {"name": "720p", "phase": "Failed", "progress": 20}],
    })  # fmt: skip


def test_the_operators_fields_are_fields_of_the_record() -> None:
    now = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
    fields = stored_fields(
        transcode_fields(failed_status(), namespace="media", name="video-x", seq=9, now=now)
    )
    assert set(fields) <= STORED_NAMES
    written = VideoRecord.model_validate({**a_record().document(), **fields})
    assert (written.phase, written.progress, written.error) == (
        VideoPhase.FAILED, 60, "the source is truncated"
    )  # fmt: skip
    assert [(r.name, r.phase, r.bandwidth) for r in written.renditions] == [
        ("360p", "Succeeded", 9), ("720p", "Failed", None)
    ]  # fmt: skip
    assert (written.transcode, written.transcode_seq, written.updated_at) == (
        TranscodeRef(namespace="media", name="video-x"), 9, now
    )  # fmt: skip
    assert written.title == "dog"  # the API's fields are not the operator's


def test_the_operators_fields_clear_an_old_error_and_playback() -> None:
    status = VideoTranscodeStatus(phase=Phase.TRANSCODING, message="still going")
    fields = stored_fields(transcode_fields(status, namespace="m", name="v", seq=1,
                                            now=CREATED))  # fmt: skip
    assert (fields["error"], fields["playback"]) == (None, None)
    assert fields["phase"] == "transcoding"


def test_the_operator_reads_back_the_status_it_wrote() -> None:
    fields = transcode_fields(failed_status(), namespace="m", name="v", seq=1, now=CREATED)
    written = TranscodedVideo.model_validate({"_id": "v1", **stored_fields(fields)})
    status = written.status()
    assert (status.phase, status.progress, status.renditions) == (
        Phase.FAILED, 60, failed_status().renditions
    )  # fmt: skip


@pytest.mark.parametrize("phase", list(Phase))
def test_every_resource_phase_has_its_video_phase(phase: Phase) -> None:
    assert VideoPhase.of(phase).resource_phase == phase
    assert VideoPhase.of(phase).finished == phase.finished


def test_ended_phases_are_the_finished_ones_without_a_result() -> None:
    ended = {phase for phase in VideoPhase if phase.ended}
    assert ended == {VideoPhase.FAILED, VideoPhase.CANCELLED}
    assert ended == {phase for phase in VideoPhase if phase.finished} - {VideoPhase.SUCCEEDED}
