"""The storage layer (ocrreview/storage.py) on a real S3 endpoint over HTTP and on the local
disk: files stored whole under their names, downloads as presigned redirects, model versions
cached once per host and checked against their checksums, and a missing bucket named at start."""

import errno
import http.server
import io
import os
import threading
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from PIL import Image

from ocrreview import storage
from tests.s3 import moto_server, use_a_bucket_of
from tests.workers import worker_env, worker_that_stops_at_start


def write_model(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 4096)
    return folder


def test_a_file_is_stored_under_its_name_and_replaced_whole(s3_storage, tmp_path):
    local = tmp_path / "export.zip"
    local.write_bytes(b"first")
    assert storage.put_file("exports/1.zip", local) == "exports/1.zip"
    local.write_bytes(b"second, longer")
    storage.put_file("exports/1.zip", local)
    with default_storage.open("exports/1.zip", "rb") as handle:
        assert handle.read() == b"second, longer"
    with storage.local_copy("exports/1.zip") as path:
        assert path.read_bytes() == b"second, longer"
    assert not path.exists()


def test_a_download_on_s3_is_a_redirect_to_a_presigned_url(s3_storage, tmp_path):
    local = tmp_path / "data.zip"
    local.write_bytes(b"zip bytes")
    storage.put_file("exports/2.zip", local)
    response = storage.download_response("exports/2.zip", "letters-export.zip", "application/zip")
    assert response.status_code == 302
    url = response["Location"]
    assert url.startswith(s3_storage.endpoint) and "Signature" in url and "Expires" in url
    fetched = requests.get(url, timeout=10)
    assert fetched.content == b"zip bytes"
    assert 'filename="letters-export.zip"' in fetched.headers["Content-Disposition"]
    # Without the signature the bucket refuses: it is not public.
    assert requests.get(url.split("?")[0], timeout=10).status_code == 403


def test_a_download_name_with_quotes_and_accents_reaches_the_browser_whole(s3_storage, tmp_path):
    local = tmp_path / "data.zip"
    local.write_bytes(b"zip bytes")
    storage.put_file("exports/5.zip", local)
    url = storage.download_response("exports/5.zip", 'Lettres "de" Lefèvre.zip')["Location"]
    disposition = requests.get(url, timeout=10).headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename*=utf-8''")
    assert "Lettres%20%22de%22%20Lef%C3%A8vre.zip" in disposition


def test_a_download_is_signed_for_the_public_address_of_the_store(s3_storage, settings, tmp_path):
    """As in docker-compose: the app reaches MinIO by one name, browsers by another."""
    public = s3_storage.endpoint.replace("127.0.0.1", "localhost")
    settings.OCRREVIEW_S3_PUBLIC_URL = public
    local = tmp_path / "data.zip"
    local.write_bytes(b"zip bytes")
    storage.put_file("exports/4.zip", local)
    url = storage.download_response("exports/4.zip", "letters.zip")["Location"]
    assert url.startswith(public + "/")
    assert requests.get(url, timeout=10).content == b"zip bytes"


def test_a_download_for_a_store_addressed_by_subdomain_names_the_bucket_there(s3_storage, settings):
    default = settings.STORAGES["default"]
    options = {**default["OPTIONS"], "addressing_style": "virtual"}
    settings.STORAGES = {**settings.STORAGES, "default": {**default, "OPTIONS": options}}
    settings.OCRREVIEW_S3_PUBLIC_URL = "https://files.example.org"
    url = storage.download_response("exports/6.zip", "letters.zip")["Location"]
    bucket = options["bucket_name"]
    assert url.startswith(f"https://{bucket}.files.example.org/exports/6.zip?")


def test_a_download_on_the_local_disk_is_streamed(settings, tmp_path):
    local = tmp_path / "data.zip"
    local.write_bytes(b"zip bytes")
    storage.put_file("exports/3.zip", local)
    response = storage.download_response("exports/3.zip", "letters.zip")
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content) == b"zip bytes"
    assert 'filename="letters.zip"' in response["Content-Disposition"]


def test_a_model_version_is_downloaded_once_and_checked(s3_storage, settings, tmp_path):
    settings.OCRREVIEW_MODELS_DIR = tmp_path / "models"
    storage.put_directory("models/v1", write_model(tmp_path / "trained"))
    source = storage.model_source("models/v1")
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(storage.resolve_model_source(source)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    loaded = Path(results[0])
    assert (loaded / "sub" / "weights.bin").read_bytes() == bytes(range(256)) * 4096
    assert sorted(p.name for p in (tmp_path / "models" / "cache").iterdir() if p.is_dir()) == [
        loaded.name
    ]


def test_a_model_file_that_does_not_match_its_checksum_is_not_loaded(
    s3_storage, settings, tmp_path
):
    settings.OCRREVIEW_MODELS_DIR = tmp_path / "models"
    storage.put_directory("models/v2", write_model(tmp_path / "trained"))
    tampered = tmp_path / "tampered.bin"
    tampered.write_bytes(b"not the weights")
    storage.put_file("models/v2/sub/weights.bin", tampered)
    with pytest.raises(OSError, match="does not match its checksum"):
        storage.resolve_model_source(storage.model_source("models/v2"))
    assert not [p for p in (tmp_path / "models" / "cache").iterdir() if p.is_dir()]


def test_a_model_version_checked_once_loads_while_the_store_is_down(settings, tmp_path):
    """A warm worker asked the store for the version's SHA256SUMS at every chunk of lines,
    and failed them while the store was down although the model was on its disk."""
    settings.OCRREVIEW_MODELS_DIR = tmp_path / "models"
    with moto_server() as store:
        use_a_bucket_of(store, settings)
        storage.put_directory("models/v4", write_model(tmp_path / "v4"))
        storage.put_directory("models/v5", write_model(tmp_path / "v5"))
        loaded = storage.resolve_model_source(storage.model_source("models/v4"))
    # The store is down from here on.
    assert storage.resolve_model_source(storage.model_source("models/v4")) == loaded
    # A version this worker has not checked yet is still checked against the store.
    with pytest.raises(EndpointConnectionError):
        storage.resolve_model_source(storage.model_source("models/v5"))


def test_a_model_version_on_the_local_disk_loads_in_place(settings, tmp_path):
    storage.put_directory("models/v3", write_model(tmp_path / "trained"))
    resolved = Path(storage.resolve_model_source(storage.model_source("models/v3")))
    assert resolved == Path(settings.MEDIA_ROOT) / "models" / "v3"
    assert storage.resolve_model_source("microsoft/trocr-base-handwritten") == (
        "microsoft/trocr-base-handwritten"
    )


def storage_options(settings, **options) -> dict:
    default = settings.STORAGES["default"]
    return {
        **settings.STORAGES,
        "default": {**default, "OPTIONS": {**default["OPTIONS"], **options}},
    }


def test_a_missing_bucket_is_named_at_start(s3_storage, settings):
    settings.STORAGES = storage_options(settings, bucket_name="no-such-bucket")
    settings.OCRREVIEW_S3_BUCKET = "no-such-bucket"
    with pytest.raises(storage.StorageUnavailable, match="OCRREVIEW_S3_BUCKET='no-such-bucket'"):
        storage.check_storage()


def test_an_unreachable_endpoint_is_named_at_start(s3_storage, settings):
    settings.STORAGES = storage_options(settings, endpoint_url="http://127.0.0.1:9")
    with pytest.raises(storage.StorageUnavailable, match="OCRREVIEW_S3_ENDPOINT_URL"):
        storage.check_storage()


def test_check_refuses_a_missing_bucket(s3_storage, settings):
    settings.STORAGES = storage_options(settings, bucket_name="no-such-bucket")
    settings.OCRREVIEW_S3_BUCKET = "no-such-bucket"
    with pytest.raises(SystemCheckError, match="OCRREVIEW_S3_BUCKET='no-such-bucket' does not"):
        call_command("check")


def test_a_worker_stops_at_start_on_a_missing_bucket(s3_server, db):
    """As production starts it: the worker exits naming the setting, before taking a task."""
    finished = worker_that_stops_at_start(worker_env(**s3_server.env("no-such-bucket")))
    assert "OCRREVIEW_S3_BUCKET='no-such-bucket' does not exist" in finished.stderr


@pytest.mark.django_db(transaction=True)
def test_two_uploads_of_one_name_at_once_keep_two_files_on_s3(s3_storage, letters, monkeypatch):
    """On S3 a name is taken only once its upload completes: both uploads find scan.tif free
    (held here until both have looked) and would store their bytes under the one name."""
    from storages.backends.s3 import S3Storage

    from ocrreview.corpus.ingestion import Upload, do_ingest
    from tests.ingestion import files

    looked = threading.Barrier(2, timeout=30)
    exists = S3Storage.exists

    def both_look_first(self, name):
        found = exists(self, name)
        if name.endswith("scan.tif"):
            looked.wait()
        return found

    monkeypatch.setattr(S3Storage, "exists", both_look_first)
    results = []

    def upload(pages):
        try:
            results.extend(do_ingest(letters, [Upload.from_bytes("scan.tif", files.tiff(pages))]))
        finally:
            connection.close()

    uploads = [threading.Thread(target=upload, args=(pages,)) for pages in (1, 2)]
    for thread in uploads:
        thread.start()
    for thread in uploads:
        thread.join()
    assert all(result.ok for result in results), [r.error for r in results]
    names = {result.document.source_file.name for result in results}
    assert len(names) == 2 and all(name.endswith("/scan.tif") for name in names)
    for result in results:
        with default_storage.open(result.document.source_file.name, "rb") as stored:
            assert Image.open(io.BytesIO(stored.read())).n_frames == result.pages


def test_a_prefork_worker_s_children_do_not_share_the_storage_check_s_connection(settings):
    """worker_init runs in the main process before the pool forks: a connection the check left
    open was inherited by every child, which all sent their requests down that one socket."""
    from ocrreview.celery import _refuse_unreachable_storage

    ports = []

    class KeepAliveS3(http.server.BaseHTTPRequestHandler):
        """A bucket that exists, on a server that keeps connections open as MinIO and AWS do
        (moto's closes each one)."""

        protocol_version = "HTTP/1.1"

        def do_HEAD(self):
            ports.append(self.client_address[1])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveS3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = {
        **settings.OCRREVIEW_S3_OPTIONS,
        "bucket_name": "ocrreview",
        "endpoint_url": f"http://127.0.0.1:{server.server_address[1]}",
        "access_key": "key",
        "secret_key": "secret",
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    settings.OCRREVIEW_S3_BUCKET = "ocrreview"
    try:
        _refuse_unreachable_storage()
        child = os.fork()
        if child == 0:
            try:
                default_storage.connection.meta.client.head_bucket(Bucket="ocrreview")
            finally:
                os._exit(0)
        os.waitpid(child, 0)
        default_storage.connection.meta.client.head_bucket(Bucket="ocrreview")
    finally:
        server.shutdown()
        server.server_close()
    check, in_child, in_parent = ports
    assert len({check, in_child, in_parent}) == 3


@pytest.mark.parametrize(
    "error, down",
    [
        # botocore's timeouts are OSErrors with no errno: a store that does not answer.
        (ReadTimeoutError(endpoint_url="http://store:9000"), True),
        (ConnectTimeoutError(endpoint_url="http://store:9000"), True),
        (EndpointConnectionError(endpoint_url="http://store:9000"), True),
        (OSError(errno.ESTALE, "Stale file handle"), True),
        (OSError(errno.ENOTCONN, "Transport endpoint is not connected"), True),
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), False),
        (PermissionError(errno.EACCES, "Permission denied"), False),
        (OSError(errno.EIO, "Input/output error"), False),
    ],
)
def test_what_says_the_store_is_down(error, down):
    assert storage.store_is_down(error) is down
