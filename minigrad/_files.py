"""Atomic file writes, shared by downloads and model saving.

A temporary file is named ``.tmp-minigrad-<pid>-<random>`` beside its
destination; one left behind by a killed process (SIGKILL runs no cleanup)
is removed by the next write into the same folder once that pid is gone."""
import errno
import os
import tempfile

PREFIX = ".tmp-minigrad-"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale_temps(folder):
    """Remove the temporary files of dead minigrad processes from folder."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def atomic_write(dest, write):
    """Call ``write(f)`` on a temporary file beside ``dest``, then rename it over
    dest: an error or interruption leaves no partial file and never destroys
    an existing one."""
    if not str(dest):
        raise FileNotFoundError(errno.ENOENT, "an empty path names no file", "")
    if os.path.isdir(dest):
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(dest))
    folder = os.path.dirname(os.path.abspath(dest))
    try:
        os.makedirs(folder, exist_ok=True)
        clean_stale_temps(folder)
        fd, tmp = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-", dir=folder)
    except OSError as e:  # name the destination, not the temporary file
        raise type(e)(e.errno, f"cannot write there: {e.strerror}", str(dest)) from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
