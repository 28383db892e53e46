"""练习检查 tests/practice.py：原样的脚本全部通过；把一个练习函数的函数体换成错的，它一定不通过，
并且点名这个函数；换成另一种写法但正确的函数体，它照样通过。

函数体用 ast 按名字找到再整个替换（不匹配原文），所以脚本的注释和行号怎么改都不影响这些测试。
替换用的函数体只用到稳定的名字（Value 的运算、linear、softmax、rmsnorm、mlp 和设置）。
"""
import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap

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


def practice(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONIOENCODING='utf-8')
    return subprocess.run([sys.executable, PRACTICE, *args], cwd=cwd, env=env, timeout=60,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8')


def summary(stdout):
    """每个练习一行：{练习名: 结论（通过 / 不通过 —— 原因 / 待定 —— 原因）}。"""
    return dict(re.findall(r'^ ?\d+\. (\S+)\s.*?\s{2}((?:通过|不通过|待定).*)$', stdout, flags=re.M))


# ---- 课本写法的函数体（正确），变异体在它们上面改一处 ----
GPT = '''
head_dim = n_embd // n_head
x = rmsnorm([t + p for t, p in zip(state['wte'][token_id], state['wpe'][pos_id])])
for li in range(n_layer):
    x_residual = x
    x = rmsnorm(x)
    q = linear(x, state[f'layer{li}.attn_wq'])
    keys[li].append(linear(x, state[f'layer{li}.attn_wk']))
    values[li].append(linear(x, state[f'layer{li}.attn_wv']))
    x_attn = []
    for h in range(n_head):
        lo, hi = h * head_dim, (h + 1) * head_dim
        scores = [sum(a * b for a, b in zip(q[lo:hi], k_t[lo:hi])) / head_dim ** 0.5 for k_t in keys[li]]
        weights = softmax(scores)
        if attention is not None:
            attention.append([w.data for w in weights])
        x_attn += linear(weights, [[v_t[j] for v_t in values[li]] for j in range(lo, hi)])
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
    for words in ['git checkout microgpt_teaching.py', '重新下载', '1e-9', '1e-6', 'speed_tricks']:
        assert words in result.stdout


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
        ('gpt', one_change(GPT, 'x_attn += linear(weights, [[v_t[j] for v_t in values[li]] for j in range(lo, hi)])',
                           'x_attn += [sum(w * v_t[j] for w, v_t in zip(weights, values[li])) for j in range(lo, hi)]')),
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
    assert re.search(r'位置：microgpt_teaching.py 第 \d+ 行（在 step 里）：.*beta1 \*\* self.t', result.stdout)
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
    assert '只有训练对不上' in result.stdout.splitlines()[-1]
