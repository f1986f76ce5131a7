"""Shared fixtures of the Python tests: the attend binary under test (ATTEND, or the release
build) and the shared corpora (../shared/data; tests that need them skip when absent)."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def attend():
    path = pathlib.Path(os.environ.get("ATTEND", ROOT / "build" / "release" / "attend"))
    if not path.is_file():
        pytest.fail(f"no attend binary at {path}: build the release preset or set ATTEND")

    def run(*args, input=None):
        done = subprocess.run([str(path), *map(str, args)], input=input, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise AssertionError(f"attend {' '.join(map(str, args))} failed ({done.returncode}):\n"
                                 f"{done.stderr}")
        return done.stdout

    return run


@pytest.fixture(scope="session")
def cli(attend):
    """The `attend` fixture under another name, for tests that import the module `attend`."""
    return attend


@pytest.fixture(scope="session")
def shared_data():
    path = pathlib.Path(os.environ.get("ATTEND_SHARED_DATA", ROOT.parent / "shared" / "data"))
    if not (path / "multi30k").is_dir():
        pytest.skip(f"the shared corpora are not at {path}")
    return path
