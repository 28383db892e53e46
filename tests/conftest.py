"""共用的辅助工具：把脚本当作模块导入 (import)，以及像用户那样把脚本当作程序运行。"""
import os
import random
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'microgpt_teaching.py')
sys.path.insert(0, ROOT)

import microgpt_teaching  # noqa: E402
from helpers import default_start, graph_size, train_steps  # noqa: E402,F401  （测试文件从 conftest 取用它们）  （导入时必须什么都不运行；test_cli 也检查这一点）


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


# ---- 多个测试文件共用的小数据和读输出的办法（只在这里定义一次）----
SMALL = ('--n_embd=8', '--n_head=2', '--num_samples=5')      # 小模型：命令行测试跑得快
NAMES = ['anna', 'bob', 'carla', 'dora', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu', 'mia', 'ned',
         'ola', 'pam', 'ray', 'sam', 'tia', 'uma', 'val', 'wes', 'yan', 'abe', 'ben', 'cat', 'dan', 'eli',
         'finn', 'gil', 'hana', 'ian', 'jade', 'kai', 'leo', 'max', 'nia', 'otto', 'pia', 'rex']   # 40 个，没有 q、z


def sample_lines(stdout):
    """每一行编号的样本：(样本, 标签)，按顺序。"""
    return re.findall(r'^ +\d+\. (\S+) +(\S+?)(?:（重复）)?$', stdout, flags=re.M)


def held_out_loss(stdout, label):
    """损失表里某一行（例如“训练后”）的留出集损失。"""
    return float(re.search(rf'^  {label} +(\d+\.\d+) ', stdout, flags=re.M).group(1))


# ---- 梯度测试共用（test_autograd、test_model、test_speed）----
def numeric_grad(f, leaf, h=1e-6):
    """对一个叶子求中心差分 (f(x + h) - f(x - h)) / 2h（float64）；f 每次调用都从叶子重新建一遍图。"""
    old = leaf.data
    leaf.data = old + h
    up = f().data
    leaf.data = old - h
    down = f().data
    leaf.data = old
    return (up - down) / (2 * h)


def check_grads(f, leaves):
    """f() 对每个叶子的梯度（反向传播）要和中心差分吻合。"""
    for leaf in leaves:
        leaf.grad = 0.0
    f().backward()
    for leaf in leaves:
        expected = numeric_grad(f, leaf)
        assert leaf.grad == pytest.approx(expected, rel=1e-6, abs=1e-8), (leaf.data, leaf.grad, expected)


TINY_DOCS = ['abcab', 'ba', 'cabbac', 'a', 'ccbab']     # 词表 a、b、c 加 BOS


def tiny_model(mg, n_layer=2, n_embd=4, n_head=2, block_size=8, docs=TINY_DOCS):
    """一个很小的模型（默认 2 层、2 个头），权重放大 5 倍，每条路径上的梯度都明显不是 0。返回 (分词器, state)。"""
    mg.n_layer, mg.n_embd, mg.n_head, mg.block_size = n_layer, n_embd, n_head, block_size
    random.seed(11)
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    for p in mg.flatten(state):
        p.data *= 5
    return tok, state


def mean_doc_loss(mg, state, tok, doc):
    """和 train() 里一样：一个名字各位置损失的平均。"""
    losses = mg.doc_losses(state, tok.encode(doc))
    return (1 / len(losses)) * sum(losses)


# ---- 命令行测试共用（test_cli、test_checkpoint、test_teacher、test_inspect）----
def run_main(*args, cwd=None):
    """在本进程里运行 main(args)，像 run_script 一样返回 returncode、stdout、stderr，但不用启动新的 Python
    （快得多）。输出不是终端、终端宽度按 80 列算（和 run_script 一样）；结束后把这次改过的一切都还原：
    设置、stopping、当前文件夹、信号处理、gc、随机数状态、sys.stdout/stderr/argv。
    要真正的进程时（信号、管道、import）仍用 run_script。"""
    import gc
    import io
    import signal
    import subprocess
    mg = microgpt_teaching
    saved = ({name: getattr(mg, name) for name in mg.SETTINGS}, dict(mg.stopping), os.getcwd(), gc.isenabled(),
             random.getstate(), [(sig, signal.getsignal(sig)) for sig in mg.STOP_SIGNALS],
             sys.stdout, sys.stderr, sys.argv, os.environ.get('COLUMNS'))
    out, err = io.StringIO(), io.StringIO()
    try:
        os.chdir(cwd or ROOT)
        os.environ['COLUMNS'] = '80'
        sys.stdout, sys.stderr, sys.argv = out, err, [SCRIPT, *args]
        code = mg.main(list(args))
    finally:
        settings, stopping, folder, gc_on, random_state, handlers, sys.stdout, sys.stderr, sys.argv, columns = saved
        for name, value in settings.items():
            setattr(mg, name, value)
        mg.stopping.update(stopping)
        os.chdir(folder)
        if gc_on:
            gc.enable()
        random.setstate(random_state)
        for sig, handler in handlers:
            signal.signal(sig, handler)
        if columns is None:
            os.environ.pop('COLUMNS', None)
        else:
            os.environ['COLUMNS'] = columns
    return subprocess.CompletedProcess([SCRIPT, *args], code, out.getvalue(), err.getvalue())


def numbered_samples(stdout):
    """每一行编号的样本：(样本, 完整的标签)，按顺序。和 sample_lines 不同，标签里可以有空格
    （例如“新（到了长度上限 block_size，被截断）”），所以被截断的样本也算在内。"""
    return re.findall(r'^ +\d+\. (\S+) {2,}(\S.*)$', stdout, flags=re.M)


def squash(text):
    """去掉所有空白。say() 按终端宽度折行，一句话可能断在任何空白处或两个汉字之间；比较前两边都 squash。"""
    return re.sub(r'\s+', '', text)


# ---- 命令行测试共用的数据和模型文件（test_checkpoint、test_hints、test_robust）----
@pytest.fixture
def data(tmp_path):
    """40 个名字（NAMES）的数据文件。"""
    return write_lines(tmp_path / 'names.txt', '\n'.join(NAMES) + '\n')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """一次真的训练并保存（40 个名字、20 步、小模型），同一个测试文件里共用；要改它的测试先复制一份。
    返回 data（数据文件）、ckpt（模型文件）、text（模型文件的内容）、stdout 和 result。"""
    folder = tmp_path_factory.mktemp('trained')
    names = write_lines(folder / 'names.txt', '\n'.join(NAMES) + '\n')
    ckpt = str(folder / 'm.json')
    result = run_main(f'--input_path={names}', '--num_steps=20', f'--save_path={ckpt}', *SMALL)
    assert result.returncode == 0, result.stderr
    with open(ckpt, encoding='utf-8') as f:
        text = f.read()
    return {'data': names, 'ckpt': ckpt, 'text': text, 'stdout': result.stdout, 'result': result}
