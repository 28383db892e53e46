"""
microGPT 教学版：只用 Python 标准库，从零训练一个很小的 GPT。

它读入 input.txt（每行一个英文名字），学会“名字大概长什么样”，然后编出新的名字。
从上往下读就是一个 GPT 的全部过程，每一节的编号与教程 microgpt_tutorial.md 的章节一一对应：
    0. 设置  1. 数据  2. 分词器  3. 自动求导  4. 参数  5. 模型  6. 训练  7. 采样
    8. 保存和加载模型  9. 看模型内部  10. 主程序和命令行

用法：
    python microgpt_teaching.py                         # 默认设置：训练 1000 步，然后编 20 个名字
    python microgpt_teaching.py --num_steps=200         # 用 --名字=值（或 --名字 值）覆盖任何一个设置
    python microgpt_teaching.py --save_path=m.json      # 训练完把模型存下来
    python microgpt_teaching.py --load_path=m.json --num_steps=0 --prompt=ma --explain=emma
                                                        # 不再训练：读回模型，续写 ma 开头的名字，看它怎么读 emma
    python microgpt_teaching.py --help                  # 列出全部设置、默认值和含义

导入本文件（import）不会运行任何东西；只有直接运行它才会开始训练。
"""
import difflib
import gc
import json
import math
import operator
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import unicodedata

# =============================================================================
# 0. 设置 (settings)
# =============================================================================
# 每个设置都是一行普通的赋值，想做实验就直接改这里；也可以在命令行用 --名字=值 临时替换，
# 值会按默认值的类型（整数、小数、字符串、True/False）来解析。
seed = 42                 # 随机种子：同一个种子 → 同样的打乱顺序、初始参数和采样结果
input_path = 'input.txt'  # 数据文件，每行一个名字；相对路径写在本文件里从脚本所在文件夹算起，写在命令行里从当前文件夹算起
n_layer = 1               # Transformer 块的层数
n_embd = 16               # 每个 token 向量的长度，即嵌入维度 (embedding dimension)
block_size = 16           # 上下文长度：模型一次最多看多少个 token（也是生成名字的长度上限）
n_head = 4                # 注意力头的个数；n_embd 必须能被它整除
learning_rate = 0.01      # Adam 的初始学习率，之后每步线性减小（最后一步只剩它的 1/num_steps）
beta1 = 0.85              # Adam 一阶矩（梯度的滑动平均）的衰减系数，取值 [0, 1)
beta2 = 0.99              # Adam 二阶矩（梯度平方的滑动平均）的衰减系数，取值 [0, 1)
eps_adam = 1e-8           # Adam 分母里的小常数，防止除以 0
num_steps = 1000          # 训练步数；每一步学一个名字。0 表示不训练（读回的模型直接采样，或看看没训练的模型说什么）
temperature = 0.5         # 采样温度（至少 0.001，再小也和 0.001 一样总选最可能的）：越小越保守（常见名字），越大越大胆（怪名字）
num_samples = 20          # 训练结束后编多少个名字
val_size = 200            # 留出验证集的行数（最多占全部数据的十分之一），这些行不参与训练
init_std = 0.08           # 参数初始值的高斯（正态）分布标准差
speed_tricks = True       # True：用几个提速技巧（融合节点等，见教程 3.6、3.7 节）；False：完全照课本公式建图（慢几倍，数相同）
log_every = 0             # 每隔几步打印一行训练进度；0 表示自动（终端里原地刷新，否则约每 5% 一行）
save_path = ''            # 训练完把模型存到这个 JSON 文件（空 = 不保存）；相对路径的规则同 input_path
load_path = ''            # 从这个 JSON 文件读回模型，代替随机初始化（空 = 不读）；形状和词表以文件为准
prompt = ''               # 每个样本都以这段文字开头，模型接着往下写（空 = 从头编）
explain = ''              # 训练后把这段文字喂给模型，逐位置打印它的预测和注意力（空 = 不打印），例如 emma

# 上面每一个设置的名字和默认值。只收集“普通值”，所以 import 进来的模块不在其中。
SETTINGS = {name: value for name, value in globals().items()
            if not name.startswith('_') and isinstance(value, (bool, int, float, str))}


class UserError(Exception):
    """用户可以自己改正的问题（设置写错、文件有问题）。主程序只打印这句话，不打印回溯 (traceback)。"""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


# =============================================================================
# 1. 数据 (data)
# =============================================================================
# 一行一个名字，一个名字就是一篇“文档”(document)。模型要学的是：文档里的字符按什么规律排列。

def shown_path(path):
    """报错时显示的路径：在当前文件夹里面就显示相对路径，否则显示完整路径。"""
    try:
        relative = os.path.relpath(path)
    except ValueError:                    # Windows 上不同盘符之间没有相对路径
        return path
    return path if relative.startswith('..') else relative


def load_docs(path):
    """读 UTF-8 文本，每行去掉两端空白，丢掉空行。任何问题都变成一句能照着改的中文说明。"""
    shown = shown_path(path)
    if not os.path.exists(path):
        raise UserError(f'找不到数据文件 {os.path.basename(path)}（找的是文件夹 {os.path.dirname(path)}）。'
                        f'请确认文件存在，或者用 --input_path=文件路径 指定另一个文件。', 1)
    if os.path.isdir(path):
        raise UserError(f'{shown} 是一个文件夹，不是数据文件。请用 --input_path=文件路径 指定一个文本文件。', 1)
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError as e:
        raise UserError(f'无法读取数据文件 {shown}（{e.strerror}）。请检查文件权限，或换一个文件。', 1) from None
    try:
        # utf-8-sig：文件开头若有 BOM（Windows 记事本“UTF-8 带 BOM”会写入）就去掉，没有也照常读
        text = raw.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        line_no = raw[:e.start].count(b'\n') + 1
        raise UserError(f'数据文件 {shown} 不是 UTF-8 编码（第 {line_no} 行有无法按 UTF-8 解码的字节）。'
                        f'它可能是用 GBK/ANSI 保存的：请在编辑器里“另存为”，编码选 UTF-8，再运行一次。', 1) from None
    # splitlines 认识 \n、\r\n（Windows）和 \r；strip 去掉行两端的空格、制表符
    docs = [line.strip() for line in text.splitlines()]
    docs = [doc for doc in docs if doc]
    if not docs:
        raise UserError(f'数据文件 {shown} 里没有任何内容（只有空行或空白）。请在里面每行写一个名字。', 1)
    return docs


def split_docs(docs):
    """打乱（消耗随机数，所以必须在初始化参数之前），再把最后一部分留作验证集，永远不拿来训练。"""
    random.shuffle(docs)
    n_val = min(val_size, len(docs) // 10)
    return docs[:len(docs) - n_val], docs[len(docs) - n_val:]


# =============================================================================
# 2. 分词器 (tokenizer)
# =============================================================================
# 神经网络只认数字。字符级分词：每个不同的字符一个编号（按字符排序），再加一个特殊记号 BOS
# (beginning of sequence)。BOS 既放在名字前面表示“开始”，也放在后面表示“结束”，
# 所以模型学会在名字该结束时预测 BOS。

class Tokenizer:
    def __init__(self, docs):
        # docs 里出现过的所有字符。读回的模型把它的字符表当作 docs 传进来，得到的是同一张表
        self.chars = sorted(set(''.join(docs)))                  # 例如 ['a', 'b', ..., 'z']
        self.char_to_id = {ch: i for i, ch in enumerate(self.chars)}
        self.bos = len(self.chars)                               # BOS 的编号排在所有字符之后
        self.vocab_size = len(self.chars) + 1

    def encode(self, doc):
        """'emma' → [BOS, 4, 12, 12, 0, BOS]"""
        return [self.bos] + [self.char_to_id[ch] for ch in doc] + [self.bos]

    def decode(self, ids):
        return ''.join(self.chars[i] for i in ids if i != self.bos)


# =============================================================================
# 3. 自动求导 (autograd)
# =============================================================================
# 每个 Value 是计算图 (computation graph) 里的一个节点：它记住自己的值 data、由哪些孩子节点算出来，
# 以及自己对每个孩子的局部导数 (local derivative)。反向传播 (backpropagation) 时按链式法则
#     ∂L/∂child += ∂node/∂child · ∂L/∂node
# 从损失 L 一路往回，把梯度 grad = ∂L/∂(这个节点) 送到每个参数。

class Value:
    __slots__ = ('data', 'grad', '_children', '_local_grads', '_visited')  # 不用 __dict__：省内存，也更快

    def __init__(self, data, children=(), local_grads=()):
        self.data = data                  # 前向计算得到的数
        self.grad = 0.0                   # ∂L/∂(本节点)，反向传播时累加
        self._children = children         # 直接算出本节点的那些节点
        self._local_grads = local_grads   # 与 _children 一一对应：∂(本节点)/∂(孩子)
        # 反向传播排序时的“已访问”标记。叶子（参数、常数）没有孩子，永远不需要展开，所以一出生就算访问过
        self._visited = not children

    def __repr__(self):
        return f'Value(data={self.data!r}, grad={self.grad!r})'

    # ---- 基本运算：每个只写“前向的值”和“局部导数” ----
    # 另一个操作数若是普通数字（常数），它不需要梯度，也就不必成为图里的节点：结果只有一个孩子。
    def __add__(self, other):             # a + b：∂/∂a = 1，∂/∂b = 1
        if isinstance(other, Value):
            return Value(self.data + other.data, (self, other), (1.0, 1.0))
        return Value(self.data + other, (self,), (1.0,))

    def __mul__(self, other):             # a · b：∂/∂a = b，∂/∂b = a
        if isinstance(other, Value):
            return Value(self.data * other.data, (self, other), (other.data, self.data))
        return Value(self.data * other, (self,), (other,))

    def __pow__(self, k):                 # a^k（k 是普通数字）：∂/∂a = k · a^(k-1)
        return Value(self.data ** k, (self,), (k * self.data ** (k - 1),))

    def log(self):                        # ln a：∂/∂a = 1/a
        return Value(math.log(self.data), (self,), (1.0 / self.data,))

    def exp(self):                        # e^a：∂/∂a = e^a，正好是结果本身
        out = math.exp(self.data)
        return Value(out, (self,), (out,))

    def relu(self):                       # max(0, a)：a > 0 时导数为 1，否则为 0
        return Value(max(self.data, 0.0), (self,), (1.0 if self.data > 0 else 0.0,))

    # ---- 由上面组合出来的运算（不需要新的导数公式）----
    def __neg__(self): return self * -1.0                   # -a = a · (-1)
    def __sub__(self, other): return self + (-other)        # a - b = a + (-b)
    def __truediv__(self, other): return self * other ** -1  # a / b = a · b^(-1)
    def __radd__(self, other): return self + other          # 数字 + Value
    def __rsub__(self, other): return (-self) + other       # 数字 - Value
    def __rmul__(self, other): return self * other          # 数字 · Value
    def __rtruediv__(self, other): return self ** -1 * other  # 数字 / Value

    # ---- 融合节点 (fused ops)：一整块运算只算一个节点（提速技巧，speed_tricks=True 时才用）----
    # 数学上与拆成基本运算完全相同，但节点少得多：一个长度 n 的点积用基本运算要 n 个乘法节点加
    # n-1 个加法节点，融合后只有 1 个。节点越少，建图和反向传播的 Python 开销越小。
    # （python tests/benchmark.py：默认设置下 speed_tricks 全开比全关每步快约 5 到 8 倍，节点少约 9 倍。）
    @staticmethod
    def fused_dot(a, b):                  # s = Σ a_i·b_i：∂s/∂a_i = b_i，∂s/∂b_i = a_i
        a_data = [x.data for x in a]
        b_data = [x.data for x in b]
        return Value(sum(map(operator.mul, a_data, b_data)), a + b, b_data + a_data)

    @staticmethod
    def fused_linear(x, w):               # y_i = Σ_j W_ij·x_j：每个 y_i 是一个点积节点
        # 与 [fused_dot(row, x) for row in w] 完全相同，只是 x 的数值只取一次（x 要和每一行做点积）；
        # 用 valgrind 数指令，默认设置训练 40 步再评估一次，这比每行各取一次 x 的数值少了约 9%
        x_data = [xj.data for xj in x]
        out = []
        for row in w:
            row_data = [p.data for p in row]
            out.append(Value(sum(map(operator.mul, row_data, x_data)), row + x, x_data + row_data))
        return out

    @staticmethod
    def fused_sum(xs):                    # s = Σ x_i：∂s/∂x_i = 1
        return Value(sum([x.data for x in xs]), tuple(xs), (1.0,) * len(xs))

    @staticmethod
    def fused_cross_entropy(logits, target):  # L = -ln softmax(z)_target = ln Σ_j e^(z_j) - z_target
        z = [x.data for x in logits]
        z_max = max(z)                    # 先减去最大值再取 e 的幂，防止溢出；结果不变
        exps = [math.exp(zi - z_max) for zi in z]
        total = sum(exps)
        probs = [e / total for e in exps]
        # ∂L/∂z_j = p_j - [j == target]：预测的概率减去 one-hot 的正确答案
        local = list(probs)
        local[target] -= 1.0
        return Value(math.log(total) - (z[target] - z_max), tuple(logits), local)

    # ---- 反向传播 ----
    def backward(self):
        # 第一步：拓扑排序 (topological order)，保证处理一个节点之前，所有用到它的节点都已处理完，
        # 这样它的 grad 已经累加齐了。做法是深度优先搜索 (DFS)，孩子全部排好之后再排自己（后序）。
        # 用一个显式的栈代替递归：Python 默认只允许约 1000 层递归，而图有多深取决于怎么建它
        # （我们量过：默认模型一步 35 层，speed_tricks=False 时约 250 层，8 层 × 64 个位置、
        # speed_tricks=False 时约 2400 层，递归写法就会出错）。
        # 栈里放两种东西：一个节点表示“去展开它”；None 后面跟着的节点表示“它的孩子都排好了”。
        # 课本写法是把访问过的节点放进一个集合 visited。提速技巧：在节点身上做标记 _visited，意思相同，
        # 但查属性比查集合（要算哈希）快；叶子生来就标记为访问过，所以不会入栈，也不进 topo（它们没有
        # 孩子要分梯度，梯度会在处理父节点时直接累加上去）。用 valgrind 数指令，默认设置训练 30 步，
        # 这两点合起来比集合写法少了约 19%。
        topo = []
        stack = [self]
        while stack:
            node = stack.pop()
            if node is None:
                topo.append(stack.pop())   # 孩子都已排好，轮到它自己
            elif not node._visited:
                node._visited = True
                stack.append(node)
                stack.append(None)         # 弹出 None 时，它下面的 node 的孩子已经全部处理完
                for child in node._children:
                    if not child._visited:
                        stack.append(child)
        # 第二步：从损失开始（∂L/∂L = 1），逆拓扑序应用链式法则。
        # 用 += 而不是 =：一个节点被用了几次，就会从几条路径收到梯度，全部相加才是总梯度。
        self.grad = 1.0
        for node in reversed(topo):
            node._visited = False          # 擦掉标记，留给下一次排序（注意：中间节点的 grad 不清零，所以
            #                                同一张图不要反向传播两次；训练每步都建新图，不受影响）
            g = node.grad
            for child, local in zip(node._children, node._local_grads):
                child.grad += local * g


# 模型只通过下面三个函数做“求和类”运算。speed_tricks 决定用一个融合节点，还是用基本运算一步步搭，
# 两条路算出的数相同（只差浮点舍入），梯度也相同，只是节点数差很多。
def add_all(xs):
    """Σ x_i（空列表的和是 0）"""
    if speed_tricks:
        return Value.fused_sum(xs)
    if not xs:
        return Value(0.0)
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


def dot(a, b):
    """Σ a_i·b_i（a、b 是等长的 Value 列表）"""
    if speed_tricks:
        return Value.fused_dot(a, b)
    return add_all([x * y for x, y in zip(a, b)])


def cross_entropy(logits, target):
    """-ln p_target，其中 p = softmax(logits)"""
    if speed_tricks:
        return Value.fused_cross_entropy(logits, target)
    # 基本运算版也用 ln Σ e^(z_j - max) - (z_target - max) 这种写法：括号里的和至少是 1，
    # 取对数永远有定义；若先算 softmax 再取 -ln p，p 下溢成 0 时 ln 0 会出错
    max_val = max(z.data for z in logits)
    return add_all([(z - max_val).exp() for z in logits]).log() - (logits[target] - max_val)


# =============================================================================
# 4. 参数 (parameters)
# =============================================================================
# 模型的全部“知识”都在这些矩阵里。开始时是很小的随机数（高斯分布，标准差 init_std），训练慢慢调整它们。
# 一个矩阵是若干行，每行是一个 Value 列表；形状写成 (行数 × 列数)。

def matrix(n_rows, n_cols):
    return [[Value(random.gauss(0, init_std)) for _ in range(n_cols)] for _ in range(n_rows)]


def param_shapes(vocab_size, n_layer, n_embd, block_size):
    """模型的全部矩阵和它们的形状 (行数, 列数)。读回模型文件时也用它核对每个矩阵的形状。"""
    shapes = {
        'wte': (vocab_size, n_embd),      # token 嵌入：每个 token 一行
        'wpe': (block_size, n_embd),      # 位置嵌入：每个位置一行
        'lm_head': (vocab_size, n_embd),  # 把最后的向量变成每个 token 的分数 (logits)
    }
    for i in range(n_layer):
        shapes[f'layer{i}.attn_wq'] = (n_embd, n_embd)      # 查询 (query)
        shapes[f'layer{i}.attn_wk'] = (n_embd, n_embd)      # 键 (key)
        shapes[f'layer{i}.attn_wv'] = (n_embd, n_embd)      # 值 (value)
        shapes[f'layer{i}.attn_wo'] = (n_embd, n_embd)      # 把各头的输出合回去 (output)
        shapes[f'layer{i}.mlp_fc1'] = (4 * n_embd, n_embd)  # MLP 先放宽到 4 倍
        shapes[f'layer{i}.mlp_fc2'] = (n_embd, 4 * n_embd)  # 再压回 n_embd
    return shapes


def init_params(vocab_size):
    """按 param_shapes 的顺序创建全部矩阵（顺序决定消耗哪些随机数，所以不能随便调换）。"""
    shapes = param_shapes(vocab_size, n_layer, n_embd, block_size)
    return {name: matrix(n_rows, n_cols) for name, (n_rows, n_cols) in shapes.items()}


def flatten(state):
    """所有参数排成一个列表，优化器逐个更新。"""
    return [p for mat in state.values() for row in mat for p in row]


# =============================================================================
# 5. 模型 (model)
# =============================================================================
# 大致是 GPT-2 的结构，不同之处：没有偏置 (bias)，LayerNorm 换成 RMSNorm，GELU 换成 ReLU，
# 嵌入之后多做一次归一化，lm_head 之前不再归一化，lm_head 也不和 wte 共用参数。
# gpt() 每次只处理一个位置：输入当前 token 和它的位置，输出“下一个 token 是谁”的分数 (logits)。

def linear(x, w):
    """y = W x：W 的形状 (n_out × n_in)，x 长 n_in，y 长 n_out；y_i 是 W 第 i 行与 x 的点积。"""
    if speed_tricks:
        return Value.fused_linear(x, w)
    return [dot(row, x) for row in w]


def softmax(logits):
    """p_i = e^(z_i) / Σ_j e^(z_j)：把任意实数变成和为 1 的概率。"""
    # 所有 z 减去同一个数，分子分母同乘 e^(-max)，结果不变，但 e 的幂不会溢出。
    # 减去的 max 当作常数：正因为结果与它无关，对它求导本来就是 0。
    max_val = max(z.data for z in logits)
    exps = [(z - max_val).exp() for z in logits]
    inv_total = add_all(exps) ** -1
    return [e * inv_total for e in exps]


def rmsnorm(x):
    """y_i = x_i / sqrt(mean(x²) + 1e-5)：把向量缩放到均方根约为 1。不减均值，也没有可学的增益。"""
    mean_square = dot(x, x) / len(x)
    scale = (mean_square + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def mlp(x, w_fc1, w_fc2):
    """y = W2 · relu(W1 x)：先放宽到 4 倍，经过 ReLU，再压回原来的长度。"""
    h = [hi.relu() for hi in linear(x, w_fc1)]      # (4·n_embd,)
    if not speed_tricks:
        return linear(h, w_fc2)                     # 课本公式：W2 乘以全部 4·n_embd 个单元
    # 提速技巧：关着的单元 (h_j = 0) 乘以 W2 的任何权重都是 0，对输出和梯度毫无贡献，所以只把
    # 亮着的单元和 W2 里对应的那几列送进去。算出的数逐位相同（x + 0.0 == x），图里却少了这些列的边；
    # 训练中多数单元是关着的（默认运行里亮着的：第 1 步约 47%，第 500–1000 步约 15%）。用 valgrind 数指令，
    # 默认设置训练 200 步再评估一次，比乘以全部单元少了约 15%。
    on = [j for j, hj in enumerate(h) if hj.data > 0]
    return linear([h[j] for j in on], [[row[j] for j in on] for row in w_fc2])   # (n_embd,)


def gpt(state, token_id, pos_id, keys, values, attention=None):
    """一个位置的前向计算。keys / values 是 KV 缓存：每层一个列表，存着此前各位置的 k、v 向量。
    attention 可以是一个列表：给了，就按层、按头把这个位置的注意力权重（普通小数）追加进去，供第 9 节观察。"""
    head_dim = n_embd // n_head
    # 嵌入：token 的向量 + 位置的向量，形状 (n_embd,)
    x = [t + p for t, p in zip(state['wte'][token_id], state['wpe'][pos_id])]
    x = rmsnorm(x)
    for li in range(n_layer):
        # ---- 多头因果自注意力 (multi-head causal self-attention) ----
        x_residual = x
        x = rmsnorm(x)                                  # pre-norm：先归一化再进子层
        q = linear(x, state[f'layer{li}.attn_wq'])      # (n_embd,)
        k = linear(x, state[f'layer{li}.attn_wk'])
        v = linear(x, state[f'layer{li}.attn_wv'])
        keys[li].append(k)                              # 缓存里只有“过去和现在”，
        values[li].append(v)                            # 所以天然是因果的：看不到未来
        x_attn = []
        for h in range(n_head):
            lo, hi = h * head_dim, (h + 1) * head_dim   # 第 h 个头只用这一段维度
            q_h = q[lo:hi]
            # 打分：q 与每个位置 t 的 k 做点积，再除以 sqrt(head_dim)，让分数的方差不随维度变大
            scores = [dot(q_h, k_t[lo:hi]) / head_dim ** 0.5 for k_t in keys[li]]
            weights = softmax(scores)                   # (当前长度,)，和为 1
            if attention is not None:
                attention.append([w.data for w in weights])
            # 按注意力权重把各位置的 v 加权平均：输出的第 j 维 = Σ_t weights_t · v_t[j]，
            # 也就是矩阵 (v 这一段的转置) 乘以 weights
            x_attn += linear(weights, [[v_t[j] for v_t in values[li]] for j in range(lo, hi)])
        x = linear(x_attn, state[f'layer{li}.attn_wo'])
        x = [a + b for a, b in zip(x, x_residual)]      # 残差连接 (residual connection)
        # ---- MLP：放宽 4 倍 → ReLU → 压回 ----
        x_residual = x
        x = rmsnorm(x)
        x = mlp(x, state[f'layer{li}.mlp_fc1'], state[f'layer{li}.mlp_fc2'])   # (n_embd,)
        x = [a + b for a, b in zip(x, x_residual)]
    return linear(x, state['lm_head'])                  # (vocab_size,) 每个 token 一个分数


# =============================================================================
# 6. 训练 (training)
# =============================================================================

def doc_losses(state, tokens):
    """把一个名字的每个位置都过一遍模型，返回每个位置的交叉熵损失（Value 列表）。"""
    n = min(block_size, len(tokens) - 1)          # 名字太长时只用前 block_size 个位置
    keys = [[] for _ in range(n_layer)]
    values = [[] for _ in range(n_layer)]
    losses = []
    for pos in range(n):
        logits = gpt(state, tokens[pos], pos, keys, values)
        losses.append(cross_entropy(logits, tokens[pos + 1]))   # 目标：下一个 token
    return losses


def evaluate(state, docs, tokenizer, on_doc=None):
    """留出集上的平均每 token 损失：所有位置的损失之和 / 位置总数。不消耗随机数，不改参数。
    on_doc(已完成的行数) 在每行算完后调用，给主程序显示进度用。"""
    total, count = 0.0, 0
    if not speed_tricks:                          # 课本写法：一个名字一个名字地算
        for i, doc in enumerate(docs):
            losses = doc_losses(state, tokenizer.encode(doc))
            total += sum(loss.data for loss in losses)
            count += len(losses)
            if on_doc:
                on_doc(i + 1)
        return total / count
    # 提速技巧：位置 p 的 logits 只取决于第 0..p 个 token（因果注意力看不到后面）。
    # 按字母序处理名字，相邻名字常有相同的开头（mara、maria、mark……）：相同开头那几个位置的
    # logits 和 KV 缓存与上一个名字完全一样，直接沿用，只从第一个不同的位置往后算。结果和一个个算相同，
    # 只是损失相加的顺序变了，最后一位可能有舍入差别。默认的 200 个留出名字共 1443 个位置，只需算 931 个；
    # 用 valgrind 数指令，读数据加一次评估少了约 31%。
    keys = [[] for _ in range(n_layer)]
    values = [[] for _ in range(n_layer)]
    logits_at = []                                # logits_at[p]：上一个名字在位置 p 的 logits
    prev = []
    for i, doc in enumerate(sorted(docs)):
        tokens = tokenizer.encode(doc)
        n = min(block_size, len(tokens) - 1)
        same = 0                                  # 与上一个名字相同的输入位置数
        while same < min(n, len(logits_at)) and tokens[same] == prev[same]:
            same += 1
        del logits_at[same:]
        for li in range(n_layer):
            del keys[li][same:]
            del values[li][same:]
        for pos in range(same, n):
            logits_at.append(gpt(state, tokens[pos], pos, keys, values))
        for pos in range(n):
            total += cross_entropy(logits_at[pos], tokens[pos + 1]).data
        count += n
        prev = tokens
        if on_doc:
            on_doc(i + 1)
    return total / count


class Adam:
    """Adam 优化器 (Kingma & Ba)：每个参数有自己的步长，由梯度的两个滑动平均决定。
    它的状态（m、v、t）和参数一起存进模型文件，读回后可以接着训练。"""

    def __init__(self, params):
        self.params = params
        self.m = [0.0] * len(params)   # 一阶矩：梯度的指数滑动平均（带方向的“动量”）
        self.v = [0.0] * len(params)   # 二阶矩：梯度平方的指数滑动平均（梯度的“尺度”）
        self.t = 0                     # 已经更新了几次

    def step(self, lr):
        self.t += 1
        # m、v 从 0 开始，前几步会偏小；除以 (1 - β^t) 做偏差修正 (bias correction)
        correction1 = 1 - beta1 ** self.t
        correction2 = 1 - beta2 ** self.t
        # 提速技巧：这个循环每步要跑几千次（每个参数一次），所以先把常用的数放进局部变量（Python 取局部变量
        # 比取全局变量和属性快）。用 valgrind 数指令，默认设置训练 200 步再评估一次，整个程序少了约 4%。
        # 右边的注释是每一行算的公式。
        m, v = self.m, self.v
        b1, b2, eps, sqrt = beta1, beta2, eps_adam, math.sqrt
        one_minus_b1, one_minus_b2 = 1 - b1, 1 - b2
        for i, p in enumerate(self.params):
            g = p.grad
            m[i] = m_i = b1 * m[i] + one_minus_b1 * g       # m ← β₁·m + (1-β₁)·g
            v[i] = v_i = b2 * v[i] + one_minus_b2 * g * g   # v ← β₂·v + (1-β₂)·g²
            m_hat = m_i / correction1                       # m̂ = m / (1 - β₁^t)
            v_hat = v_i / correction2                       # v̂ = v / (1 - β₂^t)
            # 步长约为 lr · m̂/sqrt(v̂)：梯度方向稳定时接近 lr，忽正忽负时变小
            p.data -= lr * m_hat / (sqrt(v_hat) + eps)      # p ← p - lr · m̂ / (sqrt(v̂) + ε)
            p.grad = 0.0               # 清零，下一步重新累加


def train(state, optimizer, train_docs, tokenizer, steps):
    """训练 steps 步：每步前向 → 损失 → 反向传播 → Adam 更新。
    这是一个生成器：每做完一步就交出 (第几步, 这一步的 loss, 学习率)，显示进度、检查发散、
    响应 Ctrl-C 都由调用者（第 10 节）来做，这里只有训练本身。"""
    for step in range(steps):
        # 第 step 步学第 step 个名字（学完一轮再从头来）
        tokens = tokenizer.encode(train_docs[step % len(train_docs)])
        losses = doc_losses(state, tokens)
        loss = (1 / len(losses)) * add_all(losses)  # 这个名字各位置的平均损失
        loss.backward()                             # 算出每个参数的 grad = ∂loss/∂参数
        lr = learning_rate * (1 - step / steps)     # 学习率从 learning_rate 线性减小，最后一步接近 0
        optimizer.step(lr)
        yield step + 1, loss.data, lr


# =============================================================================
# 7. 采样 (sampling)
# =============================================================================
# 训练好的模型给出“下一个字符”的概率；按这个概率抽一个字符，接在后面，再问下一个……直到抽到 BOS。

def sample_name(state, tokenizer, start=''):
    """编一个名字。start 是给定的开头（设置 prompt）：这几个字符照抄，模型从它们后面接着写。"""
    keys = [[] for _ in range(n_layer)]
    values = [[] for _ in range(n_layer)]
    tokens = tokenizer.encode(start)[:-1]    # 从“开始”记号出发：[BOS] + 开头的字符
    for pos in range(block_size):            # 最多 block_size 个位置
        logits = gpt(state, tokens[pos], pos, keys, values)
        if pos + 1 < len(tokens):
            continue                         # 下一个 token 是给定的开头，不用抽（也就不消耗随机数）
        # 温度：logits 先除以 T 再 softmax。T < 1 让高分更突出（保守），T > 1 让分布更平（大胆）
        probs = softmax([z / temperature for z in logits])
        token_id = random.choices(range(tokenizer.vocab_size), weights=[p.data for p in probs])[0]
        if token_id == tokenizer.bos:        # 模型说“名字结束了”
            break
        tokens.append(token_id)
    return tokenizer.decode(tokens)


# =============================================================================
# 8. 保存和加载模型 (checkpoint)
# =============================================================================
# 模型文件 (checkpoint) 是一个 JSON 文本文件：形状设置、词表、每个矩阵的全部数字、Adam 的状态、
# 训练了多少步和最后的留出集损失。用 JSON 而不用 pickle：读 pickle 会执行文件里的代码，
# 别人给的 pickle 可能有害；JSON 只有数据，用任何编辑器都能打开看那些数字。
# Python 把小数写成 JSON 时用最短的能精确还原的写法，所以读回的参数和存进去的逐位相同。

CHECKPOINT_FORMAT = 'microgpt-teaching-checkpoint'
CHECKPOINT_VERSION = 1
SHAPE_SETTINGS = ('n_layer', 'n_embd', 'n_head', 'block_size')


def checkpoint_json(state, tokenizer, optimizer, steps_trained, val_loss):
    """模型文件的全部内容（JSON 文本）。矩阵按名字存，每行一个列表。"""
    def by_name(numbers):                  # 一个与 flatten(state) 同序的数字列表 → 按矩阵名字排好的行
        it = iter(numbers)
        return {name: [[next(it) for _ in row] for row in mat] for name, mat in state.items()}

    checkpoint = {
        'format': CHECKPOINT_FORMAT,
        'version': CHECKPOINT_VERSION,
        'settings': {name: globals()[name] for name in SHAPE_SETTINGS},
        'vocabulary': tokenizer.chars,    # 按编号排好的字符；BOS 的编号是 len(vocabulary)
        'steps_trained': steps_trained,
        'val_loss': val_loss,
        'params': by_name(p.data for p in optimizer.params),
        'adam': {'t': optimizer.t, 'm': by_name(optimizer.m), 'v': by_name(optimizer.v)},
    }
    text = json.dumps(checkpoint, ensure_ascii=False, indent=1)
    # indent 会把每个数字单独放一行；把纯数字的列表收回一行，矩阵就是一行一行的，打开来好读
    return re.sub(r'\[\s+([^\[\]{}"]*?)\s+\]', lambda m: '[' + ' '.join(m.group(1).split()) + ']', text)


def write_atomically(path, text):
    """先写到同一个文件夹里的临时文件，写完再用 os.replace 一步换上：中途出错或被打断，
    原来在 path 的文件（比如上一次存的模型）原封不动，也不会留下写了一半的文件。"""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp 建的文件只有自己能读；改成普通新文件的权限
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())               # 确认数据真的写到了磁盘上，再换名
        os.replace(tmp, path)                  # 同一文件夹内换名是原子的：要么旧文件，要么新文件
    except BaseException:
        os.unlink(tmp)
        raise


def check_checkpoint(ckpt):
    """检查读进来的 JSON 是不是一个完整、自洽的模型文件；不是就说出第一个问题在哪里。"""
    def bad(problem):
        raise UserError(f'模型文件有问题：{problem}', 1)

    def is_number(x):                      # 有限的数（JSON 里 true/false 不算数）
        try:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
        except OverflowError:              # 比小数能表示的还大的整数
            return False

    def is_count(x):                       # 不小于 0 的整数，而且不大得离谱
        return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2 ** 53

    if not isinstance(ckpt, dict) or ckpt.get('format') != CHECKPOINT_FORMAT:
        bad(f'它不是 microGPT 教学版存的模型文件（没有 "format": "{CHECKPOINT_FORMAT}"）')
    if ckpt.get('version') != CHECKPOINT_VERSION:
        bad(f'它是第 {ckpt.get("version")!r} 版的格式，这个脚本只认识第 {CHECKPOINT_VERSION} 版')
    for key in ('settings', 'vocabulary', 'steps_trained', 'val_loss', 'params', 'adam'):
        if key not in ckpt:
            bad(f'缺少 "{key}" 这一项')
    shape = ckpt['settings']
    if not isinstance(shape, dict) or sorted(shape) != sorted(SHAPE_SETTINGS):
        bad(f'"settings" 应该正好有 {", ".join(SHAPE_SETTINGS)} 这几项')
    if not all(is_count(shape[k]) and shape[k] >= 1 for k in shape):
        bad('"settings" 里的形状必须都是正整数')
    if shape['n_embd'] % shape['n_head'] or shape['block_size'] < 2:
        bad(f'"settings" 不成立：n_embd={shape["n_embd"]}，n_head={shape["n_head"]}，block_size={shape["block_size"]}')
    vocab = ckpt['vocabulary']
    if (not isinstance(vocab, list) or not vocab or not all(isinstance(c, str) and len(c) == 1 for c in vocab)
            or vocab != sorted(set(vocab))):
        bad('"vocabulary" 应该是按顺序排好、互不相同的单个字符组成的列表')
    if any('\ud800' <= c <= '\udfff' for c in vocab):    # 落单的代理码位：不是真正的字符，也没法写回 UTF-8
        bad('"vocabulary" 里有不是字符的代码（落单的 UTF-16 代理码位）')
    if not is_count(ckpt['steps_trained']):
        bad('"steps_trained" 应该是不小于 0 的整数')
    if ckpt['val_loss'] is not None and not is_number(ckpt['val_loss']):
        bad('"val_loss" 应该是一个有限的数字（或 null）')
    adam = ckpt['adam']
    if not isinstance(adam, dict) or not is_count(adam.get('t')):
        bad('"adam" 里应该有不小于 0 的整数 "t"')
    if not isinstance(ckpt['params'], dict) or 6 * shape['n_layer'] > len(ckpt['params']):
        # 先挡住离谱的层数：每层 6 个矩阵，文件里没有那么多矩阵，就不必（也不该）去建那么长的清单
        bad(f'"params" 里的矩阵不够 n_layer={shape["n_layer"]} 层用（每层 6 个）')
    # 每个矩阵应有的形状：与 init_params 按这些设置建出来的完全一致
    shapes = param_shapes(len(vocab) + 1, shape['n_layer'], shape['n_embd'], shape['block_size'])
    for where, mats in (('params', ckpt['params']), ('adam.m', adam.get('m')), ('adam.v', adam.get('v'))):
        if not isinstance(mats, dict) or sorted(mats) != sorted(shapes):
            missing = sorted(set(shapes) - set(mats)) if isinstance(mats, dict) else sorted(shapes)
            extra = sorted(set(mats) - set(shapes)) if isinstance(mats, dict) else []
            bad(f'"{where}" 里的矩阵对不上：缺少 {missing or "无"}，多出 {extra or "无"}')
        for name, (rows, cols) in shapes.items():
            mat = mats[name]
            if not (isinstance(mat, list) and len(mat) == rows
                    and all(isinstance(row, list) and len(row) == cols for row in mat)):
                bad(f'"{where}" 里的矩阵 {name} 应该是 {rows} 行 × {cols} 列')
            if not all(is_number(x) for row in mat for x in row):
                bad(f'"{where}" 里的矩阵 {name} 有不是有限数字的值（例如 NaN 或 Infinity）')
            if where == 'adam.v' and any(x < 0 for row in mat for x in row):
                bad(f'"adam.v" 是梯度平方的平均，不能是负数（矩阵 {name} 里有负数）')


def load_checkpoint(path):
    """读模型文件并检查；任何问题都变成一句中文说明（退出码 1）。"""
    shown = shown_path(path)
    if not os.path.exists(path):
        raise UserError(f'找不到模型文件 {shown}。请检查 --load_path 的路径；模型文件要先用 --save_path 存出来。', 1)
    if os.path.isdir(path):
        raise UserError(f'{shown} 是一个文件夹，不是模型文件。请用 --load_path=文件路径 指定一个 .json 文件。', 1)
    try:
        with open(path, encoding='utf-8-sig') as f:     # -sig：在 Windows 记事本里另存过也能读（见 load_docs）
            text = f.read()
    except OSError as e:
        raise UserError(f'无法读取模型文件 {shown}（{e.strerror}）。', 1) from None
    except UnicodeDecodeError:
        raise UserError(f'{shown} 不是模型文件：它不是 UTF-8 文本，更不是 JSON。', 1) from None
    try:
        ckpt = json.loads(text)
    except json.JSONDecodeError as e:
        if e.pos >= len(text.rstrip()):
            raise UserError(f'模型文件 {shown} 不完整：JSON 在文件末尾突然断了（可能只复制了一部分）。'
                            f'请重新保存一次。', 1) from None
        raise UserError(f'{shown} 不是模型文件：第 {e.lineno} 行第 {e.colno} 列不是合法的 JSON。', 1) from None
    except (ValueError, RecursionError):                 # 位数多得离谱的整数、嵌套深得离谱的列表
        raise UserError(f'{shown} 不是模型文件：JSON 里有位数太多的数字或嵌套太深的列表。', 1) from None
    try:
        check_checkpoint(ckpt)
    except UserError as e:
        raise UserError(f'{shown}：{e}', 1) from None
    return ckpt


def restore(ckpt, state, optimizer):
    """把模型文件里的数字按矩阵名字填进已经建好的参数（形状相同）和 Adam 的状态里；返回它训练过的步数。"""
    def flat(mats):                        # 与 flatten(state) 相同的顺序：按 state 里矩阵的顺序、按行、按列
        return [float(x) for name in state for row in mats[name] for x in row]

    for p, x in zip(optimizer.params, flat(ckpt['params'])):
        p.data = x
    optimizer.m = flat(ckpt['adam']['m'])
    optimizer.v = flat(ckpt['adam']['v'])
    optimizer.t = ckpt['adam']['t']
    return ckpt['steps_trained']


# =============================================================================
# 9. 看模型内部 (inspecting the model)
# =============================================================================
# 模型“想”的是什么：每个位置它给下一个字符打多少概率、每个注意力头在看哪些位置、
# 训练时损失怎么下降，以及它比几个简单的对照好多少。这些都只读模型，不改参数，也不消耗随机数。

def display_width(text):
    """文字在终端里占几列：中日韩的全角字符占两列，其余占一列（east_asian_width 为 W 或 F 的是全角）。"""
    return sum(2 if unicodedata.east_asian_width(ch) in 'WF' else 1 for ch in text)


def pad(text, width, right=False):
    """按显示宽度补空格到 width 列（right=True 时靠右对齐）。"""
    space = ' ' * max(0, width - display_width(text))
    return space + text if right else text + space


def cut(text, width):
    """截到最多 width 列（按显示宽度），放不下的字符丢掉。"""
    out, used = '', 0
    for ch in text:
        used += display_width(ch)
        if used > width:
            break
        out += ch
    return out


def bar(fraction, width):
    """横条：满格是 width 列，每列再分 8 档（█ ▉ ▊ … ▏），所以很小的差别也看得出来。"""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    return '█' * (eighths // 8) + ('', '▏', '▎', '▍', '▌', '▋', '▊', '▉')[eighths % 8]


def explain_text(state, tokenizer, text):
    """把 BOS + text 过一遍模型，返回 (每个位置的预测, 注意力权重)。
    predictions[pos] = (概率列表, 真实的下一个 token)，概率就是 softmax(logits)（温度 1）。
    attention[pos] 按层、按头列出这个位置的注意力权重，正是前向计算里用的那些数。"""
    tokens = tokenizer.encode(text)
    n = min(block_size, len(tokens) - 1)
    keys = [[] for _ in range(n_layer)]
    values = [[] for _ in range(n_layer)]
    predictions, attention = [], []
    for pos in range(n):
        weights = []
        logits = gpt(state, tokens[pos], pos, keys, values, attention=weights)
        predictions.append(([p.data for p in softmax(logits)], tokens[pos + 1]))
        attention.append(weights)
    return predictions, attention


def explain_report(state, tokenizer, text):
    """--explain 打印的内容（一组文字行）：逐位置的预测，然后每层每个头的注意力表。"""
    bos_mark = '.' if '.' not in tokenizer.chars else '¶'
    def show(token_id):
        return bos_mark if token_id == tokenizer.bos else tokenizer.chars[token_id]

    predictions, attention = explain_text(state, tokenizer, text)
    tokens = tokenizer.encode(text)[:len(predictions) + 1]
    lines = [f'模型怎么读 {text!r}（“{bos_mark}”代表 BOS：开头是“开始”，最后是“结束”）：']
    if len(text) + 1 > block_size:
        lines.append(f'注意：它比上下文长度 block_size={block_size} 长，只看前 {block_size} 个位置。')
    total = 0.0
    for pos, (probs, target) in enumerate(predictions):
        rank = 1 + sum(1 for p in probs if p > probs[target])
        loss = -math.log(probs[target]) if probs[target] > 0 else float('inf')
        total += loss
        context = ''.join(show(t) for t in tokens[:pos + 1])
        lines.append(f'位置 {pos}：已看到 {context}，真实的下一个是 {show(target)}：'
                     f'概率 {100 * probs[target]:.1f}%，排第 {rank}，损失 {loss:.2f}')
        top = sorted(range(len(probs)), key=lambda i: -probs[i])[:5]
        for i in top:
            mark = '  ← 真实' if i == target else ''
            lines.append(f'    {pad(show(i), 2)} {100 * probs[i]:5.1f}% {bar(probs[i], 30)}{mark}')
    lines.append(f'平均损失 {total / len(predictions):.4f}（{len(predictions)} 个位置）')
    # 注意力表：行是“正在预测的位置”（query），列是它能看到的位置（key，只有自己和之前的）
    shades = ' ░▒▓█'
    cols = min(len(predictions), 18)       # 行标签 5 列 + 每格 4 列：18 格是 77 列，放得进 80 列的终端
    labels = [show(t) for t in tokens[:cols]]
    for li in range(n_layer):
        for h in range(n_head):
            lines.append('')
            lines.append(f'第 {li} 层第 {h} 个头的注意力（每行和为 100%；行：正在读的字符，列：它看的字符）')
            lines.append('     ' + ''.join(pad(label, 4, right=True) for label in labels))
            for pos in range(cols):
                row = attention[pos][li * n_head + h]
                cells = ''.join(f'{round(100 * w):3d}{shades[min(4, int(w * 5))]}' for w in row)
                lines.append(pad(labels[pos], 4, right=True) + ' ' + cells)
    if cols < len(predictions):
        lines.append(f'（注意力表只画了前 {cols} 个位置。）')
    return lines


def smooth_losses(step_losses, columns):
    """把每步的损失分成 columns 段，每段取平均：一列一个点，单步的大起大落就平掉了。"""
    n = len(step_losses)
    columns = max(1, min(columns, n))
    bounds = [round(c * n / columns) for c in range(columns + 1)]
    return [sum(step_losses[a:b]) / (b - a) for a, b in zip(bounds, bounds[1:])], bounds


def loss_chart(step_losses, val_before=None, val_after=None, rows=10, max_width=80):
    """训练损失曲线（纯文字，终端和日志里都好看）：纵轴是损失，横轴是步数，右边标出留出集损失。
    曲线最多 50 列；加上左边的刻度和右边的标注超过 max_width 列时，就少画几列。"""
    for columns in range(50, 9, -1):
        lines = draw_chart(step_losses, val_before, val_after, rows, columns)
        if max(display_width(line) for line in lines) <= max_width:
            break
    return lines


def draw_chart(step_losses, val_before, val_after, rows, columns):
    points, bounds = smooth_losses(step_losses, columns)
    hi, lo = max(points), min(points)
    span = (hi - lo) or 1.0

    def row_of(value):                     # 值 → 第几行（0 是最上面一行），超出范围的贴在边上
        return min(rows - 1, max(0, round((hi - value) / span * (rows - 1))))

    marks = {}
    half_row = span / (rows - 1) / 2
    for value, what in ((val_before, '训练前'), (val_after, '训练后')):
        if value is not None:
            arrow = '↑' if value > hi + half_row else '↓' if value < lo - half_row else '<'
            marks.setdefault(row_of(value), []).append(f'{arrow}{what} {value:.4f}')
    labels = [f'{hi - r * span / (rows - 1):.3f}' for r in range(rows)]
    width = max(len(label) for label in labels)
    lines = [f'训练损失曲线（每个 * 是约 {len(step_losses) / len(points):.0f} 步的平均；右边是留出集的损失）']
    for r in range(rows):
        cells = ''.join('*' if row_of(p) == r else ' ' for p in points)
        note = (' ' + ' '.join(marks[r])) if r in marks else ''
        lines.append(f'{labels[r]:>{width}} |{cells}{note}')
    lines.append(' ' * width + ' +' + '-' * len(points))
    first, last = '1', str(len(step_losses))
    lines.append(' ' * (width + 2) + first + ' ' * max(1, len(points) - len(first) - len(last)) + last + ' 步')
    return lines


def bigram_loss(train_docs, val_docs, tokenizer):
    """对照：二元语法模型 (bigram) 的留出集损失。它只看前一个字符：数训练集里每对 (前, 后) 出现的次数，
    P(后 | 前) = (次数 + 1) / (前 的总次数 + V)。“+1”是加一平滑 (Laplace smoothing)：没见过的组合
    也有一点概率，否则一个没见过的组合就会让损失变成无穷大。只算 GPT 也算的那些位置（前 block_size 个）。"""
    V = tokenizer.vocab_size
    counts = [[1] * V for _ in range(V)]
    for doc in train_docs:
        ids = tokenizer.encode(doc)[:block_size + 1]
        for a, b in zip(ids, ids[1:]):
            counts[a][b] += 1
    totals = [sum(row) for row in counts]
    loss, n = 0.0, 0
    for doc in val_docs:
        ids = tokenizer.encode(doc)[:block_size + 1]
        for a, b in zip(ids, ids[1:]):
            loss -= math.log(counts[a][b] / totals[a])
            n += 1
    return loss / n


def perplexity(loss):
    """困惑度 = e^loss：模型平均在多少个选项里“犹豫”。均匀猜 V 个 token 的困惑度正好是 V。
    损失大于约 709 时 e^loss 超出了浮点数的范围，这时返回无穷大 inf。"""
    return math.exp(loss) if loss < 709 else math.inf


# =============================================================================
# 10. 主程序和命令行 (main and command line)
# =============================================================================
# 前面是课程本身；这里是让它成为一个好用的程序的部分：读命令行、检查设置、显示进度、
# 处理 Ctrl-C、把结果讲给你听。run() 把前面各节串起来。

PATH_SETTINGS = ('input_path', 'save_path', 'load_path')
MAX_SHOWN_CHARS = 60        # 词表太大（例如汉字）时，概况和错误信息里只列出前这么多个字符


def shown_vocabulary(tokenizer):
    """词表里的字符连成一串，太长（例如汉字）时只留前 MAX_SHOWN_CHARS 个，后面加“…”。"""
    chars = ''.join(tokenizer.chars)
    return chars if len(chars) <= MAX_SHOWN_CHARS else chars[:MAX_SHOWN_CHARS] + '…'


def script_dir_path(path):
    """相对路径从脚本所在的文件夹算起；命令行给的路径已经变成绝对路径，join 会原样使用它。"""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), path)


def parse_value(name, text):
    """把命令行里的字符串按设置 name 默认值的类型转换。"""
    default = SETTINGS[name]
    # bool 必须先判断：在 Python 里 True 也是 int 的一种
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ('true', '1', 'yes', 'on'):
            return True
        if lowered in ('false', '0', 'no', 'off'):
            return False
        raise UserError(f'设置 {name} 只能是 True 或 False，但收到的是 "{text}"。例如：--{name}=False', 2)
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise UserError(f'设置 {name} 需要一个整数，但收到的是 "{text}"。例如：--{name}={default}', 2) from None
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            value = float('nan')
        if not math.isfinite(value):
            raise UserError(f'设置 {name} 需要一个有限的数字，但收到的是 "{text}"。例如：--{name}={default}', 2)
        return value
    return text


def closest_setting(name):
    """拼错的名字最像哪个设置：先看首字母缩写（lr → learning_rate），再看拼写相近（difflib）。"""
    for candidate in SETTINGS:
        if name.lower() == ''.join(part[0] for part in candidate.split('_')):
            return candidate
    close = difflib.get_close_matches(name.lower(), SETTINGS, n=1, cutoff=0.5)
    return close[0] if close else None


def apply_overrides(argv):
    """nanoGPT 式的命令行覆盖：--名字=值 或 --名字 值，替换第 0 节里同名的全局变量。
    返回在命令行上给过的设置名字。"""
    given = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        match = re.fullmatch(r'--(\w+)(?:=(.*))?', arg, flags=re.S)
        if not match:
            raise UserError(f'看不懂命令行参数 "{arg}"：请写成 --名字=值 的形式，例如 --num_steps=200。'
                            f'运行 --help 可以列出全部设置。', 2)
        name, text = match.groups()
        if name not in SETTINGS:
            guess = closest_setting(name)
            hint = f'你是不是想写 {guess}？' if guess else ''
            raise UserError(f'没有叫 {name} 的设置。{hint}运行 python microgpt_teaching.py --help 可以列出全部设置。', 2)
        if text is None:                             # --名字 值：值是下一个参数
            if i + 1 >= len(argv) or argv[i + 1].startswith('--'):
                example = SETTINGS[name] if SETTINGS[name] != '' else {'prompt': 'ma', 'explain': 'emma'}.get(name, 'model.json')
                raise UserError(f'--{name} 后面缺少值。请写成 --{name}=值，例如 --{name}={example}', 2)
            i += 1
            text = argv[i]
        value = parse_value(name, text)
        if name in PATH_SETTINGS and value:
            # 命令行里写的相对路径，按命令行的习惯从当前文件夹算起
            value = os.path.abspath(value)
        globals()[name] = value
        given.append(name)
        i += 1
    return given


def validate_settings():
    """在做任何事之前检查设置；第一个不合法的设置会变成一句说明，程序以退出码 2 结束。"""
    def fail(name, allowed):
        raise UserError(f'设置 {name} = {globals()[name]!r} 不合法：{allowed}。', 2)

    for name in ('n_layer', 'n_embd', 'n_head'):
        if globals()[name] < 1:
            fail(name, '它必须是正整数（至少 1）')
    if block_size < 2:
        fail('block_size', '它至少是 2（模型至少要看到“开头”和一个字符）')
    if n_embd % n_head != 0:
        fail('n_head', f'n_embd = {n_embd} 必须能被 n_head 整除，例如 n_head 取 '
                       + '、'.join(str(d) for d in range(1, n_embd + 1) if n_embd % d == 0))
    for name in ('num_steps', 'num_samples', 'val_size', 'log_every'):
        if globals()[name] < 0:
            fail(name, '它不能是负数')
    for name in ('learning_rate', 'eps_adam', 'init_std'):
        if not globals()[name] > 0:
            fail(name, '它必须大于 0')
    if not temperature >= 0.001:
        fail('temperature', '它至少是 0.001（温度是除数，不能是 0；0.001 已经几乎总是选概率最大的字符）')
    for name in ('beta1', 'beta2'):
        if not 0 <= globals()[name] < 1:
            fail(name, '它必须在 [0, 1) 之间，即 0 ≤ 值 < 1')


def settings_help():
    """--help 的内容：直接读本文件第 0 节的设置行，所以说明永远和代码一致。"""
    lines = ['用法：python microgpt_teaching.py [--名字=值 ...]（也可以写成 --名字 值）', '', '设置（默认值）及含义：']
    comments = {}
    try:
        with open(__file__, encoding='utf-8') as f:
            for line in f:
                match = re.match(r'(\w+) = .*?# (.*)$', line)
                if match and match.group(1) in SETTINGS:
                    comments[match.group(1)] = match.group(2).strip()
    except OSError:
        pass
    names = [f'--{name}={value}' for name, value in SETTINGS.items()]
    width = max(len(name) for name in names) + 2
    for name, shown in zip(SETTINGS, names):
        lines.append(f'  {shown:<{width}}{comments.get(name, "")}')
    lines += ['', '例子：python microgpt_teaching.py --num_steps=3000 --temperature=0.8',
              '      python microgpt_teaching.py --save_path=m.json',
              '      python microgpt_teaching.py --load_path=m.json --num_steps=0 --prompt=ma --explain=emma']
    return '\n'.join(lines)


def terminal_width():
    return shutil.get_terminal_size().columns


def wrap_items(prefix, items, width):
    """把一串短项目排成几行，只在项目之间换行，每行不超过 width 列。"""
    lines, line, indent = [], prefix, ' ' * display_width(prefix)
    for item in items:
        if line not in (prefix, indent) and display_width(line) + 2 + display_width(item) > width:
            lines.append(line)
            line = indent
        line += ('' if line in (prefix, indent) else '  ') + item
    lines.append(line)
    return lines


class Status:
    """一个可能要好几秒的阶段（评估、采样）：超过约 1 秒还没做完，就说一声在做什么，免得像死机。
    在终端里是一行原地刷新的进度；输出到文件时只写一行。"""
    QUIET_SECONDS = 1.0

    def __init__(self, what, total, unit):
        self.what, self.total, self.unit = what, total, unit
        self.start = time.perf_counter()
        self.on_terminal = sys.stdout.isatty()
        self.shown = False

    def update(self, done):
        if time.perf_counter() - self.start < self.QUIET_SECONDS:
            return
        if self.on_terminal:
            line = f'{self.what}：{done}/{self.total} {self.unit}'
            print('\r' + cut(line, terminal_width() - 1), end='', flush=True)
            self.shown = True
        elif not self.shown:
            print(f'{self.what}：共 {self.total} {self.unit}……', flush=True)
            self.shown = True

    def finish(self):
        if self.on_terminal and self.shown:
            print('\r' + ' ' * (terminal_width() - 1) + '\r', end='', flush=True)


class Progress:
    """训练进度：在终端里是一行原地刷新（不超过终端宽度）；输出到文件或管道时，按间隔各打一行。"""

    def __init__(self, total_steps):
        self.total = total_steps
        self.on_terminal = sys.stdout.isatty() and log_every == 0
        self.every = log_every if log_every > 0 else max(1, round(total_steps / 20))
        self.start = time.perf_counter()
        self.smooth = None
        self.last_draw = 0.0

    def fields(self, step, loss, lr):
        """进度的各个部分，按重要性排好：终端太窄时从后往前丢。"""
        elapsed = time.perf_counter() - self.start
        speed = step / elapsed if elapsed > 0 else 0.0
        left = (self.total - step) / speed if speed > 0 else 0.0
        return [f'步 {step:{len(str(self.total))}d}/{self.total}', f'loss {loss:.4f}', f'平滑 {self.smooth:.4f}',
                f'剩余 {left:.0f} 秒', f'{speed:.1f} 步/秒', f'lr {lr:.6f}']

    def update(self, step, loss, lr):
        # 平滑损失：指数滑动平均，单步损失波动很大（每步只看一个名字），平滑后才看得出趋势
        self.smooth = loss if self.smooth is None else 0.95 * self.smooth + 0.05 * loss
        last = step == self.total
        fields = self.fields(step, loss, lr)
        if self.on_terminal:
            if last or time.perf_counter() - self.last_draw > 0.1:
                # 整行必须比终端窄：写满最后一列时，很多终端会自动换行，之后每次刷新都会多留下一行
                width = terminal_width() - 1
                while len(fields) > 1 and display_width(' | '.join(fields)) > width:
                    fields.pop()
                line = pad(cut(' | '.join(fields), width), width)
                print('\r' + line, end='\n' if last else '', flush=True)
                self.last_draw = time.perf_counter()
        elif last or step == 1 or step % self.every == 0:
            print(' | '.join(fields), flush=True)

    def stop_early(self):
        if self.on_terminal:
            print()


class GracefulStop:
    """Ctrl-C 的处理：训练中第一次按下，做完当前这一步就停止训练，接着照常评估、保存和采样。
    不在训练时按下，或者按第二次：立即安静地退出（退出码 130）。"""

    def __init__(self):
        self.stop_requested = False
        self.training = False

    def __call__(self, signum, frame):
        if self.training and not self.stop_requested:
            self.stop_requested = True
            print('\n收到 Ctrl-C：这一步做完就停止训练，然后用现在的模型评估和采样。再按一次 Ctrl-C 立即退出。',
                  flush=True)
        else:
            print('\n已退出。', flush=True)
            raise SystemExit(130)


def check_save_path(path):
    """训练之前就确认模型能存到 path：文件夹存在、能写，而且不会覆盖一个不是模型文件的文件。"""
    shown = shown_path(path)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise UserError(f'--save_path={shown} 是一个文件夹。请写上文件名，例如 --save_path={os.path.join(shown, "model.json")}', 2)
    if not os.path.isdir(folder):
        raise UserError(f'要保存模型的文件夹 {shown_path(folder)} 不存在。请先建好它，或换一个 --save_path。', 2)
    if os.path.exists(path):
        try:
            with open(path, encoding='utf-8') as f:
                is_checkpoint = f'"format": "{CHECKPOINT_FORMAT}"' in f.read(200)
        except (OSError, UnicodeDecodeError):
            is_checkpoint = False
        if not is_checkpoint:
            raise UserError(f'{shown} 已经存在，而且不是 microGPT 的模型文件。为了不覆盖它，请换一个 --save_path。', 2)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise UserError(f'无法在文件夹 {shown_path(folder)} 里写文件（{e.strerror}）。请换一个 --save_path。', 2) from None


def apply_checkpoint_shape(ckpt, given):
    """模型文件决定模型的形状：命令行上给了不同的形状就报错；本文件第 0 节的值则直接被文件里的值替换。"""
    for name, value in ckpt['settings'].items():
        if name in given and globals()[name] != value:
            raise UserError(f'命令行给了 --{name}={globals()[name]}，但模型文件里的 {name} 是 {value}。'
                            f'模型的形状由模型文件决定：请去掉 --{name}，或者不用 --load_path 从头训练。', 2)
        globals()[name] = value


def check_text_fits(name, text, tokenizer):
    """prompt、explain 里的每个字符都必须在词表里。"""
    unknown = sorted(set(text) - set(tokenizer.chars))
    if unknown:
        raise UserError(f'--{name} 里有模型不认识的字符 {"".join(unknown)!r}。'
                        f'模型认识的字符是：{shown_vocabulary(tokenizer)}', 2)


def print_overview(path, docs, train_docs, val_docs, tokenizer, params, changed, ckpt):
    print(f'数据：{os.path.basename(path)}，共 {len(docs)} 行；训练用 {len(train_docs)} 行，留出验证 {len(val_docs)} 行')
    print(f'词表：{tokenizer.vocab_size} 个 token = {len(tokenizer.chars)} 个字符 + 1 个 BOS；字符：{shown_vocabulary(tokenizer)!r}')
    print(f'参数：{len(params)} 个；{n_layer} 层，n_embd={n_embd}，{n_head} 个头，block_size={block_size}')
    if ckpt:
        print(f'模型：读自 {shown_path(script_dir_path(load_path))}（已训练 {ckpt["steps_trained"]} 步）')
    def shown(name):                       # 命令行给的路径已变成绝对路径；显示时和其他地方一样尽量用相对路径
        value = globals()[name]
        return shown_path(value) if name in PATH_SETTINGS and value else value

    items = [f'{name}={shown(name)}' + ('*' if name in changed else '') for name in SETTINGS]
    for line in wrap_items('设置：', items, min(terminal_width(), 100) - 1):
        print(line)
    if changed:
        print('      （* 为改过的设置）')
    too_long = [doc for doc in docs if len(doc) + 1 > block_size]
    if too_long:
        longest = max(len(doc) for doc in too_long) + 1
        print(f'注意：有 {len(too_long)} 行的“字符数 + 结尾的 BOS”超过上下文长度 block_size={block_size}，'
              f'这些行只训练前 {block_size} 个位置（超出的字符和结尾的 BOS 学不到）。'
              f'想全部学到，可以用 --block_size={longest}。')


def evaluate_with_status(state, docs, tokenizer, what):
    status = Status(what, len(docs), '行')
    loss = evaluate(state, docs, tokenizer, on_doc=status.update)
    status.finish()
    return loss


def run_training(state, optimizer, train_docs, tokenizer, stop):
    """调用第 6 节的 train()，在每步之间显示进度、检查发散、响应 Ctrl-C。返回每步的损失。"""
    print(f'开始训练 {num_steps} 步（按 Ctrl-C 可提前停止）……', flush=True)
    progress = Progress(num_steps)
    step_losses = []
    started = time.perf_counter()
    stop.training = True
    for step, loss, lr in train(state, optimizer, train_docs, tokenizer, num_steps):
        if not math.isfinite(loss):
            raise UserError(f'第 {step} 步的 loss 变成了 {loss}：训练发散了。'
                            f'请调小 learning_rate（现在是 {learning_rate}）或 init_std（现在是 {init_std}）再试。', 1)
        step_losses.append(loss)
        progress.update(step, loss, lr)
        if stop.stop_requested:
            progress.stop_early()
            print(f'训练在第 {step} 步停止（共设 {num_steps} 步）。', flush=True)
            break
    stop.training = False
    seconds = max(time.perf_counter() - started, 1e-9)      # 极短的训练可能计时为 0，避免除以 0
    print(f'训练用时 {seconds:.1f} 秒（{len(step_losses) / seconds:.1f} 步/秒），最后一步的 loss {step_losses[-1]:.4f}')
    return step_losses


def print_losses(before, after, bigram, vocab_size, trained):
    uniform = math.log(vocab_size)
    rows = []
    if trained:
        rows += [('训练前', before), ('训练后', after)]
    else:
        rows += [('读回的模型（这次没再训练）' if load_path else '没有训练的模型（随机参数）', after)]
    rows += [(f'对照：均匀猜测 ln({vocab_size})', uniform), ('对照：二元语法模型', bigram)]
    width = max(display_width(label) for label, _ in rows) + 2
    print(f'留出验证集上的平均损失（每个 token 位置；困惑度 = e^损失）：')
    for label, value in rows:
        print(f'  {pad(label, width)}{value:.4f}   困惑度 {perplexity(value):.1f}')
    if perplexity(after) <= vocab_size:
        print(f'  困惑度 {perplexity(after):.1f}：相当于模型每一步在约 {perplexity(after):.0f} 个字符里犹豫'
              f'（均匀猜测是在全部 {vocab_size} 个里犹豫）。')


# 读数字的门槛。默认运行离它们都很远，所以默认运行不会打印任何提醒。
EXPLODED_FACTOR = 2.0       # 留出集损失超过 2·ln V（比均匀乱猜差一倍以上）：不是“学得不好”，是数值爆炸了
MANY_PASSES = 10            # 把训练集从头到尾过了 10 遍以上：小数据上这足够把每一行背下来


def diagnose(before, after, steps, train_docs, val_docs, vocab_size):
    """读训练前后的数字，像老师一样告诉你可能发生了什么、可以试什么。没发现问题就返回空列表。"""
    notes = []
    uniform = math.log(vocab_size)
    passes = steps / len(train_docs)
    if not after <= EXPLODED_FACTOR * uniform:            # “not <=” 让 NaN（算不出数）也算爆炸
        notes.append(f'留出集损失 {after:.4g} 远大于均匀乱猜的 {uniform:.2f}：训练“爆炸”了——每一步走得太远，'
                     f'参数被推到了很离谱的地方。请把 learning_rate 调小（现在是 {learning_rate}，默认 {SETTINGS["learning_rate"]}）。')
        return notes
    if passes >= 1 and (after > before or after > uniform):
        why = '比训练前还高' if after > before else '比均匀乱猜还高'
        notes.append(f'留出集损失{why}（{before:.4f} → {after:.4f}）：模型在训练集上学到的东西，'
                     f'对没见过的数据不管用。这通常是过拟合 (overfitting)：它把训练数据背了下来，而不是学到规律。')
    if passes > MANY_PASSES:
        notes.append(f'训练把 {len(train_docs)} 行训练数据平均看了 {passes:.0f} 遍：数据这么少，模型很容易把它们背下来'
                     f'（编出的样本多半是训练集里的原样）。可以试：减少 num_steps、多找些数据、或者用小一点的模型（n_embd、n_layer）。')
    unseen = sorted(set(''.join(val_docs)) - set(''.join(train_docs)))
    if unseen:
        notes.append(f'留出集里有 {len(unseen)} 个字符在训练数据里从没出现过（例如 {"".join(unseen[:10])}）：'
                     f'模型不可能学会预测它们，留出集损失因此偏高。数据越多，这种情况越少。')
    return notes


def print_samples(samples, train_docs, val_docs):
    """样本和它们的来历：训练集里有 / 留出集里有（真实存在，但模型从没见过）/ 新的。重复的样本标出来。"""
    in_train, in_val = set(train_docs), set(val_docs)
    width = max(display_width(s or '（空）') for s in samples)
    seen, counts = set(), {'train': 0, 'val': 0, 'new': 0, 'empty': 0}
    new_distinct = set()
    for i, sample in enumerate(samples):
        if not sample:
            kind, label = 'empty', '第一步就抽到了 BOS'
        elif sample in in_train:
            kind, label = 'train', '训练集里有'
        elif sample in in_val:
            kind, label = 'val', '留出集里有'
        else:
            kind, label = 'new', '新'
            new_distinct.add(sample)
        counts[kind] += 1
        if sample and sample in seen:
            label += '（重复）'
        seen.add(sample)
        print(f'  {i + 1:2d}. {pad(sample or "（空）", width)}  {label}')
    n = len(samples)
    print(f'其中训练集里有 {counts["train"]} 个，留出集里有 {counts["val"]} 个，新的 {counts["new"]} 个'
          f'（{100 * counts["new"] / n:.0f}%，其中 {len(new_distinct)} 个互不相同）。')
    if counts['val']:
        print('留出集里的样本真实存在，模型训练时却从没见过：编出它们，说明模型学到的是规律，而不只是背下了训练集。')


def check_inputs(docs, tokenizer):
    """在任何费时的事情之前，检查数据、prompt、explain 和保存路径，免得训练了几分钟才发现写错了。"""
    unknown = sorted(set(''.join(docs)) - set(tokenizer.chars))
    if unknown:
        raise UserError(f'数据里有模型文件的词表里没有的字符：{"".join(unknown)!r}。这个模型只认识 '
                        f'{shown_vocabulary(tokenizer)!r}；请换一份数据，或者不用 --load_path 从头训练。', 1)
    check_text_fits('prompt', prompt, tokenizer)
    check_text_fits('explain', explain, tokenizer)
    if len(prompt) >= block_size:
        raise UserError(f'--prompt 有 {len(prompt)} 个字符，但模型最多看 block_size={block_size} 个位置'
                        f'（第一个是 BOS），没有地方再往下写了。请用少于 {block_size} 个字符的开头。', 2)
    if save_path:
        check_save_path(script_dir_path(save_path))


def train_and_evaluate(state, optimizer, train_docs, val_docs, tokenizer, steps_before):
    """训练前评估 → 训练 → 训练后评估。返回 (训练前的留出集损失, 每步的损失, 训练后的留出集损失)。"""
    loss_before = loss_after = None
    if val_docs:
        what = '训练前，在留出集上评估' if num_steps else '在留出集上评估'
        loss_before = loss_after = evaluate_with_status(state, val_docs, tokenizer, what)
    step_losses = []
    if num_steps:
        stop = GracefulStop()
        signal.signal(signal.SIGINT, stop)
        # 接着训练时，从上次停下的那个名字往后学，而不是把开头那些名字再学一遍
        offset = steps_before % len(train_docs)
        step_losses = run_training(state, optimizer, train_docs[offset:] + train_docs[:offset], tokenizer, stop)
        if val_docs:
            loss_after = evaluate_with_status(state, val_docs, tokenizer, '训练后，在留出集上评估')
    return loss_before, step_losses, loss_after


def print_report(loss_before, step_losses, loss_after, train_docs, val_docs, tokenizer):
    """训练后的报告：损失曲线、留出集损失和对照、给学习者的提醒。"""
    print()
    if not val_docs:
        print(f'没有留出验证集（val_size={val_size}，或数据不到 10 行），跳过验证损失。')
        return
    if len(step_losses) >= 2:
        chart = loss_chart(step_losses, loss_before, loss_after, max_width=min(80, terminal_width() - 1))
        print('\n'.join(chart) + '\n')
    print_losses(loss_before, loss_after, bigram_loss(train_docs, val_docs, tokenizer),
                 tokenizer.vocab_size, bool(step_losses))
    for note in diagnose(loss_before, loss_after, len(step_losses), train_docs, val_docs, tokenizer.vocab_size):
        print('提醒：' + note)


def save_model(state, tokenizer, optimizer, steps_trained, val_loss):
    target = script_dir_path(save_path)
    replaced = '，替换了原来的模型文件' if os.path.exists(target) else ''
    try:
        write_atomically(target, checkpoint_json(state, tokenizer, optimizer, steps_trained, val_loss))
    except OSError as e:
        raise UserError(f'保存模型到 {shown_path(target)} 失败（{e.strerror}）。原来在那里的文件没有被改动。', 1) from None
    print(f'\n模型已保存到 {shown_path(target)}（共训练 {steps_trained} 步{replaced}）。'
          f'下次可以用 --load_path={shown_path(target)} --num_steps=0 直接采样。')


def sample_all(state, tokenizer):
    start_note = f'，都以 {prompt!r} 开头' if prompt else ''
    print(f'\n模型编出的 {num_samples} 个样本（temperature={temperature}{start_note}）：')
    status = Status('采样', num_samples, '个')
    samples = []
    for i in range(num_samples):
        try:
            samples.append(sample_name(state, tokenizer, prompt))
        except ValueError:                 # random.choices：概率里有 inf 或 NaN
            raise UserError('模型算出的概率不是有限的数（参数大得溢出了），没法采样。'
                            f'请调小 learning_rate（现在是 {learning_rate}）或 init_std（现在是 {init_std}）重新训练。', 1) from None
        status.update(i + 1)
    status.finish()
    return samples


def run(argv):
    """整个程序：读数据 → 分词 → 建参数（有模型文件就读回）→ 训练 → 报告 → 保存 → 采样 → 看模型内部。"""
    if '-h' in argv or '--help' in argv:
        print(settings_help())
        return 0
    given = apply_overrides(argv)
    validate_settings()
    started = time.perf_counter()
    # Python 除了引用计数，还有一个专找“循环引用”的垃圾回收器，它每分配几百个对象就扫描一遍新对象。
    # 我们的计算图只从父节点指向孩子，没有环，一步用完后靠引用计数就全部释放了；
    # 每步要新建几万个对象，让回收器反复扫描它们纯属浪费，所以关掉它（用 valgrind 数指令，
    # 默认设置训练 30 步少了约 11%）。
    gc.disable()
    random.seed(seed)                                 # 整个程序只在这里设一次种子

    path = script_dir_path(input_path)
    docs = load_docs(path)                            # 1. 数据
    train_docs, val_docs = split_docs(docs)
    ckpt = load_checkpoint(script_dir_path(load_path)) if load_path else None   # 8. 读回的模型决定形状和词表
    if ckpt:
        apply_checkpoint_shape(ckpt, given)
    tokenizer = Tokenizer(ckpt['vocabulary'] if ckpt else docs)                 # 2. 分词器
    check_inputs(docs, tokenizer)
    # 4. 参数：即使要读回模型，也先照常随机初始化，这样消耗的随机数和从头训练时一样，
    #    同一个种子下，读回的模型编出的名字与存它的那次运行逐字相同
    state = init_params(tokenizer.vocab_size)
    optimizer = Adam(flatten(state))
    steps_before = restore(ckpt, state, optimizer) if ckpt else 0
    changed = [name for name in SETTINGS if globals()[name] != SETTINGS[name]]
    print_overview(path, docs, train_docs, val_docs, tokenizer, optimizer.params, changed, ckpt)

    loss_before, step_losses, loss_after = train_and_evaluate(      # 6. 训练
        state, optimizer, train_docs, val_docs, tokenizer, steps_before)
    print_report(loss_before, step_losses, loss_after, train_docs, val_docs, tokenizer)    # 9. 曲线和对照
    if save_path:                                                                             # 8. 保存
        save_model(state, tokenizer, optimizer, steps_before + len(step_losses), loss_after)
    if num_samples:                                                                           # 7. 采样
        print_samples(sample_all(state, tokenizer), train_docs, val_docs)
    if explain:                                                                               # 9. 看模型内部
        print('\n' + '\n'.join(explain_report(state, tokenizer, explain)))
    print(f'\n总用时 {time.perf_counter() - started:.1f} 秒。')
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if hasattr(sys.stdout, 'reconfigure'):
        sys.stdout.reconfigure(errors='replace')      # 控制台编码放不下的字符显示为 ?，而不是崩溃
    try:
        return run(argv)
    except UserError as e:
        print(f'错误：{e}', file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:                         # 训练开始之前按下的 Ctrl-C
        print('\n已退出。')
        return 130
    except BrokenPipeError:                           # 输出接到了提前关闭的管道，例如 | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # 退出时不再报错
        return 1


if __name__ == '__main__':
    sys.exit(main())
