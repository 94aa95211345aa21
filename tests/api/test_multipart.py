"""Large files: S3 multipart with presigned part URLs, resumable and abortable."""

from typing import Any

import httpx
from helpers import Api, Signup
from hlsforge_dev import VIDEOTRANSCODES, EmulatedCluster
from pymongo.database import Database

VIDEOS = "/api/v1/videos"
MiB = 1024 * 1024
MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(32)


def put_part(client: httpx.Client, video_id: str, number: int, data: bytes) -> str:
    urls = client.post(f"{VIDEOS}/{video_id}/upload/parts", json={"partNumbers": [number]})
    assert urls.status_code == 200, urls.text
    [part] = urls.json()["parts"]
    assert part["partNumber"] == number
    response = httpx.put(part["url"], content=data)
    assert response.status_code == 200, response.text
    etag: str = response.headers["etag"]
    return etag


def test_multipart_upload_resumes_and_completes(
    api: Api, signup: Signup, s3: Any, cluster: EmulatedCluster
) -> None:
    data = MP4_HEAD + bytes(11 * MiB)  # over the 5 MiB threshold: three parts of 5 MiB
    with api.client(signup()) as client:
        body = {"title": "big", "filename": "big.mp4", "contentType": "video/mp4"}
        created = client.post(VIDEOS, json=body | {"size": len(data)})
        assert created.status_code == 201, created.text
        video_id, upload = created.json()["video"]["id"], created.json()["upload"]
        assert upload == {"method": "multipart", "partSize": 5 * MiB, "partCount": 3}
        size = upload["partSize"]

        first = put_part(client, video_id, 1, data[:size])
        # The client "crashes"; on resume it asks what S3 already has.
        uploaded = client.get(f"{VIDEOS}/{video_id}/upload/parts").json()
        assert [(p["partNumber"], p["etag"], p["size"]) for p in uploaded["parts"]] == [
            (1, first, size)
        ]
        assert uploaded["completed"] is False
        assert client.post(f"{VIDEOS}/{video_id}/complete").status_code == 409  # not assembled

        etags = [first] + [put_part(client, video_id, n, data[(n - 1) * size : n * size])
                           for n in (2, 3)]  # fmt: skip
        too_far = client.post(f"{VIDEOS}/{video_id}/upload/parts", json={"partNumbers": [4]})
        assert too_far.status_code == 422
        parts = [{"partNumber": n, "etag": etag} for n, etag in enumerate(etags, start=1)]
        unordered = client.post(f"{VIDEOS}/{video_id}/upload/complete", json={"parts": parts[::-1]})
        assert unordered.status_code == 422
        done = client.post(f"{VIDEOS}/{video_id}/upload/complete", json={"parts": parts})
        assert done.status_code == 204, done.text
        again = client.post(f"{VIDEOS}/{video_id}/upload/complete", json={"parts": parts})
        assert again.status_code == 204  # a client that lost the first answer may repeat it
        resumed = client.get(f"{VIDEOS}/{video_id}/upload/parts").json()
        assert resumed == {"parts": [], "completed": True}

        completed = client.post(f"{VIDEOS}/{video_id}/complete")
        assert completed.status_code == 202, completed.text
    [resource] = cluster.list(VIDEOTRANSCODES, "default")
    key = resource["spec"]["source"]["key"]
    assert s3.head_object(Bucket="uploads", Key=key)["ContentLength"] == len(data)


def test_abort_cancels_the_upload(api: Api, signup: Signup, s3: Any) -> None:
    with api.client(signup()) as client:
        body = {"title": "big", "filename": "big.mkv", "contentType": "video/x-matroska"}
        created = client.post(VIDEOS, json=body | {"size": 6 * MiB})
        video_id = created.json()["video"]["id"]
        put_part(client, video_id, 1, bytes(5 * MiB))
        assert client.delete(f"{VIDEOS}/{video_id}/upload").status_code == 204
        video = client.get(f"{VIDEOS}/{video_id}").json()
        assert (video["phase"], video["error"]) == ("cancelled", "upload aborted")
        assert client.get(f"{VIDEOS}/{video_id}/upload/parts").status_code == 409
    in_progress = s3.list_multipart_uploads(Bucket="uploads").get("Uploads", [])
    assert video_id not in {upload["Key"].split("/")[2] for upload in in_progress}


def test_parts_assembled_behind_the_apis_back_are_noticed(
    api: Api, signup: Signup, s3: Any, database: Database[dict[str, Any]]
) -> None:
    """S3 assembled the file but the API never noted it (its MongoDB write failed, or the
    client called S3 itself): resuming must move on instead of failing forever."""
    data = MP4_HEAD + bytes(6 * MiB)
    with api.client(signup()) as client:
        body = {"title": "big", "filename": "big.mp4", "contentType": "video/mp4"}
        video_id = client.post(VIDEOS, json=body | {"size": len(data)}).json()["video"]["id"]
        etags = [put_part(client, video_id, 1, data[: 5 * MiB]),
                 put_part(client, video_id, 2, data[5 * MiB :])]  # fmt: skip
        stored = database["videos"].find_one({"_id": video_id})
        assert stored is not None
        s3.complete_multipart_upload(
            Bucket="uploads", Key=stored["source"]["key"], UploadId=stored["upload"]["uploadId"],
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                       for n, e in enumerate(etags, start=1)]},
        )  # fmt: skip
        resumed = client.get(f"{VIDEOS}/{video_id}/upload/parts")
        assert resumed.json() == {"parts": [], "completed": True}
        assert client.post(f"{VIDEOS}/{video_id}/complete").status_code == 202
