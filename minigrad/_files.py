"""Atomic file writes, shared by downloads and model saving."""
import os
import tempfile


def atomic_write(dest, write):
    """Call ``write(f)`` on a temporary file beside ``dest``, then rename it over
    dest: an error or interruption leaves no partial file and never destroys
    an existing one."""
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
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
