"""The export's zip writer: what it writes reads back whole in zipfile and unzip, ZIP64 where
sizes, offsets and counts need it, and its memory does not grow with the entries."""

import os
import shutil
import subprocess
import tracemalloc
import zipfile

import pytest

from ocrreview.corpus import zipstream
from ocrreview.corpus.zipstream import ZipWriter

ENTRIES = {
    "a/plain.txt": b"some text " * 500,
    "a/image.png": os.urandom(5000),
    "names/café ☕.txt": b"non-ASCII names are UTF-8",
    "empty": b"",
}


def write_all(path, tmp_path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"from a file, copied in chunks\n" * 3000)
    with ZipWriter(path) as archive:
        for number, (name, data) in enumerate(ENTRIES.items()):
            archive.writestr(name, data, compress=number % 2 == 0)
        archive.write("files/deflated.bin", source, compress=True)
        archive.write("files/stored.bin", source, compress=False)


def check(path, tmp_path) -> None:
    expected = {
        **ENTRIES,
        "files/deflated.bin": (tmp_path / "source.bin").read_bytes(),
        "files/stored.bin": (tmp_path / "source.bin").read_bytes(),
    }
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # every CRC checked
        assert archive.namelist() == list(expected)
        assert {name: archive.read(name) for name in expected} == expected
        assert archive.getinfo("a/plain.txt").compress_size < 5000  # deflated
        assert archive.getinfo("a/image.png").compress_type == zipfile.ZIP_STORED
    if shutil.which("unzip"):
        tested = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
        assert tested.returncode == 0 and "No errors detected" in tested.stdout, tested.stdout


def test_entries_from_bytes_and_from_files_read_back_whole(tmp_path):
    write_all(tmp_path / "out.zip", tmp_path)
    check(tmp_path / "out.zip", tmp_path)


def test_zip64_sizes_offsets_and_counts_read_back_whole(tmp_path, monkeypatch):
    """The same entries with the limits lowered, so that every ZIP64 field is written: what
    an archive over 2 GiB or 65,535 entries gets."""
    monkeypatch.setattr(zipstream, "LIMIT", 1000)
    monkeypatch.setattr(zipstream, "COUNT_LIMIT", 3)
    write_all(tmp_path / "out.zip", tmp_path)
    data = (tmp_path / "out.zip").read_bytes()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # ZIP64 end records
    check(tmp_path / "out.zip", tmp_path)


def test_its_memory_does_not_grow_with_the_entries(tmp_path):
    def peak(entries: int) -> int:
        tracemalloc.start()
        try:
            with ZipWriter(tmp_path / f"{entries}.zip") as archive:
                for number in range(entries):
                    archive.writestr(f"imagefolder/train/line-{number}.png", b"x", compress=False)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(1000), peak(20_000)
    # zipfile holds nearly 500 bytes an entry: 9 MB more for the larger.
    assert large < small + 200_000, (small, large)
    with zipfile.ZipFile(tmp_path / "20000.zip") as archive:
        assert len(archive.namelist()) == 20_000


def test_a_failed_write_leaves_no_directory_behind(tmp_path):
    with pytest.raises(RuntimeError), ZipWriter(tmp_path / "out.zip") as archive:
        archive.writestr("a", b"a", compress=True)
        raise RuntimeError("the export failed")
    assert [p.name for p in tmp_path.iterdir()] == ["out.zip"]
