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


def graph_size(loss):
    """从 loss 能走到的节点数和边数（叶子也算）。"""
    nodes, edges, seen, stack = 0, 0, set(), [loss]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes += 1
        edges += len(node._children)
        stack.extend(node._children)
    return nodes, edges


def default_start(mg):
    """默认运行的起点：设好种子，读自带的数据，建初始参数。返回 (state, 训练集, 分词器)。"""
    random.seed(mg.seed)
    docs = mg.load_docs(os.path.join(ROOT, mg.input_path))
    train_docs, _ = mg.split_docs(docs)
    tok = mg.Tokenizer(docs)
    return mg.init_params(tok.vocab_size), train_docs, tok


def train_steps(mg, start, steps):
    """从 start 开始，按 1000 步的学习率计划训练前 steps 步；返回每步的损失。"""
    state, train_docs, tok = start
    losses = []
    for step, loss, lr in mg.train(state, mg.Adam(mg.flatten(state)), train_docs, tok, mg.num_steps):
        losses.append(loss)
        if step == steps:
            break
    return losses


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


TINY_DOCS = ['abcab', 'ba', 'cabbac', 'a', 'ccbab']     # 词表 a、b、c 加 BOS


def tiny_model(mg, n_layer=2, n_embd=4, n_head=2, block_size=8):
    """一个很小的模型（默认 2 层、2 个头），权重放大 5 倍，每条路径上的梯度都明显不是 0。返回 (分词器, state)。"""
    mg.n_layer, mg.n_embd, mg.n_head, mg.block_size = n_layer, n_embd, n_head, block_size
    random.seed(11)
    tok = mg.Tokenizer(TINY_DOCS)
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
