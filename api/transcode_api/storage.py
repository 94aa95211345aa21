"""S3 through boto3: uploads, checks of uploaded objects, playlists and signed URLs.

Two clients: `s3` calls the internal endpoint; `signer` only signs URLs for the public
endpoint (what a browser outside the cluster reaches) and never makes a request.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from transcode_api.settings import ApiSettings

_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


class ObjectMissingError(Exception):
    """The object (or multipart upload) does not exist."""


def _client(endpoint: str | None, region: str) -> Any:
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=30,
    )
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


class Storage:
    def __init__(self, settings: ApiSettings) -> None:
        self.s3 = _client(settings.s3_endpoint_url, settings.s3_region)
        self.signer = _client(
            settings.s3_public_endpoint_url or settings.s3_endpoint_url, settings.s3_region
        )

    @staticmethod
    def expiry(seconds: int) -> datetime:
        return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)

    # --- uploads -------------------------------------------------------------------------------

    def presigned_post(
        self, *, bucket: str, key: str, content_type: str, size: int, seconds: int
    ) -> dict[str, Any]:
        """A POST whose policy pins the key, the exact size and the content type."""
        post: dict[str, Any] = self.signer.generate_presigned_post(
            Bucket=bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", size, size],
            ],
            ExpiresIn=seconds,
        )
        return post

    def start_multipart(self, *, bucket: str, key: str, content_type: str) -> str:
        upload = self.s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
        return str(upload["UploadId"])

    def part_url(
        self, *, bucket: str, key: str, upload_id: str, part_number: int, seconds: int
    ) -> str:
        return str(
            self.signer.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": bucket,
                    "Key": key,
                    "UploadId": upload_id,
                    "PartNumber": part_number,
                },
                ExpiresIn=seconds,
            )
        )

    def uploaded_parts(self, *, bucket: str, key: str, upload_id: str) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        marker = 0
        try:
            while True:
                page = self.s3.list_parts(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
                parts += page.get("Parts", [])
                if not page.get("IsTruncated"):
                    return parts
                marker = int(page["NextPartNumberMarker"])
        except ClientError as exc:
            if _missing(exc):
                raise ObjectMissingError(key) from exc
            raise

    def complete_multipart(
        self, *, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        try:
            self.s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
            )  # fmt: skip
        except ClientError as exc:
            if _missing(exc):
                raise ObjectMissingError(key) from exc
            raise

    def abort_multipart(self, *, bucket: str, key: str, upload_id: str) -> None:
        try:
            self.s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if not _missing(exc):
                raise

    # --- checks and reads ----------------------------------------------------------------------

    def head(self, *, bucket: str, key: str) -> dict[str, Any]:
        try:
            head: dict[str, Any] = self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise ObjectMissingError(key) from exc
            raise
        return head

    def first_bytes(self, *, bucket: str, key: str, count: int) -> bytes:
        response = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{count - 1}")
        data: bytes = response["Body"].read()
        return data

    def read_text(self, *, bucket: str, key: str) -> str:
        try:
            response = self.s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise ObjectMissingError(key) from exc
            raise
        text: str = response["Body"].read().decode("utf-8")
        return text

    def signed_get(self, *, bucket: str, key: str, seconds: int) -> str:
        return str(
            self.signer.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds
            )
        )

    def check_bucket(self, bucket: str) -> None:
        self.s3.head_bucket(Bucket=bucket)

    # --- deletes -------------------------------------------------------------------------------

    def delete_object(self, *, bucket: str, key: str) -> None:
        self.s3.delete_object(Bucket=bucket, Key=key)
