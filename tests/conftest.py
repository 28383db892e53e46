"""共用的辅助工具（只在这里定义一次）：把脚本当作模块导入 (import)；运行它的两种办法——真的子进程 (RunningScript、
run_script) 和本进程里的 main() (run_main)；读输出的办法；几个测试文件共用的小数据和小模型。"""
import os
import random
import re
import subprocess
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'microgpt_teaching.py')
sys.path.insert(0, ROOT)

import microgpt_teaching  # noqa: E402   （导入时必须什么都不运行；test_cli 也检查这一点）
from helpers import default_start, graph_size, train_steps  # noqa: E402,F401  （测试文件从 conftest 取用它们）


@pytest.fixture
def mg():
    """脚本本身（当作模块）。测试结束后，每个设置都恢复成默认值。"""
    saved = dict(microgpt_teaching.SETTINGS)
    yield microgpt_teaching
    for name, value in saved.items():
        setattr(microgpt_teaching, name, value)


# ---------------------------------------------------------------------------
# 运行脚本：真的子进程，或者本进程里的 main()
# ---------------------------------------------------------------------------

POSIX = pytest.mark.skipif(os.name != 'posix', reason='需要 POSIX（信号、管道、符号链接、/dev 下的设备、HOME）')


class RunningScript:
    """像用户那样在一个真的子进程里运行脚本（python microgpt_teaching.py 参数……）。要真进程的测试都用它，
    或者用它的简写 run_script：信号、管道、关掉的标准输出、解释器的名字、环境变量、自带数据的整次运行。
    其余的用快得多的 run_main（本进程里的 main()）。

    args     命令行参数；
    cwd      当前文件夹，默认是项目文件夹；
    env      要改的环境变量，例如 {'COLUMNS': '60'} 或 {'HOME': ...}；其余照抄本进程的。PYTHONIOENCODING 总是 utf-8：
             不管系统的区域设置 (locale) 是什么，输出都按 UTF-8 解码；
    timeout  整个运行最多这么多秒：到时就杀掉进程，finish() 抛出 subprocess.TimeoutExpired（测试失败，而不是挂起）；
    python   用哪个解释器，默认是正在运行测试的这个；
    script   运行哪个脚本文件，默认是项目里的 microgpt_teaching.py（改过设置的副本放在别的文件夹里）；
    stdout   subprocess.PIPE（默认：读进来）、一个打开的文件（例如 /dev/full），
             或 'closed'（像 sh 里的 >&-：标准输出根本不存在）。

    运行中途要做事时（按 Ctrl-C、发 SIGTERM、像 | head -1 那样不再读）：
        script = RunningScript(f'--input_path={data}', '--num_steps=100000', '--log_every=1')
        script.wait_for('步 ')                        # 一行一行地读标准输出，直到某一行里有这段文字
        script.send(signal.SIGINT)                    # 按一次 Ctrl-C
        script.wait_for('收到 Ctrl-C', 'stderr')       # 等程序在标准错误上应了一声
        script.send(signal.SIGINT)
        result = script.finish()                      # 等它结束，读完剩下的输出
    finish() 返回 subprocess.CompletedProcess：returncode、stdout、stderr。stdout 和 stderr 是全部输出
    （包括 wait_for 已经读过的行），换行统一成 \\n（和 subprocess.run(encoding='utf-8') 一样）；
    标准输出没有接管道时 stdout 是 None。"""

    def __init__(self, *args, cwd=None, env=None, timeout=120, python=sys.executable, stdout=subprocess.PIPE, script=SCRIPT):
        command = [python, script, *args]
        if stdout == 'closed':
            command, stdout = ['sh', '-c', 'exec "$@" >&-', 'sh', *command], None
        self.command, self.timeout, self.timed_out = command, timeout, False
        self.proc = subprocess.Popen(command, cwd=cwd or ROOT, stdout=stdout, stderr=subprocess.PIPE,
                                     env={**os.environ, 'PYTHONIOENCODING': 'utf-8', **(env or {})})
        self.output = {'stdout': [], 'stderr': []}       # 已经读到的字节，按流分开
        self.timer = threading.Timer(timeout, self._kill)
        self.timer.daemon = True                         # 测试中途失败时，不让它拖住 pytest 的退出
        self.timer.start()

    def _kill(self):
        if self.proc.poll() is None:
            self.timed_out = True
            self.proc.kill()

    def wait_for(self, text, stream='stdout'):
        """一行一行地读 stream（'stdout' 或 'stderr'），直到某一行里有 text；返回那一行。
        程序没说这句话就结束了（或超时被杀掉了），测试失败。"""
        pipe, wanted = getattr(self.proc, stream), text.encode('utf-8')
        for line in iter(pipe.readline, b''):
            self.output[stream].append(line)
            if wanted in line:
                return line.decode('utf-8')
        raise AssertionError(f'{stream} 里一直没有出现 {text!r}；读到的是：\n' + self._text(stream))

    def send(self, sig):
        """给进程发一个信号，例如 signal.SIGINT（Ctrl-C）。"""
        self.proc.send_signal(sig)

    def close_stdout(self):
        """不再读标准输出，关掉管道的这一头（像 | head -1 读完就走）：程序之后的 print 都写进断掉的管道。"""
        self.proc.stdout.close()

    def finish(self):
        """等进程结束，读完两个流里剩下的输出（两个线程同时读：一个流写满了也不会互相等着），返回 CompletedProcess。"""
        def read_rest(stream):
            pipe = getattr(self.proc, stream)
            if pipe is not None and not pipe.closed:
                self.output[stream].append(pipe.read())
                pipe.close()
        readers = [threading.Thread(target=read_rest, args=(stream,)) for stream in self.output]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        self.proc.wait()
        self.timer.cancel()
        stdout = self._text('stdout') if self.proc.stdout is not None else None
        if self.timed_out:
            raise subprocess.TimeoutExpired(self.command, self.timeout, stdout, self._text('stderr'))
        return subprocess.CompletedProcess(self.command, self.proc.returncode, stdout, self._text('stderr'))

    def _text(self, stream):
        text = b''.join(self.output[stream]).decode('utf-8')
        return text.replace('\r\n', '\n').replace('\r', '\n')


def run_script(*args, **options):
    """运行脚本直到结束，返回 returncode、stdout、stderr：RunningScript(*args, **options).finish() 的简写，
    参数的意思见 RunningScript。"""
    return RunningScript(*args, **options).finish()


def run_main(*args, cwd=None, columns=80):
    """在本进程里运行 main(args)，像 run_script 一样返回 returncode、stdout、stderr，但不用启动新的 Python
    （快得多）。输出不是终端，终端宽度按 columns 列算（默认 80，和 run_script 在管道里一样）；结束后把这次改过的
    一切都还原：设置、stopping、当前文件夹、信号处理、gc、随机数状态、sys.stdout/stderr/argv、环境变量 COLUMNS。
    要真正的进程时（信号、管道、import、解释器的名字）用 RunningScript / run_script。"""
    import gc
    import io
    import signal
    mg = microgpt_teaching
    saved = ({name: getattr(mg, name) for name in mg.SETTINGS}, dict(mg.stopping), os.getcwd(), gc.isenabled(),
             random.getstate(), [(sig, signal.getsignal(sig)) for sig in mg.STOP_SIGNALS],
             sys.stdout, sys.stderr, sys.argv, os.environ.get('COLUMNS'))
    out, err = io.StringIO(), io.StringIO()
    try:
        os.chdir(cwd or ROOT)
        os.environ['COLUMNS'] = str(columns)
        sys.stdout, sys.stderr, sys.argv = out, err, [SCRIPT, *args]
        code = mg.main(list(args))
    finally:
        settings, stopping, folder, gc_on, random_state, handlers, sys.stdout, sys.stderr, sys.argv, old_columns = saved
        for name, value in settings.items():
            setattr(mg, name, value)
        mg.stopping.update(stopping)
        os.chdir(folder)
        if gc_on:
            gc.enable()
        random.setstate(random_state)
        for sig, handler in handlers:
            signal.signal(sig, handler)
        if old_columns is None:
            os.environ.pop('COLUMNS', None)
        else:
            os.environ['COLUMNS'] = old_columns
    return subprocess.CompletedProcess([SCRIPT, *args], code, out.getvalue(), err.getvalue())


# ---------------------------------------------------------------------------
# 读输出
# ---------------------------------------------------------------------------

def assert_clean_failure(result, code, *words):
    """用户能自己改正的错误：给定的退出码，标准错误里正好一行“错误：……”，含有这些词，没有回溯。"""
    out = result.stdout + result.stderr
    assert result.returncode == code, out
    assert 'Traceback' not in out
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('错误：'), result.stderr
    for word in words:
        assert word in result.stderr


def numbered_samples(stdout):
    """每一行编号的样本：(样本, 完整的标签)，按顺序。标签里可以有空格
    （例如“新（到了长度上限 block_size，被截断）”），所以被截断的样本也算在内。"""
    return re.findall(r'^ +\d+\. (\S+) {2,}(\S.*)$', stdout, flags=re.M)


def held_out_loss(stdout, label):
    """损失表里某一行（例如“训练后”）的留出集损失。"""
    return float(re.search(rf'^  {label} +(\d+\.\d+) ', stdout, flags=re.M).group(1))


def squash(text):
    """去掉所有空白。say() 按终端宽度折行，一句话可能断在任何空白处或两个汉字之间；比较前两边都 squash。"""
    return re.sub(r'\s+', '', text)


def notes(stdout):
    """“提醒：”开头的每一段（say() 按终端宽度折了行，这里把一段接回一行，去掉空白）。"""
    paragraphs = re.split(r'\n(?=提醒：)|\n\n', stdout)
    return [squash(p) for p in paragraphs if p.startswith('提醒：')]


HINT = '下次可以用这条命令读回它直接采样：'


def hint_command(stdout):
    """保存模型后提示的那条读回它的命令（提示单独占一行，命令在下一行）。"""
    lines = stdout.splitlines()
    return lines[lines.index(HINT) + 1]


RAW = ('\x1b', '\x07', '\x9b', '\u202e')          # 不能原样到终端的字符：ESC、响铃、CSI、从右到左


def assert_nothing_raw(result):
    """标准输出和标准错误里都没有原样的控制字符（它们会改终端的颜色、清屏、把一行倒过来显示）。"""
    for text in (result.stdout, result.stderr):
        assert not [ch for ch in RAW if ch in text], text


def read_checkpoint(path):
    """用脚本自己的 load_checkpoint 读回一个模型文件（它会检查整个文件）；返回读到的 dict。"""
    ckpt = microgpt_teaching.load_checkpoint(str(path))
    assert ckpt['format'] == microgpt_teaching.CHECKPOINT_FORMAT
    return ckpt


# ---------------------------------------------------------------------------
# 小数据、数据文件和训练好的模型文件
# ---------------------------------------------------------------------------

def write_lines(path, text, encoding='utf-8'):
    """把 text 原样（不转换换行符）写进文件 path；返回路径（字符串）。"""
    with open(path, 'w', encoding=encoding, newline='') as f:
        f.write(text)
    return str(path)


SMALL = ('--n_embd=8', '--n_head=2', '--num_samples=5')      # 小模型：命令行测试跑得快
NAMES = ['anna', 'bob', 'carla', 'dora', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu', 'mia', 'ned',
         'ola', 'pam', 'ray', 'sam', 'tia', 'uma', 'val', 'wes', 'yan', 'abe', 'ben', 'cat', 'dan', 'eli',
         'finn', 'gil', 'hana', 'ian', 'jade', 'kai', 'leo', 'max', 'nia', 'otto', 'pia', 'rex']   # 40 个，没有 q、z


@pytest.fixture
def data(tmp_path):
    """40 个名字（NAMES）的数据文件。"""
    return write_lines(tmp_path / 'names.txt', '\n'.join(NAMES) + '\n')


@pytest.fixture(scope='session')
def trained(tmp_path_factory):
    """一次真的训练并保存（40 个名字、20 步、小模型），所有测试共用；要改它的测试先复制一份。
    返回 data（数据文件）、ckpt（模型文件）、text（模型文件的内容）、stdout 和 result。"""
    folder = tmp_path_factory.mktemp('trained')
    names = write_lines(folder / 'names.txt', '\n'.join(NAMES) + '\n')
    ckpt = str(folder / 'm.json')
    result = run_main(f'--input_path={names}', '--num_steps=20', f'--save_path={ckpt}', *SMALL)
    assert result.returncode == 0, result.stderr
    with open(ckpt, encoding='utf-8') as f:
        text = f.read()
    return {'data': names, 'ckpt': ckpt, 'text': text, 'stdout': result.stdout, 'result': result}


def load_run(trained, *args):
    """读回 trained 的模型，不再训练，用小设置采样（run_main）；args 加在后面。"""
    return run_main(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0', *SMALL, *args)


# ---------------------------------------------------------------------------
# 小模型和梯度检查（test_autograd、test_model、test_training、test_speed、test_inspect……）
# ---------------------------------------------------------------------------

def values(mg, numbers):
    """一串数，每个包成一个 Value（叶子）。"""
    return [mg.Value(x) for x in numbers]


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


def tiny_trained_model(mg, docs, steps=3):
    """2 层、n_embd=8 的小模型，用 docs 训练 steps 步：Adam 的 m、v、t 都不是 0。返回 (分词器, state, optimizer)。"""
    mg.n_layer, mg.n_embd, mg.n_head, mg.block_size = 2, 8, 2, 8
    random.seed(7)
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    optimizer = mg.Adam(mg.flatten(state))
    for _ in mg.train(state, optimizer, docs, tok, steps):
        pass
    return tok, state, optimizer


def checkpoint_text(mg, state, tok, optimizer, steps, val_loss, data=None):
    """像 run() 那样填好 checkpoint_json 要读的那几项 record，存成模型文件的文本（steps 步都算作这次训练的）。"""
    record = {'losses': {'after': val_loss}, 'step_losses': [0.0] * steps, 'data': data or {'file': '', 'fingerprint': ''},
              'model': {'tokenizer': mg.tokenizer_record(tok), 'steps_before': 0}}
    return mg.checkpoint_json(state, optimizer, record)


def mean_doc_loss(mg, state, tok, doc):
    """和 train() 里一样：一个名字各位置损失的平均。"""
    losses = mg.doc_losses(state, tok.encode(doc))
    return (1 / len(losses)) * sum(losses)
