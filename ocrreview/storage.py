"""Where files live: Django's default storage, the local disk under MEDIA_ROOT or an S3 bucket
(settings, OCRREVIEW_S3_BUCKET). Code outside this module names files by their storage name and
never builds a path under MEDIA_ROOT, so web, workers and training may run on different hosts.

What needs a real file (a zip to seek in, a model directory for `from_pretrained`) gets a local
copy from here: the file itself on the local disk, a download otherwise."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage, storages
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header

logger = logging.getLogger(__name__)
CHUNK = 1 << 20
# ModelVersion.source of a version kept in storage, as opposed to a hub id or a local folder.
MODEL_SCHEME = "storage:"
CHECKSUMS = "SHA256SUMS"


class StorageUnavailable(ImproperlyConfigured):
    """The configured storage cannot be reached; the message names the setting to check."""


def is_local() -> bool:
    return isinstance(default_storage, FileSystemStorage)


# Where a write in progress is on the local disk: a folder of its own at the storage's root
# (one file system with the rest, so the move to its name is a rename), named for what it is
# written for, a random part and this suffix. What a killed write left there is removed by
# sweep_partial_files, which looks nowhere else: a stored file of any name (a user's
# `.thesis.partial`) is never taken for one.
PARTIAL_FOLDER = ".writes-in-progress"
PARTIAL_SUFFIX = ".partial"


def _partial_file(root: str, path: Path) -> tuple[int, str]:
    """A new file to write `path` in, under the storage `root`, named so that it is not whole."""
    folder = Path(root) / PARTIAL_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=folder, prefix=f"{path.name}.", suffix=PARTIAL_SUFFIX)


class _Written(File):
    """A whole file in the storage's folder, which FileSystemStorage moves to its name."""

    def temporary_file_path(self) -> str:
        return self.name


# What link() answers on a file system without hard links (a FUSE mount of a bucket; Linux
# says EPERM).
NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP})
# Taken by the saves that give a file its name where there are no hard links; beside the
# partial files, never swept with them: a lock file removed while held lets the next save lock
# another.
NAMES_LOCK = "names.lock"


class LocalStorage(FileSystemStorage):
    """The local disk, where a file appears under its name whole or not at all: Django's own
    writes it in place, so a write killed mid-way (the worker's memory, a deploy) left a
    truncated file under the name, which nothing tells from a whole one."""

    def _save(self, name: str, content) -> str:
        tmp = self.write_partial(name, content.chunks())
        try:
            if self._allow_overwrite:
                os.replace(tmp, self.path(name))
            else:
                name = self._link_to_a_free_name(tmp, name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return os.path.relpath(self.path(name), self.location).replace(os.sep, "/")

    def write_partial(self, name: str, chunks: Iterable[bytes | str]) -> str:
        """The path of a whole file of `chunks`, not yet under `name`, with the permissions and
        group of a stored file: set before it has its name, so that it never shows there
        otherwise (mkstemp makes it 0600)."""
        fd, tmp = _partial_file(self.location, Path(self.path(name)))
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk.encode() if isinstance(chunk, str) else chunk)
            if self.file_permissions_mode is not None:
                os.chmod(tmp, self.file_permissions_mode)
            self._ensure_location_group_id(tmp)
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    def _link_to_a_free_name(self, tmp: str, name: str) -> str:
        """Give the whole file `tmp` the name, or where it is taken the one get_available_name
        gives then. Django checks that the name is free and then renames over it, so two
        saves of one name at once could both find it free and the second replace the first;
        a hard link fails, atomically, where the name exists."""
        while True:
            try:
                os.link(tmp, self.path(name))
                return name
            except FileExistsError:
                name = self.get_available_name(name)
            except OSError as exc:
                if exc.errno not in NO_HARD_LINKS:
                    raise
                return self._rename_to_a_free_name(tmp, name)

    def _rename_to_a_free_name(self, tmp: str, name: str) -> str:
        """_link_to_a_free_name where the file system has no hard links: Django's check of the
        name and rename over it, made one step by a lock that every such save takes: without
        it two saves at once could both find the name free, and one lose its file to the
        other or fail (tests/storage/test_no_hard_links.py). The lock is the host's where the
        file system keeps none (FUSE then locks in the kernel), the file system's where it
        shares its locks (NFS)."""
        with (Path(self.location) / PARTIAL_FOLDER / NAMES_LOCK).open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return super()._save(name, _Written(None, tmp))


class StorageError(Exception):
    """A file could not be written to the storage; the message says why, for the user."""


# S3 errors that say the store, not one object, is at fault.
STORE_WIDE_ERRORS = frozenset(
    {
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "NoSuchBucket",
        "RequestTimeout",
        "SignatureDoesNotMatch",
        "SlowDown",
        "Throttling",
    }
)


# What a shared disk (NFS, SMB, a FUSE mount of a bucket) answers while its server is gone
# or the share is remounting. Never one file's fault, unlike a missing file or a refused
# permission; nor EIO, which a failing local disk gives for one file for good.
UNREACHABLE_DISK_ERRNOS = frozenset(
    {
        errno.ESTALE,
        errno.ENOTCONN,
        errno.ETIMEDOUT,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
    }
)


def store_is_down(exc: BaseException) -> bool:
    """Whether an error of the storage says it is down or refuses everyone (S3: no
    connection, a timeout, a 5xx, keys it no longer takes; a shared disk: its server gone),
    not that one file is at fault: what waits for the store rather than failing the work that
    met it."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or exc.response.get("Error", {}).get("Code") in STORE_WIDE_ERRORS
    if isinstance(exc, BotoCoreError):  # no connection, a timeout, no credentials
        return True  # botocore's timeouts are OSErrors too, with no errno
    return isinstance(exc, OSError) and exc.errno in UNREACHABLE_DISK_ERRNOS


# What a stored file keeps of its name: the fields' 100 characters less the folders
# ("uploads/2026/12/" and the folder of its own).
OWN_NAME_LENGTH = 50


def name_of_its_own(name: str) -> str:
    """The file's own name in a folder of its own. Django keeps two uploads of scan.pdf apart
    by checking which names are free, but on S3 an object exists only once its upload is
    complete: two at once both find the name free, and the last one replaces the first.

    Cut to fit the field with its suffix, and with no dot before the suffix: Django takes
    everything from a name's first dot for its extensions, and when what is left before it
    cannot be shortened to fit, refuses to store the file ("Protokolle 1923.04.01-1923.12.31
    Sitzungen.pdf"). The page keeps the name as uploaded (Page.source_name)."""
    path = PurePosixPath(PurePosixPath(name).name)
    suffix = path.suffix if len(path.suffix) <= 10 else ""
    stem = path.name.removesuffix(suffix).replace(".", "_")
    return f"{uuid.uuid4().hex}/{stem[: OWN_NAME_LENGTH - len(suffix)]}{suffix}"


def delete_files(files: Iterable) -> None:
    """Delete stored files (FieldFiles), and on a disk the folder of its own that a file was
    given (name_of_its_own) with it; a bucket has no folders to leave behind. Called once
    what referred to them is gone: a file that cannot be deleted is logged and left, and the
    others are deleted all the same."""
    for file in files:
        try:
            file.storage.delete(file.name)
        except Exception:
            logger.exception("Deleting %s failed; it is left in the storage", file.name)
            continue
        folder = PurePosixPath(file.name).parent
        if isinstance(file.storage, FileSystemStorage) and _OWN_FOLDER.fullmatch(folder.name):
            with contextlib.suppress(OSError):  # not empty after all, or gone
                os.rmdir(file.storage.path(str(folder)))


_OWN_FOLDER = re.compile(r"[0-9a-f]{32}")


def save_field_file(field_file, name: str, content, *, save: bool) -> str:
    """FieldFile.save, with whatever the backend raises (OSError on a disk, botocore's errors
    on S3) as a StorageError that callers can report beside their other errors."""
    try:
        field_file.save(name, content, save=save)
    except Exception as exc:
        logger.exception("Storing %s failed", name)
        raise StorageError(f"the file could not be stored ({exc})") from exc
    return field_file.name


def check_storage() -> None:
    """Fail with a message naming the setting when the bucket is missing or unreachable, so
    that a misconfigured install says so at start rather than at its first upload."""
    if is_local():
        return
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = settings.OCRREVIEW_S3_BUCKET
    # On a storage of its own, closed after: a worker checks in its main process before the
    # pool forks, and a connection of the default storage's opened here would be inherited
    # by every child, all of them sending their requests down that one socket.
    client = storages.create_storage(settings.STORAGES["default"]).connection.meta.client
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        problem = (
            "does not exist" if code in ("404", "NoSuchBucket") else f"refused access ({code})"
        )
        raise StorageUnavailable(
            f"OCRREVIEW_S3_BUCKET={bucket!r} {problem} at "
            f"{settings.STORAGES['default']['OPTIONS']['endpoint_url'] or 'AWS S3'}; create it "
            "or check the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY it is reached with"
        ) from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(
            f"cannot reach the storage of OCRREVIEW_S3_BUCKET={bucket!r} "
            f"(OCRREVIEW_S3_ENDPOINT_URL={settings.STORAGES['default']['OPTIONS']['endpoint_url']!r}): "
            f"{exc}"
        ) from exc
    finally:
        client.close()


def storage_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """check_storage as a system check, so that `migrate` (which production runs before
    anything else starts) and `check` refuse a storage they cannot reach."""
    try:
        check_storage()
    except StorageUnavailable as exc:
        return [checks.Error(str(exc), id="ocrreview.E001")]
    return []


def put_file(name: str, local: Path) -> str:
    """Store the local file under exactly this name, replacing what was there (an export or
    a cache entry rebuilt); uploads to S3 go in parts. Returns the name."""
    if default_storage.exists(name):
        default_storage.delete(name)
    with local.open("rb") as handle:
        stored = default_storage.save(name, File(handle, name=local.name))
    if stored != name:
        # Another writer stored the same name between the delete and the save.
        default_storage.delete(stored)
        raise FileExistsError(f"{name} was written by someone else meanwhile")
    return name


def put_bytes(name: str, data: bytes) -> str:
    """Store data under exactly this name, whole or not at all, however many writers race (a
    cache entry that two requests make at once): a reader never sees half a file."""
    if is_local():
        os.replace(default_storage.write_partial(name, [data]), default_storage.path(name))
    else:
        # One PUT: S3 shows an object whole or not at all, and the last writer wins.
        default_storage._save(name, ContentFile(data))
    return name


def put_directory(prefix: str, local: Path) -> str:
    """Store every file under the local folder below prefix/ (a trained model version), and
    last a SHA256SUMS of them: its presence says the upload is whole, and a download is
    checked against it."""
    sums = []
    for path in sorted(local.rglob("*")):
        if path.is_file():
            relative = path.relative_to(local).as_posix()
            put_file(f"{prefix}/{relative}", path)
            sums.append(f"{_sha256(path)}  {relative}\n")
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / CHECKSUMS
        listing.write_text("".join(sums), encoding="utf-8")
        put_file(f"{prefix}/{CHECKSUMS}", listing)
    return prefix


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def local_copy(name: str, suffix: str = "") -> Iterator[Path]:
    """A path to read the stored file at: the file itself on the local disk, else a
    temporary download that is removed afterwards."""
    if is_local():
        yield Path(default_storage.path(name))
        return
    fd, tmp = tempfile.mkstemp(suffix=suffix or Path(name).suffix, prefix="ocrreview-")
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(name, "rb") as source:
            shutil.copyfileobj(source, out, CHUNK)
        yield Path(tmp)
    finally:
        os.unlink(tmp)


def download_response(name: str, filename: str, content_type: str | None = None) -> HttpResponse:
    """The stored file as a download, once the caller has checked the permission: a redirect to
    a short-lived presigned URL on S3, so the bytes never pass through the web worker, or the
    file streamed from the local disk."""
    if is_local():
        return FileResponse(
            default_storage.open(name, "rb"),
            as_attachment=True,
            filename=filename,
            content_type=content_type,
        )
    # Quoted and RFC 5987-encoded as Django does it: a collection's name may hold quotes or
    # accents.
    parameters = {
        "ResponseContentDisposition": content_disposition_header(True, filename) or "attachment"
    }
    if content_type:
        parameters["ResponseContentType"] = content_type
    if not settings.OCRREVIEW_S3_PUBLIC_URL:
        return HttpResponseRedirect(default_storage.url(name, parameters=parameters))
    import boto3
    from botocore.config import Config
    from storages.utils import clean_name

    # Signing needs no connection: a client for the public address signs for it.
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=settings.OCRREVIEW_S3_PUBLIC_URL,
        region_name=default_storage.region_name,
        config=Config(
            signature_version="s3v4", s3={"addressing_style": default_storage.addressing_style}
        ),
    )
    url = client.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": default_storage.bucket_name,
            # Under the storage's prefix, as its own url() puts it.
            "Key": default_storage._normalize_name(clean_name(name)),
            **parameters,
        },
        ExpiresIn=default_storage.querystring_expire,
    )
    return HttpResponseRedirect(url)


def model_source(prefix: str) -> str:
    return MODEL_SCHEME + prefix


def resolve_model_source(source: str) -> str:
    """What `from_pretrained` loads for a ModelVersion.source: a version kept in storage is
    downloaded once into OCRREVIEW_MODELS_DIR/cache (keyed by its storage name and the
    checksum of its files) and loaded from there; hub ids and folders pass through."""
    if not source.startswith(MODEL_SCHEME):
        return source
    prefix = source.removeprefix(MODEL_SCHEME)
    if is_local():
        return default_storage.path(prefix)
    return str(_cached_model(prefix))


def _checksums(prefix: str) -> bytes:
    try:
        with default_storage.open(f"{prefix}/{CHECKSUMS}", "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"nothing whole under {prefix!r} in storage") from exc


def get_directory(prefix: str, target: Path) -> Path:
    """Download what put_directory stored under prefix/ into the local folder `target`, each
    file checked against its checksum; the folder appears whole or not at all."""
    _download(prefix, _checksums(prefix), target)
    return target


def _download(prefix: str, listing: bytes, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for line in listing.decode("utf-8").splitlines():
        expected, relative = line.split("  ", 1)
        local = partial / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(f"{prefix}/{relative}", "rb") as source, local.open("wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
        if _sha256(local) != expected:
            shutil.rmtree(partial)
            raise OSError(f"{prefix}/{relative} does not match its checksum; not loaded")
    partial.rename(target)


def delete_directory(prefix: str) -> None:
    """Delete everything stored under prefix/, and on a file system the emptied folders (a
    bucket has none)."""
    folders, files = default_storage.listdir(prefix)
    for name in files:
        default_storage.delete(f"{prefix}/{name}")
    for folder in folders:
        delete_directory(f"{prefix}/{folder}")
    if is_local():
        default_storage.delete(prefix)


# Versions this process has found whole in its host's cache: the storage name of each (with
# the store and the cache it was found in) and its folder. A version's files are never stored
# again under its name (a trained model's folder is named by its run and claim), so once
# checked it is not asked of the store again: a warm worker would otherwise fetch SHA256SUMS
# for every chunk of lines, and fail them while the store is down although it holds the model.
_verified: dict[tuple[str, ...], Path] = {}


def _cached_model(prefix: str) -> Path:
    known = (
        str(settings.OCRREVIEW_MODELS_DIR),
        default_storage.bucket_name,
        str(default_storage.endpoint_url),
        default_storage.location,
        prefix,
    )
    target = _verified.get(known)
    if target is not None and target.is_dir():
        return target
    target = _fetched_model(prefix)
    _verified[known] = target
    return target


def _fetched_model(prefix: str) -> Path:
    listing = _checksums(prefix)
    # Keyed by the checksums: a version stored again under the same name (by hand) is
    # downloaded again by a process that has not checked it yet, instead of loading stale
    # weights.
    key = hashlib.sha256(prefix.encode() + b"\0" + listing).hexdigest()[:32]
    cache = Path(settings.OCRREVIEW_MODELS_DIR) / "cache"
    target = cache / key
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    # One download per version on a host, whichever process asks first; the others wait for
    # it and load the same folder.
    with (cache / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_dir():
            _download(prefix, listing, target)
    return target


def sweep_partial_files() -> None:
    """Remove what writes killed mid-way (a worker out of memory, a deploy) left behind, once
    older than OCRREVIEW_PARTIAL_FILES_SECONDS, so that no write still going is touched: the
    local disk's partial files, S3's multipart uploads never completed (invisible in the
    bucket, paid for all the same), and this host's model downloads that did not finish."""
    age = timedelta(seconds=settings.OCRREVIEW_PARTIAL_FILES_SECONDS)
    if is_local():
        remove_partial_files(Path(default_storage.location), time.time() - age.total_seconds())
    else:
        sweep_multipart_uploads(age)
    remove_partial_downloads(Path(settings.OCRREVIEW_MODELS_DIR) / "cache")


def sweep_multipart_uploads(age: timedelta) -> None:
    """abort_multipart_uploads for uploads older than `age` by the store's clock, which dated
    them; where the store does not tell its time, the rest of the sweep goes on without."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = default_storage.connection.meta.client
    try:
        date = client.head_bucket(Bucket=default_storage.bucket_name)["ResponseMetadata"]
    except (BotoCoreError, ClientError):
        logger.exception("The store did not answer; its unfinished uploads wait for the next sweep")
        return
    abort_multipart_uploads(parsedate_to_datetime(date["HTTPHeaders"]["date"]) - age)


def remove_partial_files(root: Path, written_before: float) -> None:
    """Partial files under `root` last written before this time (seconds since the epoch)."""
    folder = root / PARTIAL_FOLDER
    if not folder.is_dir():
        return
    for path in folder.glob(f"*{PARTIAL_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):  # finished or removed meanwhile
            if path.stat().st_mtime < written_before:
                size = path.stat().st_size
                path.unlink()
                logger.warning(
                    "Removed %s (%d bytes), left by a write that never finished",
                    path.relative_to(root),
                    size,
                )


def s3_prefix() -> str:
    """Where the default storage's keys begin in its bucket: its location (OCRREVIEW_S3_PREFIX)
    and a slash, or nothing where the bucket is its own."""
    from storages.utils import safe_join

    return safe_join(default_storage.location, "")


@dataclass
class UploadsSwept:
    """What abort_multipart_uploads did: uploads aborted; gone between the listing and their
    abort (completed, or aborted by another worker's sweep); left because the store refused to
    abort them; and whether the listing was read to its end."""

    aborted: int = 0
    gone: int = 0
    failed: int = 0
    listed_all: bool = True


def abort_multipart_uploads(initiated_before: datetime) -> UploadsSwept:
    """The default storage's multipart uploads begun before this time and never completed,
    under its own prefix alone: in a bucket shared with other apps, theirs are not its to
    abort. An upload the store refuses to abort (AccessDenied) is logged and left, and the
    others are aborted all the same; the sweep stops only where the store itself fails."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = default_storage.connection.meta.client
    bucket = default_storage.bucket_name
    prefix = s3_prefix()
    swept = UploadsSwept()
    try:
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=prefix
        )
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < initiated_before:
                    _abort_multipart_upload(client, bucket, upload, swept)
    except (BotoCoreError, ClientError):
        swept.listed_all = False
        logger.exception("The sweep of the uploads under %r of bucket %s stopped", prefix, bucket)
    if swept.failed or not swept.listed_all:
        level = logging.ERROR
    elif swept.aborted or swept.gone:
        level = logging.INFO
    else:
        return swept
    logger.log(
        level,
        "Unfinished uploads under %r of bucket %s: %d aborted, %d gone meanwhile, %d left "
        "(refused)%s",
        prefix,
        bucket,
        swept.aborted,
        swept.gone,
        swept.failed,
        "" if swept.listed_all else ", the listing not read to its end",
    )
    return swept


def _abort_multipart_upload(client, bucket: str, upload: dict, swept: UploadsSwept) -> None:
    from botocore.exceptions import ClientError

    begun = upload["Initiated"].isoformat()
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    except ClientError as exc:
        if store_is_down(exc):
            raise  # every other upload would fail the same way
        if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
            swept.gone += 1
            logger.info("The upload of %s begun at %s was gone already", upload["Key"], begun)
            return
        swept.failed += 1
        logger.error(
            "Aborting the upload of %s begun at %s failed (%s); it is left, and tried again at "
            "the next sweep",
            upload["Key"],
            begun,
            exc,
        )
        return
    swept.aborted += 1
    logger.warning(
        "Aborted the upload of %s begun at %s, which never finished", upload["Key"], begun
    )


def remove_partial_downloads(cache: Path) -> None:
    """Model downloads into the host's cache that stopped half-way: those whose lock no
    process holds (_fetched_model holds it while it downloads)."""
    for partial in cache.glob(f"*{PARTIAL_SUFFIX}"):
        key = partial.name.removesuffix(PARTIAL_SUFFIX)
        with (cache / f"{key}.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a download going on
            shutil.rmtree(partial, ignore_errors=True)
            logger.warning("Removed %s, a model download that never finished", partial)
