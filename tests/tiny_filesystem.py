"""A size-limited tmpfs for tests of a full disk (mounting needs root; the test is skipped otherwise)."""
import os
import shutil
import subprocess
from contextlib import contextmanager

import pytest


@contextmanager
def tiny_filesystem(mount_point, size="20m"):
    """Mount a tmpfs of `size` at `mount_point` (created) for the block; unmounted after it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)
