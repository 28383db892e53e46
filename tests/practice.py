"""练习：删掉 microgpt_teaching.py 里一个核心函数的函数体，自己重新写出来，再用本程序检查。

用法：
    python tests/practice.py              检查全部练习，每个一行：通过 / 不通过（和第一个原因）/ 待定；全部通过才返回 0
    python tests/practice.py 练习名       只看这一个练习，一步步的详细检查
    python tests/practice.py --file 路径  检查另一个文件（默认是本文件夹上一层的 microgpt_teaching.py；训练检查用与它同一文件夹里的 input.txt）
怎么练：在 microgpt_teaching.py 里找到练习对应的函数，删掉函数体（留下 def 那一行和文档字符串），自己重新写；
    函数体开头有 “if speed_tricks: return fast_…” 一行的，留着这一行（平时运行走提速版，否则会慢很多；检查时它不起作用）。
    attention 练习删的是 gpt() 里“多头因果自注意力”那一段（也可以像教程 5.7 节那样只删对每个头的循环）。
    教程核心路径上的“动手”框逐个写明了删哪几行。
    改坏了想重来：git checkout microgpt_teaching.py 恢复原文件（下载 zip 的：重新下载这个文件）。
检查的是课本写法：导入后把 speed_tricks 设为 False，运行的一定是你写的代码，提速版本遮不住写错的课本代码。
每个练习由浅入深地检查，遇到第一个失败就停下，说明在什么输入上、期望什么、实际是什么、差多少、可能错在哪：
    能运行 → 形状 → 前向值 → 梯度 → 训练
容差 (tolerance)：
    前向值：与本文件里独立的参考实现（只用普通小数和 math）比，|实际 - 期望| <= 1e-9 · max(1, |期望|)
    梯度：与 float64 中心差分 (f(x+h) - f(x-h)) / 2h（h = 1e-6）比，|实际 - 期望| <= 1e-6 · max(1, |期望|)
    训练：默认设置、random.seed(42)，前 3 步的 loss 相对误差 <= 1e-6（即打印 3.3285 3.3620 3.3243）
    换个加法顺序、换种写法写同一个公式，差别只有约 1e-15；写错的公式差得多得多。
你的代码在另一个 Python 进程里运行：
    每一项检查最多 20 秒，死循环只算这一个练习“超时”，接着查下一个（很慢的电脑上可以放宽：环境变量 PRACTICE_TIME_LIMIT=60 就是 60 秒）。
    你的代码 print 的东西不混进检查结果，单看一个练习时显示开头的一段。
    sys.exit()、自己抛出的 KeyboardInterrupt、关掉 sys.stdout……都只算那个练习不通过；按 Ctrl-C 停下整个检查。
"""
import io
import json
import math
import os
import queue
import random
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
import traceback
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FWD_TOL, GRAD_TOL, TRAIN_TOL, H = 1e-9, 1e-6, 1e-6, 1e-6
REF_LOSSES = [3.328544493480972, 3.362018218762403, 3.324306438009844]     # 课本代码训练的前 3 步
REF_NAMES = ['qbeeurxajagobesq', 'eruawskgyjbbvqwt', 'lzinypzonbghbech', 'pllej', 'qsetdj']   # 之后 seed(42) 编的
RUN, SHAPE, VALUE, GRAD, TRAIN = '能运行', '形状', '前向值', '梯度', '训练'
TOLERANCES = '容差：前向值 相对 1e-9；梯度 相对 1e-6（与中心差分比）；训练 loss 相对 1e-6'
TIME_LIMIT = 20.0          # 每一项检查（导入、一个练习、训练、用真实模型采样）最多几秒；环境变量 PRACTICE_TIME_LIMIT 可以改
OUT_CAP = 2000             # 每一项检查里，你的代码 print 的东西最多留下几个字符（其余只计数）
MAX_RECURSION = 10000      # 检查时 sys.setrecursionlimit 最多设到这么大：再大，无穷递归会吃掉几 GB 内存或让 Python（PyPy 在约 12000 层）崩溃
MAX_MEMORY = 4 << 30       # 检查你的代码的进程最多用这么多内存（字节；只在有 resource 模块的系统上）
MAX_FILE = 20 << 20        # 要检查的文件最大多少字节
EXC_HINTS = {   # 异常 → 常见原因；练习自己的提示优先
    'TypeError': '类型不对：函数体是不是还空着、忘了 return？局部导数要用普通数字（.data），不能是 Value',
    'AttributeError': '用了不存在的属性：另一个操作数可能是普通数字（它没有 .data），也可能是 Value',
    'IndexError': '下标越界：检查矩阵的行和列（是不是转置了）和位置的范围',
    'OverflowError': '数太大溢出了：求 e 的幂之前先把每个数减去其中的最大值（结果不变）',
    'RecursionError': f'递归太深：图可能有几千层，用一个显式的栈 (list) 代替递归（检查时 sys.setrecursionlimit 最多设到 {MAX_RECURSION}）',
    'MemoryError': '内存用完了：是不是有一个列表在循环里越变越大、永远停不下来？',
    'EOFError': '检查时没有键盘输入：练习函数里不要用 input()',
    'SystemExit': '你的代码调用了 sys.exit()（或 exit()、quit()）：它会结束整个程序。练习函数要用 return 交出结果，不要退出',
    'KeyboardInterrupt': '你的代码自己抛出了 KeyboardInterrupt（检查时没有人按 Ctrl-C）：它是留给用户停止程序的，'
                         '不要自己抛出；要报告错误，抛出 ValueError 这样的普通异常',
    'GeneratorExit': 'GeneratorExit 是 Python 关闭生成器时用的，不要自己抛出；要报告错误，抛出 ValueError 这样的普通异常',
    'BaseException': '抛出了 BaseException（或它的子类）：连 except Exception 都拦不住它。要报告错误，抛出 ValueError 这样的普通异常',
}
TIMEOUT = '超时（可能是死循环）'
TIMEOUT_HINT = ('看看循环会不会永远不结束：while 的条件会不会一直成立、循环变量有没有更新、是不是在遍历的同时往同一个列表里追加；'
                '递归有没有停下来的条件。死循环只算这一个练习不通过，别的练习照常检查。'
                '（电脑很慢、代码其实没有死循环的话：设环境变量 PRACTICE_TIME_LIMIT=60，每项检查就可以用 60 秒）')
CRASH_HINT = ('检查你的代码的 Python 进程直接结束了，来不及报告异常：可能是调用了 os._exit()，递归太深把栈用完了'
              '（sys.setrecursionlimit 设得太大），或者内存用完了')
STREAM_HINT = 'sys.stdout、sys.stderr 是整个程序共用的输出，不要关掉或换成 None；要写文件，自己用 open() 打开一个'


def exc_hint(e, hints=None):
    """异常 e 的常见原因：练习自己的提示优先，再查 EXC_HINTS；不是 Exception 的（BaseException 的子类）有自己的说法。"""
    name = type(e).__name__
    return ((hints or {}).get(name) or EXC_HINTS.get(name)
            or (EXC_HINTS['BaseException'] if not isinstance(e, Exception) else '看看出错的那一行'))


def describe(e):
    """异常写成一行“类型: 说明”，最多 300 个字符；说明本身出错（__str__ 抛异常）也不要紧。"""
    try:
        text = str(e)
    except BaseException:
        text = '（这个异常的说明无法显示）'
    text = f'{type(e).__name__}: {text}' if text else type(e).__name__
    return visible(text[:300] + ('…' if len(text) > 300 else ''))


def visible(text):
    """控制字符（ESC 会被终端当作命令）等不可打印的字符换成看得见的写法，例如 \\x1b。"""
    return ''.join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))


class Fail(Exception):
    """一次检查失败：检查的是什么、期望什么、实际是什么、差多少、可能错在哪里。
    error 是学习者代码抛出的异常，或者一句话（超时、关掉了 sys.stdout……）。"""

    def __init__(self, what, expected=None, got=None, diff=None, tol=None, hint='', error=None):
        super().__init__(what)
        self.what, self.expected, self.got, self.diff, self.tol = what, expected, got, diff, tol
        self.hint, self.error, self.stage, self.note, self.where, self.timeout = hint, error, None, '', '', False

    def to_dict(self, path):
        """送回检查程序的样子：数值和列表先写成文字，异常写成一行说明和它在学习者文件里的位置。"""
        error = self.error
        return dict(what=self.what, expected=None if self.expected is None else show(self.expected),
                    got=None if self.got is None else show(self.got), diff=self.diff, tol=self.tol, hint=self.hint,
                    error=None if error is None else error if isinstance(error, str) else describe(error),
                    where=self.where or (where(error, path) if isinstance(error, BaseException) else '') or '')

    @classmethod
    def from_dict(cls, d):
        f = cls(d['what'], d['expected'], d['got'], d['diff'], d['tol'], d['hint'], d['error'])
        f.where = d['where']
        return f


SEND = None                # 检查你的代码的进程 (worker) 里：把进度送回检查程序的函数


class Check:
    """一个练习的进度。学习者的代码都经 call() 运行：出了异常就变成一条中文说明，而不是一大段回溯。"""

    def __init__(self, ex):
        self.ex, self.stage, self.passed, self.fail, self.pending = ex, ex['stages'][0], [], None, None
        self.current, self.printed, self.printed_total, self.skipped = None, '', 0, None

    def at(self, stage):
        self.passed.append(self.stage)
        self.stage = stage
        if SEND:
            SEND(dict(kind='stage', stage=stage))

    def call(self, what, fn, *args):
        if SEND and what != self.current:          # 超时的时候，检查程序知道正在做的是哪一步
            SEND(dict(kind='call', what=what))
        self.current = what
        try:
            result = fn(*args)
        except Fail:                               # 里面一层的检查已经说明白了
            raise
        except BaseException as e:                 # 也包括 SystemExit、KeyboardInterrupt、GeneratorExit：都是这个练习的错
            streams_intact(what)
            raise Fail(what, error=e, hint=exc_hint(e, self.ex['hints']))
        streams_intact(what)
        return result


def streams_intact(what):
    """学习者的代码关掉了 sys.stdout / sys.stderr（或换成了 None）：算这个练习不通过。"""
    for name in ('stdout', 'stderr'):
        stream = getattr(sys, name)
        if stream is None or getattr(stream, 'closed', False):
            raise Fail(what, error=f'你的代码把 sys.{name} ' + ('换成了 None' if stream is None else '关掉了') +
                       '（之后的 print 都会出错）', hint=STREAM_HINT)


def where(error, path):
    """异常发生在学习者文件里的最后一行（只指出该看哪一行）。那一行代码另起一行显示（长的代码行也不和说明挤在一起）。"""
    if isinstance(error, SyntaxError):
        return f'{os.path.basename(path)} 第 {error.lineno} 行：\n      {visible((error.text or "").strip())}'
    frames = [f for f in traceback.extract_tb(error.__traceback__) if os.path.abspath(f.filename) == path]
    return frames and (f'{os.path.basename(path)} 第 {frames[-1].lineno} 行（在 {frames[-1].name} 里）：\n'
                       f'      {visible(frames[-1].line or "")}')


# ---- 独立的参考实现：只用普通小数和 math（fsum 求和最准），不碰学习者的 Value ----
def f_linear(x, w):
    return [math.fsum(a * b for a, b in zip(row, x)) for row in w]


def f_softmax(z):
    e = [math.exp(v - max(z)) for v in z]
    return [v / math.fsum(e) for v in e]


def f_rmsnorm(x):
    return [v / math.sqrt(math.fsum(u * u for u in x) / len(x) + 1e-5) for v in x]


def f_cross_entropy(z, t):
    return max(z) + math.log(math.fsum(math.exp(v - max(z)) for v in z)) - z[t]


def f_gpt(P, tokens, n_layer, n_head, scale=True):
    """小模型每个位置的 logits 和注意力权重，结构与课本的 gpt() 相同。scale=False 是“忘了除以 sqrt”的错误版本。"""
    hd = len(P['wte'][0]) // n_head
    keys, vals, logits, atts = [[] for _ in range(n_layer)], [[] for _ in range(n_layer)], [], []
    for pos, tok in enumerate(tokens):
        x, att = f_rmsnorm([a + b for a, b in zip(P['wte'][tok], P['wpe'][pos])]), []
        for li in range(n_layer):
            L, res, x = f'layer{li}.', x, f_rmsnorm(x)
            q = f_linear(x, P[L + 'attn_wq'])
            keys[li].append(f_linear(x, P[L + 'attn_wk']))
            vals[li].append(f_linear(x, P[L + 'attn_wv']))
            out = []
            for lo in range(0, len(x), hd):
                scores = [math.fsum(a * b for a, b in zip(q[lo:lo + hd], k[lo:lo + hd])) for k in keys[li]]
                w = f_softmax([s / (hd ** 0.5 if scale else 1) for s in scores])
                att.append(w)
                out += [math.fsum(wt * v[j] for wt, v in zip(w, vals[li])) for j in range(lo, lo + hd)]
            x = [a + b for a, b in zip(f_linear(out, P[L + 'attn_wo']), res)]
            hidden = [max(v, 0.0) for v in f_linear(f_rmsnorm(x), P[L + 'mlp_fc1'])]
            x = [a + b for a, b in zip(f_linear(hidden, P[L + 'mlp_fc2']), x)]
        logits.append(f_linear(x, P['lm_head']))
        atts.append(sum(att, []))
    return logits, atts


def ref_grads(root):
    """参考的反向传播：只读节点的 _children 和 _local_grads，不调用学习者的 backward，所以检查 softmax
    等函数的梯度时，backward 写没写对都不影响。返回 {id(节点): d root / d 节点}。"""
    order, seen, stack = [], set(), [(root, False)]
    while stack:                                   # 显式栈的深度优先后序：孩子都排好了才排自己
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack += [(node, True)] + [(c, False) for c in node._children]
    grads = {id(root): 1.0}
    for node in reversed(order):
        for c, local in zip(node._children, node._local_grads):
            grads[id(c)] = grads.get(id(c), 0.0) + local * grads.get(id(node), 0.0)
    return grads


# ---- 比较的小工具 ----
def is_num(x):
    return isinstance(x, (int, float))


def close(got, want, tol):
    return abs(got - want) <= tol * max(1.0, abs(want))      # NaN 的比较永远为假，所以 NaN 一定不通过


def show(x, depth=0):
    if isinstance(x, (list, tuple)):
        if depth > 3:
            return '[…]'
        return '[' + ', '.join(show(v, depth + 1) for v in x[:8]) + (', …' if len(x) > 8 else '') + ']'
    if is_num(x):
        return f'{x:.12g}'
    try:
        text = str(x)
    except BaseException:
        text = f'<{type(x).__name__}>'
    return visible(text[:200] + ('…' if len(text) > 200 else ''))


KINDS = {'float': 'float（普通小数）', 'int': 'int（整数）', 'NoneType': 'None', 'str': 'str（文字）'}


def kind(x):
    name = type(x).__name__
    return KINDS.get(name, name)


def shape_of(x):
    """说明一个值是什么样子：列表说出有几个元素、元素是什么类型（“4 个 float（普通小数）的 list”）。"""
    if isinstance(x, (list, tuple)):
        if not x:
            return f'空的 {type(x).__name__}'
        kinds = list(dict.fromkeys(kind(v) for v in x))
        if len(kinds) == 1:
            return f'{len(x)} 个 {kinds[0]}{"" if kinds[0].endswith("）") else " "}的 {type(x).__name__}'
        return f'{len(x)} 个元素的 {type(x).__name__}，元素有 ' + '、'.join(kinds[:4]) + ('……' if len(kinds) > 4 else '')
    if x is None:
        return 'None（是不是忘了 return？）'
    return f'{visible(repr(x)[:200]) if isinstance(x, str) else show(x)}，类型是 {kind(x)}'


def compare(what, got, want, tol, hint, labels=None):
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if not close(g, w, tol)]
    if bad:
        diff = max(math.inf if d != d else d for d in (abs(g - w) for g, w in zip(got, want)))
        one = len(want) == 1
        raise Fail(what + (f'（{labels[bad[0]]} 不对）' if labels else ''),
                   want[0] if one else want, got[0] if one else got, diff, tol, hint)


def values_of(what, out, n, V, hint):
    """学习者返回的应该是 n 个 Value 的列表，图里每个节点都像样；返回它们的 data。"""
    if not isinstance(out, (list, tuple)) or len(out) != n or not all(isinstance(v, V) for v in out):
        numbers = isinstance(out, (list, tuple)) and out and all(map(is_num, out))
        raise Fail(what, f'{n} 个 Value 的列表', shape_of(out), hint=(
            '元素是普通数字，不是 Value：用 .data 或 math 算出来的数没有梯度，要用 Value 的运算算出每个元素。' if numbers else '') + hint)
    stack, seen = list(out), set()
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            if not isinstance(node, V) or not is_num(node.data):
                raise Fail(what, '图里的节点都是 Value，data 是普通数字',
                           shape_of(node) if not isinstance(node, V) else f'一个 data 是 {shape_of(node.data)} 的 Value',
                           hint='data 要放普通数字，不能放 Value')
            if len(node._children) != len(node._local_grads) or not all(map(is_num, node._local_grads)):
                raise Fail(what, '每个孩子对应一个局部导数（普通数字）', f'{len(node._children)} 个孩子，局部导数是 '
                           f'{shape_of(list(node._local_grads))}', hint='_local_grads 与 _children 一一对应，用 .data 算成普通数字')
            stack.extend(node._children)
    return [v.data for v in out]


LEFT_VALUE = '有一步离开了 Value 的运算（用了 .data、math.*、float() 算出普通数字），梯度在那里断了'


def grad_hint(label, broken, extra, op):
    """梯度这一步的提示：前向值已经对了，所以问题出在梯度走的路上。broken：梯度是 0、差分却不是 0 的那个输出。"""
    first = f'第一个梯度不对的输入是 {label}'
    if op:                                         # Value 的一个运算：前向对、梯度错 = 局部导数或孩子写错了
        if broken:
            return (f'前向值对了，但从 {label} 到输出的梯度是 0（差分不是 0）：_children 里有没有 {label}？'
                    f'它在 _local_grads 里同一个位置的局部导数是多少？{extra}')
        return f'前向值对了，局部导数不对（{first}）：{extra}；_local_grads 和 _children 一一对应、顺序相同'
    if broken:
        return (f'前向值都对了，梯度却不对（{first}）：从 {label} 到{broken}的梯度是 0，中心差分却不是 0，'
                f'图里没有这条路——{LEFT_VALUE}。全程用 Value 的运算（+、-、*、/、**、.exp()、.log()）。{extra}')
    return (f'前向值都对了，梯度却不对（{first}）：多半是{LEFT_VALUE}，算出来的数被当成了常数；'
            f'全程用 Value 的运算（+、-、*、/、**、.exp()、.log()）。{extra}')


def grad_check(ck, what, f, leaves, extra, op=False):
    """f() 用同样的叶子重新建图，返回输出的 Value 列表。逐个比较 d 输出/d 叶子 与中心差分；
    第一个梯度不对的叶子（输入）点名，提示说明前向对了、梯度错了多半是哪里的问题。"""
    outs = ck.call(what, f)
    grads = [ref_grads(o) for o in outs]
    names = ['输出' if len(outs) == 1 else f'输出[{i}]' for i in range(len(outs))]
    for label, leaf in leaves:
        x = leaf.data
        leaf.data = x + H
        up = [o.data for o in ck.call(what, f)]
        leaf.data = x - H
        down = [o.data for o in ck.call(what, f)]
        leaf.data = x
        pairs = [((u - d) / (2 * H), grads[i].get(id(leaf), 0.0)) for i, (u, d) in enumerate(zip(up, down))]
        bad = [i for i, (want, got) in enumerate(pairs) if not close(got, want, GRAD_TOL)]
        if bad:
            broken = [names[i] for i in bad if pairs[i][1] == 0]
            want, got = pairs[bad[0]]
            raise Fail(f'{what}：d {names[bad[0]]} / d {label}（期望的是中心差分）', want, got, abs(got - want), GRAD_TOL,
                       grad_hint(label, broken and broken[0], extra, op))


# ---- 练习（按由浅入深的顺序登记）----
EXERCISES = []
OPS = ('add', 'mul', 'pow', 'log', 'exp', 'relu')


def exercise(name, func, title, about, stages=(RUN, SHAPE, VALUE, GRAD), deps=OPS, trains=True, hints=None):
    """deps：这个练习的检查会用到的别的练习（它们错了，这里多半也跟着错）；trains：训练时会用到它。"""
    def register(check):
        EXERCISES.append(dict(name=name, func=func, title=title, about=about, check=check, trains=trains,
                              stages=list(stages) + [TRAIN] * trains, deps=deps, hints=hints or {}))
        return check
    return register


def op_exercise(name, title, formula, cases):
    """Value 的一个基本运算。cases：[(写法, 学习者的调用, 普通小数的参考（None = 同一个式子）, 输入)]。"""
    def check(ck, m):
        runs = []
        for text, fn, ref, xs in cases:
            leaves = [m.Value(float(x)) for x in xs]
            what = f'{text}（' + '，'.join(f'{n} = {x}' for n, x in zip('ab', xs)) + '）'
            runs.append((what, fn, (ref or fn)(*xs), leaves, ck.call(what, fn, *leaves)))
        ck.at(SHAPE)
        for what, fn, want, leaves, out in runs:
            hint = '结果是一个新的 Value（data 是普通数字），不是普通数字、列表或 None'
            if not isinstance(out, m.Value):
                raise Fail(what, '一个新的 Value', shape_of(out), hint=hint)
            values_of(what, [out], 1, m.Value, hint)
        ck.at(VALUE)
        for what, fn, want, leaves, out in runs:
            compare(what + ' 的 data', [out.data], [want], FWD_TOL, formula)
        ck.at(GRAD)
        for what, fn, want, leaves, out in runs:
            if leaves[0].data == 0:                # relu 在 0 处不可导，差分没用：按惯例导数取 0
                compare(what + ' 的局部导数', [ref_grads(out).get(id(leaves[0]), 0.0)], [0.0], FWD_TOL,
                        'a = 0 时按惯例取导数 0（只有 a > 0 才是 1），与课本代码一致')
            else:
                grad_check(ck, what, lambda: [fn(*leaves)], list(zip('ab', leaves)), formula, op=True)
    func = f'Value.{name}' if name in ('log', 'exp', 'relu') else f'Value.__{name}__'
    exercise(name, func, title, f'{func}：前向值和局部导数，{formula}', deps=())(check)


op_exercise('add', '加法', 'd(a+b)/da = 1，d(a+b)/db = 1；另一个操作数可能是普通数字', [
    ('a + b', lambda a, b: a + b, None, (1.5, -2.25)), ('a + 2.0', lambda a: a + 2.0, None, (1.5,)),
    ('a + a', lambda a: a + a, None, (0.75,))])
op_exercise('mul', '乘法', 'd(a·b)/da = b，d(a·b)/db = a；另一个操作数可能是普通数字', [
    ('a * b', lambda a, b: a * b, None, (1.5, -2.25)), ('a * 3.0', lambda a: a * 3.0, None, (-0.5,)),
    ('a * a', lambda a: a * a, None, (0.75,))])
op_exercise('pow', '幂', 'd(a^k)/da = k·a^(k-1)，k 是普通数字', [
    (f'a ** {k}', lambda a, k=k: a ** k, None, (x,))
    for k, x in ((3, 1.7), (3, -1.3), (-1, 0.8), (0.5, 2.0), (-0.5, 0.3))])
op_exercise('log', '对数', 'd(ln a)/da = 1/a', [('a.log()', lambda a: a.log(), math.log, (x,)) for x in (0.5, 3.0)])
op_exercise('exp', '指数', 'd(e^a)/da = e^a', [('a.exp()', lambda a: a.exp(), math.exp, (x,)) for x in (-1.2, 2.5)])
op_exercise('relu', 'ReLU', 'relu(a) = max(a, 0)；a > 0 时导数 1，否则 0', [
    ('a.relu()', lambda a: a.relu(), lambda a: max(a, 0.0), (x,)) for x in (1.3, -0.7, 0.0)])


@exercise('backward', 'Value.backward', '反向传播', 'Value.backward：拓扑排序，再按链式法则把梯度送到每个节点（用 += 累加）',
          stages=(RUN, '小图的梯度', '5000 层的深图', '第二张图'), deps=())
def check_backward(ck, m):
    def node(children, local):                     # 直接用构造函数搭图：不依赖学习者写的 + 和 ·
        return m.Value(0.5, tuple(children), tuple(local))

    def run(what, root, named):
        ck.call(f'{what} 上的 backward()', root.backward)
        expect(what, root, named)

    def expect(what, root, named):                 # 每个节点的 grad 与参考的反向传播比
        if not all(is_num(n.grad) for _, n in named):
            raise Fail(what, '每个 grad 都是普通数字', shape_of([n.grad for _, n in named]), hint='grad 里累加普通数字')
        want = ref_grads(root)
        compare(what, [n.grad for _, n in named], [want.get(id(n), 0.0) for _, n in named], FWD_TOL,
                '起点 grad = 1；按拓扑序的逆序处理（用到一个节点的节点都处理完，它的 grad 才齐）；一个节点被用了几次'
                '就从几条路收到梯度，用 += 累加，不能用 =', labels=[label for label, _ in named])
    a = m.Value(2.0)
    out = node([a], [3.0])
    ck.call('out = 3·a 上的 backward()', out.backward)
    ck.at('小图的梯度')
    expect('out = 3·a', out, [('a', a), ('out', out)])
    a, b = m.Value(2.0), m.Value(-3.0)
    c = node([a, b], [2.0, -1.0])
    d = node([c, a], [0.5, 4.0])
    e = node([d, d], [1.5, -0.25])
    off = node([b], [1.0])                         # out 对它的局部导数是 0（像关着的 relu）：它的 grad 该是 0
    out = node([e, c, off], [3.0, 2.0, 0.0])
    run('小图 A（a 被 c、d 用了两次，c 被 d、out 用了两次，e 的两个孩子都是 d，off 的局部导数是 0）', out,
        [('a', a), ('b', b), ('c', c), ('d', d), ('e', e), ('off', off), ('out', out)])
    rng = random.Random(19)
    nodes = [m.Value(rng.uniform(-1, 1)) for _ in range(4)]
    for _ in range(40):                            # 随机的有向无环图：有的节点用了好几次，有的用不到
        kids = [rng.choice(nodes) for _ in range(rng.randint(1, 3))]
        nodes.append(node(kids, [rng.uniform(-2, 2) for _ in kids]))
    run('随机图 B（44 个节点）', nodes[-1], [(f'第 {i} 个节点', n) for i, n in enumerate(nodes)])
    ck.at('5000 层的深图')
    x = n = m.Value(1.0)
    for _ in range(5000):
        n = node([n], [1.0])
    run('5000 层的链', n, [('最底下的叶子', x)])
    ck.at('第二张图')
    for n in nodes:
        n.grad = 0.0
    out2 = node([nodes[20], nodes[0]], [2.0, -3.0])   # 新的图又用到图 B 里反向传播过的节点
    run('第二张图（用到图 B 的节点：每次调用都要重新排序、重新记录访问过的节点）', out2,
        [(f'图 B 的第 {i} 个节点', n) for i, n in enumerate(nodes)] + [('out2', out2)])


def check_fn(ck, m, cases, hint, scalar=False, diagnose=None, grad=''):
    """函数练习的通用四步。cases：[(说明, 叶子的名字, 输入的数, 学习者的调用 f(m, 叶子), 参考 ref(数))]。
    grad：前向值对了、梯度不对时，这个练习自己的补充提示（通用的提示是“有一步离开了 Value 的运算”）。"""
    runs = []
    for what, names, xs, f, ref in cases:
        leaves = [m.Value(x) for x in xs]
        call = (lambda f=f, leaves=leaves: [f(m, leaves)] if scalar else f(m, leaves))
        runs.append((what, list(zip(names, leaves)), xs, ref(xs), call, ck.call(what, f, m, leaves)))
    ck.at(SHAPE)
    for what, leaves, xs, want, call, out in runs:
        if scalar and not isinstance(out, m.Value):
            raise Fail(what, '一个 Value', shape_of(out), hint='返回一个 Value（不是列表，也不是普通数字）')
        values_of(what, [out] if scalar else out, len(want), m.Value, hint)
    ck.at(VALUE)
    for i, (what, leaves, xs, want, call, out) in enumerate(runs):
        got = [o.data for o in ([out] if scalar else out)]
        compare(what, got, want, FWD_TOL, (diagnose and diagnose(i, xs, got)) or hint)
    ck.at(GRAD)
    for what, leaves, xs, want, call, out in runs[:2]:      # 后面的输入是极端值，差分不准，只查前向
        grad_check(ck, what, call, leaves, grad)


Z4 = [1.0, -0.5, 2.0, 0.3]


@exercise('linear', 'linear', '线性层', 'linear(x, w)：y = W x，y 的第 i 个数是 W 第 i 行与 x 的点积')
def check_linear(ck, m):
    W = [0.3, -0.2, 0.1, 0.7, -0.5, 0.4, 0.9, -0.1, 0.2, 0.6, -0.8, 0.05]      # 3 × 4：不是方阵，转置就看得出
    names = [f'x[{j}]' for j in range(4)] + [f'W[{i}][{j}]' for i in range(3) for j in range(4)]
    check_fn(ck, m, [
        ('linear(x, W)，x 长 4，W 是 3 × 4', names, [0.5, -1.5, 2.0, 0.25] + W,
         lambda m, L: m.linear(L[:4], [L[4:8], L[8:12], L[12:]]),
         lambda v: f_linear(v[:4], [v[4:8], v[8:12], v[12:]])),
        ('linear(x, W)，x 长 2，W 是 1 × 2', ['x[0]', 'x[1]', 'W[0][0]', 'W[0][1]'], [0.7, -1.1, 0.4, 0.9],
         lambda m, L: m.linear(L[:2], [L[2:]]), lambda v: f_linear(v[:2], [v[2:]]))],
        'y 的长度等于 W 的行数（矩阵不要转置）；y_i = W 第 i 行与 x 的点积，全程用 Value 的运算',
        grad='点积里的每个乘法和加法都要是 Value 的运算（例如 sum(wi * xi for wi, xi in zip(row, x))），不要先取 .data 再包成 Value')


@exercise('softmax', 'softmax', 'softmax', 'softmax(logits)：e^(z_i) / Σ e^(z_j)，先减去最大值防止溢出',
          hints={'ZeroDivisionError': '所有 e 的幂都下溢成了 0：求 e 的幂之前先把每个数减去最大值'})
def check_softmax(ck, m):
    check_fn(ck, m, [(f'softmax({show(z)})', [f'z[{i}]' for i in range(len(z))], z,
                      lambda m, L: m.softmax(L), f_softmax)
                     for z in (Z4, [0.7], [1000.0, 999.0, 998.5], [-1000.0, -1001.0], [3.0, 750.0, -2.0])],
             'p_i = e^(z_i - max) / Σ_j e^(z_j - max)：先减去最大值，再除以总和；全程用 Value 的运算，梯度才传得过去',
             diagnose=lambda i, xs, got: f'输出加起来是 {sum(got):.6g}，不是 1：忘了除以总和？' if abs(sum(got) - 1) > 1e-6 else None,
             grad='只有减去的最大值可以是普通数字（减去一个常数不改变结果）；e 的幂、总和和除法都要用 Value：'
                  '例如 total = sum(exps)，不是 sum(e.data for e in exps)')


def rms_diagnose(i, xs, got):
    ms = math.fsum(x * x for x in xs) / len(xs)
    for scale, hint in ((ms ** -0.5, '忘了在开方之前加 1e-5'), (1 / (ms + 1e-5), '忘了开平方'),
                        ((ms * len(xs) + 1e-5) ** -0.5, '用了平方和，要的是平方的平均（除以长度）'),
                        (1 / (ms ** 0.5 + 1e-5), '1e-5 要加在开方之前，不是开方之后')):
        if all(close(g, x * scale, FWD_TOL) for g, x in zip(got, xs)):
            return hint


@exercise('rmsnorm', 'rmsnorm', 'RMS 归一化', 'rmsnorm(x)：x_i / sqrt(mean(x²) + 1e-5)')
def check_rmsnorm(ck, m):
    check_fn(ck, m, [(f'rmsnorm({show(x)})', [f'x[{i}]' for i in range(len(x))], x,
                      lambda m, L: m.rmsnorm(L), f_rmsnorm)
                     for x in ([0.5, -1.2, 2.0, 0.1], [0.003, -0.002, 0.001, 0.004], [3.0])],
             'y_i = x_i / sqrt(mean(x²) + 1e-5)：平方的平均，加 1e-5，开方，再去除每个 x_i', diagnose=rms_diagnose,
             grad='平方的平均、加 1e-5、开方都要用 Value：例如 scale = (ms + 1e-5) ** -0.5（ms 是 Value），'
                  '不能写 1 / math.sqrt(ms.data + 1e-5)——那样 scale 成了常数，每个 x_j 通过 scale 对 y_i 的影响就丢了')


CE_CASES = ((Z4, 0), (Z4, 2), ([800.0, 801.0, 799.0], 1), ([-800.0, -801.0, -799.5], 0))


def ce_diagnose(i, xs, got):
    want, t = f_cross_entropy(xs, CE_CASES[i][1]), CE_CASES[i][1]
    if close(-got[0], want, FWD_TOL):
        return '符号反了：损失是 -ln p_target（p 小于 1，所以损失是正数）'
    if close(got[0], math.exp(-want), FWD_TOL):
        return '算出的是概率 p_target，还要取 -ln'
    if any(close(got[0], f_cross_entropy(xs, j), FWD_TOL) for j in range(len(xs)) if j != t):
        return '用错了目标：要的是下标 target 那个 token 的概率'


@exercise('cross_entropy', 'cross_entropy', '交叉熵', 'cross_entropy(logits, target)：-ln softmax(logits)[target]，数值要稳定',
          deps=OPS + ('softmax',),
          hints={'ValueError': 'ln 0 没有定义：概率下溢成了 0。用 ln Σ e^(z_j - max) - (z_target - max) 这种写法'})
def check_cross_entropy(ck, m):
    check_fn(ck, m, [(f'cross_entropy({show(z)}, target={t})', [f'z[{i}]' for i in range(len(z))], z,
                      lambda m, L, t=t: m.cross_entropy(L, t), lambda v, t=t: [f_cross_entropy(v, t)])
                     for z, t in CE_CASES],
             '损失 = -ln p_target，p = softmax(logits)；d 损失/d z_j = p_j - (j 是 target 时 1，否则 0)',
             scalar=True, diagnose=ce_diagnose,
             grad='用 Value 的 .log()（对 softmax 返回的 Value，或用 Value 的 .exp() 自己算），不要写 math.log(p.data)；'
                  '减去的最大值可以是普通数字')


@exercise('attention', 'gpt', '注意力', 'gpt() 里的多头因果自注意力：q·k / sqrt(head_dim) 打分、softmax、对 v 加权平均',
          deps=OPS + ('linear', 'softmax', 'rmsnorm'))
def check_attention(ck, m):
    m.n_layer, m.n_embd, m.n_head, m.block_size = L, E, NH, T = 2, 4, 2, 4    # 很小的模型：算得快，参考也好写
    rng, tokens = random.Random(19), [2, 0, 1, 1]
    shapes = dict(wte=(3, E), wpe=(T, E), lm_head=(3, E))
    for li in range(L):
        shapes.update({f'layer{li}.attn_w{c}': (E, E) for c in 'qkvo'})
        shapes.update({f'layer{li}.mlp_fc1': (4 * E, E), f'layer{li}.mlp_fc2': (E, 4 * E)})
    P = {k: [[rng.gauss(0, 0.5) for _ in range(c)] for _ in range(r)] for k, (r, c) in shapes.items()}
    state = {k: [[m.Value(x) for x in row] for row in mat] for k, mat in P.items()}
    hint = ('第 h 个头只用 q、k、v 里属于它的那一段；分数 = q·k / sqrt(head_dim)；softmax 之后对缓存里每个位置的 v '
            '加权求和；当前位置的 k、v 先放进缓存（看得到自己，看不到后面）；attention 不是 None 时按层、按头追加权重')

    def forward():
        keys, values, att, steps = [[] for _ in range(L)], [[] for _ in range(L)], [], []
        for pos, tok in enumerate(tokens):
            before = len(att)
            logits = ck.call(f'gpt(state, {tok}, {pos}, keys, values, attention)',
                             m.gpt, state, tok, pos, keys, values, att)
            steps.append((logits, [len(c) for c in keys + values], att[before:]))
        return steps, keys + values
    steps, caches = forward()
    ck.call(f'gpt(state, {tokens[0]}, 0, keys, values)，不给 attention', m.gpt, state, tokens[0], 0,
            [[] for _ in range(L)], [[] for _ in range(L)])       # 训练时不给 attention：要能照常运行
    ck.at(SHAPE)
    for pos, (logits, lengths, att) in enumerate(steps):
        what = f'gpt 的第 {pos} 个位置'
        values_of(what + '返回的 logits', logits, 3, m.Value, hint)
        if lengths != [pos + 1] * 2 * L:
            raise Fail(what + '之后 keys、values 每层的长度', [pos + 1] * 2 * L, lengths, hint=hint)
        if len(att) != L * NH or not all(len(w) == pos + 1 and all(map(is_num, w)) for w in att):
            raise Fail(what + '追加进 attention 的权重', f'{L * NH} 个列表，每个是 {pos + 1} 个普通小数',
                       f'{shape_of(att)}：{show(att)}', hint=hint)
    for vec in (v for cache in caches for v in cache):
        values_of('keys、values 里缓存的向量', vec, E, m.Value, hint)
    ck.at(VALUE)
    (want, want_att), unscaled = f_gpt(P, tokens, L, NH), f_gpt(P, tokens, L, NH, scale=False)[0]
    for pos, (logits, _, att) in enumerate(steps):
        got = [z.data for z in logits]
        why = '打分没有除以 sqrt(head_dim)' if all(map(close, got, unscaled[pos], [FWD_TOL] * 3)) else hint
        compare(f'gpt 第 {pos} 个位置的 logits', got, want[pos], FWD_TOL, why)
        compare(f'gpt 第 {pos} 个位置追加的注意力权重（按层、按头摊平）', sum(att, []), want_att[pos], FWD_TOL, hint)
    ck.at(GRAD)
    leaves = [(f'{k}[{i}][{j}]', row[j]) for k in shapes if 'attn' in k or k == 'wpe'
              for i, row in enumerate(state[k]) for j in range(E) if (i + j) % 6 == 0]    # 每个矩阵挑两三个：差分要算很多遍
    grad_check(ck, 'gpt 最后一个位置的 logits', lambda: forward()[0][-1][0], leaves,
               '打分 q·k、除以 sqrt(head_dim)、softmax、对 v 的加权求和都要用 Value；往 attention 列表里追加的 .data '
               '只给人看，算 x 用的必须是 Value')


def ref_adam(start, grads, lrs, b1, b2, eps, correct=True, eps_inside=False):
    data, mm, vv, out = list(start), [0.0] * len(start), [0.0] * len(start), []
    for t, (g, lr) in enumerate(zip(grads, lrs), 1):
        c1, c2 = (1 - b1 ** t, 1 - b2 ** t) if correct else (1.0, 1.0)
        for i, gi in enumerate(g):
            mm[i] = b1 * mm[i] + (1 - b1) * gi
            vv[i] = b2 * vv[i] + (1 - b2) * gi * gi
            root = math.sqrt(vv[i] / c2 + eps) if eps_inside else math.sqrt(vv[i] / c2) + eps
            data[i] -= lr * (mm[i] / c1) / root
        out.append((list(data), list(mm), list(vv)))
    return out


@exercise('adam', 'Adam.step', 'Adam 更新', 'Adam.step(lr)：更新一阶矩 m、二阶矩 v，偏差修正，更新参数，梯度清零',
          stages=(RUN, SHAPE, '更新后的数值'), deps=(), hints={'ZeroDivisionError': 't 要先加 1，再算偏差修正 1 - beta^t'})
def check_adam(ck, m):
    start = [0.5, -1.0, 2.0, 0.0, 1e-3]            # 有为 0 的梯度，也有小到 eps_adam 起作用的梯度
    grads = [[0.1, -0.2, 0.0, 1e-9, 3.0], [0.05, 0.3, 0.0, -2e-9, -1.0], [-0.4, 0.1, 0.0, 1e-9, 0.5]]
    lrs, params, snaps = [0.01, 0.02, 0.005], [m.Value(x) for x in start], []
    opt = ck.call('Adam(params)，5 个参数', m.Adam, params)
    for t, (g, lr) in enumerate(zip(grads, lrs), 1):
        for p, gi in zip(params, g):
            p.grad = gi
        ck.call(f'第 {t} 次 opt.step({lr})', opt.step, lr)
        snaps.append(ck.call('读 opt.m、opt.v、opt.t', lambda: (
            [p.data for p in params], list(opt.m), list(opt.v), opt.t, [p.grad for p in params])))
    ck.at(SHAPE)
    for name, got in (('opt.m', snaps[-1][1]), ('opt.v', snaps[-1][2]), ('参数的 data', snaps[-1][0])):
        if len(got) != 5 or not all(map(is_num, got)):
            raise Fail(name, '5 个普通数字（每个参数一个）', shape_of(got), hint='m、v 每个参数各一个普通数字')
    ck.at('更新后的数值')
    args = (start, grads, lrs, m.beta1, m.beta2, m.eps_adam)
    formula = ('m = beta1·m + (1-beta1)·g；v = beta2·v + (1-beta2)·g²；m_hat = m / (1 - beta1^t)，'
               'v_hat = v / (1 - beta2^t)；p -= lr · m_hat / (sqrt(v_hat) + eps_adam)，lr 用参数')
    for t, ((data, mm, vv, tt, gs), want) in enumerate(zip(snaps, ref_adam(*args)), 1):
        what = f'第 {t} 次 step（lr = {lrs[t - 1]}）之后'
        if tt != t:
            raise Fail(what + '的 opt.t', t, tt, hint='每次 step 先把 t 加 1')
        compare(what + '的 opt.m', mm, want[1], FWD_TOL, formula)
        compare(what + '的 opt.v', vv, want[2], FWD_TOL, formula)
        hint = formula
        for variant, why in ((dict(correct=False), '忘了偏差修正：m、v 都要除以 (1 - beta^t)'),
                             (dict(eps_inside=True), 'eps_adam 要加在开方之后：sqrt(v_hat) + eps_adam')):
            if all(map(close, data, ref_adam(*args, **variant)[t - 1][0], [FWD_TOL] * 5)):
                hint = why
        compare(what + '参数的 data', data, want[0], FWD_TOL, hint, labels=[f'参数 {i}' for i in range(5)])
        if any(g != 0 for g in gs):
            raise Fail(what + '参数的 grad', [0.0] * 5, gs, hint='更新完要把每个参数的 grad 清零：下一步反向传播用 += 累加')


def ref_sample(table, tok, temperature, start):
    """参考的采样，返回 (名字的 token 编号（不含开头的 BOS）, 依次喂给 gpt 的 (token, 位置))。
    random.choices 的用法与课本相同，随机数才对得上。"""
    tokens, calls = tok.encode(start)[:-1], []
    for pos in range(len(table)):
        calls.append((tokens[pos], pos))
        if pos + 1 < len(tokens):
            continue
        probs = f_softmax([z / temperature for z in table[pos][tokens[pos]]])
        token_id = random.choices(range(tok.vocab_size), weights=probs)[0]
        if token_id == tok.bos:
            break
        tokens.append(token_id)
    return tokens[1:], calls


@exercise('sample_name', 'sample_name', '采样', 'sample_name：按 softmax(logits / temperature) 的概率用 random.choices '
          '抽字符，抽到 BOS 就停，最多 block_size 个位置；返回 token 编号（不含开头的 BOS）', stages=(RUN, SHAPE, '抽出的名字', '训练后的真实模型'),
          deps=OPS + ('softmax',), trains=False)
def check_sample(ck, m):
    m.block_size, m.temperature, tok = 6, 0.7, m.Tokenizer(['abc'])   # 词表：a b c 和 BOS
    rng, calls, runs, state = random.Random(5), [], [], m.init_params(4)  # state 只给假模型，形状是真的
    # 假模型：logits 只取决于（位置，输入的 token），这样只检查 sample_name 自己，与 gpt 写得对不对无关
    table = [[[rng.uniform(-2, 2) for _ in range(3)] + [rng.uniform(-3, 0)] for _ in range(4)] for _ in range(6)]

    def fake_gpt(state, token_id, pos_id, keys, values, attention=None):
        if not 0 <= pos_id < m.block_size:
            raise IndexError(f'位置 pos_id={pos_id} 超出了 block_size={m.block_size}')
        calls.append((token_id, pos_id))
        return [m.Value(z) for z in table[pos_id][token_id]]
    m.gpt = fake_gpt
    for seed, start in [(s, '') for s in range(25)] + [(s, 'b') for s in range(5)]:
        del calls[:]
        random.seed(seed)
        got = ck.call(f'random.seed({seed}) 后 sample_name(state, tokenizer, start={start!r})',
                      m.sample_name, state, tok, start)
        random.seed(seed)
        runs.append((seed, start, (got, list(calls)), ref_sample(table, tok, 0.7, start)))
    ck.at(SHAPE)
    for seed, start, (got, _), want in runs:
        if not (isinstance(got, list) and all(type(t) is int for t in got)):
            raise Fail(f'sample_name(start={start!r}) 的返回值', 'token 编号（整数）的列表，不含开头的 BOS', shape_of(got),
                       hint='返回 tokens[1:]：变回文字是调用者的事（tokenizer.decode）')
    ck.at('抽出的名字')
    for seed, start, got, want in runs:
        if got != want:
            random.seed(seed)
            hint = ('每一步把上一步的 token 和它的位置喂给 gpt；按 softmax(logits / temperature) 的概率用 '
                    'random.choices(range(vocab_size), weights=...) 抽一个；给定的开头照抄、不抽')
            if len(got[1]) > len(want[1]) and len(want[1]) < 6:
                hint = '抽到 BOS 就该停：BOS 表示名字结束'
            elif got == ref_sample(table, tok, 1.0, start):
                hint = '没有用温度：logits 要先除以 temperature 再做 softmax'
            raise Fail(f'假模型上，random.seed({seed}) 后 sample_name(start={start!r})',
                       f'{want[0]!r}，依次喂给 gpt 的 (token, 位置)：{want[1]}', f'{got[0]!r}，喂的是：{got[1]}', hint=hint)


def trained_model(code, path):
    """默认设置、random.seed(42)，用项目自带的 input.txt 训练 3 步（课本写法，约 0.3 秒）。"""
    m, data = fresh(code, path), os.path.join(os.path.dirname(path), 'input.txt')
    if not os.path.exists(data):
        raise Fail('读数据', error=FileNotFoundError(f'找不到 {data}'), hint='训练检查要用项目自带的 input.txt')
    random.seed(42)
    docs = m.load_docs(data)
    train_docs, tok = m.split_docs(docs)[0], m.Tokenizer(docs)
    state, losses = m.init_params(tok.vocab_size), []
    for step, loss, lr in m.train(state, m.Adam(m.flatten(state)), train_docs, tok, 1000):
        losses.append(loss)
        if step == 3:
            break
    compare('默认设置、random.seed(42) 训练 1000 步里前 3 步的 loss', losses, REF_LOSSES, TRAIN_TOL,
            '各练习自己的检查都通过了，训练却对不上：可能是检查没覆盖到的写法（比如多用了随机数、用了全局设置而不是'
            '参数），也可能改动了不在练习里的函数（mlp、doc_losses、train）')
    return m, state, tok


def fresh(code, path):
    """每个练习都用一份新导入的模块，互不影响；关掉提速技巧，运行的就是课本写法。"""
    m = types.ModuleType('microgpt_teaching')
    m.__file__ = path
    exec(code, m.__dict__)
    m.speed_tricks = False
    return m


BY_NAME = {ex['name']: ex for ex in EXERCISES}


# =============================================================================
# 检查你的代码的进程 (worker)：python tests/practice.py --worker 路径。下面的 Worker 类启动它，两边通过管道
# 一行一条 JSON 对话：检查程序送来命令（检查一个练习、训练 3 步、用真实模型采样），worker 送回进度和结果。
# 学习者的代码只在这个进程里运行：死循环、sys.exit()、关掉 sys.stdout、狂打印、无穷递归……都伤不到检查程序。
# =============================================================================

class Capture(io.TextIOBase):
    """worker 里的 sys.stdout 和 sys.stderr：学习者 print 的东西，每项检查最多送回 OUT_CAP 个字符，其余只计数
    （一次 print 50 MB 也只是数一下长度）。关掉以后再写会出错，和真的文件一样。"""
    count = [0, 0]                                 # 这一项检查里：一共打印了几个字符，送回了几个（stdout、stderr 合计）

    @property
    def encoding(self):
        return 'utf-8'

    def writable(self):
        return True

    def write(self, text):
        if self.closed:
            raise ValueError('I/O operation on closed file.')
        if not isinstance(text, str):
            raise TypeError(f'write() argument must be str, not {type(text).__name__}')
        Capture.count[0] += len(text)
        room = OUT_CAP - Capture.count[1]
        if room > 0 and text:
            Capture.count[1] += min(room, len(text))
            SEND(dict(kind='out', text=text[:room]))
        return len(text)


def fresh_streams():
    """每项检查开始时：新的 sys.stdout、sys.stderr（上一项检查里被关掉、被换掉的都不算数），计数清零。"""
    sys.stdout, sys.stderr, sys.stdin, Capture.count[:] = Capture(), Capture(), io.StringIO(), [0, 0]
    sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr


def limit_worker():
    """无穷递归、越长越大的列表：不许吃掉整台电脑的内存（别的程序也要用）。"""
    real = sys.setrecursionlimit

    def setrecursionlimit(limit):
        """检查时最多设到 MAX_RECURSION：设成 10**7 再无穷递归，会吃掉几 GB 内存，或者让 Python 崩溃。"""
        real(min(limit, MAX_RECURSION) if isinstance(limit, int) else limit)
    sys.setrecursionlimit = setrecursionlimit
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft > MAX_MEMORY:
            resource.setrlimit(resource.RLIMIT_AS, (MAX_MEMORY, hard))
    except (ImportError, AttributeError, ValueError, OSError):   # Windows 没有 resource；有的系统不让设
        pass


def import_hint(e):
    if isinstance(e, SyntaxError):
        return '看看这一行和它上面一行：括号、引号配对了没有，冒号、缩进对不对'
    if isinstance(e, SystemExit):
        return '模块顶层（不在任何函数里）的代码调用了 sys.exit()：导入时它就结束了程序。把它放进函数里，或者删掉'
    return exc_hint(e)


def worker_main(path):
    """worker 进程的主体：导入一次学习者的文件（报告导入成不成功），然后一条一条执行命令。"""
    global SEND
    import faulthandler
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # 终端里的 Ctrl-C 是给检查程序的：它会停掉这个进程
    channel, commands = os.dup(1), os.dup(0)       # 和检查程序对话用的两根管道，换到别的文件描述符上
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)                               # 学习者读标准输入：什么也读不到
    os.dup2(2, 1)                                  # 学习者直接写文件描述符 1、2 的：进检查程序的另一根管道（只计数）
    faulthandler.enable(file=sys.__stderr__)       # Python 崩溃时，在那根管道里写下崩在哪一行（文件描述符 2）
    lock = threading.Lock()

    def send(msg):
        data = (json.dumps(msg, ensure_ascii=True) + '\n').encode('ascii')
        with lock:
            while data:
                data = data[os.write(channel, data):]
    SEND = send
    inbox = queue.Queue()

    def read_commands():
        with open(commands, 'rb') as f:
            for line in f:
                inbox.put(json.loads(line.decode('ascii')))
        os._exit(0)                                # 检查程序不在了（做完了、被停掉了）：跟着结束，不在后台空转
    threading.Thread(target=read_commands, daemon=True).start()
    limit_worker()
    fresh_streams()
    code, fail, trained = None, None, {}
    try:
        with open(path, 'rb') as f:
            code = compile(f.read().decode('utf-8-sig'), path, 'exec')
        fresh(code, path)
        streams_intact('导入')
    except Fail as f:
        fail = f
    except BaseException as e:
        fail = Fail('导入', error=e, hint=import_hint(e))
    send(dict(kind='ready', fail=fail and fail.to_dict(path)))
    while True:
        cmd = inbox.get()
        fresh_streams()
        try:
            result = dict(fail=None)
            failed = do_command(cmd, code, path, trained)
            result['fail'] = failed and failed.to_dict(path)
        except BaseException as e:                 # 检查程序自己的错：照样送回去，不让检查程序干等
            result = dict(fail=Fail('检查程序自己', error=f'检查程序出错了：{describe(e)}',
                                    hint='这是 practice.py 的错，不是你的：请把这一段报告给课程作者').to_dict(path))
        send(dict(result, kind='done', printed=Capture.count[0]))


def do_command(cmd, code, path, trained):
    """执行一条命令，返回 Fail（不通过）或 None（通过）。"""
    if cmd['do'] == 'check':
        ex = BY_NAME[cmd['name']]
        ck = Check(ex)
        try:
            ex['check'](ck, fresh(code, path))
            streams_intact(f'检查 {ex["func"]}')
        except Fail as f:
            return f
        except BaseException as e:                 # 返回了奇怪的东西，比较时才出错；或者不经 ck.call 的代码出错
            return Fail(f'检查 {ex["func"]} 的结果', error=e, hint=exc_hint(e, ex['hints']) if not isinstance(
                e, Exception) or type(e).__name__ in EXC_HINTS else '看看返回值')
        return None
    ck = Check(BY_NAME['sample_name'])
    try:
        if cmd['do'] == 'train':
            trained['model'] = trained_model(code, path)
            streams_intact('训练 3 步')
        else:                                      # 采样：训练 3 步后的真实模型，编的名字要和课本代码一样
            m, state, tok = trained['model']
            random.seed(42)
            names = [tok.decode(ck.call('训练 3 步后的模型上 sample_name', m.sample_name, state, tok)) for _ in range(5)]
            if names != REF_NAMES:
                raise Fail('训练 3 步后 random.seed(42)，用真实模型编 5 个名字', REF_NAMES, names,
                           hint='假模型上都对，真实模型上却不对：是不是用了 state、tokenizer 以外的东西？')
    except Fail as f:
        return f
    except BaseException as e:
        return Fail('训练 3 步' if cmd['do'] == 'train' else '用训练 3 步后的模型采样', error=e, hint=exc_hint(e))
    return None


# =============================================================================
# 检查程序这边：启动 worker，送命令，计时；超时或者 worker 意外结束，就停掉它，下一条命令再启动一个新的。
# =============================================================================

class Worker:
    def __init__(self, path, limit):
        self.path, self.limit, self.proc = path, limit, None

    def start(self, sink):
        """启动 worker，等它导入学习者的文件；返回它的 ready 消息（或者 timeout / crash）。"""
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--worker', self.path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.inbox, self.tail, self.raw = queue.Queue(), bytearray(), [0, 0]
        threading.Thread(target=self.read, args=(self.proc.stdout, self.inbox), daemon=True).start()
        threading.Thread(target=self.drain, args=(self.proc.stderr, self.tail, self.raw), daemon=True).start()
        return self.wait(sink)

    @staticmethod
    def read(stream, inbox):
        for line in stream:
            try:
                inbox.put(json.loads(line.decode('ascii')))
            except ValueError:
                pass
        inbox.put(None)

    @staticmethod
    def drain(stream, tail, raw):
        """学习者直接写进文件描述符的东西（os.write(1, …)；还有 Python 崩溃时的报告）：读走（不然 worker 会卡在写上），
        只数字节数 raw[0]，留下最后 64 KB。"""
        while True:
            chunk = stream.read1(65536) if hasattr(stream, 'read1') else stream.read(65536)
            if not chunk:
                return
            raw[0] += len(chunk)
            tail += chunk
            del tail[:-65536]

    def request(self, cmd, sink):
        """送一条命令，等结果：done（带 fail）、timeout 或 crash。worker 不在了就先启动一个新的。"""
        if self.proc is None:
            ready = self.start(sink)
            if ready['kind'] != 'ready' or ready['fail']:
                return ready if ready['kind'] != 'ready' else dict(ready, kind='done')
        try:
            self.proc.stdin.write((json.dumps(cmd) + '\n').encode('ascii'))
            self.proc.stdin.flush()
        except OSError:                            # worker 刚好自己结束了
            pass
        return self.wait(sink)

    def wait(self, sink):
        deadline = time.monotonic() + self.limit
        while True:
            try:
                msg = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop(kill=True)
                return dict(kind='timeout')
            if msg is None:                        # 管道关了：worker 意外结束（或者学习者的代码关掉了这根管道）
                try:
                    code = self.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:  # 管道关了，进程却还在跑：当作超时
                    self.stop(kill=True)
                    return dict(kind='timeout')
                time.sleep(0.05)                   # 让 drain 读完崩溃报告
                crash = dict(kind='crash', code=code, report=self.tail.decode('utf-8', 'replace'))
                self.stop(kill=True)
                return crash
            kind = msg.get('kind')
            if kind == 'stage':
                sink.at(msg['stage'])
            elif kind == 'call':
                sink.current = msg['what']
            elif kind == 'out':
                sink.printed += msg['text']
            elif kind in ('ready', 'done'):           # 直接写进文件描述符的字节：大致算在这一项检查上
                sink.printed_total += msg.get('printed', 0) + self.raw[0] - self.raw[1]
                self.raw[1] = self.raw[0]
                return msg

    def stop(self, kill=False):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()                     # worker 读到结尾就自己结束
        except OSError:
            pass
        if not kill:
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                kill = True
        if kill:
            proc.kill()
            proc.wait()

    def outcome(self, msg, sink, what):
        """worker 的回答变成 Fail（不通过）或 None（通过）。"""
        if msg['kind'] == 'done':
            return msg['fail'] and Fail.from_dict(msg['fail'])
        if msg['kind'] == 'timeout':
            fail = Fail(sink.current or what, error=f'{TIMEOUT}：{self.limit:g} 秒内没有做完，已经停掉它', hint=TIMEOUT_HINT)
            fail.timeout = True
            return fail
        report, code = msg['report'], msg['code']
        fatal = re.search(r'Fatal Python error: ([^\n]*)', report)
        fail = Fail(sink.current or what, error=f'Python 进程意外结束了（退出码 {code}' + (
            f'；Fatal Python error: {visible(fatal.group(1)[:200])}' if fatal else '') + '）', hint=CRASH_HINT)
        for m in re.finditer(r'File "(.*)", line (\d+) in (\S+)', report[fatal.start():] if fatal else ''):
            if os.path.abspath(m.group(1)) == self.path:       # 崩溃报告里学习者文件的最后一次调用
                fail.where = f'{os.path.basename(self.path)} 第 {m.group(2)} 行（在 {visible(m.group(3))} 里）'
                break
        return fail


def run_all(worker, only=None):
    """全部练习的单项检查（总是都做：要知道哪个练习连累了别的）；训练只在有人要看时才做。"""
    results, trained, train_sink = {}, None, Check(dict(BY_NAME['sample_name'], func='训练'))
    for ex in EXERCISES:
        ck = results[ex['name']] = Check(ex)
        hung = [d for d in ex['deps'] if results[d].fail and results[d].fail.timeout]
        if hung:                                   # 它要用的函数会卡住：这里多半也卡住，不必再等一遍
            ck.skipped = ck.pending = hung[0]
            continue
        ck.fail = worker.outcome(worker.request(dict(do='check', name=ex['name']), ck), ck, f'检查 {ex["func"]}')
    for ck in results.values():                    # 前面的练习没通过，后面的失败多半是它连累的
        first = [d for d in ck.ex['deps'] if results[d].fail]
        if ck.fail and first:
            ck.fail.note = f'可能是因为「{first[0]}」没通过：先改好它'
    blockers = [ex['name'] for ex in EXERCISES if ex['trains'] and (results[ex['name']].fail or results[ex['name']].skipped)]
    for ck in (ck for ck in results.values() if not (ck.fail or ck.skipped) and only in (None, ck.ex['name'])):
        ck.at(TRAIN if ck.ex['trains'] else ck.ex['stages'][-1])
        if blockers:                               # 训练要用到所有这些函数：有一个错了，训练就没意义
            ck.pending = f'要等「{blockers[0]}」改好'
            continue
        if trained is None:
            trained = worker.outcome(worker.request(dict(do='train'), train_sink), train_sink, '训练 3 步') or False
            if trained:
                trained.stage = TRAIN
        if trained:
            ck.fail, ck.pending = (trained, None) if ck.ex['trains'] else (None, '要等训练检查通过')
        elif not ck.ex['trains']:
            ck.fail = worker.outcome(worker.request(dict(do='sample_real'), ck), ck, '用训练 3 步后的模型采样')
        if not (ck.fail or ck.pending):
            ck.at(None)
    for ck in results.values():
        if ck.fail:
            ck.fail.stage = ck.stage
    return results, train_sink


# ---- 输出：按终端宽度折行（中文字占两列），写不出去（| head、磁盘满）也不出错 ----
# display_width、PIECES、wrap 与 microgpt_teaching.py 里的相同（test_practice 对照两边的结果）。不从那里 import：
# 默认检查的就是那个文件，它可能正被改得跑不起来（语法错、死循环、sys.exit()），检查程序自己不能跟着坏。
CJK = '\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef'
PIECES = re.compile(rf'\s+|[（「『“‘《]*(?:[^\s{CJK}]+(?:[{CJK}]+[^\s{CJK}]+)*|[{CJK}])[，。；：、！？）」』”’》…]*')


def display_width(text):
    """文字在终端里占几列：中日韩的全角字符占两列，换行符不占列，其余占一列。"""
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(ch) in 'WF' else ch != '\n' for ch in text)


def wrap(text, width, indent=''):
    """按显示宽度把一段话折成几行：只在空白处、或两个中文字符之间断开，不会拆开命令、数字或英文单词。"""
    lines, line = [], ''
    for piece in PIECES.findall(text):
        if line.strip() and display_width(line + piece.rstrip()) > width:
            lines.append(line.rstrip())
            line = indent
            if piece.isspace():
                continue
        line += piece
    return lines + [line.rstrip()]


def columns():
    return max(20, min(shutil.get_terminal_size().columns, 100) - 1)


def say(text='', indent=None, file=None):
    """打印几行字，每行按终端宽度折行。续行的缩进：给了 indent 就用它；否则对齐到“提示：”这种标签之后。
    标准错误上的“错误：……”不折行：一个错误就是一行，和主程序一样（别的程序好拿来比对）。"""
    if file is sys.stderr:
        print(text, file=file, flush=True)
        return
    for line in str(text).split('\n'):
        hang = indent
        if hang is None:
            lead = len(line) - len(line.lstrip(' '))
            label = re.match(r' *[^ ：]{1,6}：', line)
            hang = ' ' * (display_width(label.group()) if label else lead + 2)
        for part in wrap(line, columns(), hang):
            print(part, file=file or sys.stdout, flush=True)


class SafeOutput:
    """包住标准输出（或标准错误）：读的一方走了（| head）、磁盘满了（/dev/full）、或者根本没有地方输出，
    都只是不再打印——检查照常做完，退出码照样说明通过没有。"""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        return self.call('write', text)

    def flush(self):
        return self.call('flush')

    def isatty(self):
        return self.call('isatty')

    def call(self, name, *args):
        try:
            return getattr(self.stream, name)(*args)
        except (OSError, ValueError, AttributeError):   # 管道断了、磁盘满了、文件已关闭、根本没有输出（None）
            try:                                         # 缓冲区里剩下的字节，退出时写进 /dev/null，不再报错
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            self.stream = None


def label(ex):
    return f'{ex["name"]:<14}{ex["title"]}' + ' ' * (12 - display_width(ex['title']))


def summary_line(ck):
    f = ck.fail
    if f:
        why = f'出错 {f.error}' if f.error else (
            f'最大差别 {f.diff:.3g}' if f.diff is not None else f'期望 {f.expected}，实际 {f.got}'[:80])
        return f'不通过 —— {ck.ex["func"]}，{f.stage}：{f.what}，{why}' + (f'（{f.note}）' if f.note else '')
    if ck.skipped:
        return f'待定 —— 没有检查：它要用到「{ck.skipped}」，而「{ck.skipped}」{TIMEOUT}；先改好「{ck.skipped}」'
    return f'待定 —— 自己的检查都通过了，{ck.stage}{ck.pending}' if ck.pending else '通过'


def printed_lines(sink, who):
    """学习者的代码在这项检查里打印的东西：说明一共多少，显示开头最多 10 行。"""
    total = max(sink.printed_total, len(sink.printed))
    if not total:
        return []
    shown = sink.printed.split('\n')[:10]
    cut = total > len(sink.printed) or len(sink.printed.split('\n')) > 10
    lines = [f'  {who}你的代码打印了 {total:,} 个字符' + ('。' if not sink.printed else '，下面是开头的一段：' if cut else '：')]
    if not sink.printed:                           # 全是直接写进文件描述符的（os.write），没有留下
        return lines
    width = columns() - 6
    for line in shown if shown[-1] or len(shown) == 1 else shown[:-1]:
        line, used = visible(line.replace('\t', '    ')), 0
        for i, ch in enumerate(line):              # 截到一行放得下（中文字占两列）
            used += display_width(ch)
            if used > width:
                line = line[:i]
                break
        lines.append(f'    | {line}')
    return lines + (['    | ……（后面的没有显示）'] if cut else [])


def detail(ck, train_sink):
    ex, f = ck.ex, ck.fail
    lines = [f'练习 {ex["name"]}：{ex["title"]}（{ex["func"]}）', f'  要写的：{ex["about"]}', '  ' + TOLERANCES]
    lines += [f'  [通过]   {stage}' for stage in ck.passed]
    if f:
        lines += [f'  [不通过] {f.stage}', f'    函数：{ex["func"]}', f'    检查的是：{f.what}']
        if f.error is not None:
            lines += [f'    出错：{f.error}'] + ([f'    位置：{f.where}'] if f.where else [])
        else:
            lines += [f'    期望：{f.expected}', f'    实际：{f.got}']
            lines += [f'    最大差别：{f.diff:.3g}（容差 {f.tol:g} · max(1, |期望|)）'] if f.diff is not None else []
        lines += [f'    提示：{f.hint}'] + ([f'    注意：{f.note}'] if f.note else [])
        rest = ex['stages'][ex['stages'].index(f.stage) + 1:] if f.stage in ex['stages'] else []
        lines += [f'  后面的检查（{"、".join(rest)}）还没做：改好这一步再运行一次。'] if rest else []
    elif ck.skipped:
        lines += [f'  [待定]   {ck.stage}：没有检查，它要用到「{ck.skipped}」，而「{ck.skipped}」{TIMEOUT}。先改好「{ck.skipped}」']
    elif ck.pending:
        lines.append(f'  [待定]   {ck.stage}：{ck.pending}')
    lines += printed_lines(ck, '检查这个练习时，')
    lines += printed_lines(train_sink, '训练 3 步时，') if TRAIN in ck.passed + [ck.stage] else []
    return '\n'.join(lines + ([] if f or ck.pending else ['通过！']))


class Problem(Exception):
    """要检查的文件或命令行有问题：一句中文说明，退出码 2。"""


def read_source(path):
    """检查之前先看看文件：不存在、是文件夹、是管道（读它会一直等）、太大、不是 UTF-8……都是一句能照着改的话。
    先用 os.stat 看清是什么，再打开：打开一个管道 (FIFO) 本身就会一直等下去。"""
    shown = visible(path)
    try:
        info = os.stat(path)
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise Problem(f'错误：找不到要检查的文件 {shown}。请确认路径，或者不写 --file（默认检查 microgpt_teaching.py）。')
        raise Problem(f'错误：读不了要检查的文件 {shown}（{e.strerror}）。')
    if stat.S_ISDIR(info.st_mode):
        raise Problem(f'错误：{shown} 是一个文件夹，不是 Python 文件。请用 --file 指定 microgpt_teaching.py 这样的文件。')
    if not stat.S_ISREG(info.st_mode):
        raise Problem(f'错误：{shown} 是管道或设备，不是普通文件（读它可能永远等不到结尾）。请用 --file 指定一个 Python 文件。')
    if info.st_size > MAX_FILE:
        raise Problem(f'错误：{shown} 有 {info.st_size:,} 字节，太大了，不像是 microgpt_teaching.py。请检查 --file 的路径。')
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError as e:
        raise Problem(f'错误：读不了要检查的文件 {shown}（{e.strerror}）。')
    if b'\0' in raw:
        raise Problem(f'错误：{shown} 里有 NUL 字节（0x00）：它像是 UTF-16 编码的文字，也可能根本不是文本文件。'
                      '是文字的话，请在编辑器里“另存为”，编码选 UTF-8。')
    try:
        return raw.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b'\n') + 1
        raise Problem(f'错误：{shown} 不是 UTF-8 编码（第 {line} 行有无法按 UTF-8 解码的字节）。它可能是用 GBK/ANSI 保存的：'
                      '请在编辑器里“另存为”，编码选 UTF-8。')


def time_limit():
    text = os.environ.get('PRACTICE_TIME_LIMIT', '').strip()
    if not text:
        return TIME_LIMIT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 86400:
        raise Problem(f'错误：环境变量 PRACTICE_TIME_LIMIT={visible(text)} 不对：要写每项检查最多几秒（一个正数），例如 60。')
    return value


def main(argv):
    path, name, names = os.path.join(ROOT, 'microgpt_teaching.py'), None, [e['name'] for e in EXERCISES]
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ('-h', '--help'):
            for line in __doc__.splitlines():      # 用法的几行：续行对齐到说明那一列
                command = re.match(r' +python \S+(?: \S+)*? {2,}', line)
                if command and display_width(command.group()) <= columns() * 3 // 5:
                    say(line, indent=' ' * display_width(command.group()))
                else:
                    say(line, indent=' ' * (len(line) - len(line.lstrip()) + 4) if line.startswith(' ') else None)
            say('\n练习（由浅入深；前面的没通过，后面的常常也跟着错，先改前面的）：')
            for e in EXERCISES:
                say(f'  {label(e)}{e["about"]}', indent=' ' * (28 if columns() >= 70 else 4))
            return 0
        if arg == '--file' and args or arg.startswith('--file='):
            path = args.pop(0) if arg == '--file' else arg[len('--file='):]
        elif name is None and not arg.startswith('-'):
            name = arg.lower()
        else:
            say(f'错误：看不懂的参数 {visible(arg)}。用法见 python tests/practice.py --help', file=sys.stderr)
            return 2
    if name is not None and name not in names:
        say(f'错误：没有叫 {visible(name)} 的练习。可以选的练习：{"、".join(names)}。说明见 python tests/practice.py --help',
            file=sys.stderr)
        return 2
    path = os.path.abspath(path)
    try:
        limit = time_limit()
        read_source(path)
    except Problem as e:
        say(str(e), file=sys.stderr)
        return 2
    worker = Worker(path, limit)
    try:
        return check(worker, path, name)
    finally:
        worker.stop(kill=True)


def check(worker, path, name):
    sink = Check(dict(BY_NAME['add'], func='导入'))
    ready = worker.start(sink)
    fail = worker.outcome(ready, sink, '导入') if ready['kind'] != 'ready' else ready['fail'] and Fail.from_dict(ready['fail'])
    if fail:
        if fail.timeout:
            say(f'不通过：{os.path.basename(path)} 导入时就{TIMEOUT}，先改好这里。\n  出错：{fail.error}\n'
                '  提示：模块顶层（不在任何函数里）的代码一直没有结束：是不是在函数外面留了一个死循环，或者直接调用了 '
                "main()（没有放在 if __name__ == '__main__': 下面）？")
        else:
            say(f'不通过：{os.path.basename(path)} 导入时就出错了，先改好这里。\n  出错：{fail.error}' +
                (f'\n  位置：{fail.where}' if fail.where else '') + f'\n  提示：{fail.hint}')
        return 1
    results, train_sink = run_all(worker, name)
    if name:
        say(detail(results[name], train_sink))
        return 1 if results[name].fail or results[name].pending else 0
    say(f'检查 {visible(path)}（speed_tricks = False：课本写法）\n{TOLERANCES}')
    hang = ' ' * (30 if columns() >= 70 else 4)
    for i, ck in enumerate(results.values(), 1):
        say(f'{i:2d}. {label(ck.ex)}{summary_line(ck)}', indent=hang)
    talkers = [ck for ck in list(results.values()) + [train_sink] if ck.printed_total or ck.printed]
    if talkers:
        total = sum(max(ck.printed_total, len(ck.printed)) for ck in talkers)
        who = '、'.join(ck.ex['name'] if ck is not train_sink else '训练' for ck in talkers)
        first = next((ck.ex['name'] for ck in talkers if ck is not train_sink), 'sample_name')
        say(f'你的代码在这些检查里打印了 {total:,} 个字符（这里没有显示）：{who}。单看一个练习会显示开头的一段：\n'
            f'  python tests/practice.py {first}')
    passed = [ck for ck in results.values() if not (ck.fail or ck.pending)]
    failing = [ck for ck in results.values() if ck.fail]
    pending = [ck for ck in results.values() if ck.pending and not ck.fail]
    if len(passed) == len(results):
        say(f'全部 {len(results)} 个练习都通过了。')
        return 0
    if failing and all(ck.fail.stage == TRAIN for ck in failing):   # 单项都对，只有训练不对：不是哪一个练习的错
        advice = f'各练习自己的检查都通过了，只有训练对不上。详细说明：\n  python tests/practice.py {failing[0].ex["name"]}'
    else:
        advice = f'先改第一个不通过的：\n  python tests/practice.py {(failing or pending)[0].ex["name"]}'
    say(f'{len(passed)} 个通过，{len(failing)} 个没通过，{len(pending)} 个待定。{advice}')
    return 1


if __name__ == '__main__':
    if sys.argv[1:2] == ['--worker']:
        worker_main(os.path.abspath(sys.argv[2]))
    if hasattr(sys.stdout, 'reconfigure'):
        sys.stdout.reconfigure(errors='replace')   # 控制台编码放不下的字符显示为 ?，而不是崩溃
        sys.stderr.reconfigure(errors='replace')
    sys.stdout, sys.stderr = SafeOutput(sys.stdout), SafeOutput(sys.stderr)
    try:
        status = main(sys.argv[1:])
    except KeyboardInterrupt:                      # 用户按了 Ctrl-C：安静地停下（worker 在 main 的 finally 里已经停掉）
        status = 130
    sys.exit(status)
