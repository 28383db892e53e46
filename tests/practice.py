"""练习：删掉 microgpt_teaching.py 里一个核心函数的函数体，自己重新写出来，再用本程序检查。

用法：
    python tests/practice.py              检查全部练习，每个一行：通过 / 不通过（和第一个原因）；全部通过才返回 0
    python tests/practice.py 练习名       只看这一个练习，一步步的详细检查
    python tests/practice.py --file 路径  检查另一个文件（默认是本文件夹上一层的 microgpt_teaching.py；
                                          训练检查用与它同一文件夹里的 input.txt）
怎么练：在 microgpt_teaching.py 里找到练习对应的函数，删掉函数体（留下 def 那一行和文档字符串），
    自己重新写；attention 练习删的是 gpt() 里“多头因果自注意力”那一段。改坏了想重来：
    git checkout microgpt_teaching.py 恢复原文件（下载 zip 的：重新下载这个文件）。
检查的是课本写法：导入后把 speed_tricks 设为 False，运行的一定是你写的代码，提速版本遮不住写错的课本代码。
每个练习由浅入深地检查，遇到第一个失败就停下，说明在什么输入上、期望什么、实际是什么、差多少、可能错在哪：
    能运行 → 形状 → 前向值 → 梯度 → 训练
容差 (tolerance)：
    前向值：与本文件里独立的参考实现（只用普通小数和 math）比，|实际 - 期望| <= 1e-9 · max(1, |期望|)
    梯度：与 float64 中心差分 (f(x+h) - f(x-h)) / 2h（h = 1e-6）比，|实际 - 期望| <= 1e-6 · max(1, |期望|)
    训练：默认设置、random.seed(42)，前 3 步的 loss 相对误差 <= 1e-6（即打印 3.3285 3.3620 3.3243）
    换个加法顺序、换种写法写同一个公式，差别只有约 1e-15；写错的公式差得多得多。
"""
import math
import os
import random
import sys
import traceback
import types
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FWD_TOL, GRAD_TOL, TRAIN_TOL, H = 1e-9, 1e-6, 1e-6, 1e-6
REF_LOSSES = [3.328544493480972, 3.362018218762403, 3.324306438009844]     # 课本代码训练的前 3 步
REF_NAMES = ['qbeeurxajagobesq', 'eruawskgyjbbvqwt', 'lzinypzonbghbech', 'pllej', 'qsetdj']   # 之后 seed(42) 编的
RUN, SHAPE, VALUE, GRAD, TRAIN = '能运行', '形状', '前向值', '梯度', '训练'
TOLERANCES = '容差：前向值 相对 1e-9；梯度 相对 1e-6（与中心差分比）；训练 loss 相对 1e-6'
EXC_HINTS = {   # 异常 → 常见原因；练习自己的提示优先
    'TypeError': '类型不对：函数体是不是还空着、忘了 return？局部导数要用普通数字（.data），不能是 Value',
    'AttributeError': '用了不存在的属性：另一个操作数可能是普通数字（它没有 .data），也可能是 Value',
    'IndexError': '下标越界：检查矩阵的行和列（是不是转置了）和位置的范围',
    'OverflowError': '数太大溢出了：求 e 的幂之前先把每个数减去其中的最大值（结果不变）',
    'RecursionError': '递归太深：图可能有几千层，用一个显式的栈 (list) 代替递归',
}


class Fail(Exception):
    """一次检查失败：检查的是什么、期望什么、实际是什么、差多少、可能错在哪里。"""

    def __init__(self, what, expected=None, got=None, diff=None, tol=None, hint='', error=None):
        super().__init__(what)
        self.what, self.expected, self.got, self.diff, self.tol = what, expected, got, diff, tol
        self.hint, self.error, self.stage, self.note = hint, error, None, ''


class Check:
    """一个练习的进度。学习者的代码都经 call() 运行：出了异常就变成一条中文说明，而不是一大段回溯。"""

    def __init__(self, ex):
        self.ex, self.stage, self.passed, self.fail, self.pending = ex, ex['stages'][0], [], None, None

    def at(self, stage):
        self.passed.append(self.stage)
        self.stage = stage

    def call(self, what, fn, *args):
        try:
            return fn(*args)
        except Fail:                               # 里面一层的检查已经说明白了
            raise
        except Exception as e:
            name = type(e).__name__
            raise Fail(what, error=e, hint=self.ex['hints'].get(name) or EXC_HINTS.get(name, '看看出错的那一行'))


def where(error, path):
    """异常发生在学习者文件里的最后一行（只指出该看哪一行）。"""
    if isinstance(error, SyntaxError):
        return f'{os.path.basename(path)} 第 {error.lineno} 行：{(error.text or "").strip()}'
    frames = [f for f in traceback.extract_tb(error.__traceback__) if os.path.abspath(f.filename) == path]
    return frames and f'{os.path.basename(path)} 第 {frames[-1].lineno} 行（在 {frames[-1].name} 里）：{frames[-1].line}'


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


def show(x):
    if isinstance(x, (list, tuple)):
        return '[' + ', '.join(show(v) for v in x[:8]) + (', …' if len(x) > 8 else '') + ']'
    return f'{x:.12g}' if is_num(x) else str(x)


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
        got = f'{len(out)} 个元素的 {type(out).__name__}' if isinstance(out, (list, tuple)) else show(out)
        raise Fail(what, f'{n} 个 Value 的列表', got, hint=hint)
    stack, seen = list(out), set()
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            if not isinstance(node, V) or not is_num(node.data):
                raise Fail(what, '图里的节点都是 Value，data 是普通数字', show(node), hint='data 要放普通数字，不能放 Value')
            if len(node._children) != len(node._local_grads) or not all(map(is_num, node._local_grads)):
                raise Fail(what, '每个孩子对应一个局部导数（普通数字）', f'{len(node._children)} 个孩子，局部导数 '
                           f'{show(list(node._local_grads))}', hint='_local_grads 与 _children 一一对应，用 .data 算成普通数字')
            stack.extend(node._children)
    return [v.data for v in out]


def grad_check(ck, what, f, leaves, hint):
    """f() 用同样的叶子重新建图，返回输出的 Value 列表。逐个比较 d 输出/d 叶子 与中心差分。"""
    outs = ck.call(what, f)
    grads = [ref_grads(o) for o in outs]
    for label, leaf in leaves:
        x = leaf.data
        leaf.data = x + H
        up = [o.data for o in ck.call(what, f)]
        leaf.data = x - H
        down = [o.data for o in ck.call(what, f)]
        leaf.data = x
        for i, (u, d) in enumerate(zip(up, down)):
            want, got = (u - d) / (2 * H), grads[i].get(id(leaf), 0.0)
            if not close(got, want, GRAD_TOL):
                out = '输出' if len(outs) == 1 else f'输出[{i}]'
                raise Fail(f'{what}：d {out} / d {label}（期望的是中心差分）', want, got, abs(got - want), GRAD_TOL, hint)


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
                raise Fail(what, '一个新的 Value', show(out), hint=hint)
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
                grad_check(ck, what, lambda: [fn(*leaves)], list(zip('ab', leaves)), formula)
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


@exercise('backward', 'Value.backward', '反向传播', 'Value.backward：拓扑排序，再按链式法则把梯度送到每个节点（+= 累加）',
          stages=(RUN, '小图的梯度', '5000 层的深图', '第二张图'), deps=())
def check_backward(ck, m):
    def node(children, local):                     # 直接用构造函数搭图：不依赖学习者写的 + 和 ·
        return m.Value(0.5, tuple(children), tuple(local))

    def run(what, root, named):
        ck.call(f'{what} 上的 backward()', root.backward)
        expect(what, root, named)

    def expect(what, root, named):                 # 每个节点的 grad 与参考的反向传播比
        if not all(is_num(n.grad) for _, n in named):
            raise Fail(what, '每个 grad 都是普通数字', show([n.grad for _, n in named]), hint='grad 里累加普通数字')
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


def check_fn(ck, m, cases, hint, scalar=False, diagnose=None):
    """函数练习的通用四步。cases：[(说明, 叶子的名字, 输入的数, 学习者的调用 f(m, 叶子), 参考 ref(数))]。"""
    runs = []
    for what, names, xs, f, ref in cases:
        leaves = [m.Value(x) for x in xs]
        call = (lambda f=f, leaves=leaves: [f(m, leaves)] if scalar else f(m, leaves))
        runs.append((what, list(zip(names, leaves)), xs, ref(xs), call, ck.call(what, f, m, leaves)))
    ck.at(SHAPE)
    for what, leaves, xs, want, call, out in runs:
        if scalar and not isinstance(out, m.Value):
            raise Fail(what, '一个 Value', show(out), hint='返回一个 Value（不是列表，也不是普通数字）')
        values_of(what, [out] if scalar else out, len(want), m.Value, hint)
    ck.at(VALUE)
    for i, (what, leaves, xs, want, call, out) in enumerate(runs):
        got = [o.data for o in ([out] if scalar else out)]
        compare(what, got, want, FWD_TOL, (diagnose and diagnose(i, xs, got)) or hint)
    ck.at(GRAD)
    for what, leaves, xs, want, call, out in runs[:2]:      # 后面的输入是极端值，差分不准，只查前向
        grad_check(ck, what, call, leaves, hint)


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
        'y 的长度等于 W 的行数（矩阵不要转置）；y_i = W 第 i 行与 x 的点积，全程用 Value 的运算')


@exercise('softmax', 'softmax', 'softmax', 'softmax(logits)：e^(z_i) / Σ e^(z_j)，先减去最大值防止溢出',
          hints={'ZeroDivisionError': '所有 e 的幂都下溢成了 0：求 e 的幂之前先把每个数减去最大值'})
def check_softmax(ck, m):
    check_fn(ck, m, [(f'softmax({show(z)})', [f'z[{i}]' for i in range(len(z))], z,
                      lambda m, L: m.softmax(L), f_softmax)
                     for z in (Z4, [0.7], [1000.0, 999.0, 998.5], [-1000.0, -1001.0], [3.0, 750.0, -2.0])],
             'p_i = e^(z_i - max) / Σ_j e^(z_j - max)：先减去最大值，再除以总和；全程用 Value 的运算，梯度才传得过去',
             diagnose=lambda i, xs, got: f'输出加起来是 {sum(got):.6g}，不是 1：忘了除以总和？' if abs(sum(got) - 1) > 1e-6 else None)


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
             'y_i = x_i / sqrt(mean(x²) + 1e-5)：平方的平均，加 1e-5，开方，再去除每个 x_i', diagnose=rms_diagnose)


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
             scalar=True, diagnose=ce_diagnose)


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
            raise Fail(what + '追加进 attention 的权重', f'{L * NH} 个列表，每个是 {pos + 1} 个普通小数', show(att), hint=hint)
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
    grad_check(ck, 'gpt 最后一个位置的 logits', lambda: forward()[0][-1][0], leaves, hint)


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
            raise Fail(name, '5 个普通数字（每个参数一个）', show(got), hint='m、v 每个参数各一个普通数字')
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
            raise Fail(f'sample_name(start={start!r}) 的返回值', 'token 编号（整数）的列表，不含开头的 BOS', show(got),
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


def run_all(code, path, only=None):
    """全部练习的单项检查（总是都做：要知道哪个练习连累了别的）；训练只在有人要看时才做。"""
    results, trained = {}, None
    for ex in EXERCISES:
        ck = results[ex['name']] = Check(ex)
        try:
            ex['check'](ck, fresh(code, path))
        except Fail as f:
            ck.fail = f
        except Exception as e:                     # 返回了奇怪的东西，比较时才出错
            ck.fail = Fail(f'检查 {ex["func"]} 的结果', error=e, hint=EXC_HINTS.get(type(e).__name__, '看看返回值'))
    for ck in results.values():                    # 前面的练习没通过，后面的失败多半是它连累的
        first = [d for d in ck.ex['deps'] if results[d].fail]
        if ck.fail and first:
            ck.fail.note = f'可能是因为「{first[0]}」没通过：先改好它'
    blockers = [ex['name'] for ex in EXERCISES if ex['trains'] and results[ex['name']].fail]
    for ck in (ck for ck in results.values() if not ck.fail and only in (None, ck.ex['name'])):
        ck.at(TRAIN if ck.ex['trains'] else ck.ex['stages'][-1])
        if blockers:                               # 训练要用到所有这些函数：有一个错了，训练就没意义
            ck.pending = f'「{blockers[0]}」改好才能做训练检查'
            continue
        if trained is None:
            try:
                trained = trained_model(code, path)
            except Fail as f:
                trained = f
            except Exception as e:
                trained = Fail('训练 3 步', error=e, hint=EXC_HINTS.get(type(e).__name__, '看看出错的那一行'))
        if isinstance(trained, Fail):
            ck.fail, ck.pending = (trained, None) if ck.ex['trains'] else (None, '训练检查通过才能用真实模型检查')
        elif not ck.ex['trains']:                  # 采样：训练 3 步后的真实模型，编的名字要和课本代码一样
            random.seed(42)
            try:
                names = [trained[2].decode(ck.call('训练 3 步后的模型上 sample_name', trained[0].sample_name, *trained[1:])) for _ in range(5)]
                if names != REF_NAMES:
                    raise Fail('训练 3 步后 random.seed(42)，用真实模型编 5 个名字', REF_NAMES, names,
                               hint='假模型上都对，真实模型上却不对：是不是用了 state、tokenizer 以外的东西？')
            except Fail as f:
                ck.fail = f
        if not (ck.fail or ck.pending):
            ck.at(None)
    for ck in results.values():
        if ck.fail:
            ck.fail.stage = ck.stage
    return results


def label(ex):
    width = sum(2 if unicodedata.east_asian_width(c) in 'WF' else 1 for c in ex['title'])   # 汉字占两格
    return f'{ex["name"]:<14}{ex["title"]}' + ' ' * (12 - width)


def summary_line(ck):
    f = ck.fail
    if f:
        why = f'出错 {type(f.error).__name__}: {f.error}' if f.error else (
            f'最大差别 {f.diff:.3g}' if f.diff is not None else f'期望 {show(f.expected)}，实际 {show(f.got)}'[:80])
        return f'不通过 —— {ck.ex["func"]}，{f.stage}：{f.what}，{why}' + (f'（{f.note}）' if f.note else '')
    return f'待定 —— 自己的检查都通过了；还要等{ck.pending}' if ck.pending else '通过'


def detail(ck, path):
    ex, f = ck.ex, ck.fail
    lines = [f'练习 {ex["name"]}：{ex["title"]}（{ex["func"]}）', f'  要写的：{ex["about"]}', '  ' + TOLERANCES]
    lines += [f'  [通过]   {stage}' for stage in ck.passed]
    if f:
        lines += [f'  [不通过] {f.stage}', f'    函数：{ex["func"]}', f'    检查的是：{f.what}']
        if f.error is not None:
            lines.append(f'    出错：{type(f.error).__name__}: {f.error}')
            lines += [f'    位置：{where(f.error, path)}'] if where(f.error, path) else []
        else:
            lines += [f'    期望：{show(f.expected)}', f'    实际：{show(f.got)}']
            lines += [f'    最大差别：{f.diff:.3g}（容差 {f.tol:g} · max(1, |期望|)）'] if f.diff is not None else []
        lines += [f'    提示：{f.hint}'] + ([f'    注意：{f.note}'] if f.note else [])
        rest = ex['stages'][ex['stages'].index(f.stage) + 1:] if f.stage in ex['stages'] else []
        lines += [f'  后面的检查（{"、".join(rest)}）还没做：改好这一步再运行一次。'] if rest else []
    elif ck.pending:
        lines.append(f'  [待定]   {ck.stage}：要等{ck.pending}')
    return '\n'.join(lines + ([] if f or ck.pending else ['通过！']))


def main(argv):
    path, name, names = os.path.join(ROOT, 'microgpt_teaching.py'), None, [e['name'] for e in EXERCISES]
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ('-h', '--help'):
            print(__doc__ + '\n练习（由浅入深；前面的没通过，后面的常常也跟着错，先改前面的）：')
            print('\n'.join(f'  {label(e)}{e["about"]}' for e in EXERCISES))
            return 0
        if arg == '--file' and args or arg.startswith('--file='):
            path = args.pop(0) if arg == '--file' else arg[len('--file='):]
        elif name is None and not arg.startswith('-'):
            name = arg.lower()
        else:
            print(f'错误：看不懂的参数 {arg}。用法见 python tests/practice.py --help', file=sys.stderr)
            return 2
    if name is not None and name not in names:
        print(f'错误：没有叫 {name} 的练习。可以选的练习：{"、".join(names)}。说明见 python tests/practice.py --help',
              file=sys.stderr)
        return 2
    path = os.path.abspath(path)
    try:
        with open(path, encoding='utf-8-sig') as f:
            code = compile(f.read(), path, 'exec')
        fresh(code, path)
    except OSError as e:
        print(f'错误：读不了要检查的文件 {path}（{e.strerror}）。', file=sys.stderr)
        return 2
    except Exception as e:
        print(f'不通过：{os.path.basename(path)} 导入时就出错了，先改好这里。\n  出错：{type(e).__name__}: {e}')
        if where(e, path):
            print(f'  位置：{where(e, path)}')
        return 1
    results = run_all(code, path, name)
    if name:
        print(detail(results[name], path))
        return 1 if results[name].fail or results[name].pending else 0
    print(f'检查 {path}（speed_tricks = False：课本写法）\n{TOLERANCES}')
    for i, ck in enumerate(results.values(), 1):
        print(f'{i:2d}. {label(ck.ex)}{summary_line(ck)}')
    bad = [ck.ex['name'] for ck in results.values() if ck.fail or ck.pending]
    if not bad:
        print(f'全部 {len(results)} 个练习都通过了。')
        return 0
    failing = [ck for ck in results.values() if ck.fail]
    if failing and all(ck.fail.stage == TRAIN for ck in failing):   # 单项都对，只有训练不对：不是哪一个练习的错
        advice = f'各练习自己的检查都通过了，只有训练对不上。详细说明：python tests/practice.py {failing[0].ex["name"]}'
    else:
        advice = f'先改第一个不通过的：python tests/practice.py {(failing[0] if failing else results[bad[0]]).ex["name"]}'
    print(f'{len(results) - len(bad)} 个通过，{len(bad)} 个没通过。{advice}')
    return 1


if __name__ == '__main__':
    if hasattr(sys.stdout, 'reconfigure'):
        sys.stdout.reconfigure(errors='replace')   # 控制台编码放不下的字符显示为 ?，而不是崩溃
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
