"""Shared helpers: the script imported as a module, and the script run as a program."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'microgpt_teaching.py')
sys.path.insert(0, ROOT)

import microgpt_teaching  # noqa: E402  (importing must run nothing; test_cli checks that too)


@pytest.fixture
def mg():
    """The script as a module. Every setting is put back to its default after the test."""
    saved = dict(microgpt_teaching.SETTINGS)
    yield microgpt_teaching
    for name, value in saved.items():
        setattr(microgpt_teaching, name, value)


def run_script(*args, cwd=None, timeout=120):
    """Run the script as a user would; output is decoded as UTF-8 whatever the locale."""
    env = dict(os.environ, PYTHONIOENCODING='utf-8')
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=cwd or ROOT, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8')


def write_lines(path, text, encoding='utf-8'):
    with open(path, 'w', encoding=encoding, newline='') as f:
        f.write(text)
    return str(path)
