"""The hourly sweep of S3 multipart uploads never finished, on a real S3 endpoint over HTTP
(moto's server): it aborts the storage's own uploads under its prefix (OCRREVIEW_S3_PREFIX)
and leaves other apps' in a shared bucket; an upload the store refuses to abort, or one gone
meanwhile, is logged and counted, and the others are aborted all the same. The app stores,
reads, lists, deletes and sweeps under the IAM policy the README lists, read from it."""

import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from ocrreview import storage
from tests.s3 import CREDENTIALS, S3Server, moto_server, use_a_bucket_of
from tests.workers import ROOT

PREFIX = "ocrreview"


def on_prefix(settings) -> None:
    default = settings.STORAGES["default"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**default, "OPTIONS": {**default["OPTIONS"], "location": PREFIX}},
    }


def begin(client, bucket: str, key: str) -> str:
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"p" * 1024)
    return upload


def unfinished(client, bucket: str) -> list[str]:
    return sorted(u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def test_the_sweep_aborts_the_uploads_under_its_prefix_and_leaves_other_apps(
    s3_storage, settings, tmp_path, caplog
):
    settings.OCRREVIEW_MODELS_DIR = tmp_path / "models"
    on_prefix(settings)
    client, bucket = s3_storage.client(), settings.OCRREVIEW_S3_BUCKET
    # The app's own, and another app's two, one under a name that begins as the prefix does.
    for key in (f"{PREFIX}/exports/1.zip", "backups/db.tar", f"{PREFIX}-old/x.zip"):
        begin(client, bucket, key)
    # The app's files are under the prefix too, and downloads are signed for them there.
    settings.OCRREVIEW_S3_PUBLIC_URL = s3_storage.endpoint.replace("127.0.0.1", "localhost")
    stored = default_storage.save("exports/2.zip", ContentFile(b"zip bytes"))
    assert client.get_object(Bucket=bucket, Key=f"{PREFIX}/{stored}")["Body"].read() == b"zip bytes"
    url = storage.download_response(stored, "letters.zip")["Location"]
    assert requests.get(url, timeout=10).content == b"zip bytes"

    # moto dates every upload 2010-11-10, older than a day by the store's clock.
    with caplog.at_level(logging.INFO, logger="ocrreview.storage"):
        storage.sweep_partial_files()
    assert unfinished(client, bucket) == ["backups/db.tar", f"{PREFIX}-old/x.zip"]
    assert f"Aborted the upload of {PREFIX}/exports/1.zip" in caplog.text
    assert "1 aborted, 0 gone meanwhile, 0 left (refused)" in caplog.text


# moto dates every upload alike.
MOTO_DATE = datetime(2010, 11, 10, 20, 48, 33, tzinfo=UTC)


def readme_policy(bucket: str) -> dict:
    readme = (Path(ROOT) / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(
        r"under this very\s+policy, read from here:\s+```json\n(.*?)```", readme, re.S
    )
    return json.loads(block.replace("my-bucket", bucket))


@dataclass
class PolicedStore:
    """A bucket on a moto server of its own, which checks every request against its keys'
    IAM policy once `police` is called."""

    server: S3Server
    bucket: str

    def user(self, name: str, policy: dict) -> dict:
        """The keys of a new user with this policy, for boto3."""
        iam = boto3.client("iam", endpoint_url=self.server.endpoint, **CLIENT_KEYS)
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
            "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
        }

    def police(self) -> None:
        """From now on; users are made before."""
        requests.post(f"{self.server.endpoint}/moto-api/reset-auth", data=b"0", timeout=10)

    def use_as_default_storage(self, settings, keys: dict) -> None:
        settings.OCRREVIEW_S3_BUCKET = self.bucket
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    **settings.OCRREVIEW_S3_OPTIONS,
                    "bucket_name": self.bucket,
                    "endpoint_url": self.server.endpoint,
                    "region_name": keys["region_name"],
                    "location": PREFIX,
                    "access_key": keys["aws_access_key_id"],
                    "secret_key": keys["aws_secret_access_key"],
                },
            },
        }


CLIENT_KEYS = {
    "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
}


@pytest.fixture
def policed_store() -> Iterator[PolicedStore]:
    with moto_server() as server:
        bucket = f"ocrreview-{uuid.uuid4().hex[:12]}"
        server.client().create_bucket(Bucket=bucket)
        yield PolicedStore(server, bucket)


def full_access(bucket: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }


def test_the_app_works_under_the_readme_policy_and_an_upload_it_may_not_abort_stops_no_other(
    policed_store, settings, caplog
):
    bucket = policed_store.bucket
    policy = readme_policy(bucket)
    # An upload the app may not abort, as a policy of the store's owner might say.
    policy["Statement"].append(
        {
            "Effect": "Deny",
            "Action": "s3:AbortMultipartUpload",
            "Resource": f"arn:aws:s3:::{bucket}/{PREFIX}/locked/*",
        }
    )
    app = policed_store.user("app", policy)
    other = boto3.client(
        "s3",
        endpoint_url=policed_store.server.endpoint,
        **policed_store.user("other-worker", full_access(bucket)),
    )
    keys = [f"{PREFIX}/{name}" for name in ("a.zip", "locked/b.zip", "y.zip", "z.zip")]
    uploads = {key: begin(other, bucket, key) for key in [*keys, "backups/c.tar"]}
    policed_store.police()
    policed_store.use_as_default_storage(settings, app)

    # What the app does with its files. Not a presigned download, which moto's server answers
    # with a 500 while it checks policies, nor HeadBucket, for which it wants s3:HeadBucket
    # where AWS checks s3:ListBucket.
    stored = default_storage.save("exports/1.zip", ContentFile(b"zip bytes"))
    assert not default_storage.exists("exports/missing.zip")
    assert default_storage.open(stored).read() == b"zip bytes"
    assert default_storage.listdir("exports") == ([], ["1.zip"])
    default_storage.delete(stored)

    # Another worker's sweep aborts y.zip once this one has listed it.
    class AbortsYAfterA(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith(f"Aborted the upload of {PREFIX}/a.zip"):
                key = f"{PREFIX}/y.zip"
                other.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uploads[key])

    handler = AbortsYAfterA()
    logging.getLogger("ocrreview.storage").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="ocrreview.storage"):
            swept = storage.abort_multipart_uploads(MOTO_DATE + timedelta(seconds=1))
    finally:
        logging.getLogger("ocrreview.storage").removeHandler(handler)
    assert swept == storage.UploadsSwept(aborted=2, gone=1, failed=1, listed_all=True)
    assert unfinished(other, bucket) == ["backups/c.tar", f"{PREFIX}/locked/b.zip"]
    assert f"Aborting the upload of {PREFIX}/locked/b.zip" in caplog.text
    assert "AccessDenied" in caplog.text
    assert "2 aborted, 1 gone meanwhile, 1 left (refused)" in caplog.text


def test_keys_that_may_not_list_the_uploads_have_the_sweep_log_it_and_return(
    policed_store, settings, tmp_path, caplog
):
    policy = readme_policy(policed_store.bucket)
    policy["Statement"][0]["Action"].remove("s3:ListBucketMultipartUploads")
    app = policed_store.user("app", policy)
    policed_store.police()
    policed_store.use_as_default_storage(settings, app)
    with caplog.at_level(logging.INFO, logger="ocrreview.storage"):
        swept = storage.abort_multipart_uploads(MOTO_DATE + timedelta(seconds=1))
    assert swept == storage.UploadsSwept(listed_all=False)
    assert "AccessDenied" in caplog.text
    assert "the listing not read to its end" in caplog.text


def test_a_store_that_does_not_answer_leaves_the_rest_of_the_sweep_to_run(
    settings, tmp_path, caplog
):
    settings.OCRREVIEW_MODELS_DIR = tmp_path / "models"
    stopped = tmp_path / "models" / "cache" / "a.partial"
    stopped.mkdir(parents=True)
    with moto_server() as server:
        use_a_bucket_of(server, settings)
    with caplog.at_level(logging.INFO, logger="ocrreview.storage"):
        storage.sweep_partial_files()
    assert "The store did not answer" in caplog.text
    assert not stopped.exists(), "the model download that stopped is removed all the same"
