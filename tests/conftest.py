"""共用的辅助工具：把脚本当作模块导入 (import)，以及像用户那样把脚本当作程序运行。"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'microgpt_teaching.py')
sys.path.insert(0, ROOT)

import microgpt_teaching  # noqa: E402  （导入时必须什么都不运行；test_cli 也检查这一点）


@pytest.fixture
def mg():
    """脚本本身（当作模块）。测试结束后，每个设置都恢复成默认值。"""
    saved = dict(microgpt_teaching.SETTINGS)
    yield microgpt_teaching
    for name, value in saved.items():
        setattr(microgpt_teaching, name, value)


def run_script(*args, cwd=None, timeout=120):
    """像用户那样运行脚本；不管系统的区域设置 (locale) 是什么，输出都按 UTF-8 解码。"""
    env = dict(os.environ, PYTHONIOENCODING='utf-8')
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=cwd or ROOT, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8')


def write_lines(path, text, encoding='utf-8'):
    with open(path, 'w', encoding=encoding, newline='') as f:
        f.write(text)
    return str(path)


def assert_clean_failure(result, code, *words):
    """用户能自己改正的错误：给定的退出码，标准错误里正好一行“错误：……”，含有这些词，没有回溯。"""
    out = result.stdout + result.stderr
    assert result.returncode == code, out
    assert 'Traceback' not in out
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('错误：'), result.stderr
    for word in words:
        assert word in result.stderr
