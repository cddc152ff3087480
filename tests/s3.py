"""A real S3 endpoint over HTTP for the tests: moto's standalone server, in its own process on
a free port of 127.0.0.1, so that the app, its workers and boto3 speak the S3 protocol to it as
they would to MinIO or AWS."""

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ocrreview-test",
    "AWS_SECRET_ACCESS_KEY": "ocrreview-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Server:
    endpoint: str

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def env(self, bucket: str) -> dict[str, str]:
        """The environment that points a process of the app (a worker) at this bucket."""
        return {
            **CREDENTIALS,
            "OCRREVIEW_S3_BUCKET": bucket,
            "OCRREVIEW_S3_ENDPOINT_URL": self.endpoint,
            "OCRREVIEW_S3_REGION": CREDENTIALS["AWS_DEFAULT_REGION"],
        }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def moto_server(timeout: float = 30) -> Iterator[S3Server]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server did not start on port {port}") from None
                time.sleep(0.1)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)


def use_a_bucket_of(store: S3Server, settings) -> None:
    """The default storage on a new bucket of this server, for a test that stops the server
    (moto_server) to see the store go down."""
    bucket = f"ocrreview-{uuid.uuid4().hex[:12]}"
    store.client().create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                **settings.OCRREVIEW_S3_OPTIONS,
                "bucket_name": bucket,
                "endpoint_url": store.endpoint,
                "access_key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "secret_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
            },
        },
    }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


@pytest.fixture
def s3_storage(s3_server, settings, monkeypatch) -> S3Server:
    """The app's default storage on a new, empty bucket of the S3 server; os.environ carries
    the same, so that worker processes started by the test use it too."""
    bucket = f"ocrreview-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=bucket)
    env = s3_server.env(bucket)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.OCRREVIEW_S3_BUCKET = bucket
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                **settings.OCRREVIEW_S3_OPTIONS,
                "bucket_name": bucket,
                "endpoint_url": s3_server.endpoint,
                "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
            },
        },
    }
    return s3_server
