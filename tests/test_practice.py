"""练习检查 tests/practice.py：原样的脚本全部通过；把一个练习函数的函数体换成错的，它一定不通过，
并且点名这个函数；换成另一种写法但正确的函数体，它照样通过。

函数体用 ast 按名字找到再整个替换（不匹配原文），所以脚本的注释和行号怎么改都不影响这些测试。
替换用的函数体只用到稳定的名字（Value 的运算、linear、softmax、rmsnorm、mlp 和设置）。
"""
import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import unicodedata

import pytest

from conftest import ROOT

PRACTICE = os.path.join(ROOT, 'tests', 'practice.py')
EXERCISES = ['add', 'mul', 'pow', 'log', 'exp', 'relu', 'backward', 'linear', 'softmax', 'rmsnorm', 'cross_entropy',
             'attention', 'adam', 'sample_name']


def replace_body(source, qualname, body):
    """把函数 qualname（如 'softmax'、'Value.__mul__'）的函数体（文档字符串之后的全部语句）换成 body。"""
    scope = ast.parse(source)
    for part in qualname.split('.'):
        scope = next(n for n in scope.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part)
    stmts = scope.body
    has_doc = isinstance(stmts[0], ast.Expr) and isinstance(stmts[0].value, ast.Constant) \
        and isinstance(stmts[0].value.value, str)
    first = stmts[1] if has_doc else stmts[0]
    lines = source.splitlines(keepends=True)
    new = textwrap.indent(textwrap.dedent(body).strip('\n') + '\n', ' ' * first.col_offset)
    return ''.join(lines[:first.lineno - 1]) + new + ''.join(lines[scope.end_lineno:])


def edited_copy(tmp_path, *edits):
    """项目的脚本和 input.txt 复制到 tmp_path，再按 (函数, 新函数体) 逐个替换；返回脚本的路径。"""
    with open(os.path.join(ROOT, 'microgpt_teaching.py'), encoding='utf-8') as f:
        source = f.read()
    for qualname, body in edits:
        source = replace_body(source, qualname, body)
    path = tmp_path / 'microgpt_teaching.py'
    path.write_text(source, encoding='utf-8')
    shutil.copy(os.path.join(ROOT, 'input.txt'), str(tmp_path))
    return str(path)


def practice(*args, cwd=ROOT, timeout=60, **env):
    """运行 practice.py。env：额外的环境变量，例如 PRACTICE_TIME_LIMIT='1'（每项检查最多 1 秒：卡住的测试也很快）。"""
    env = dict(os.environ, PYTHONIOENCODING='utf-8', **env)
    return subprocess.run([sys.executable, PRACTICE, *args], cwd=cwd, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8')


CJK = re.compile(r'[\u2e80-\u9fff\uff00-\uffef]')


def glue(left, right):
    """接上折开的两行：两个汉字之间折的直接接上，在空白处折的（空白被去掉了）补一个空格。"""
    return left + ('' if CJK.match(left[-1:]) and CJK.match(right[:1]) else ' ') + right


def unwrap(text):
    """输出按终端宽度折了行（续行缩进）：把续行接回上一行，方便找一句完整的话。"""
    lines = []
    for line in text.splitlines():
        if lines and lines[-1].strip() and line.startswith('      ') and line.strip():
            lines[-1] = glue(lines[-1], line.strip())
        else:
            lines.append(line)
    return '\n'.join(lines)


def summary(stdout):
    """每个练习一行（太长时折成几行，续行缩进）：{练习名: 结论（通过 / 不通过 —— 原因 / 待定 —— 原因）}。
    续行接上：两个汉字之间折的行直接接上，别的（在空白处折的）用一个空格接上。"""
    rows, name = {}, None
    for line in stdout.splitlines():
        match = re.match(r'^ ?\d+\. (\S+)\s.*?\s{2}((?:通过|不通过|待定).*)$', line)
        if match:
            name, rows[match.group(1)] = match.groups()
        elif name and line.startswith('    '):
            rows[name] = glue(rows[name], line.strip())
        else:
            name = None
    return rows


# ---- 课本写法的函数体（正确），变异体在它们上面改一处 ----
GPT = '''
head_dim = n_embd // n_head
x = rmsnorm([a + b for a, b in zip(state['wte'][token_id], state['wpe'][pos_id])])
for li in range(n_layer):
    x_residual = x
    x = rmsnorm(x)
    q = linear(x, state[f'layer{li}.attn_wq'])
    keys[li].append(linear(x, state[f'layer{li}.attn_wk']))
    values[li].append(linear(x, state[f'layer{li}.attn_wv']))
    x_attn = []
    for h in range(n_head):
        lo, hi = h * head_dim, (h + 1) * head_dim
        scores = [sum(a * b for a, b in zip(q[lo:hi], k_j[lo:hi])) / head_dim ** 0.5 for k_j in keys[li]]
        weights = softmax(scores)
        if attention is not None:
            attention.append([w.data for w in weights])
        x_attn += [sum(w * v_j[d] for w, v_j in zip(weights, values[li])) for d in range(lo, hi)]
    x = [a + b for a, b in zip(linear(x_attn, state[f'layer{li}.attn_wo']), x_residual)]
    x_residual = x
    x = mlp(rmsnorm(x), state[f'layer{li}.mlp_fc1'], state[f'layer{li}.mlp_fc2'])
    x = [a + b for a, b in zip(x, x_residual)]
return linear(x, state['lm_head'])
'''
BACKWARD = '''
topo, visited, stack = [], set(), [(self, False)]
while stack:
    node, done = stack.pop()
    if done:
        topo.append(node)
    elif node not in visited:
        visited.add(node)
        stack.append((node, True))
        stack.extend((child, False) for child in node._children)
self.grad = 1.0
for node in reversed(topo):
    for child, local in zip(node._children, node._local_grads):
        child.grad += local * node.grad
'''
ADAM = '''
self.t += 1
for i, p in enumerate(self.params):
    self.m[i] = beta1 * self.m[i] + (1 - beta1) * p.grad
    self.v[i] = beta2 * self.v[i] + (1 - beta2) * p.grad ** 2
    m_hat = self.m[i] / (1 - beta1 ** self.t)
    v_hat = self.v[i] / (1 - beta2 ** self.t)
    p.data -= lr * m_hat / (v_hat ** 0.5 + eps_adam)
    p.grad = 0.0
'''
SAMPLE = '''
keys, values = [[] for _ in range(n_layer)], [[] for _ in range(n_layer)]
tokens = tokenizer.encode(start)[:-1]
for pos in range(block_size):
    logits = gpt(state, tokens[pos], pos, keys, values)
    if pos + 1 < len(tokens):
        continue
    probs = softmax([z / temperature for z in logits])
    token_id = random.choices(range(tokenizer.vocab_size), weights=[p.data for p in probs])[0]
    if token_id == tokenizer.bos:
        break
    tokens.append(token_id)
return tokens[1:]
'''
SOFTMAX = '''
max_val = max(z.data for z in logits)
exps = [(z - max_val).exp() for z in logits]
total = sum(exps)
return [e / total for e in exps]
'''


def one_change(text, old, new):
    assert text.count(old) == 1, old
    return text.replace(old, new)


# (练习, 函数, 错的函数体, 错在哪)：每个练习一个真实可能写错的地方
WRONG = [
    ('add', 'Value.__add__', 'return Value(self.data + other.data, (self, other), (1.0, 1.0))', '忘了另一个操作数可能是普通数字'),
    ('mul', 'Value.__mul__', '''
        if isinstance(other, Value):
            return Value(self.data * other.data, (self, other), (self.data, other.data))
        return Value(self.data * other, (self,), (other,))''', '两个局部导数写反'),
    ('pow', 'Value.__pow__', 'return Value(self.data ** k, (self,), (k * self.data ** k,))', '局部导数 k·a^k，少减了 1'),
    ('log', 'Value.log', 'return Value(math.log(self.data), (self,), (-1.0 / self.data,))', '局部导数符号错'),
    ('exp', 'Value.exp', 'return Value(math.exp(self.data), (self,), (self.data,))', '局部导数写成 a'),
    ('relu', 'Value.relu', 'return Value(max(self.data, 0.0), (self,), (1.0 if self.data >= 0 else 0.0,))', '0 处导数取 1'),
    ('backward', 'Value.backward', one_change(BACKWARD, 'child.grad += local', 'child.grad = local'), '= 代替 +='),
    ('linear', 'linear', 'return [sum(w[i][j] * x[i] for i in range(len(w))) for j in range(len(x))]', '矩阵转置了'),
    ('softmax', 'softmax', one_change(SOFTMAX, '[e / total for e in exps]', 'exps'), '没有归一化'),
    ('rmsnorm', 'rmsnorm', 'return [xi * (sum(a * a for a in x) / len(x)) ** -0.5 for xi in x]', '少了 +1e-5'),
    ('cross_entropy', 'cross_entropy', 'return softmax(logits)[target].log()', '符号错：ln p 而不是 -ln p'),
    ('attention', 'gpt', one_change(GPT, ' / head_dim ** 0.5', ''), '打分没有除以 sqrt(head_dim)'),
    ('adam', 'Adam.step', one_change(one_change(ADAM, ' / (1 - beta1 ** self.t)', ''), ' / (1 - beta2 ** self.t)', ''),
     '没有偏差修正'),
    ('sample_name', 'sample_name', one_change(SAMPLE, '[z / temperature for z in logits]', 'logits'), '没有用温度'),
]


def test_unchanged_script_passes_every_exercise(tmp_path):
    """原样的脚本：每个练习一行“通过”，退出码 0；从别的文件夹运行也找得到项目里的脚本。
    抓参考实现或容差与课本代码对不上（正确的代码被判不通过）的错误。"""
    result = practice(cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = summary(result.stdout)
    assert list(lines) == EXERCISES
    assert set(lines.values()) == {'通过'}, result.stdout
    assert '1e-9' in result.stdout and '1e-6' in result.stdout      # 输出里写明了容差
    assert result.stderr == ''


def test_one_exercise_shows_every_step():
    """给了练习名：逐步列出每一步的检查（softmax：能运行、形状、前向值、梯度、训练），全部通过。"""
    result = practice('softmax')
    assert result.returncode == 0, result.stdout + result.stderr
    for stage in ['能运行', '形状', '前向值', '梯度', '训练']:
        assert f'[通过]   {stage}' in result.stdout
    assert '不通过' not in result.stdout


@pytest.mark.parametrize('flag', ['-h', '--help'])
def test_help_lists_exercises_tolerances_and_how_to_undo(flag):
    """--help 列出全部练习、容差，以及改坏后怎么恢复（git checkout；下载 zip 的重新下载）。"""
    result = practice(flag)
    assert result.returncode == 0 and result.stderr == ''
    for name in EXERCISES:
        assert re.search(rf'^  {name} ', result.stdout, flags=re.M), name
    for words in ['git checkout microgpt_teaching.py', '重新下载', '1e-9', '1e-6', 'speed_tricks', 'PRACTICE_TIME_LIMIT']:
        assert words in unwrap(result.stdout), words


def test_unknown_name_is_a_clear_error():
    """不存在的练习名：退出码 2，一句中文说明并列出全部练习名，没有回溯。"""
    result = practice('softmaks')
    assert result.returncode == 2
    assert 'Traceback' not in result.stdout + result.stderr
    assert result.stderr.startswith('错误：') and 'softmaks' in result.stderr
    assert all(name in result.stderr for name in EXERCISES)


@pytest.mark.parametrize('name, func, body, bug', WRONG, ids=[w[0] for w in WRONG])
def test_wrong_body_fails_and_names_the_function(tmp_path, name, func, body, bug):
    """每个练习一个写错的函数体（bug 写在参数里）：总览里第一个“不通过”的就是这个练习，那一行点名这个函数，
    最后一行建议先改它；没有回溯。"""
    result = practice('--file', edited_copy(tmp_path, (func, body)))
    assert result.returncode == 1, result.stdout
    first, line = next((n, line) for n, line in summary(result.stdout).items() if line.startswith('不通过'))
    assert first == name and line.startswith(f'不通过 —— {func}，'), result.stdout
    assert result.stdout.splitlines()[-1].endswith(f'python tests/practice.py {name}')
    assert 'Traceback' not in result.stdout + result.stderr
    assert_counts(result.stdout)


def assert_counts(stdout):
    """最后的总数分开数通过、没通过、待定，和每一行的结论对得上。"""
    verdicts = [line.split()[0] for line in summary(stdout).values()]
    counts = f'{verdicts.count("通过")} 个通过，{verdicts.count("不通过")} 个没通过，{verdicts.count("待定")} 个待定。'
    assert counts in stdout, stdout


def test_correct_fast_path_does_not_hide_wrong_textbook_code(tmp_path):
    """函数开头有一条正确的提速分支（if speed_tricks: …），后面的课本写法却是错的：照样不通过，
    因为检查时 speed_tricks 是 False，运行的是课本写法。"""
    body = 'if speed_tricks:\n' + textwrap.indent(SOFTMAX, '    ') + one_change(SOFTMAX, '[e / total for e in exps]', 'exps')
    result = practice('softmax', '--file', edited_copy(tmp_path, ('softmax', body)))
    assert result.returncode == 1, result.stdout
    assert '[不通过] 前向值' in result.stdout and '忘了除以总和' in result.stdout


def test_earlier_failure_is_named_as_the_one_to_fix_first(tmp_path):
    """乘法写错了，后面用到乘法的练习也不通过：它们的说明指向「mul」，最后一行建议先改 mul；
    自己的检查都通过、只是训练做不了的练习标成“待定”，不算它们错。"""
    result = practice('--file', edited_copy(tmp_path, WRONG[1][1:3]))
    lines = summary(result.stdout)
    assert lines['softmax'].startswith('不通过') and '「mul」' in lines['softmax']
    assert lines['adam'].startswith('待定') and '「mul」' in lines['adam']
    assert result.stdout.splitlines()[-1].endswith('python tests/practice.py mul')


def test_correct_rewrites_in_another_form_pass(tmp_path):
    """换一种写法、换一个加法顺序的正确函数体（反着加的 softmax、显式循环的 linear、用 softmax 写的交叉熵、
    集合写法的 backward、不用局部变量的 Adam、用 random.random 手写的抽样……）全部通过：正确的代码不会被判错。"""
    edits = [
        ('Value.__add__', 'o = other if isinstance(other, Value) else Value(other)\n'
                          'return Value(o.data + self.data, (o, self), (1.0, 1.0))'),
        ('Value.__pow__', 'out = self.data ** k\nreturn Value(out, (self,), (k * out / self.data,))'),
        ('Value.relu', 'if self.data > 0:\n    return Value(self.data, (self,), (1.0,))\nreturn Value(0.0, (self,), (0.0,))'),
        ('Value.backward', BACKWARD),
        ('linear', '''
            out = []
            for row in w:
                s = Value(0.0)
                for j in reversed(range(len(x))):
                    s = s + row[j] * x[j]
                out.append(s)
            return out'''),
        ('softmax', '''
            m = max(logits, key=lambda z: z.data)
            exps = [(z - m).exp() for z in logits]
            total = exps[-1]
            for e in reversed(exps[:-1]):
                total = e + total
            return [e * total ** -1 for e in exps]'''),
        ('rmsnorm', 'denom = (sum(xi * xi for xi in x) / len(x) + 1e-5) ** 0.5\nreturn [xi / denom for xi in x]'),
        ('cross_entropy', 'return -softmax(logits)[target].log()'),
        ('gpt', one_change(GPT, 'x_attn += [sum(w * v_j[d] for w, v_j in zip(weights, values[li])) for d in range(lo, hi)]',
                           'x_attn += [dot(weights, [v_j[d] for v_j in values[li]]) for d in range(lo, hi)]')),
        ('Adam.step', ADAM),
        ('sample_name', one_change(SAMPLE, 'token_id = random.choices(range(tokenizer.vocab_size), '
                                   'weights=[p.data for p in probs])[0]', '''r, token_id = random.random(), 0
    while token_id < tokenizer.vocab_size - 1 and r >= probs[token_id].data:
        r -= probs[token_id].data
        token_id += 1''')),
    ]
    result = practice('--file', edited_copy(tmp_path, *edits))
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(summary(result.stdout).values()) == {'通过'}, result.stdout


def test_error_in_learner_code_shows_its_line_not_a_traceback(tmp_path):
    """学习者的代码抛出异常（Adam 先做偏差修正、后加 t → 除以 0）：显示异常和学习者文件里出错的那一行，
    加上提示，不打印回溯。"""
    body = one_change(ADAM, 'self.t += 1\n', '') + 'self.t += 1\n'
    result = practice('adam', '--file', edited_copy(tmp_path, ('Adam.step', body)))
    assert result.returncode == 1
    assert '[不通过] 能运行' in result.stdout and '函数：Adam.step' in result.stdout
    assert 'ZeroDivisionError' in result.stdout and 't 要先加 1' in result.stdout
    assert re.search(r'位置：microgpt_teaching.py 第 \d+ 行（在 step 里）：\n +.*beta1 \*\* self.t', result.stdout)
    assert 'Traceback' not in result.stdout + result.stderr


def test_syntax_error_is_reported_with_its_line(tmp_path):
    """改出了语法错误：一句说明和出错的行，退出码 1，没有回溯。"""
    path = edited_copy(tmp_path, ('softmax', 'return [z.exp( for z in logits]'))
    result = practice('--file', path)
    assert result.returncode == 1
    assert 'SyntaxError' in result.stdout and re.search(r'位置：microgpt_teaching.py 第 \d+ 行', result.stdout)
    assert 'Traceback' not in result.stdout + result.stderr


def test_training_check_catches_what_the_single_checks_cannot(tmp_path):
    """练习之外的改动（训练不再按计划减小学习率）：各练习自己的检查都通过，训练检查却不通过；
    第 3 步的 loss 只差约 1e-5，打印到 4 位小数看不出来，相对 1e-6 的容差抓得住。"""
    body = '''
        for step in range(steps):
            losses = doc_losses(state, tokenizer.encode(train_docs[step % len(train_docs)]))
            loss = (1 / len(losses)) * sum(losses)
            loss.backward()
            optimizer.step(learning_rate)
            yield step + 1, loss.data, learning_rate'''
    result = practice('--file', edited_copy(tmp_path, ('train', body)))
    assert result.returncode == 1
    lines = summary(result.stdout)
    assert all(line.startswith('不通过') and '，训练：' in line for name, line in lines.items() if name != 'sample_name')
    assert '只有训练对不上' in result.stdout.split('个待定。')[-1]
    assert result.stdout.splitlines()[-1] == '  python tests/practice.py add'


# ---- 检查程序卡不住、骗不过（issue “nothing lost, second attack”）----
# 学习者的代码在另一个进程 (worker) 里运行，每项检查有时间限制。下面的测试用环境变量 PRACTICE_TIME_LIMIT
# 把限制设成 1 秒，卡住的检查也很快结束。多数测试用一个很小的“学习者文件”：只写了几个函数，别的练习
# 一下子就因为缺函数而不通过，所以 1 秒的限制在很忙的机器上也不会误伤正常的检查。

SABOTAGE = '''
import math
import sys


class Value:
    def __init__(self, data, children=(), local_grads=()):
        self.data, self.grad, self._children, self._local_grads = data, 0.0, tuple(children), tuple(local_grads)

    def __add__(self, other):
        sys.exit(0)

    def __mul__(self, other):
        raise BaseException('在乘法里')

    def __pow__(self, k):
        raise GeneratorExit

    def log(self):
        raise KeyboardInterrupt

    def exp(self):
        sys.stdout.close()
        return Value(math.exp(self.data), (self,), (math.exp(self.data),))

    def relu(self):
        return Value(max(self.data, 0.0), (self,), (float(self.data > 0),))

    def backward(self):
        sys.setrecursionlimit(10 ** 7)

        def visit(node):
            return visit(node) + 1
        visit(self)


def linear(x, w):
    return [sum(wi.data * xi.data for wi, xi in zip(row, x)) for row in w]


class Adam:
    def __init__(self, params):
        self.params, self.m, self.v, self.t = params, [0.0] * len(params), [0.0] * len(params), 0

    def step(self, lr):
        while True:
            pass
'''


@pytest.fixture(scope='module')
def sabotaged(tmp_path_factory):
    """一个处处使坏的学习者文件（见 SABOTAGE），每项检查最多 1 秒，终端宽 72 列：(运行结果, 每个练习的结论, 用时)。"""
    path = tmp_path_factory.mktemp('sabotage') / 'microgpt_teaching.py'
    path.write_text(SABOTAGE, encoding='utf-8')
    began = time.monotonic()
    result = practice('--file', str(path), timeout=30, PRACTICE_TIME_LIMIT='1', COLUMNS='72')
    return result, summary(result.stdout), time.monotonic() - began


def test_infinite_loop_times_out_names_the_exercise_and_goes_on(sabotaged):
    """抓学习者的 while True: pass 让检查程序永远卡住的错误：adam 那一项超时（说“超时（可能是死循环）”并点名
    Adam.step），之后的 sample_name 照样检查了，整个检查几秒内结束，退出码 1。"""
    result, lines, seconds = sabotaged
    assert result.returncode == 1
    assert lines['adam'].startswith('不通过 —— Adam.step，') and '超时（可能是死循环）' in lines['adam']
    assert lines['sample_name'].startswith('不通过') and '超时' not in lines['sample_name']
    assert seconds < 20


def test_recursion_bomb_after_raising_the_limit_is_a_recursion_error(sabotaged):
    """抓 sys.setrecursionlimit(10**7) 之后的无穷递归吃掉几 GB 内存、卡住到超时（或让 Python 崩溃）的错误：
    检查时递归深度最多 10000，backward 很快得到 RecursionError 和“用显式的栈”的提示。"""
    result, lines, _ = sabotaged
    assert lines['backward'].startswith('不通过 —— Value.backward，') and 'RecursionError' in lines['backward']


def test_sys_exit_in_learner_code_is_a_failure_not_a_pass(sabotaged):
    """抓学习者函数里的 sys.exit(0) 让检查程序悄悄以退出码 0 结束（什么也不打印，像是通过了）的错误。"""
    result, lines, _ = sabotaged
    assert lines['add'].startswith('不通过 —— Value.__add__，') and 'SystemExit' in lines['add']
    assert result.returncode == 1 and len(lines) == 14


@pytest.mark.parametrize('name, error', [('mul', 'BaseException'), ('pow', 'GeneratorExit'), ('log', 'KeyboardInterrupt')])
def test_base_exceptions_from_learner_code_are_failures(sabotaged, name, error):
    """抓 raise BaseException / GeneratorExit（except Exception 拦不住）打出回溯、raise KeyboardInterrupt
    让检查程序悄悄以 130 退出的错误：都只是这个练习不通过，说出异常，并提示别自己抛出它。"""
    result, lines, _ = sabotaged
    assert lines[name].startswith('不通过') and error in lines[name]
    assert 'Traceback' not in result.stdout + result.stderr and result.returncode == 1


def test_closing_stdout_fails_the_exercise_and_the_report_is_complete(sabotaged):
    """抓学习者关掉 sys.stdout 之后检查程序自己的 print 出错（回溯、报告只打了一半）的错误：exp 不通过，
    说明关掉了 sys.stdout；报告照样完整（最后一行是建议）。"""
    result, lines, _ = sabotaged
    assert lines['exp'].startswith('不通过 —— Value.exp，') and 'sys.stdout 关掉了' in lines['exp']
    assert result.stdout.splitlines()[-1] == '  python tests/practice.py add'


def test_summary_counts_passed_failed_and_pending_separately(sabotaged):
    """抓总数把“待定”算成“没通过”的错误（只清空 softmax 时说“0 个通过，14 个没通过”）：relu 自己的检查都
    通过了，只是训练要等别的练习，它算“待定”。"""
    result, lines, _ = sabotaged
    assert lines['relu'].startswith('待定') and '「add」' in lines['relu']
    assert '0 个通过，13 个没通过，1 个待定。' in result.stdout
    assert_counts(result.stdout)


def test_shape_failure_says_what_the_elements_are(sabotaged):
    """抓形状不对时只说“4 个元素的 list”、不说元素是普通小数的错误：linear 返回了 float 的列表。"""
    _, lines, _ = sabotaged
    assert '3 个 float（普通小数）的 list' in lines['linear']


def test_output_wraps_to_the_terminal_width_without_breaking_tokens(sabotaged):
    """抓输出不管终端多宽、在 80 列处把 [t / arget] 这样的词拆开的错误：COLUMNS=72 时每行最多 71 列，
    续行缩进对齐；折行只在空白处或两个汉字之间，命令、数字、英文单词不会被拆开。"""
    result, lines, _ = sabotaged
    width = lambda line: sum(2 if unicodedata.east_asian_width(c) in 'WF' else 1 for c in line)
    path = result.args[-1]                         # 比整行还宽的路径：单独占一行，只有它可以超出
    assert all(width(line) <= 71 for line in result.stdout.splitlines() if path not in line), result.stdout
    assert any(line.startswith(' ' * 30) and line.strip() for line in result.stdout.splitlines())   # 真的折了行
    for token in ['target=0)，出错', 'opt.step(0.01)，出错', 'RecursionError:', 'AttributeError:', '「add」']:
        assert token in result.stdout, token       # 每个都完整地出现在某一行里：没有在中间折断
    assert result.stdout.splitlines()[-1] == '  python tests/practice.py add'


def test_learner_output_is_cut_and_counted(tmp_path):
    """抓学习者的函数每次调用都打印一大堆（issue 里是 50 MB，30 秒写出 8 GB；这里 5 MB，测试快一些）、
    检查程序全部照印的错误：单看这个练习时只显示开头，说出一共打印了多少；练习本身照常检查（这里正确，
    所以自己的检查都通过）。"""
    path = tmp_path / 'microgpt_teaching.py'
    path.write_text(SABOTAGE.replace("raise GeneratorExit", "print('x' * 5_000_000)\n        "
                                     "return Value(self.data ** k, (self,), (k * self.data ** (k - 1),))")
                    .replace('while True:', 'if False:'), encoding='utf-8')
    result = practice('pow', '--file', str(path), timeout=30, PRACTICE_TIME_LIMIT='5')
    assert len(result.stdout) < 5000, result.stdout[:3000]
    assert '[通过]   梯度' in result.stdout and '[待定]   训练' in result.stdout
    printed = int(re.search(r'你的代码打印了 ([\d,]+) 个字符', result.stdout).group(1).replace(',', ''))
    assert printed >= 15 * 5_000_000
    assert '| xxxx' in result.stdout and '后面的没有显示' in result.stdout


def test_module_level_sys_exit_is_an_import_failure(tmp_path):
    """抓文件顶层的 sys.exit(0) 让检查程序以退出码 0 结束、什么也不说（像是通过了）的错误。"""
    path = tmp_path / 'microgpt_teaching.py'
    path.write_text('import sys\nsys.exit(0)\n', encoding='utf-8')
    result = practice('--file', str(path), timeout=30)
    assert result.returncode == 1
    assert '导入时就出错了' in result.stdout and 'SystemExit: 0' in result.stdout and '第 2 行' in result.stdout


def test_module_level_infinite_loop_is_an_import_timeout(tmp_path):
    """抓文件顶层的死循环（或直接调用了 main()）让检查程序永远等下去的错误：导入超时，说明可能的原因。"""
    path = tmp_path / 'microgpt_teaching.py'
    path.write_text('while True:\n    pass\n', encoding='utf-8')
    result = practice('--file', str(path), timeout=30, PRACTICE_TIME_LIMIT='0.5')
    assert result.returncode == 1
    assert '导入时就超时（可能是死循环）' in result.stdout and 'main()' in result.stdout


@pytest.mark.parametrize('kind', ['fifo', 'folder', 'missing'])
def test_odd_file_is_one_clean_line(tmp_path, kind):
    """抓 --file 指向管道 (FIFO) 时打开它就永远卡住、指向文件夹或不存在的文件时说英文的错误：
    一行中文“错误：……”，退出码 2，不打开管道（先用 os.stat 看清是什么）。"""
    path = tmp_path / 'x.py'
    if kind == 'fifo':
        if not hasattr(os, 'mkfifo'):
            pytest.skip('这个系统没有管道文件')
        os.mkfifo(str(path))
    elif kind == 'folder':
        path.mkdir()
    result = practice('--file', str(path), timeout=15)
    assert result.returncode == 2 and result.stdout == ''
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith('错误：'), result.stderr
    assert {'fifo': '管道', 'folder': '文件夹', 'missing': '找不到'}[kind] in lines[0]


def test_non_utf8_file_names_the_line_and_the_gbk_fix(tmp_path):
    """抓有一个 Latin-1 字节的文件只得到英文的 UnicodeDecodeError（position 12801，没有行号）的错误：
    说出第几行，并提示可能是 GBK/ANSI、另存为 UTF-8（和主程序读数据时的说法一样）。"""
    path = tmp_path / 'microgpt_teaching.py'
    path.write_bytes(b'import math\n\n# caf\xe9\n')
    result = practice('--file', str(path), timeout=15)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert '第 3 行有无法按 UTF-8 解码的字节' in result.stderr and 'GBK/ANSI' in result.stderr and '编码选 UTF-8' in result.stderr


def test_output_to_dev_full_and_to_a_closed_pipe(tmp_path):
    """抓输出写不出去时的回溯：标准输出是 /dev/full（磁盘满），或者是读的一方已经走了的管道（| head）。
    检查照常做完，退出码照样说明结果（这里是 1：有练习不通过），标准错误里没有回溯。"""
    path = tmp_path / 'microgpt_teaching.py'
    path.write_text('x = 1\n', encoding='utf-8')
    env = dict(os.environ, PYTHONIOENCODING='utf-8')
    read, write = os.pipe()
    os.close(read)                                 # 像 | head 读完就走了：写进去就是 EPIPE
    outputs = [os.open(os.devnull if not os.path.exists('/dev/full') else '/dev/full', os.O_WRONLY), write]
    try:
        for out in outputs:
            proc = subprocess.run([sys.executable, PRACTICE, '--file', str(path)], env=env, stdout=out,
                                  stderr=subprocess.PIPE, timeout=30)
            assert proc.returncode == 1 and proc.stderr == b'', proc.stderr.decode('utf-8', 'replace')
    finally:
        for out in outputs:
            os.close(out)


@pytest.mark.skipif(not os.path.isdir('/proc') or not hasattr(os, 'killpg'), reason='要用 /proc 和进程组')
def test_ctrl_c_at_the_terminal_stops_quietly(tmp_path):
    """用户在终端按 Ctrl-C（SIGINT 发给整个前台进程组）：检查程序安静地停下，退出码 130，没有回溯，
    检查学习者代码的 worker 进程也不留下。（学习者代码自己 raise KeyboardInterrupt 则是那个练习不通过，见上。）"""
    path = tmp_path / 'microgpt_teaching.py'
    path.write_text('while True:\n    pass\n', encoding='utf-8')
    env = dict(os.environ, PYTHONIOENCODING='utf-8', PRACTICE_TIME_LIMIT='60')
    proc = subprocess.Popen([sys.executable, PRACTICE, '--file', str(path)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)

    def workers():
        found = []
        for pid in filter(str.isdigit, os.listdir('/proc')):
            try:
                with open(f'/proc/{pid}/cmdline', 'rb') as f:
                    if b'--worker\0' + str(path).encode() in f.read():
                        found.append(pid)
            except OSError:
                pass
        return found
    deadline = time.monotonic() + 20
    while not workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)                                # worker 已经在死循环里
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130 and b'Traceback' not in out + err, err.decode('utf-8', 'replace')
    deadline = time.monotonic() + 5
    while workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not workers()


# ---- 耐心的老师（issue “tutorial fourth edition”）----

def test_gradient_failure_says_a_step_left_value_arithmetic(tmp_path):
    """抓前向对了、梯度错了时只重复公式的错误：rmsnorm 的 scale 用 math.sqrt 在 .data 上算（前向完全对），
    提示要说“有一步离开了 Value 的运算”，点名第一个梯度不对的输入，并给出 rmsnorm 自己的写法建议。"""
    body = 'scale = 1 / math.sqrt(sum(xi.data * xi.data for xi in x) / len(x) + 1e-5)\nreturn [xi * scale for xi in x]'
    result = practice('rmsnorm', '--file', edited_copy(tmp_path, ('rmsnorm', body)), COLUMNS='100')
    assert result.returncode == 1
    assert '[通过]   前向值' in result.stdout and '[不通过] 梯度' in result.stdout
    text = unwrap(result.stdout)
    assert '离开了 Value 的运算' in text and '第一个梯度不对的输入是 x[0]' in text and 'math.sqrt(ms.data' in text


def checked(source, name):
    """在测试进程里直接跑一个练习的检查（不经 worker），返回 Fail（通过时是 None）。"""
    import practice as P
    path = os.path.join(ROOT, 'microgpt_teaching.py')
    ck = P.Check(P.BY_NAME[name])
    try:
        P.BY_NAME[name]['check'](ck, P.fresh(compile(source, path, 'exec'), path))
    except P.Fail as f:
        f.stage = ck.stage
        return f


def original_source():
    with open(os.path.join(ROOT, 'microgpt_teaching.py'), encoding='utf-8') as f:
        return f.read()


@pytest.mark.parametrize('name, func, body, broken', [
    ('mul', 'Value.__mul__', '''
        if isinstance(other, Value):
            return Value(self.data * other.data, (self, other), (other.data, other.data))
        return Value(self.data * other, (self,), (other,))''', False),
    ('linear', 'linear', 'return [Value(sum(wi.data * xi.data for wi, xi in zip(row, x))) for row in w]', True),
    ('softmax', 'softmax', one_change(SOFTMAX, 'total = sum(exps)', 'total = sum(e.data for e in exps)'), True),
    ('cross_entropy', 'cross_entropy', 'return Value(-math.log(softmax(logits)[target].data))', True),
    ('cross_entropy', 'cross_entropy', '''
        top = max(z.data for z in logits)
        return Value(top + math.log(sum(math.exp(z.data - top) for z in logits))) - logits[target]''', False),
    ('attention', 'gpt', one_change(GPT, 'scores = [sum(a * b for a, b in zip(q[lo:hi], k_j[lo:hi])) / head_dim ** 0.5',
                                    'scores = [Value(sum(a.data * b.data for a, b in zip(q[lo:hi], k_j[lo:hi])) / head_dim ** 0.5)'),
     False)], ids=['mul', 'linear', 'softmax', 'cross_entropy', 'cross_entropy_lse', 'attention'])
def test_gradient_hint_for_every_exercise_with_a_gradient_stage(name, func, body, broken):
    """抓“离开了 Value 的运算”这条线索只有 softmax 才给的错误：每个有梯度检查的练习，前向对、梯度错时都点名
    第一个梯度不对的输入；梯度是 0（路断了）时说图里没有这条路；基本运算（mul）说的是局部导数。"""
    fail = checked(replace_body(original_source(), func, body), name)
    assert fail is not None and fail.stage == '梯度', fail and (fail.stage, fail.what)
    if name == 'mul':
        assert '局部导数不对' in fail.hint and '第一个梯度不对的输入是 b' in fail.hint
        return
    assert '离开了 Value 的运算' in fail.hint and '第一个梯度不对的输入是' in fail.hint
    assert ('图里没有这条路' in fail.hint) == broken


def test_shape_failure_names_the_element_type_and_says_why():
    """抓形状失败只说“4 个元素的 list”的错误：说出元素是 float（普通小数），并说明普通数字没有梯度。"""
    body = 'return [sum(wi.data * xi.data for wi, xi in zip(row, x)) for row in w]'
    fail = checked(replace_body(original_source(), 'linear', body), 'linear')
    assert fail.stage == '形状' and fail.expected == '3 个 Value 的列表'
    assert fail.got == '3 个 float（普通小数）的 list' and '元素是普通数字' in fail.hint


def test_wrap_is_the_main_scripts_wrap():
    """practice.py 自己带一份折行（不能 import 正被练习改动的脚本）：抓它和主程序的 display_width、wrap 不一致的错误。"""
    import practice as P
    import microgpt_teaching as mg
    texts = ['不通过 —— cross_entropy，前向值：cross_entropy([1, -0.5, 2, 0.3], target=0)，最大差别 2.98',
             '提示：第 h 个头只用 q、k、v 里属于它的那一段；分数 = q·k / sqrt(head_dim)；python tests/practice.py softmax',
             'a' * 120 + ' 中文（括号）“引号”。' * 8]
    for text in texts:
        assert P.display_width(text) == mg.display_width(text)
        for width in (20, 40, 79):
            assert P.wrap(text, width, '    ') == mg.wrap(text, width, '    ')
