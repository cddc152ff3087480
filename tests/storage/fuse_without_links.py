"""A FUSE file system without hard links, as a bucket mount is: every call goes to a folder
below it, but link() is not there (Linux then answers EPERM). Run by the system's Python with
fusepy (Debian's python3-fusepy, requirements-apt.txt): python3 fuse_without_links.py ROOT
MOUNTPOINT; it serves until unmounted."""

import errno
import os
import sys

from fusepy import FUSE, FuseOSError, Operations

STAT = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")


class WithoutLinks(Operations):
    def __init__(self, root: str) -> None:
        self.root = root

    def _path(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def __call__(self, op, *args):
        try:
            return super().__call__(op, *args)
        except OSError as exc:
            raise FuseOSError(exc.errno) from None

    def link(self, target, source):
        # What FUSE answers for a file system that has no link(); the kernel turns it to EPERM.
        raise FuseOSError(errno.ENOSYS)

    def getattr(self, path, fh=None):
        st = os.lstat(self._path(path))
        return {field: getattr(st, field) for field in STAT}

    def access(self, path, mode):
        if not os.access(self._path(path), mode):
            raise FuseOSError(errno.EACCES)

    def readdir(self, path, fh):
        return [".", "..", *os.listdir(self._path(path))]

    def mkdir(self, path, mode):
        os.mkdir(self._path(path), mode)

    def rmdir(self, path):
        os.rmdir(self._path(path))

    def unlink(self, path):
        os.unlink(self._path(path))

    def rename(self, old, new):
        os.rename(self._path(old), self._path(new))

    def chmod(self, path, mode):
        os.chmod(self._path(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._path(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._path(path), times)

    def truncate(self, path, length, fh=None):
        os.truncate(self._path(path), length)

    def open(self, path, flags):
        return os.open(self._path(path), flags)

    def create(self, path, mode, fi=None):
        return os.open(self._path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        return os.pwrite(fh, data, offset)

    def flush(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        os.fsync(fh)

    def release(self, path, fh):
        os.close(fh)


if __name__ == "__main__":
    FUSE(WithoutLinks(sys.argv[1]), sys.argv[2], foreground=True)
