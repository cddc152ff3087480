"""LocalStorage on a file system without hard links (a FUSE mount of a bucket, some network
file systems), where link() fails with EPERM: a real FUSE mount (fuse_without_links.py), not a
patched os.link. Each save still keeps a name of its own, whole, under saves of one name at
once, as on a disk with links (test_concurrent_saves)."""

import errno
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from ocrreview.storage import (
    NAMES_LOCK,
    PARTIAL_FOLDER,
    PARTIAL_SUFFIX,
    LocalStorage,
    remove_partial_files,
)
from tests.storage.test_concurrent_saves import PROCESSES, assert_each_save_kept, saves_at_once

SYSTEM_PYTHON = "/usr/bin/python3"
# Every call through the FUSE daemon costs a round trip to Python: fewer rounds than on a disk.
# Django's check and rename alone failed a save within them in each of 3 runs here (its
# os.stat of the name it had just renamed to: FileNotFoundError).
ROUNDS = 300


def _fusepy_missing() -> str:
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    check = subprocess.run([SYSTEM_PYTHON, "-c", "import fusepy"], capture_output=True)
    return "" if check.returncode == 0 else "no fusepy for /usr/bin/python3 (python3-fusepy)"


@pytest.fixture
def without_links(tmp_path):
    """A folder on a FUSE file system without hard links, backed by another."""
    missing = _fusepy_missing()
    if missing:
        pytest.skip(f"a FUSE mount needs it: {missing}")
    backing, mount = tmp_path / "backing", tmp_path / "mount"
    backing.mkdir()
    mount.mkdir()
    # To a file, not a pipe nobody reads while the tests run: a chatty daemon would block.
    log = tmp_path / "fuse.log"
    with log.open("wb") as stderr:
        daemon = subprocess.Popen(
            [SYSTEM_PYTHON, str(Path(__file__).with_name("fuse_without_links.py")), backing, mount],
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mount):
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"FUSE mount refused here: {log.read_text()[-300:]}")
            time.sleep(0.05)
        yield mount
    finally:
        _unmount(daemon, mount)


def _unmount(daemon: subprocess.Popen, mount: Path) -> None:
    """Unmounted and its daemon ended, also where unmounting fails (a file still open in it):
    the daemon is then killed and the mount detached lazily, not left behind, and the failure
    still reported."""
    fusermount = shutil.which("fusermount")
    command = [fusermount, "-u"] if fusermount else ["umount"]
    unmounted = not os.path.ismount(mount)
    try:
        if not unmounted:
            subprocess.run([*command, mount], check=True)
            unmounted = True
        daemon.wait(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        if not unmounted:
            # A dead daemon's mount no longer says it is one (os.path.ismount): detach it anyway.
            subprocess.run([*command, "-z" if fusermount else "-l", mount], check=False)


def test_a_save_where_links_fail_keeps_each_file_under_a_name_of_its_own(without_links):
    (without_links / "probe").write_bytes(b"")
    with pytest.raises(PermissionError) as refused:
        os.link(without_links / "probe", without_links / "probe-link")
    assert refused.value.errno == errno.EPERM  # what storage.NO_HARD_LINKS names for FUSE

    storage = LocalStorage(location=str(without_links / "media"))
    first = storage.save("pages/a.txt", ContentFile(b"first"))
    second = storage.save("pages/a.txt", ContentFile(b"second"))
    assert first == "pages/a.txt" and second != first and second.startswith("pages/a_")
    assert storage.open(first).read() == b"first" and storage.open(second).read() == b"second"
    assert (without_links / "media" / first).stat().st_mode & 0o777 == 0o644
    partial = without_links / "media" / PARTIAL_FOLDER
    assert not list(partial.glob(f"*{PARTIAL_SUFFIX}"))
    # The sweep of partial files leaves the lock the saves take, however old.
    os.utime(partial / NAMES_LOCK, (0, 0))
    remove_partial_files(without_links / "media", time.time())
    assert os.listdir(partial) == [NAMES_LOCK]


def test_saves_of_one_name_at_once_lose_nothing_where_links_fail(without_links):
    location = without_links / "media"
    saved = saves_at_once(location, ROUNDS)
    assert len(saved) == PROCESSES * ROUNDS
    assert_each_save_kept(location, saved)
    assert not list((location / PARTIAL_FOLDER).glob(f"*{PARTIAL_SUFFIX}"))
