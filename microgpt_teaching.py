"""
microGPT 教学版：只用 Python 标准库，从零训练一个很小的 GPT。

它读入 input.txt（每行一个英文名字），学会“名字大概长什么样”，然后编出新的名字。
从上往下读就是一个 GPT 的全部过程，每一节的编号与教程 microgpt_tutorial.md 的章节一一对应：
    0. 设置  1. 数据  2. 分词器  3. 自动求导  4. 参数  5. 模型  6. 训练  7. 采样
    8. 提速  9. 子词分词 (BPE)  10. 保存和加载模型  11. 看模型内部  12. 网页  13. 主程序和命令行

用法：
    python microgpt_teaching.py                         # 默认设置：训练 1000 步，然后编 20 个名字
    python microgpt_teaching.py --num_steps=200         # 用 --名字=值（或 --名字 值）覆盖任何一个设置
    python microgpt_teaching.py --save_path=m.json      # 训练完把模型存下来
    python microgpt_teaching.py --load_path=m.json --num_steps=0 --prompt=ma --explain=emma
                                                        # 不再训练：读回模型，续写 ma 开头的名字，看它怎么读 emma
    python microgpt_teaching.py --help                  # 列出全部设置、默认值和含义

导入本文件（import）不会运行任何东西；只有直接运行它才会开始训练。
"""
import collections
import contextlib
import difflib
import errno
import gc
import hashlib
import html
import itertools
import json
import math
import operator
import os
import platform
import random
import re
import shlex
import shutil
import signal
import stat
import sys
import time
import types
import unicodedata

try:
    import fcntl                           # 只有 POSIX（Linux、macOS）有：第 10 节用它给文件夹加锁
except ImportError:
    fcntl = None

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
speed_tricks = True       # True：用第 8 节的提速技巧；False：完全照第 3–7 节的课本公式计算（慢约 30 倍，算出的数相同）
log_every = 0             # 每隔几步留下一行训练进度；0 表示自动（约每 5% 一行；在终端里，两行之间还有一行原地刷新）
save_path = ''            # 训练完把模型存到这个 JSON 文件（空 = 不保存）；相对路径的规则同 input_path
load_path = ''            # 从这个 JSON 文件读回模型，代替随机初始化（空 = 不读）；形状和词表以文件为准
prompt = ''               # 每个样本都以这段文字开头，模型接着往下写（空 = 从头编）
explain = ''              # 训练后把这段文字喂给模型，逐位置打印它的预测和注意力（空 = 不打印），例如 emma
tokenizer = 'char'        # 分词方法：'char' 每个字符一个 token（第 2 节）；'bpe' 字节级 BPE（第 9 节），适合中文这样字很多的数据
bpe_merges = 500          # tokenizer='bpe' 时学多少个合并：越多，越多常见的字（和词）变成一个 token，词表也越大
html_path = ''            # 把这次运行画成一个网页（离线也能打开的 HTML 文件；空 = 不画）；相对路径的规则同 input_path

# 上面写的每一个设置（名字 → 值；import 进来的模块不算）。第 13 节用同一张规则表检查这里写的值和命令行给的值：
# 这里写错了（比如 num_steps = '200'），也会得到一句指出是哪一行、该怎么改的说明。
SETTINGS = {name: value for name, value in globals().items() if not name.startswith('_') and not isinstance(value, types.ModuleType)}


class UserError(Exception):
    """用户可以自己改正的问题（设置写错、文件有问题）。主程序只打印这句话，不打印回溯 (traceback)。"""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


# =============================================================================
# 1. 数据 (data)
# =============================================================================
# 一行一个名字，一个名字就是一篇“文档”(document)。模型要学的是：文档里的字符按什么规律排列。

def load_docs(path):
    """读数据文件，每行一个名字：去掉两端的空白，丢掉空行。"""
    text = read_text(path, '数据文件', 'input_path')     # 读文件时的各种检查（找不到、不是 UTF-8……）在第 13 节
    # 只在真正的换行处分行：\n、\r\n（Windows）和 \r。（str.splitlines 还会在 \x1c、\u2028 这些字符处分行）
    docs = [line.strip() for line in re.split(r'\r\n|\r|\n', text)]
    docs = [doc for doc in docs if doc]
    if not docs:
        raise UserError(f'数据文件 {shown_path(path)} 里没有任何内容（只有空行或空白）。请在里面每行写一个名字。', 1)
    return docs


def split_docs(docs):
    """打乱（消耗随机数，所以必须在初始化参数之前），再把最后一部分留作留出集，永远不拿来训练。"""
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

    def unknown_chars(self, text):
        """text 里不在字符表里的字符：encode 遇到它们会出错（KeyError）。"""
        return sorted(set(text) - set(self.chars))


# =============================================================================
# 3. 自动求导 (autograd)
# =============================================================================
# 每个 Value 是计算图 (computation graph) 里的一个节点：它记住自己的值 data、由哪些孩子节点算出来，
# 以及自己对每个孩子的局部导数 (local derivative)。反向传播 (backpropagation) 时按链式法则
#     ∂L/∂child += ∂node/∂child · ∂L/∂node
# 从损失 L 一路往回，把梯度 grad = ∂L/∂(这个节点) 送到每个参数。

class Value:
    __slots__ = ('data', 'grad', '_children', '_local_grads')  # 不用 __dict__：省内存，也更快

    def __init__(self, data, children=(), local_grads=()):
        self.data = data                  # 前向计算得到的数
        self.grad = 0.0                   # ∂L/∂(本节点)，反向传播时累加
        self._children = children         # 直接算出本节点的那些节点
        self._local_grads = local_grads   # 与 _children 一一对应：∂(本节点)/∂(孩子)

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
    def __radd__(self, other): return self + other          # 数字 + Value（sum() 从 0 开始加，就会用到它）
    def __rsub__(self, other): return (-self) + other       # 数字 - Value
    def __rmul__(self, other): return self * other          # 数字 · Value
    def __rtruediv__(self, other): return self ** -1 * other  # 数字 / Value

    # ---- 反向传播 ----
    def backward(self):
        if speed_tricks: return fast_backward(self)         # 提速版见第 8 节；下面是课本写法
        # 第一步：拓扑排序 (topological order)，保证处理一个节点之前，所有用到它的节点都已处理完，
        # 这样它的 grad 已经累加齐了。做法是深度优先搜索 (DFS)：孩子全部排好之后再排自己（后序），
        # 访问过的节点记在集合 visited 里，每个节点只排一次。
        # 用一个显式的栈代替递归：Python 默认只允许约 1000 层递归，而图可以比这深得多
        # （我们量过：8 层、64 个位置的模型学一个 64 个位置的名字，课本写法的图最长的路径约 2460 层）。
        # 栈里放两种东西：一个节点表示“去展开它”；None 后面跟着的节点表示“它的孩子都排好了”。
        topo, visited = [], set()
        stack = [self]
        while stack:
            node = stack.pop()
            if node is None:
                topo.append(stack.pop())   # 孩子都已排好，轮到它自己
            elif node not in visited:
                visited.add(node)
                stack += [node, None]      # 弹出 None 时，它下面的 node 的孩子已经全部处理完
                stack += [child for child in node._children if child not in visited]
        # 第二步：从损失开始（∂L/∂L = 1），逆拓扑序应用链式法则。
        # 用 += 而不是 =：一个节点被用了几次，就会从几条路径收到梯度，全部相加才是总梯度。
        # （中间节点的 grad 不会清零，所以同一张图不要反向传播两次；训练每一步都建一张新图，不受影响。）
        self.grad = 1.0
        for node in reversed(topo):
            for child, local in zip(node._children, node._local_grads):
                child.grad += local * node.grad


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

def dot(a, b):
    """a · b = Σ_i a_i·b_i（a、b 是等长的 Value 列表）"""
    if speed_tricks: return fast_dot(a, b)
    return sum(ai * bi for ai, bi in zip(a, b))


def linear(x, w):
    """y = W x：W 的形状 (n_out × n_in)，x 长 n_in，y 长 n_out；y_i 是 W 第 i 行与 x 的点积。"""
    if speed_tricks: return fast_linear(x, w)
    return [dot(row, x) for row in w]


def softmax(logits):
    """p_i = e^(z_i) / Σ_j e^(z_j)：把任意实数变成和为 1 的概率。"""
    # 所有 z 减去同一个数，分子分母同乘 e^(-max)，结果不变，但 e 的幂不会溢出。
    # 减去的 max 当作常数：正因为结果与它无关，对它求导本来就是 0。
    max_val = max(z.data for z in logits)
    exps = [(z - max_val).exp() for z in logits]
    total = sum(exps)
    return [e / total for e in exps]


def rmsnorm(x):
    """y_i = x_i / sqrt(mean(x²) + 1e-5)：把向量缩放到均方根约为 1。不减均值，也没有可学的增益。"""
    mean_square = dot(x, x) / len(x)
    scale = (mean_square + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def mlp(x, w_fc1, w_fc2):
    """y = W2 · relu(W1 x)：先放宽到 4 倍，经过 ReLU，再压回原来的长度。"""
    if speed_tricks: return fast_mlp(x, w_fc1, w_fc2)
    h = [hi.relu() for hi in linear(x, w_fc1)]      # (4·n_embd,)
    return linear(h, w_fc2)                          # (n_embd,)


def gpt(state, token_id, pos_id, keys, values, attention=None):
    """一个位置的前向计算。keys / values 是 KV 缓存：每层一个列表，存着此前各位置的 k、v 向量。
    attention 可以是一个列表：给了，就按层、按头把这个位置的注意力权重（普通小数）追加进去，供第 11 节观察。"""
    head_dim = n_embd // n_head
    # 嵌入：token 的向量 + 位置的向量，形状 (n_embd,)
    x = [a + b for a, b in zip(state['wte'][token_id], state['wpe'][pos_id])]
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
            # 打分：当前位置 i（就是 pos_id）的 q 与每个位置 j ≤ i 的 k_j 做点积，再除以 sqrt(head_dim)，
            # 让分数的方差不随维度变大
            scores = [dot(q_h, k_j[lo:hi]) / head_dim ** 0.5 for k_j in keys[li]]
            weights = softmax(scores)                   # (i + 1,)：每个位置 j 一个权重，和为 1
            if attention is not None:
                attention.append([w.data for w in weights])
            # 按注意力权重把各位置的 v 加权平均：输出的第 d 维 = Σ_j weights_j · v_j[d]，d 在这个头的 lo..hi-1 里
            x_attn += [dot(weights, [v_j[d] for v_j in values[li]]) for d in range(lo, hi)]
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

def cross_entropy(logits, target):
    """交叉熵损失 L = -ln p_target，其中 p = softmax(logits)：模型给正确答案的概率越小，损失越大。"""
    # 写成 ln Σ_j e^(z_j - max) - (z_target - max)，与 -ln softmax(z)_target 相等：括号里的和至少是 1，
    # 取对数永远有定义；若先算 softmax 再取 -ln p，p 下溢成 0 时 ln 0 会出错
    max_val = max(z.data for z in logits)
    return sum((z - max_val).exp() for z in logits).log() - (logits[target] - max_val)


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


def doc_loss(state, tokens):
    """一个名字的损失：它各位置交叉熵损失的平均（一个 Value）。训练的每一步就是把它变小。"""
    if speed_tricks: return fast_doc_loss(state, tokens)
    losses = doc_losses(state, tokens)
    return (1 / len(losses)) * sum(losses)


def evaluate(state, docs, tokenizer):
    """留出集上的平均每 token 损失：所有位置的损失之和 / 位置总数。只读参数，不消耗随机数。"""
    if speed_tricks: return fast_evaluate(state, docs, tokenizer)
    total, count = 0.0, 0
    for doc in docs:
        losses = doc_losses(state, tokenizer.encode(doc))
        total += sum(loss.data for loss in losses)
        count += len(losses)
    return total / count


def perplexity(loss):
    """困惑度 = e^loss：模型平均在多少个选项里“犹豫”。均匀猜 V 个 token 的困惑度正好是 V。
    损失大于约 709 时 e^loss 超出了浮点数的范围，这时返回无穷大 inf；损失是 NaN 时困惑度也是 NaN（不是“太大”）。"""
    return math.exp(loss) if not loss >= 709 else math.inf


def bigram_loss(train_docs, val_docs, tokenizer):
    """对照：二元语法模型 (bigram) 的留出集损失。它只看前一个字符：数训练集里每对 (前, 后) 出现的次数，
    P(后 | 前) = (次数 + 1) / (前 的总次数 + V)。“+1”是加一平滑 (Laplace smoothing)：没见过的组合
    也有一点概率，否则一个没见过的组合就会让损失变成无穷大。只算 GPT 也算的那些位置（前 block_size 个）。"""
    def pairs(docs):                       # 每个名字里相邻的 (前, 后) token 对，一对一对地给（不一次建好整张列表，省内存）
        return (pair for doc in docs for ids in [tokenizer.encode(doc)[:block_size + 1]] for pair in zip(ids, ids[1:]))

    counts = collections.Counter(pairs(train_docs))
    totals = collections.Counter(a for a, _ in pairs(train_docs))
    val_pairs = list(pairs(val_docs))
    return -sum(math.log((counts[a, b] + 1) / (totals[a] + tokenizer.vocab_size)) for a, b in val_pairs) / len(val_pairs)


class Adam:
    """Adam 优化器 (Kingma & Ba)：每个参数有自己的步长，由梯度的两个滑动平均决定。
    它的状态（m、v、t）和参数一起存进模型文件，读回后可以接着训练。"""

    def __init__(self, params):
        self.params = params
        self.m = [0.0] * len(params)   # 一阶矩：梯度的指数滑动平均（带方向的“动量”）
        self.v = [0.0] * len(params)   # 二阶矩：梯度平方的指数滑动平均（梯度的“尺度”）
        self.t = 0                     # 已经更新了几次

    def step(self, lr):
        if speed_tricks: return fast_adam_step(self, lr)
        self.t += 1
        for i, p in enumerate(self.params):
            self.m[i] = beta1 * self.m[i] + (1 - beta1) * p.grad            # m ← β₁·m + (1-β₁)·g
            self.v[i] = beta2 * self.v[i] + (1 - beta2) * p.grad * p.grad   # v ← β₂·v + (1-β₂)·g²
            # m、v 从 0 开始，前几步会偏小；除以 (1 - β^t) 做偏差修正 (bias correction)
            m_hat = self.m[i] / (1 - beta1 ** self.t)
            v_hat = self.v[i] / (1 - beta2 ** self.t)
            # 步长约为 lr · m̂/sqrt(v̂)：梯度方向稳定时接近 lr，忽正忽负时变小
            p.data -= lr * m_hat / (math.sqrt(v_hat) + eps_adam)
            p.grad = 0.0               # 清零，下一步重新累加


def train(state, optimizer, train_docs, tokenizer, steps):
    """训练 steps 步：每步前向 → 损失 → 反向传播 → Adam 更新。
    这是一个生成器：每做完一步就交出 (第几步, 这一步的 loss, 学习率)，显示进度、检查发散、
    响应 Ctrl-C 都由调用者（第 13 节）来做，这里只有训练本身。"""
    for step in range(steps):
        # 第 step 步学第 step 个名字（学完一轮再从头来）
        tokens = tokenizer.encode(train_docs[step % len(train_docs)])
        loss = doc_loss(state, tokens)              # 这个名字各位置的平均损失
        loss.backward()                             # 算出每个参数的 grad = ∂loss/∂参数
        lr = learning_rate * (1 - step / steps)     # 学习率从 learning_rate 线性减小，最后一步接近 0
        optimizer.step(lr)
        yield step + 1, loss.data, lr


# =============================================================================
# 7. 采样 (sampling)
# =============================================================================
# 训练好的模型给出“下一个字符”的概率；按这个概率抽一个字符，接在后面，再问下一个……直到抽到 BOS。

def sample_name(state, tokenizer, start=''):
    """编一个名字，返回它的 token 编号（不含开头的 BOS），tokenizer.decode 再把它们变回文字。
    start 是给定的开头（设置 prompt）：这几个字符照抄，模型从它们后面接着写。"""
    keys = [[] for _ in range(n_layer)]
    values = [[] for _ in range(n_layer)]
    tokens = tokenizer.encode(start)[:-1]    # 从“开始”记号出发：[BOS] + 开头的字符
    for pos in range(block_size):            # 最多 block_size 个位置
        logits = gpt(state, tokens[pos], pos, keys, values)
        if pos + 1 < len(tokens):
            continue                         # 下一个 token 是给定的开头，不用抽（也就不消耗随机数）
        # 温度：logits 先除以 T 再 softmax。T < 1 让高分更突出（保守），T > 1 让分布更平（大胆）
        probs = [p.data for p in softmax([z / temperature for z in logits])]
        if not all(map(math.isfinite, probs)):
            raise ValueError('概率不是有限的数')   # 参数大得溢出了：没法按这样的“概率”抽
        token_id = random.choices(range(tokenizer.vocab_size), weights=probs)[0]
        if token_id == tokenizer.bos:        # 模型说“名字结束了”
            break
        tokens.append(token_id)
    return tokens[1:]                        # 有 block_size 个，就是到了长度上限还没抽到 BOS


def explain_text(state, tokenizer, text):
    """采样是按概率抽一个；这里不抽，把 BOS + text 逐个位置喂给模型，记下整个概率分布和每个注意力头的权重，看模型在想什么
    （第 11、12 节把它们打印、画出来）。predictions[pos] = (softmax(logits) 的概率列表（温度 1）, 真实的下一个 token)；
    attention[pos] 按层、按头列出这个位置的注意力权重。概率不是有限的数（参数大得溢出了）时抛出 ValueError。"""
    tokens = tokenizer.encode(text)
    keys, values = [[] for _ in range(n_layer)], [[] for _ in range(n_layer)]    # KV 缓存，同 doc_losses
    predictions, attention = [], []
    for pos in range(min(block_size, len(tokens) - 1)):                          # 太长时只看前 block_size 个位置
        weights = []
        logits = gpt(state, tokens[pos], pos, keys, values, attention=weights)
        predictions.append(([p.data for p in softmax(logits)], tokens[pos + 1]))
        attention.append(weights)
    if not all(math.isfinite(p) for probs, _ in predictions for p in probs):
        raise ValueError('概率不是有限的数')
    return {'text': text, 'tokens': tokens[:len(predictions) + 1], 'cut': len(tokens) - 1 > block_size, 'predictions': predictions, 'attention': attention}


def label_samples(samples, tokenizer, train_docs, val_docs):
    """每个样本（sample_name 给的 token 编号）的文字和来历：训练集里有 / 留出集里有（真实存在，但模型从没见过）/ 新的；
    有 block_size 个 token 还没结束的标为“被截断”，重复的标出来。返回 [(文字, 标签), ...]。"""
    in_train, in_val, texts, labelled = set(train_docs), set(val_docs), [tokenizer.decode(ids) for ids in samples], []
    for i, (ids, sample) in enumerate(zip(samples, texts)):
        label = '训练集里有' if sample in in_train else '留出集里有' if sample in in_val else '新' if sample else '第一步就抽到了 BOS'
        label += '（到了长度上限 block_size，被截断）' * (len(ids) >= block_size) + '（重复）' * (bool(sample) and sample in texts[:i])
        labelled.append((sample, label))
    return labelled


# =============================================================================
# 8. 提速 (speed tricks)
# =============================================================================
# 第 3–7 节是课本写法。speed_tricks = True（默认）时，那里有几个函数第一行就把活交给这里的“快的双胞胎”：
# 算出的数和课本写法相同（逐位相同，或只差最后一位的舍入），只是 Python 要做的事少得多。
# 每个技巧都写明它代替的公式、为什么快，以及量到的收益：把这一个技巧换回课本写法、其余不变，和全部开着的
# 整个默认运行（训练 1000 步）交替各跑几次（python tests/benchmark.py --tricks），收益 = 省下的时间 / 换回后的用时。
# 数是在 2 核测试机上量的：CPython 3.11 和 PyPy 3.9 各一列；收益不到 5% 的写法不收进来（例如 softmax 的
# 融合分母只快约 2%–5%）。全部技巧合起来，默认运行比完全照课本写法快约 30 倍。
# 纯 Python 里慢的不是乘法加法本身，而是每建一个 Value 节点、每走一条边的开销；下面的技巧都是在减少它们。

def fast_dot(a, b):
    """代替 sum(a_i·b_i)：融合节点 (fused op)，整个点积只算一个节点。
    s = Σ a_i·b_i，∂s/∂a_i = b_i，∂s/∂b_i = a_i。课本写法要 n 个乘法节点加 n 个加法节点。
    收益（rmsnorm 和注意力打分里的点积）：CPython 约 18%，PyPy 约 7%。"""
    a_data = [x.data for x in a]
    b_data = [x.data for x in b]
    return Value(sum(map(operator.mul, a_data, b_data)), a + b, b_data + a_data)


def fast_linear(x, w):
    """代替 [dot(row, x) for row in w]：每个 y_i 是一个融合的点积节点，而且 x 的数值只取一次
    （x 要和 W 的每一行做点积）。收益：CPython 约 83%（课本写法慢 5 倍多），PyPy 约 52%。"""
    x_data = [xj.data for xj in x]
    out = []
    for row in w:
        row_data = [p.data for p in row]
        out.append(Value(sum(map(operator.mul, row_data, x_data)), row + x, x_data + row_data))
    return out


def float_cross_entropy(z, target):
    """交叉熵，全用普通小数（z 是 logits 的数值）：返回 (L, [∂L/∂z_j])。L = ln Σ_j e^(z_j - max) - (z_target - max)，
    和课本的 cross_entropy 是同一个式子；∂L/∂z_j = p_j - [j == target]：预测的概率减去 one-hot 的正确答案。"""
    z_max = max(z)
    exps = [math.exp(zi - z_max) for zi in z]
    total = sum(exps)
    local = [e / total for e in exps]
    local[target] -= 1.0
    return math.log(total) - (z[target] - z_max), local


def without_head(state):
    """gpt() 的最后一步是 linear(x, state['lm_head'])。把 lm_head 换成 n_embd × n_embd 的单位矩阵 I，gpt() 交出来的就是
    最后的向量 x 本身（I x = x：x_i·1 加上一串 x_j·0，逐位相同；反向传播时梯度也原样传回 x），第 5 节一行不用改。"""
    return dict(state, lm_head=[[Value(float(i == j)) for j in range(n_embd)] for i in range(n_embd)])


def fast_doc_loss(state, tokens):
    """代替 doc_loss 的课本写法：每个位置 z = W x（W 是 lm_head：V 个 logits 节点，每个 2·n_embd 条边），再一个交叉熵节点，
    最后求平均。这里整个名字的“输出层 + 交叉熵”只算一个融合节点 S = Σ_pos L_pos（L_pos 由 float_cross_entropy 算，值逐位相同），
    局部导数（d_pos = p_pos - onehot）：∂S/∂W_ij = Σ_pos d_pos,i · x_pos,j，∂S/∂x_pos,j = Σ_i d_pos,i · W_ij。
    W 的每个参数在一个名字里只有一条边（课本写法是每个位置一条），W 的数值也只取一次；梯度只差求和顺序的舍入。
    词表越大越省（每步的时间，关掉它和全开交替着量）：4,847 个 token 的成语，CPython 上每步快 1.44 倍，PyPy 上 1.85 倍；
    默认的 27 个 token，整个运行约省 4%。"""
    n = min(block_size, len(tokens) - 1)
    keys, values = [[] for _ in range(n_layer)], [[] for _ in range(n_layer)]
    body, w = without_head(state), state['lm_head']
    xs = [gpt(body, tokens[pos], pos, keys, values) for pos in range(n)]       # 每个位置最后的向量 x（Value）
    w_data = [[p.data for p in row] for row in w]
    total, xs_data, ds, dx = 0, [[xi.data for xi in x] for x in xs], [], []
    for pos, x_data in enumerate(xs_data):
        loss, d = float_cross_entropy([sum(map(operator.mul, row, x_data)) for row in w_data], tokens[pos + 1])
        total += loss                                     # 和 sum(losses) 一样，从 0 开始逐个加
        ds.append(d)
        dx += [sum(map(operator.mul, d, col)) for col in zip(*w_data)]
    dw = []
    for j in range(n_embd):                               # W 的第 j 列：Σ_pos d_pos · x_pos,j，一列一列地算
        col = [0.0] * len(w)
        for x_data, d in zip(xs_data, ds):
            col = [c + x_data[j] * di for c, di in zip(col, d)]
        dw += col
    return (1 / n) * Value(total, [p for col in zip(*w) for p in col] + [xi for x in xs for xi in x], dw + dx)


def fast_mlp(x, w_fc1, w_fc2):
    """代替 W2 · relu(W1 x)：关着的单元（relu 输出 0）乘以 W2 的任何权重都是 0，对输出和梯度毫无贡献，
    所以只把亮着的单元和 W2 里对应的那几列送进去；亮着的单元 relu(h_j) = h_j、局部导数是 1，连 relu 节点也可以省掉。
    算出的数逐位相同（x + 0.0 == x，g · 1.0 == g），图里却少了这些列的边；训练中多数单元是关着的
    （默认运行里亮着的：第 1 步约 47%，第 500–1000 步约 15%）。收益：CPython 约 21%，PyPy 约 17%。"""
    h = fast_linear(x, w_fc1)
    on = [j for j, hj in enumerate(h) if hj.data > 0]       # relu 的 “a > 0 时导数为 1” 同一个条件
    return fast_linear([h[j] for j in on], [[row[j] for j in on] for row in w_fc2])


def fast_evaluate(state, docs, tokenizer):
    """代替一个一个名字地算：位置 p 的 logits 只取决于第 0..p 个 token（因果注意力看不到后面）。
    按字母序处理名字，相邻名字常有相同的开头（mara、maria、mark……）：相同开头那几个位置的
    logits 和 KV 缓存与上一个名字完全一样，直接沿用，只从第一个不同的位置往后算。结果和一个个算相同，
    只是损失相加的顺序变了，最后一位可能有舍入差别。默认的 200 个留出名字共 1443 个位置，只需算 931 个。
    输出层和交叉熵只用普通小数算（评估不用反向传播，不必建 Value 节点），和 fast_doc_loss 一样由 without_head 拿到 x。
    收益（训练前后各评估一次）：CPython 约 5%，PyPy 约 6%。输出层用普通小数这一步，词表越大越省：成语的一次评估，
    CPython 上快 2.8 倍，PyPy 上快 7 倍（默认数据约 1.2 倍）。"""
    keys, values = [[] for _ in range(n_layer)], [[] for _ in range(n_layer)]
    logits_at, prev = [], []                     # logits_at[p]：上一个名字在位置 p 的 logits（普通小数）
    total, count = 0.0, 0
    body, w_data = without_head(state), [[p.data for p in row] for row in state['lm_head']]
    for doc in sorted(docs):
        tokens = tokenizer.encode(doc)
        n = min(block_size, len(tokens) - 1)
        same = 0                                 # 与上一个名字相同的输入位置数
        while same < min(n, len(logits_at)) and tokens[same] == prev[same]:
            same += 1
        del logits_at[same:]
        for li in range(n_layer):
            del keys[li][same:], values[li][same:]
        for pos in range(same, n):
            x_data = [xi.data for xi in gpt(body, tokens[pos], pos, keys, values)]
            logits_at.append([sum(map(operator.mul, row, x_data)) for row in w_data])
        total += sum(float_cross_entropy(logits_at[pos], tokens[pos + 1])[0] for pos in range(n))
        count += n
        prev = tokens
    return total / count


def fast_backward(loss):
    """和课本的 backward 一样先拓扑排序、再逆序累加梯度，只是不用集合 visited 记“访问过”，而把访问过的节点的
    grad 暂时设成 None（中间节点的 grad 在反向传播之前用不到），排好序再统一清零；查一个属性比查集合快。
    （所以和课本写法有一点不同：中间节点的 grad 每次都从 0 开始；参数的 grad 照样累加。）
    叶子（参数和常数，没有孩子）不进栈也不进 topo：它们没有梯度要往下传，处理父节点时梯度已直接加到它们身上。
    收益：CPython 约 28%，PyPy 约 37%。"""
    topo = []
    stack = [loss]
    while stack:
        node = stack.pop()
        if node is None:
            topo.append(stack.pop())
        elif node.grad is not None:
            node.grad = None
            stack.append(node)
            stack.append(None)
            for child in node._children:
                if child._children and child.grad is not None:
                    stack.append(child)
    for node in topo:
        node.grad = 0.0
    loss.grad = 1.0
    for node in reversed(topo):
        g = node.grad
        for child, local in zip(node._children, node._local_grads):
            child.grad += local * g


def fast_adam_step(optimizer, lr):
    """和课本的 Adam.step 公式相同（逐位相同），只是这个循环每步要跑几千次（成语有 15 万多次，每个参数一次），
    所以把常用的数先放进局部变量（Python 取局部变量比取全局变量和属性快），偏差修正也只算一次。
    收益（只量 Adam 这一步，和课本写法交替着量）：默认的 4,192 个参数，CPython 上快 4 倍（4.1 → 1.0 毫秒），
    PyPy 上快约 7 倍；成语的 158,432 个参数，CPython 上快 1.8 倍，PyPy 上快 3.5 倍。整个默认运行约省 10%。
    用列表推导式对整张列表一起算（先取出全部梯度，再算新的 m、v）看起来更“向量化”，我们也量过，反而慢：
    CPython 上慢约三成，PyPy 上慢好几倍，因为每步要新建好几张和参数一样长的列表。"""
    optimizer.t += 1
    m, v, b1, b2, eps, sqrt = optimizer.m, optimizer.v, beta1, beta2, eps_adam, math.sqrt
    a1, a2, c1, c2 = 1 - b1, 1 - b2, 1 - b1 ** optimizer.t, 1 - b2 ** optimizer.t
    for i, p in enumerate(optimizer.params):
        g = p.grad
        m[i] = m_i = b1 * m[i] + a1 * g              # m ← β₁·m + (1-β₁)·g
        v[i] = v_i = b2 * v[i] + a2 * g * g          # v ← β₂·v + (1-β₂)·g²
        p.data -= lr * (m_i / c1) / (sqrt(v_i / c2) + eps)
        p.grad = 0.0


def start_speed_tricks():
    """关掉 CPython 的循环垃圾回收器 (gc)。Python 除了引用计数，还有一个专找“循环引用”的回收器，
    每分配几百个对象就扫描一遍新对象。我们的计算图只从父节点指向孩子，没有环，一步用完后靠引用计数
    就全部释放了；每步要新建几万个对象，让回收器反复扫描它们纯属浪费。
    收益：CPython 约 22%。只在 CPython 上这样做：PyPy 没有引用计数，它的回收器是唯一释放内存的办法，
    关掉它内存只涨不降（我们量过：PyPy 上训练 300 步就到了约 730 MB）。"""
    if speed_tricks and platform.python_implementation() == 'CPython':
        gc.disable()


# =============================================================================
# 9. 子词分词：字节级 BPE (subword tokenizer)
# =============================================================================
# 字符级分词（第 2 节）里每个字是一个 token。成语有四千多个不同的字，每个字都要学一个向量、在输出层打一个分数，
# 罕见的字几乎学不到。BPE (byte pair encoding，字节对编码) 换一种思路，设置 tokenizer = 'bpe' 时用它：
#   1. 把文字变成 UTF-8 字节：英文字母 1 个字节，一个汉字 3 个字节，例如“一” = e4 b8 80。
#      起始词表 = 数据里出现过的字节，从小到大编号 0, 1, 2, ……
#   2. 在训练集里数相邻的两个 token 一起出现了几次，把最常见的一对合并 (merge) 成一个新 token，编号接着往后排：
#      e4 b8 常挨在一起，就有了新 token <e4 b8>；再合并 <e4 b8> 和 80，就得到“一”。
#   3. 重复 bpe_merges 次。常见的字（合并再多些，常见的词）变成一个 token；罕见的字仍由几段字节拼成。
#   最后加上 BOS，编号排在最后，和字符级分词一样。数据全是 ASCII（英文名字）而且 bpe_merges = 0 时，
#   一个字节就是一个字符，编号和字符级分词完全相同。
# 编码 (encode)：文字 → 字节 → 按学到的先后做这些合并。解码 (decode)：把每个 token 的字节连起来。

def merge_pair(ids, pair, new_id):
    """从左往右，把每一处相邻的 pair 换成 new_id：[1, 2, 3, 1, 2], (1, 2), 9 → [9, 3, 9]。
    一样的 token 连着三个时（a a a），只合并左边两个：(aa) a。"""
    out = []
    for token in ids:
        if out and (out[-1], token) == pair:
            out[-1] = new_id                # 前一个和这一个正好是 pair：把前一个换成新 token
        else:
            out.append(token)
    return out


def learn_merges(seqs, num_merges, first_id):
    """在 seqs（每篇训练文档的 token 列表，会被改写成合并后的样子）上学最多 num_merges 个合并，返回 [(a, b), ...]：
    第 k 个合并造出的 token 编号是 first_id + k。出现最多的一对先合并；一样多时选 (a, b) 最小的一对。
    每合并一次就把全部文档重数一遍，3 万个成语、几百次合并，纯 Python 太慢。其实一次合并只改变含有这一对的文档，
    所以一直记着 counts[对]（在全部训练文档里出现几次）和 where[对]（出现过它的文档；只加不删，多记的文档
    合并时什么也不变，只是白算一次）。合并时只重数 where[对] 里的文档：减掉它旧的相邻对，再加上新的。"""
    counts, where, merges = collections.Counter(), collections.defaultdict(set), []
    for doc_index, seq in enumerate(seqs):
        for pair in zip(seq, seq[1:]):     # 只数同一篇文档里的相邻对：不跨文档，也不算 BOS
            counts[pair] += 1
            where[pair].add(doc_index)
    while len(merges) < num_merges and counts:
        pair = min(counts, key=lambda p: (-counts[p], p))       # 出现最多的一对；一样多时选 (a, b) 最小的
        if counts[pair] < 2:               # 只出现一次的对不合并：它只是在背某一篇文档
            break
        merges.append(pair)
        for doc_index in where.pop(pair):
            old = seqs[doc_index]
            new = seqs[doc_index] = merge_pair(old, pair, first_id + len(merges) - 1)
            counts.subtract(zip(old, old[1:]))     # 这篇文档旧的相邻对全部减掉……
            counts.update(zip(new, new[1:]))       # ……再把新的相邻对加回来
            for p in zip(new, new[1:]):
                where[p].add(doc_index)
    return merges


class BPETokenizer:
    def __init__(self, base_bytes, merges):
        """base_bytes：起始字节（0–255 的整数，从小到大），编号 0..B-1；merges：学到的合并 [(a, b), ...]。
        读回的模型把文件里存的这两个列表传进来，就得到同一个分词器，不用重新学。"""
        self.base_bytes, self.merges = list(base_bytes), [tuple(pair) for pair in merges]
        self.byte_to_id = {b: i for i, b in enumerate(self.base_bytes)}
        self.merge_to_id = {pair: len(self.base_bytes) + k for k, pair in enumerate(self.merges)}   # 第 k 个合并造出的 token 的编号
        self.pieces = [bytes([b]) for b in self.base_bytes]      # 每个编号代表的字节
        for a, b in self.merges:                                 # 合并出的 token 的字节 = 两半的字节连起来
            self.pieces.append(self.pieces[a] + self.pieces[b])
        self.bos, self.vocab_size = len(self.pieces), len(self.pieces) + 1

    def unknown_chars(self, text):
        """text 里编不了码的字符：它有字节不在起始词表里。"""
        return sorted(ch for ch in set(text) if any(b not in self.byte_to_id for b in ch.encode('utf-8')))

    def encode(self, doc):
        """'一丁不识' → [BOS, ..., BOS]。有编不了码的字符时抛出 KeyError，和字符级分词一样（所以先用 unknown_chars 查）。
        按学到的先后做合并：每次找序列里最早学到的那一对（新编号最小），把它全部合并，直到没有能合并的对。
        这和把每个合并按顺序试一遍结果相同：合并只会造出含新 token 的对，它们都比刚做的合并学得晚。"""
        ids = [self.byte_to_id[b] for b in doc.encode('utf-8')]
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: self.merge_to_id.get(p, self.bos))   # 不是合并的对排在最后
            if pair not in self.merge_to_id:
                break
            ids = merge_pair(ids, pair, self.merge_to_id[pair])
        return [self.bos] + ids + [self.bos]

    def decode(self, ids):
        """把字节连起来，按 UTF-8 解码；不完整或不合法的字节变成替换字符 �（U+FFFD）。"""
        return b''.join(self.pieces[i] for i in ids if i != self.bos).decode('utf-8', errors='replace')


def make_tokenizer(docs, train_docs, ckpt):
    """按设置 tokenizer 建分词器；读回的模型用它自己存的那一个（第 10 节的 check_checkpoint 已经核对过）。
    BPE 的起始字节来自全部数据（和字符级分词的字符表一样），合并只在训练集上数。学合并超过 1 秒就说一声用了多久。"""
    if ckpt and 'tokenizer' in ckpt:
        return BPETokenizer(ckpt['tokenizer']['bytes'], ckpt['tokenizer']['merges'])
    if ckpt or globals()['tokenizer'] == 'char':
        return Tokenizer(ckpt['vocabulary'] if ckpt else docs)
    started, base = time.perf_counter(), BPETokenizer(sorted(set(''.join(docs).encode('utf-8'))), [])
    seqs = [base.encode(doc)[1:-1] for doc in train_docs]                  # 还没有合并：一个字节一个 token
    bpe = BPETokenizer(base.base_bytes, learn_merges(seqs, bpe_merges, len(base.base_bytes)))
    if time.perf_counter() - started > 1:
        say(f'学 BPE 合并用了 {time.perf_counter() - started:.1f} 秒（学到 {len(bpe.merges)} 个）。')
    return bpe


def tokenizer_record(tok):
    """模型文件里记分词器的那几项：字符级是字符表 "vocabulary"；BPE 是起始字节和合并 "tokenizer"。"""
    return ({'tokenizer': {'kind': 'bpe', 'bytes': tok.base_bytes, 'merges': [list(pair) for pair in tok.merges]}} if isinstance(tok, BPETokenizer)
            else {'vocabulary': tok.chars})


def check_tokenizer(ckpt, expect):
    """核对模型文件里的分词器（不对就用 check_checkpoint 的 expect 说哪里不对），返回它的 vocab_size。"""
    if 'tokenizer' not in ckpt:            # 字符级；落单的代理码位 (\ud800–\udfff) 不是真正的字符，也没法写回 UTF-8
        vocab = ckpt['vocabulary']
        expect(vocab and vocab == sorted(set(vocab)) and all(len(c) == 1 and not '\ud800' <= c <= '\udfff' for c in vocab),
               '"vocabulary" 应该是按顺序排好、互不相同的单个字符组成的列表')
        return len(vocab) + 1
    base, merges = ckpt['tokenizer']['bytes'], [tuple(pair) for pair in ckpt['tokenizer']['merges']]
    expect(ckpt['tokenizer']['kind'] == 'bpe' and base and base == sorted(set(base)) and all(type(b) is int and 0 <= b < 256 for b in base)
           and len(set(merges)) == len(merges) and all(len(p) == 2 and all(type(t) is int and 0 <= t < len(base) + k for t in p) for k, p in enumerate(merges)),
           '"tokenizer" 应该有 "kind": "bpe"、从小到大互不相同的字节 "bytes"（0–255），和只用前面已有的 token 的合并 "merges"')
    return len(base) + len(merges) + 1


def token_names(tok):
    """每个 token 显示成什么（按编号，BOS 在最后）：它代表的文字（看不见的字符写成 \\x1b 这样的转义）；
    BPE 里只是半个字的 token 显示成它的字节，例如 <e4 b8>。BOS 写成“.”，数据里本来就有“.”时写成“¶”。"""
    pieces = tok.pieces if isinstance(tok, BPETokenizer) else [ch.encode('utf-8') for ch in tok.chars]   # 每个 token 的字节
    texts = [piece.decode('utf-8', errors='ignore') for piece in pieces]                                 # 拼不成字的字节被丢掉
    return [visible(text) if text.encode('utf-8') == piece else f'<{piece.hex(" ")}>' for text, piece in zip(texts, pieces)] + ['.' if b'.' not in pieces else '¶']


def byte_note(tok, text):
    """BPE 编出的样本可能停在一个字的中间（或者中间有拼不成字的字节）：解码时它们变成 �，这里给样本的标签加一句说明。"""
    if isinstance(tok, Tokenizer) or '\ufffd' not in text:
        return ''
    return '（最后一个字不完整）' if text.index('\ufffd') == len(text) - 1 else '（有拼不成字的字节，显示成 �）'


def vocab_text(tok):
    """概览里的词表：字符级列出字符；BPE 给出起始字节、合并的个数，和几个最长的合并当例子。"""
    if isinstance(tok, Tokenizer):
        return f'{tok.vocab_size} 个 token = {len(tok.chars)} 个字符 + 1 个 BOS；字符：{shown_value("".join(tok.chars))}'
    longest = sorted(range(len(tok.base_bytes), tok.bos), key=lambda i: (-len(tok.pieces[i]), i))[:8]
    return (f'{tok.vocab_size} 个 token = {len(tok.base_bytes)} 个字节 + {len(tok.merges)} 个合并 + 1 个 BOS；'
            f'最长的合并：{" ".join(token_names(tok)[i] for i in longest) or "（没有）"}')


def chars_per_position(tok, docs):
    """每字符的损失要乘的比例：(位置数) / (这些位置的目标里的字符数，结尾的 BOS 算一个字符)。
    每个 token 的损失不能在分词器之间比：一个 BPE token 可能是几个字，也可能是半个字。
    每个字符的损失 = 一个名字的 token 损失之和 / (它的字符数 + 1)，加总起来就是每 token 的损失乘这个比例。
    字符级分词里一个位置就是一个字符，比例正好是 1。被 block_size 截断的名字只算看到的目标（半个字算一个）。"""
    targets = [tok.encode(doc)[1:block_size + 1] for doc in docs]          # 每个名字训练时看到的目标
    return sum(map(len, targets)) / sum(len(tok.decode(t)) + (tok.bos in t) for t in targets)


# =============================================================================
# 10. 保存和加载模型 (checkpoint)
# =============================================================================
# 模型文件 (checkpoint) 是一个 JSON 文本文件：形状设置、词表、每个矩阵的全部数字、Adam 的状态、
# 训练了多少步、最后的留出集损失，以及训练用的数据（文件名和指纹）。用 JSON 而不用 pickle：读 pickle
# 会执行文件里的代码，别人给的 pickle 可能有害；JSON 只有数据，用任何编辑器都能打开看那些数字。
# Python 把小数写成 JSON 时用最短的能精确还原的写法，所以读回的参数和存进去的逐位相同。
# 写文件的规矩也都在这一节（网页也照它写）：先写临时文件再一步换上；不覆盖不是我们写的文件；
# 要被换掉的文件可能比新的更值得留（更好的模型、训练期间别人存到这里的文件）时，先在旁边留一份备份。

CHECKPOINT_FORMAT = 'microgpt-teaching-checkpoint'
CHECKPOINT_VERSION = 1
SHAPE_SETTINGS = ('n_layer', 'n_embd', 'n_head', 'block_size')


def shape_problem(n_layer, n_embd, n_head, block_size, changed=()):
    """形状设置不成立的第一个原因（一句话）；都成立就返回 None。第 0 节和命令行的设置（第 13 节）、
    读回的模型文件（check_checkpoint）都用它检查。该怪的是命令行上改过的那个设置（changed 里的）；
    第 0 节里的值不知道是哪一个改过，就把两种改法都说出来。"""
    for name, value, least in (('n_layer', n_layer, 1), ('n_embd', n_embd, 1), ('n_head', n_head, 1), ('block_size', block_size, 2)):
        if value < least:
            return f'设置 {name} = {value} 不合法：它至少是 {least}' + ('（模型至少要看到“开头”和一个字符）' if name == 'block_size' else '')
    # 先看大小：大得离谱的模型（比如 n_embd=10**12），该说的是“太大了”，而不是它能不能被 n_head 整除。
    # 估计内存和每步的时间（常数是在默认模型上量的，取整留了余地）：一个参数约 200 字节（Value 对象加上
    # Adam 的 m、v）；一步最多 block_size 个位置，每个位置每个参数约两条边，每条边约 40 字节、0.2 微秒
    params = block_size * n_embd + n_layer * 12 * n_embd ** 2          # 不算词表那几行：它们要看数据
    edges = 2 * block_size * params
    gigabytes, seconds = (200 * params + 40 * edges) / 1e9, 2e-7 * edges
    if gigabytes > 4 or seconds > 60:
        name = next((n for n in ('n_layer', 'n_embd', 'block_size') if n in changed), 'n_embd')
        return f'设置 {name} = {locals()[name]} 不合法：这样的模型约有 {params:.3g} 个参数，训练时约要 {gigabytes:.3g} GB 内存，纯 Python 一步约 {seconds:.3g} 秒（上限是 4 GB、60 秒）。请把 n_layer、n_embd 或 block_size 调小'
    if n_embd % n_head:
        heads, embds = '、'.join(str(d) for d in range(1, 17) if n_embd % d == 0), f'{n_head}、{2 * n_head}、{3 * n_head} 这样的数'
        if 'n_head' in changed and 'n_embd' not in changed:
            return f'设置 n_head = {n_head} 不合法：n_embd = {n_embd} 必须能被 n_head 整除，n_head 可以取 {heads}'
        if 'n_embd' in changed and 'n_head' not in changed:
            return f'设置 n_embd = {n_embd} 不合法：n_embd 必须能被 n_head = {n_head} 整除，n_embd 可以取 {embds}'
        return f'设置 n_embd = {n_embd} 和 n_head = {n_head} 合不来：n_embd 必须能被 n_head 整除。改 n_head 的话可以取 {heads}；改 n_embd 的话可以取 {embds}'
    return None                            # 都成立


def checkpoint_json(state, optimizer, record):
    """模型文件的全部内容（JSON 文本）：都从这次运行的 record 里读。矩阵按名字存，每行一个列表。"""
    def by_name(numbers):                  # 一个与 flatten(state) 同序的数字列表 → 按矩阵名字排好的行
        it = iter(numbers)
        return {name: [[next(it) for _ in row] for row in mat] for name, mat in state.items()}

    val_loss, data = record['losses'].get('after'), record['data']
    checkpoint = {'format': CHECKPOINT_FORMAT, 'version': CHECKPOINT_VERSION, 'settings': {name: globals()[name] for name in SHAPE_SETTINGS},
                  **record['model']['tokenizer'],           # 分词器：字符表 vocabulary，或 BPE 的字节和合并（第 9 节）
                  'data': {'file': data['file'], 'fingerprint': data['fingerprint']}, 'steps_trained': record['model']['steps_before'] + len(record['step_losses']),
                  'val_loss': val_loss if is_number(val_loss) else None,   # JSON 里没有 NaN
                  'params': by_name(p.data for p in optimizer.params), 'adam': {'t': optimizer.t, 'm': by_name(optimizer.m), 'v': by_name(optimizer.v)}}
    text = json.dumps(checkpoint, ensure_ascii=False, indent=1)
    # indent 会把每个数字单独放一行；把纯数字的列表收回一行，矩阵就是一行一行的，打开来好读
    return re.sub(r'\[\s+([^\[\]{}"]*?)\s+\]', lambda m: '[' + ' '.join(m.group(1).split()) + ']', text)


def write_atomically(path, text):
    """先写到同一个文件夹里的临时文件，写完再用 os.replace 一步换上：中途出错或被打断，
    原来在 path 的文件（比如上一次存的模型）原封不动，也不会留下写了一半的文件。
    临时文件名很短（.进程号.纳秒数.tmp），所以只要 path 本身的名字不太长，它就建得出来。"""
    tmp = os.path.join(os.path.dirname(path), f'.{os.getpid()}.{time.time_ns()}.tmp')
    try:
        with open(tmp, 'x', encoding='utf-8') as f:   # 'x'：只新建文件；它的权限和普通的新文件一样（按 umask）
            if os.path.exists(path):       # 替换一个文件时保留它原来的权限（例如只有自己能读的 600）
                os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
            f.write(text)
            f.flush()
            os.fsync(f.fileno())           # 确认数据真的写到了磁盘上，再换名
        os.replace(tmp, path)              # 同一文件夹内换名：在 POSIX 上是原子的，要么旧文件，要么新文件
    except BaseException:
        with contextlib.suppress(OSError):  # 临时文件可能根本没建出来
            os.unlink(tmp)
        raise


def is_number(x):
    """有限、不大得离谱的数（JSON 里 true/false 不算数）。比较对 NaN 永远不成立，所以 NaN 也被挡住。"""
    return type(x) in (int, float) and -1e300 < x < 1e300


def is_count(x):
    """不小于 0 的整数，而且不大得离谱。"""
    return type(x) is int and 0 <= x < 2 ** 53


def check_checkpoint(ckpt):
    """核对读进来的 JSON 是一个完整、自洽的模型文件；不是就说出第一个问题在哪里。
    按结构逐项核对；结构本身不对（缺一项、列表写成了数字……）的，由最后那一个 except 统一说明。"""
    def expect(ok, problem):
        if not ok:
            raise UserError(problem, 1)

    expect(isinstance(ckpt, dict) and ckpt.get('format') == CHECKPOINT_FORMAT, f'它不是 microGPT 教学版存的模型文件（没有 "format": "{CHECKPOINT_FORMAT}"）')
    expect(ckpt.get('version') == CHECKPOINT_VERSION, f'它是第 {shown_value(ckpt.get("version"))} 版的格式，这个脚本只认识第 {CHECKPOINT_VERSION} 版')
    where = 'settings'
    try:
        shape = ckpt['settings']
        expect(sorted(shape) == sorted(SHAPE_SETTINGS) and all(map(is_count, shape.values())), f'"settings" 应该正好有 {", ".join(SHAPE_SETTINGS)}，都是正整数')
        problem = shape_problem(**shape)
        expect(not problem, f'"settings" 不成立：{problem}')
        where = 'tokenizer' if 'tokenizer' in ckpt else 'vocabulary'
        vocab_size = check_tokenizer(ckpt, expect)               # 第 9 节：字符表，或 BPE 的字节和合并
        where, wte_rows = 'params', len(ckpt['params']['wte'])
        expect(wte_rows == vocab_size, f'"{"tokenizer" if "tokenizer" in ckpt else "vocabulary"}" 说词表有 {vocab_size} 个 token（含 BOS），矩阵 wte 却有 {wte_rows} 行：词表被改过了')
        where = 'steps_trained、val_loss、adam'
        expect(is_count(ckpt['steps_trained']) and is_count(ckpt['adam']['t']) and (ckpt['val_loss'] is None or is_number(ckpt['val_loss'])),
               '"steps_trained" 和 "adam" 里的 "t" 应该是不小于 0 的整数，"val_loss" 应该是一个有限的数字（或 null）')
        shapes = param_shapes(vocab_size, shape['n_layer'], shape['n_embd'], shape['block_size'])
        for where, mats in (('params', ckpt['params']), ('adam.m', ckpt['adam']['m']), ('adam.v', ckpt['adam']['v'])):
            expect(sorted(mats) == sorted(shapes), f'"{where}" 里的矩阵对不上：缺少 {sorted(set(shapes) - set(mats)) or "无"}，多出 {shown_value(sorted(set(mats) - set(shapes)))}')
            for name, (n_rows, n_cols) in shapes.items():
                expect(len(mats[name]) == n_rows and all(len(row) == n_cols for row in mats[name]), f'"{where}" 里的矩阵 {name} 应该是 {n_rows} 行 × {n_cols} 列')
                expect(all(is_number(x) and (where != 'adam.v' or x >= 0) for row in mats[name] for x in row), f'"{where}" 里的矩阵 {name} 有不是数字、大得离谱（NaN、Infinity、1e308……）或不该是负数的值')   # adam.v 是梯度平方的平均
        where, data = 'data', ckpt.get('data') or {'file': '', 'fingerprint': ''}
        expect(type(data['file']) is str and type(data['fingerprint']) is str, '"data" 应该有文件名 "file" 和指纹 "fingerprint"')
    except (KeyError, TypeError, AttributeError, IndexError):
        raise UserError(f'"{where}" 这一项缺了东西，或者不是应有的样子（列表、字典、数字放错了地方）', 1) from None


def load_checkpoint(path):
    """读模型文件并检查；任何问题都变成一句中文说明（退出码 1），说明前面是文件的路径。"""
    text = read_text(path, '模型文件', 'load_path')
    try:
        ckpt = json.loads(text)
        check_checkpoint(ckpt)
    except (ValueError, RecursionError):             # 不是 JSON；或位数多得离谱的整数、嵌套深得离谱的列表
        raise UserError(f'模型文件 {shown_path(path)} 不是合法的 JSON：可能只复制了一部分（文件在中途断了），也可能根本不是这个脚本存的模型文件（或者里面有位数太多的数字、嵌套太深的列表）。请重新保存一次。', 1) from None
    except UserError as e:                           # check_checkpoint 找到的问题：前面加上文件的路径
        raise UserError(f'模型文件 {shown_path(path)} 有问题：{e}', 1) from None
    return ckpt


def restore(ckpt, state, optimizer):
    """把模型文件里的数字按矩阵名字填进已经建好的参数（形状相同）和 Adam 的状态里；返回它训练过的步数。"""
    def flat(mats):                        # 与 flatten(state) 相同的顺序：按 state 里矩阵的顺序、按行、按列
        return [float(x) for name in state for row in mats[name] for x in row]

    for p, x in zip(optimizer.params, flat(ckpt['params'])):
        p.data = x
    optimizer.m, optimizer.v, optimizer.t = flat(ckpt['adam']['m']), flat(ckpt['adam']['v']), ckpt['adam']['t']
    return ckpt['steps_trained']


# ---- 写文件：不覆盖别人的文件，更值得留的旧文件留一份备份 ----

def existing_checkpoint(path):
    """path 上已有的文件若是一个完好的模型文件（load_checkpoint 读得通），返回它的内容；否则返回 None。
    坏了一半的模型文件也不算：它可能是你想留着修的，不能悄悄盖掉。"""
    with contextlib.suppress(UserError):
        return load_checkpoint(path)


def backup_name(path):
    """path 旁边还没被占用的备份名：path.bak、path.bak2、path.bak3……"""
    return next(name for name in itertools.chain([path + '.bak'], (f'{path}.bak{n}' for n in itertools.count(2))) if not os.path.lexists(name))


def keep_backup(path):
    """让 path 上的文件在旁边一个还没被占用的名字下也有一份，返回这个名字。"""
    backup = backup_name(path)
    try:
        os.link(path, backup)              # 硬链接：不复制数据，磁盘满了也做得到，也不会停在复制了一半的时候
    except OSError:                        # 不支持硬链接的文件系统（例如 FAT 格式的 U 盘）：复制一份，连权限一起
        shutil.copy2(path, backup)
    return backup


def replace_file(setting, text, why_keep):
    """把 text 写到设置 setting 给的路径。那里原来有文件、而且 why_keep(路径) 说出了留着它的理由时（它不是我们写的：
    比如训练期间有人在那里存了一篇文章；或者它是一个更好的模型），先留一份备份。
    同一时刻，一个文件夹里只有一个 microGPT 在换文件：两次运行同时往同一个路径存模型，后存的那个会等先存的存完，
    读到它，再决定要不要留备份，更好的模型就不会丢。锁用 fcntl.flock 加在文件夹上（POSIX 才有；Windows 上不加锁）。
    返回 (路径, 备份名, 理由)；原来没有文件时理由是 None，有文件但不留备份时是 ''。"""
    path = script_dir_path(globals()[setting])
    lock = os.open(os.path.dirname(path), os.O_RDONLY) if fcntl else None
    try:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)   # 别的 microGPT 正在这里换文件时，等它换完
        why = why_keep(path) or '' if os.path.lexists(path) else None
        backup = keep_backup(path) if why else None
        write_atomically(path, text)
    finally:
        if lock is not None:
            os.close(lock)                 # 关掉文件描述符，锁也就放开了
    return path, backup, why


def why_keep_model(record):
    """一个函数：说出 path 上原来的文件为什么值得留一份备份；这次的模型明确更好时返回 None。“明确更好”要求
    这次真的训练了、没有爆炸，两个模型都有留出集损失、这次的不更高。没有留出集（val_size=0、数据不到 10 行）
    就比不了：这时总留备份。"""
    def why_keep(path):
        old, new = existing_checkpoint(path), record['losses'].get('after')
        if old is None:
            return '它不是完好的模型文件'
        if record['step_losses'] and not training_exploded(record) and is_number(old['val_loss']) and is_number(new) and new <= old['val_loss']:
            return None
        return f'这次的模型不一定更好：留出集损失原来 {loss_text(old["val_loss"])}，这次 {loss_text(new)}；原来训练了 {old["steps_trained"]} 步，这次训练了 {len(record["step_losses"])} 步' + \
            ('，而且这次训练爆炸了' if training_exploded(record) else '')
    return why_keep


def save_model(state, optimizer, record):
    """存模型，并告诉你存到了哪里、原来的文件留在哪里、下次怎样读回它。"""
    try:
        target, backup, why = replace_file('save_path', checkpoint_json(state, optimizer, record), why_keep_model(record))
    except OSError as e:
        raise UserError(f'保存模型到 {shown_path(script_dir_path(save_path))} 失败（{e.strerror}）。原来在那里的文件没有被改动。', 1) from None
    stopping['saved'] = True
    say_saved('模型', target, backup, why)
    data_arg = f' --input_path={quoted(script_dir_path(input_path))}' if record['settings']['input_path'][1] == 'cli' else ''
    say('下次可以用这条命令读回它直接采样：')
    print(f'  {command_prefix()} --load_path={quoted(target)}{data_arg} --num_steps=0')


def say_saved(what, target, backup, why, note='。'):
    """说存到了哪里；原来那里的文件留了备份的话，说留在哪里、为什么，再给一条照抄就能换回来的命令。"""
    say(f'\n{what}已保存到 {shown_path(target)}' + ('，替换了原来的文件。' if why == '' else note))
    if backup:
        say(f'原来那里的文件已另存为 {shown_path(backup)}（{why}）。')
        say('想换回来，运行：')
        print(f'  {"move" if os.name == "nt" else "mv"} {quoted(backup)} {quoted(target)}')


# =============================================================================
# 11. 看模型内部 (inspecting the model)
# =============================================================================
# 模型“想”的是什么：每个位置它给下一个字符打多少概率、每个注意力头在看哪些位置、
# 训练时损失怎么下降，以及它比几个简单的对照好多少。这些都只读模型，不改参数，也不消耗随机数。
# 算出的数都记进这次运行的 record（第 13 节）；终端的报告和网页（第 12 节）读的是同一份 record，所以两边的数相同。

def explain_report(ex, names, width=80):
    """--explain 打印的内容（一组文字行）：逐位置的预测，然后每层每个头的注意力表。表和横条不超过 width 列；
    说明文字由打印它的人按终端宽度折行。ex 是第 7 节 explain_text 的结果，names 是每个 token 的显示名（token_names）。"""
    tokens, predictions = ex['tokens'], ex['predictions']
    name_width = max(2, max(map(display_width, names)))        # BPE 的半个字显示成 <e4 b8>，比一个字宽
    lines = [f'模型怎么读 {visible(repr(ex["text"]))}（“{names[-1]}”代表 BOS：开头是“开始”，最后是“结束”）：']
    if ex['cut']:
        lines.append(f'注意：它比上下文长度 block_size={block_size} 长，只看前 {block_size} 个位置。')
    losses = [-math.log(probs[target]) if probs[target] > 0 else math.inf for probs, target in predictions]
    for pos, (probs, target) in enumerate(predictions):
        rank = 1 + sum(1 for p in probs if p > probs[target])
        lines.append(f'位置 {pos}：已看到 {"".join(names[t] for t in tokens[:pos + 1])}，真实的下一个是 {names[target]}：概率 {100 * probs[target]:.1f}%，排第 {rank}，损失 {losses[pos]:.2f}')
        for i in sorted(range(len(probs)), key=lambda i: -probs[i])[:5]:
            lines.append(f'    {pad(names[i], name_width)} {100 * probs[i]:5.1f}% {bar(probs[i], min(30, width - 23 - name_width))}' + '  ← 真实' * (i == target))
    lines.append(f'平均损失 {sum(losses) / len(losses):.4f}（{len(losses)} 个位置）')
    # 注意力表：行是“正在预测的位置”（query），列是它能看到的位置（key，只有自己和之前的）。每格是百分数加一个深浅块，
    # 至少 4 列，token 的名字更宽时（<e4 b8>）跟着变宽；行标签占一格再加一个空格，所以 width 列放得下 (width - cell - 1) // cell 格
    cell = max(4, 1 + max(display_width(names[t]) for t in tokens))
    cols = max(1, min(len(predictions), (width - cell - 1) // cell))
    labels = [pad(names[t], cell, right=True) for t in tokens[:cols]]
    for li in range(n_layer):
        for h in range(n_head):
            lines += ['', f'第 {li} 层第 {h} 个头的注意力（每行和为 100%；行：正在读的 token，列：它看的 token）', ' ' * (cell + 1) + ''.join(labels)]
            for pos in range(cols):
                row = ex['attention'][pos][li * n_head + h]    # 这个位置、这一层这个头的权重
                lines.append(labels[pos] + ' ' + ''.join(f'{round(100 * w):{cell - 1}d}{" ░▒▓█"[min(4, int(w * 5))]}' for w in row))
    if cols < len(predictions):
        lines.append(f'（终端只放得下 {cols} 格：注意力表只画了前 {cols} 个位置。终端再宽一些就能看到全部。）')
    return lines


def number_label(value, decimals=3):
    """刻度上的数、困惑度：平常几位小数；特别大（训练爆炸时）就用科学记数法，免得一个数写出几十位。"""
    return f'{value:.{decimals}f}' if abs(value) < 1e4 else f'{value:.2e}'


def loss_text(loss):
    """损失的写法，终端和网页处处都用它：平常 4 位小数；大得离谱时（训练爆炸）用科学记数法，一行才放得下；
    没有这个数（None）时写“—”。"""
    return '—' if loss is None else number_label(loss, 4)


def loss_rows(record):
    """留出集损失表的各行：(标签, 损失)，都从 record 里读。终端的报告和网页用的是同一张表。"""
    losses, trained = record['losses'], bool(record['step_losses'])
    untrained = '读回的模型（这次没再训练）' if record['model']['loaded_from'] else '没有训练的模型（随机参数）'
    rows = [('训练前', losses['before']), ('训练后', losses['after'])] if trained else [(untrained, losses['after'])]
    return rows + [(f'对照：均匀猜测 ln({record["model"]["vocab_size"]})', losses['uniform']), ('对照：二元语法模型', losses['bigram'])]


# 读数字的门槛。默认运行离它们都很远，所以默认运行不会打印任何提醒。
EXPLODED_FACTOR = 2.0       # 留出集损失超过 2·ln V（比均匀乱猜差一倍以上）：不是“学得不好”，是数值爆炸了
NO_LEARNING_MARGIN = 0.1    # 训练后的留出集损失离均匀乱猜 ln V 不到 0.1：模型几乎什么都没学到
MANY_PASSES = 10            # 把训练集从头到尾过了 10 遍以上：小数据上这足够把每一行背下来
SHORT_RUN = 100             # 少于 100 步：每步只学一个名字，这么几步还学不到什么


def exploded(loss, vocab_size):
    """损失大于 2·ln V（比均匀乱猜差一倍以上），或者根本不是数（NaN）：训练爆炸了。"""
    return not loss <= EXPLODED_FACTOR * math.log(vocab_size)


def training_exploded(record):
    """这次训练爆炸了没有：看训练后的留出集损失；没有留出集时，看最后 10% 的步（至少一步）训练损失的平均。"""
    steps, after = record['step_losses'], record['losses'].get('after')
    tail = steps[-max(1, len(steps) // 10):]
    return bool(steps) and exploded(sum(tail) / len(tail) if after is None else after, record['model']['vocab_size'])


def diagnose(before, after, steps, train_docs, val_docs, vocab_size):
    """读训练前后的数字，像老师一样告诉你可能发生了什么、可以试什么。没发现问题就返回空列表。"""
    notes, uniform, passes = [], math.log(vocab_size), steps / len(train_docs)      # passes：训练集平均被看了几遍
    if steps and exploded(after, vocab_size):      # 这次没训练（读回的模型）就谈不上“训练爆炸”
        return [f'留出集损失 {loss_text(after)} 远大于均匀乱猜的 {uniform:.2f}：训练“爆炸”了——每一步走得太远，参数被推到了很离谱的地方。请把 learning_rate 调小（现在是 {learning_rate}）。']
    # 没学到：离均匀乱猜不到 0.1，而且没比训练前好（步数太少时，略差一点也是“没学到”，不是过拟合）
    if steps and abs(after - uniform) < NO_LEARNING_MARGIN and (before >= after or steps < SHORT_RUN):
        why = f'训练只有 {steps} 步（num_steps={steps}），太短了：试试 --num_steps=1000' if steps < SHORT_RUN else f'学习率 learning_rate={learning_rate} 可能太小：每一步几乎没动参数，试试调大 learning_rate，或者加大 num_steps'
        notes.append(f'训练后的留出集损失 {after:.4f} 和均匀乱猜的 {uniform:.4f} 差不多：模型几乎什么都没学到。{why}。')
    if passes >= 1 and (after > before or after > uniform) and not notes:    # 已经说了“没学到”，就不再说过拟合
        notes.append(f'留出集损失{"比训练前还高" if after > before else "比均匀乱猜还高"}（{loss_text(before)} → {loss_text(after)}）：模型在训练集上学到的东西，对没见过的数据不管用。这通常是过拟合 (overfitting)：它把训练数据背了下来，而不是学到规律。')
    if passes > MANY_PASSES:
        notes.append(f'训练把 {len(train_docs)} 行训练数据平均看了 {passes:.0f} 遍：数据这么少，模型很容易把它们背下来（编出的样本多半是训练集里的原样）。可以试：减少 num_steps、多找些数据、或者用小一点的模型（n_embd、n_layer）。')
    unseen = sorted(set(''.join(val_docs)) - set(''.join(train_docs)))
    if unseen:
        notes.append(f'留出集里有 {len(unseen)} 个字符在训练数据里从没出现过（例如 {shown_value("".join(unseen[:10]))}）：模型在训练中从没见过它们，给不出像样的概率，留出集损失因此偏高。数据越多，这种情况越少。')
    return notes


# =============================================================================
# 12. 网页：把这次运行画出来 (html page)
# =============================================================================
# 终端里印数字和表；图都画在网页上。page_html(record) 把这次运行记下的数字（run() 填好的 record）
# 写成一个独立的 HTML 文件：这次运行一览、损失曲线、模型读一段文字时的预测和注意力、
# token 嵌入的二维地图、第 3 节例子的计算图。图都是手写的 SVG：一种用文字描述图形的格式
# （<line> 画线、<rect> 画矩形、<circle> 画圆、<text> 写字……），所以这一节也是一堂小课：
# 怎样把数字变成坐标。页面不用 JavaScript，也不从网上取任何东西，离线双击就能打开；
# 鼠标停在格子或点上，浏览器会显示 <title> 里的精确数值。
# page_html 只读 record：不碰模型，也不抽随机数，同样的 record 永远画出同样的页面；终端的报告读的也是它，
# 所以两边的数相同。

# 页面里的这一行记着整页（这一行里的 {} 写成空）的 SHA-256：只有它对得上，才是本程序画的、之后没被改过的网页，
# 才允许直接覆盖它。光有一行标记不算数：任何文字（比如一篇笔记）都可能引用这一行。
PAGE_MARK = '<meta name="generator" content="microgpt_teaching.py {}">'
MAX_MAP_POINTS = 150        # 嵌入地图最多画多少个字符（汉字数据的词表有几千个，全画上只是一团墨）
VOWELS = set('aeiouAEIOU')  # 嵌入地图里单独上色，看训练后元音是不是聚在一起


def esc(value):
    """任何要放进网页的文字都先经过这里（字符来自用户的数据）。visible() 把看不见的字符（控制字符等）
    写成 \\x1b 这样的转义，让人看得见；再把 < > & " ' 换成 HTML 实体，浏览器就不会把数据当成标签。"""
    return html.escape(visible(value))


def num(value, spec=None):
    """数字 → 文字：默认按损失的写法（loss_text，和终端一样），或者按 spec。NaN（算不出的数）和无穷大
    照实写成 NaN / inf（format 给出 nan、inf）；None（没有这个数）写成 —。"""
    return '—' if value is None else esc((loss_text(value) if spec is None else format(value, spec)).replace('nan', 'NaN'))


def clamp01(x):
    """限制在 [0, 1]，画条形和颜色用。NaN 当作 0（它的真实值照样写在文字和 <title> 里）。"""
    return min(1.0, max(0.0, x)) if math.isfinite(x) else 0.0


def el(name, content=None, **attrs):
    """一个元素：el('line', class_='grid', x1=0, y1=5) → <line class="grid" x1="0" y1="5"/>。
    属性名里的 _ 换成 -（text_anchor → text-anchor），结尾的 _ 去掉（class 是 Python 的关键字）。
    属性值都经过 esc；小数只留一位：屏幕上不到一个像素的差别看不出来，文件却能小很多。
    content 是已经转义好的内容（文字或别的元素）。"""
    shown = ''.join(f' {key.rstrip("_").replace("_", "-")}="{esc(round(value, 1) if isinstance(value, float) else value)}"'
                    for key, value in attrs.items())
    return f'<{name}{shown}/>' if content is None else f'<{name}{shown}>{content}</{name}>'


def svg(width, height, label, parts, cls):
    """一张 SVG 图。viewBox 定义画布的坐标系：左上角是 (0, 0)，x 向右、y 向下增大。
    CSS 再把整张图缩放到页面的宽度，所以窄屏上它整体变小，而不是被截掉。"""
    return el('svg', ''.join(parts), class_=cls, width=width, height=height, viewBox=f'0 0 {width} {height}', role='img', aria_label=label)


def heat_colour(w):
    """权重 w ∈ [0, 1] → 颜色：在两种颜色之间按 w 线性插值（R、G、B 各自插值）。"""
    # 权重 0 是近白 (247, 251, 255)，权重 1 是深蓝 (8, 48, 107)
    r, g, b = (round(a + (z - a) * clamp01(w)) for a, z in zip((247, 251, 255), (8, 48, 107)))
    return f'#{r:02x}{g:02x}{b:02x}'


def nice_axis(lo, hi, count=5):
    """坐标轴的刻度：间隔取 1、2、5 乘以 10 的整数次幂里最接近 (hi - lo) / count 的那个，
    再把两端向外扩到整刻度。刻度就是 2.0, 2.5, 3.0，而不是 2.137, 2.611……，人一眼就能读。"""
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):            # 只有一个值：上下各留一点
        lo, hi = lo - max(0.5, abs(lo) / 10), hi + max(0.5, abs(hi) / 10)
    raw = (hi - lo) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda s: abs(s - raw))
    return [i * step for i in range(math.floor(lo / step), math.ceil(hi / step) + 1)]


# ---- 1. 一览 ----

def overview_section(record):
    out = '<section id="overview"><h2>1. 这次运行一览</h2><p>' + '<br>'.join(esc(line) for line in overview_lines(record)) + '</p>'
    # 困惑度 = e^损失：模型平均在多少个选项里犹豫（NaN 的困惑度还是 NaN）
    rows = ''.join(f'<tr><td>{esc(label)}</td><td class="num">{num(value)}</td><td class="num">{num(None if value is None else perplexity(value), ".1f")}</td></tr>'
                   for label, value in (loss_rows(record) if record['losses'].get('bigram') is not None else []))
    out += (f'<table><caption>留出验证集上的平均损失（每个 token 位置）</caption><tr><th></th><th>损失</th><th>困惑度 = e<sup>损失</sup></th></tr>{rows}</table>'
            '<p class="note">两个对照：在全部 V 个 token 里均匀乱猜，损失是 ln V；二元语法模型只看前一个 token。模型至少要比乱猜好，最好也比二元语法好。</p>'
            if rows else '<p>没有留出验证集，所以没有留出集损失。</p>')
    items = ''.join(f'<li><code>{esc(text) or "（空）"}</code> <span class="tag{" new" if label.startswith("新") else ""}">{esc(label)}</span></li>' for text, label in record['samples'])
    out += (f'<h3>模型编出的 {len(record["samples"])} 个样本</h3><p class="note">训练集里有：背下来的；留出集里有：真实存在、模型却从没见过；新：训练数据里没有的。</p>'
            f'<ol class="samples">{items}</ol>' if items else '')
    return out + '</section>'


# ---- 2. 损失曲线 ----

def loss_section(record):
    # 训练中的损失都是有限的数：一出现 NaN 或 inf，train_with_progress 就停止了整个运行，根本不会画网页
    losses, named = record['step_losses'], record['losses']
    out = '<section id="loss"><h2>2. 损失曲线</h2>'
    if not losses:
        return out + f'<p>这次没有训练，所以没有损失曲线。留出集损失：{num(named["after"])}。</p></section>'
    refs = [('留出集·训练前', named['before'], 'before'), ('留出集·训练后', named['after'], 'after'), ('对照·均匀猜测', named['uniform'], 'uniform'),
            ('对照·二元语法', named['bigram'], 'bigram')]
    keys = [('step', '━━', '每一步的损失（每步只学一个名字，所以跳得厉害）'), ('mean', '━━', '平滑后的损失（和终端里的“平滑”一样）')] + [
        (cls, '●' if cls in ('before', 'after') else '╍╍', f'{label} {num(value)}' + ('' if is_number(value) else '（没画）')) for label, value, cls in refs]
    legend = ' '.join(f'<span class="key"><b class="{cls}">{mark}</b> {text}</span>' for cls, mark, text in keys)
    return out + f'<figure><p>{legend}</p>{loss_svg(losses, refs)}</figure></section>'          # 图例和图放在一起，打印时不会被分到两页


def loss_svg(losses, refs):
    """折线图的全部数学就是两个线性映射：步数 → 横坐标 x，损失 → 纵坐标 y。
    SVG 的 y 向下增大，所以损失越大，y 越小（越靠上）。"""
    points, n_steps = list(enumerate(losses, 1)), len(losses)     # (第几步, 这一步的损失)
    values = losses + [v for _, v, _ in refs if is_number(v)]
    ticks = nice_axis(min(values), max(values))
    left = 36 + 9 * max(len(num(t, 'g')) for t in ticks)      # 刻度文字越长（爆炸时的 1e+30），左边留得越宽
    # 只有 520 宽：手机上（420 像素的屏幕，去掉边距和滚动条约 390 像素）整张图缩小到四分之三，14px 的字还有 10 像素多
    width, height, right, top, bottom = 520, 320, 496, 16, 276    # bottom：横轴的 y

    def x_of(step): return left + step / n_steps * (right - left)
    def y_of(loss): return top + (ticks[-1] - loss) / (ticks[-1] - ticks[0]) * (bottom - top)

    parts = [el('polyline', class_='axis', points=f'{left},{top} {left},{bottom} {right},{bottom}'),
             el('text', '训练步数', x=(left + right) / 2, y=height - 4, text_anchor='middle'),
             el('text', '损失 (loss)', transform=f'translate(18 {(top + bottom) / 2}) rotate(-90)', text_anchor='middle')]
    for t in ticks:                                   # 横向网格线和纵轴刻度
        parts += [el('line', class_='grid', x1=left, x2=right, y1=y_of(t), y2=y_of(t)),
                  el('text', num(t, 'g'), x=left - 6, y=y_of(t) + 4, text_anchor='end')]
    parts += [el('text', int(t), x=x_of(t), y=bottom + 20, text_anchor='middle')    # 横轴刻度：只要整数步，而且不超过总步数
              for t in nice_axis(0, n_steps) if t == int(t) and 0 <= t <= n_steps]
    # 平滑：指数滑动平均 m ← 0.95·m + 0.05·loss，从第一步的损失开始，和终端进度里的“平滑”一栏相同
    smooth = list(itertools.accumulate((v for _, v in points), lambda m, v: 0.95 * m + 0.05 * v))
    parts += [el('polyline', class_='step', points=' '.join(f'{x_of(s):.1f},{y_of(v):.1f}' for s, v in points)),
              el('polyline', class_='mean', points=' '.join(f'{x_of(s):.1f},{y_of(m):.1f}' for (s, _), m in zip(points, smooth)))]
    for (label, value, cls), step in zip(refs, (0, n_steps, None, None)):
        if is_number(value):                          # 留出集：训练前在第 0 步、训练后在最后一步画点；对照：虚线
            tip = el('title', f'{label} {num(value)}')
            parts.append(el('line', tip, class_=cls, x1=left, x2=right, y1=y_of(value), y2=y_of(value)) if step is None
                         else el('circle', tip, class_=cls, cx=x_of(step), cy=y_of(value), r=5))
    return svg(width, height, '训练损失曲线', parts, 'loss')


# ---- 3. 模型内部 ----

def explain_section(record):
    ex = record['explain']
    out = '<section id="explain"><h2>3. 模型内部：它怎么读一段文字</h2>'
    if not ex:
        return out + '<p>这次没有要解读的文字（没有给 --explain，或者没有留出集），跳过这一部分。</p></section>'
    names, tokens, predictions = record['model']['tokens'], ex['tokens'], ex['predictions']      # names[-1] 是 BOS
    # 每个位置一张卡片：已经看到的 token、真实的下一个、它的概率和排名（比它概率高的有几个，再加 1），再画前 5 名
    cards = ''.join(f'<div class="card">位置 {pos}：已看到 <code>{esc("".join(names[t] for t in tokens[:pos + 1]))}</code>，真实的下一个是 '
                    f'<code>{esc(names[target])}</code>（{num(100 * probs[target], ".1f")}%，排第 {1 + sum(p > probs[target] for p in probs)}）{top5_svg(probs, target, names)}</div>'
                    for pos, (probs, target) in enumerate(predictions))
    out += (f'<p>把 <code>{esc(names[-1] + ex["text"])}</code> 逐个位置喂给模型（<code>{esc(names[-1])}</code> 是 BOS：开头代表“开始”，最后代表“结束”），'
            f'共 {len(predictions)} 个位置。每个位置列出最可能的 5 个下一个 token，绿色的是真实的下一个。</p>')
    if 'tokenizer' in record['model']['tokenizer']:      # BPE：先看这段文字被切成了哪些 token，每个盖住几个字
        boxes = ''.join(f'<span class="tokbox"><code>{esc(names[t])}</code><small>{"半个字的字节" if re.fullmatch(r"<[0-9a-f ]+>", names[t]) else f"{len(names[t])} 个字符"}</small></span>'
                        for t in tokens[1:len(predictions) + 1] if t != len(names) - 1)
        out += f'<p>BPE 把这段文字切成了 {len(tokens) - 2} 个 token（&lt;e4 b8&gt; 这样写的是半个字：一个汉字在 UTF-8 里是 3 个字节）：</p><p>{boxes}</p>'
    out += f'<div class="cards">{cards}</div>'
    return out + attention_html(ex['attention'], [names[t] for t in tokens[:len(predictions)]], record['settings']) + '</section>'


def top5_svg(probs, target, names):
    """前 5 名的横条：条长 ∝ 概率（灰色底条是 100%）。排序和百分比与终端里 explain 打印的一样：
    sorted(…, key=-p)[:5]，100·p 保留一位小数。"""
    parts, top = [], sorted(range(len(probs)), key=lambda i: -probs[i])[:5]
    left = 16 + 8 * max(display_width(names[i]) for i in top)    # 左边写 token，<e4 b8> 这样的名字比一个字宽
    for r, i in enumerate(top):
        y, length = 22 * r, 150 * clamp01(probs[i])
        parts += [el('text', esc(names[i]), class_='tok', x=left - 8, y=y + 15, text_anchor='end'), el('rect', fill='#eee', x=left, y=y + 4, width=150, height=14),
                  el('rect', el('title', f'P({esc(names[i])}) = {num(probs[i], "")}'), fill='#2ca02c' if i == target else '#6b8fbf', x=left, y=y + 4, width=length, height=14),
                  el('text', f'{num(100 * probs[i], ".1f")}%', class_='pct', x=left + 4 + length, y=y + 15)]
    return svg(left + 206, 22 * len(top), '前 5 个最可能的下一个 token', parts, 'bars')


def attention_html(attention, labels, settings):
    out = ('<h3>注意力</h3><p>每个头一张热图：第 i 行是正在读的位置（query），第 j 列是它看的位置（key），每行加起来是 100%。'
           '因果遮罩：位置 i 只能看 j ≤ i，所以只有下三角有格子，灰色的是看不到的未来。格子里的数是百分数（格子太小时写在图下面的表里），'
           '鼠标停在格子上可以看到精确的权重。 0% <span class="gradient"></span> 100%</p>')
    heads = settings['n_head'][0]
    for li in range(settings['n_layer'][0]):    # attention[pos] 按层、按头排：第 li 层第 h 个头是第 li·n_head + h 项
        figures = ''.join(f'<figure>{heatmap_svg([row[li * heads + h] for row in attention], labels, f"第 {li} 层第 {h} 个头")}<figcaption>第 {li} 层第 {h} 个头</figcaption></figure>'
                          for h in range(heads))
        out += f'<h4>第 {li} 层</h4><div class="heads">{figures}</div>'
    return out


def heatmap_svg(rows, labels, title):
    """一个头的注意力热图。格子边长随位置数变化（位置多就小一点），但限制在 10–30 像素：
    太小看不清，太大一张图就占满屏幕。
    先铺一块灰色的底，再只在下三角画格子：露出来的灰色就是因果遮罩。"""
    n, cell = len(rows), max(10, min(30, 320 // len(rows)))
    margin = 14 + 7 * max(2, max(display_width(label) for label in labels))   # 左边和上边留给字符
    parts = [el('rect', el('title', '因果遮罩：看不到未来'), fill='#ddd', x=margin, y=margin, width=n * cell, height=n * cell)]
    for i, label in enumerate(labels):                # 上边写 key 的字符，左边写 query 的字符（都在第 i 格的正中）
        parts += [el('text', esc(label), class_='tok', x=margin + (i + 0.5) * cell, y=margin - 8, text_anchor='middle', font_size=min(12, cell)),
                  el('text', esc(label), class_='tok', x=margin - 6, y=margin + (i + 0.5) * cell + 4, text_anchor='end', font_size=min(12, cell))]
    for q, row in enumerate(rows):
        for k, w in enumerate(row):                   # 第 q 行第 k 列的格子，左上角在 (margin + k·cell, margin + q·cell)
            tip = el('title', f'位置 {q}（{esc(labels[q])}）看位置 {k}（{esc(labels[k])}）：{num(w, "")}')
            parts.append(el('rect', tip, x=margin + k * cell, y=margin + q * cell, width=cell, height=cell, fill=heat_colour(w)))
            if cell >= 24:                            # 格子够大：百分数写在格子里（深色格子上用白字），和终端的注意力表一样
                parts.append(el('text', round(100 * clamp01(w)), class_='cellnum dark' if w > 0.5 else 'cellnum', x=margin + (k + 0.5) * cell,
                                y=margin + (q + 0.5) * cell + 4, text_anchor='middle'))
    table = '' if cell >= 24 else ('<table class="attn"><tr><th></th>' + ''.join(f'<th>{esc(label)}</th>' for label in labels) + '</tr>' + ''.join(
        f'<tr><th>{esc(labels[q])}</th>' + ''.join(f'<td>{round(100 * clamp01(w))}</td>' for w in row) + '</tr>' for q, row in enumerate(rows)) + '</table>')
    return svg(margin + n * cell + 2, margin + n * cell + 2, title, parts, 'heat') + table


# ---- 4. 嵌入地图 ----

def principal_components(rows, count=2, iterations=100):
    """每一行在前 count 个主成分 (principal components) 上的坐标，和每个主成分占总方差的比例。
    1. 居中：每一列减去它的平均值。主成分描述的是点“围绕平均值怎么散开”。
    2. 协方差矩阵 C = XᵀX / n（n_embd × n_embd）。它最大的特征向量 v 就是点散得最开的方向。
    3. 幂迭代 (power iteration)：反复做 v ← Cv / |Cv|。v 在每个特征方向上的分量每次乘以那个特征值，
       所以最大特征值的方向越来越占上风，v 转到它上面；|Cv| 就是这个特征值 λ（沿 v 的方差）。
    4. 降阶 (deflation)：C ← C − λ v vᵀ 把找到的方向从 C 里去掉，再做一次幂迭代就得到第二个方向。
    5. 特征向量的正负号是任意的（−v 也是）：规定绝对值最大的分量为正，图就不会莫名其妙地翻转。
    起点是固定的，不抽随机数。"""
    means = [sum(col) / len(rows) for col in zip(*rows)]
    cols = [[x - m for x in col] for col, m in zip(zip(*rows), means)]          # 居中后的每一列
    cov = [[sum(map(operator.mul, a, b)) / len(rows) for b in cols] for a in cols]
    total = sum(cov[i][i] for i in range(len(cov))) or 1.0   # 总方差 = 对角线之和
    directions, shares = [], []
    for _ in range(count):
        v, lam = [1.0 / (j + 1) for j in range(len(cov))], 0.0
        for _ in range(iterations):
            cv = [sum(map(operator.mul, row, v)) for row in cov]
            lam = math.sqrt(sum(x * x for x in cv))
            v = [x / (lam or 1.0) for x in cv]               # lam = 0：没有方差了（例如 n_embd 只有 1），v 变成 0
        v = [-x for x in v] if max(v, key=abs) < 0 else v
        directions.append(v)
        shares.append(lam / total)
        cov = [[c - lam * vi * vj for c, vj in zip(row, v)] for row, vi in zip(cov, v)]
    return [[sum(map(operator.mul, row, v)) for v in directions] for row in zip(*cols)], shares


def embedding_section(record):
    before, after, names = record['embeddings']['before'], record['embeddings']['after'], record['model']['tokens']
    bos = len(names) - 1
    latin = all(re.fullmatch('[A-Za-z]', name) for name in names[:-1])   # 数据是英文字母：元音单独上色
    out = ('<section id="embeddings"><h2>4. token 嵌入的二维地图</h2><p>每个 token 的嵌入是 wte 里的一行数，即高维空间里的一个点。'
           '投影到点散得最开的两个方向（前两个主成分）上，就能画在纸上。训练前的参数是随机数，看不出规律；训练后，用法相近的 token'
           + ('（比如元音）' if latin else '') + '往往靠在一起。横竖用同一个比例尺，图上的距离就是投影后的真实距离。标签和别的标签挤在一起时挪开一点，用细线连回它的点。</p>')
    # NaN、inf 或大得离谱的数（平方会溢出）画不出来，跳过这些 token（abs(NaN) < 1e100 也是 False）
    ids = [i for i in range(len(before)) if all(abs(x) < 1e100 for x in before[i] + after[i])]
    if len(ids) < len(before):
        out += f'<p class="warn">有 {len(before) - len(ids)} 个 token 的嵌入里有 NaN、inf 或大得离谱的数，没有画。</p>'
    if len(ids) > MAX_MAP_POINTS:
        # 训练中常出现的字符被更新得多、移得远；很少出现的字符几乎停在随机初值，画出来只是噪声。
        # 所以只画移动最多的那些（BOS 一定画）
        moved = {i: sum((a - b) ** 2 for a, b in zip(before[i], after[i])) for i in ids}
        ids = sorted(sorted(ids, key=lambda i: (i != bos, -moved[i]))[:MAX_MAP_POINTS])
        out += f'<p class="note">词表有 {len(before)} 个 token，这里只画训练中移动最多的 {MAX_MAP_POINTS} 个。</p>'
    if len(ids) < 2:
        return out + '<p>能画的点太少，没有画地图。</p></section>'
    classes = ['bos' if i == bos else 'vowel' if latin and names[i] in VOWELS else 'other' for i in ids]
    maps = ''.join(embedding_map([rows[i] for i in ids], [names[i] for i in ids], classes, title) for rows, title in ((before, '训练前'), (after, '训练后')))
    legend = '<span class="vowel">●</span> 元音 a e i o u　<span class="other">●</span> 其他字母' if latin else '<span class="other">●</span> token（这份数据不是英文字母，不分元音辅音）'
    return out + f'<p>{legend}　<span class="bos">●</span> BOS（{esc(names[-1])}）</p><div class="maps">{maps}</div></section>'


def free_spot(x, y, width, taken, size):
    """点 (x, y) 的标签（宽 width、高 14）放在哪里：先试点的右边；和已经放下的标签（taken 里的矩形）重叠、或者出了图，
    就绕着点一圈一圈往外找（每圈远 10 像素，最多 4 圈）。返回标签的矩形 (左, 上, 宽, 高)；找不到返回 None。"""
    for r in range(5):
        for dx, dy in ((1, 0), (0, 1), (0, -1), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1)):
            left = x + 6 + 10 * r * dx if dx >= 0 else x - 6 - width + 10 * r * dx     # 点左边的标签：右端挨着点
            box = (left, y - 7 + 14 * r * dy, width, 14)
            if 0 <= left <= size - width and 0 <= box[1] <= size - 14 and \
                    not any(left < ox + ow and ox < left + width and box[1] < oy + oh and oy < box[1] + 14 for ox, oy, ow, oh in taken):
                return box
    return None


def embedding_map(rows, labels, classes, title):
    points, (share1, share2) = principal_components(rows)
    # 数据已经居中，平均值在原点，所以把原点放在图的正中间；横竖用同一个比例尺 scale（像素 / 单位），
    # 否则一个方向被拉长，点之间的距离就失真了
    size, margin, mid = 380, 34, 190
    scale = (mid - margin) / max(max(abs(c) for p in points for c in p), 1e-12)
    parts = [el('line', class_='grid', x1=margin, x2=size - margin, y1=mid, y2=mid),     # 过原点的横线和竖线
             el('line', class_='grid', x1=mid, x2=mid, y1=margin, y2=size - margin)]
    taken, skipped = [], 0                              # 已经放下的标签占的矩形 (左, 上, 宽, 高)
    for (a, b), label, cls in zip(points, labels, classes):
        x, y = mid + a * scale, mid - b * scale          # SVG 的 y 向下，所以第二主成分取负号
        box = free_spot(x, y, 8.5 * display_width(label) + 2, taken, size)    # 14px 的字：一列约 8.5 像素宽
        group = el('circle', cx=x, cy=y, r=3)
        if box:                                           # 标签挪开了：画一条细线连回它的点
            taken.append(box)
            moved = abs(box[0] - x - 6) > 1 or abs(box[1] + 11 - y - 4) > 1
            end = box[0] if box[0] > x else box[0] + box[2]              # 线连到标签离点近的那一端
            group += el('text', esc(label), x=box[0], y=box[1] + 11) + (el('line', class_='leader', x1=x, y1=y, x2=end, y2=box[1] + 7) if moved else '')
        skipped += not box
        parts.append(el('g', group + el('title', f'{esc(label)}：({num(a)}, {num(b)})'), class_=cls))
    note = f'（{skipped} 个标签没地方写，鼠标停在点上可以看到）' if skipped else ''
    return (f'<figure><figcaption><b>{title}</b>　<span>横轴：第一主成分（占方差 {num(100 * share1, ".0f")}%）</span>，<span>纵轴：第二主成分（{num(100 * share2, ".0f")}%）</span>{note}</figcaption>'
            f'{svg(size, size, title, parts, "map")}</figure>')


# ---- 5. 计算图 ----

def graph_section():
    """第 3 节手算的例子 L = ln(relu(a·b + c))（a = 2、b = −3、c = 10）：用本文件的 Value 真的算一遍、反向传播，画成图。
    图上的数都是你的代码算出来的：改坏了 Value 的某个运算或者 backward，图上的数就跟着错。第二张图里 a 用了三次
    （y = a·a + a，a = 3），梯度是三条路的和 3 + 3 + 1 = 7：backward 里把 += 写成 =，这里就不是 7。
    画图时暂时关掉提速技巧，用的是第 3 节课本写法的 backward，而不是第 8 节的提速版。"""
    global speed_tricks
    saved, speed_tricks = speed_tricks, False
    try:
        a, b, c = Value(2.0), Value(-3.0), Value(10.0)
        d = a * b
        s = d + c
        r = s.relu()
        loss = r.log()
        x = Value(3.0)
        m = x * x
        y = m + x
        for root in (loss, y):
            root.backward()
        names = {a: 'a', b: 'b', c: 'c', d: 'd = a·b', s: 's = d + c', r: 'r = relu(s)', loss: 'L = ln r', x: 'a', m: 'm = a·a', y: 'y = m + a'}
        pictures = ''.join(f'<figure><figcaption>{caption}</figcaption>{graph_svg(root, names, True)}{graph_svg(root, names, False)}</figure>'
                           for root, caption in ((loss, 'L = ln(relu(a·b + c))，a = 2，b = −3，c = 10'), (y, 'y = a·a + a，a = 3：a 用了三次')))
    except Exception as e:                             # 你改的 Value 出了错：说出来，网页的其余部分照样画
        pictures = f'<p class="warn">画不出来：本文件的 Value 算这个例子时出错了（{esc(type(e).__name__)}: {esc(e)}）。</p>'
    finally:
        speed_tricks = saved
    return ('<section id="graph"><h2>5. 计算图：第 3 节手算的例子</h2><p>用本文件的 <code>Value</code> 算 L = ln(relu(a·b + c))（a = 2，b = −3，c = 10），'
            '再调用 <code>backward()</code>。每个方框是一个节点：它是什么、前向的值 data、反向传播得到的梯度 grad = ∂L/∂(这个节点)。'
            '箭头从输入指向结果，箭头上的数是局部导数 ∂(结果)/∂(输入)；一个节点的 grad = 它指向的每个结果的 grad × 那条箭头上的局部导数，再加起来。'
            '下面那张图里 a 被用了三次（y = a·a + a），三条路的贡献要加起来：这就是 backward 里用 += 的原因。</p>' + pictures + '</section>')


def graph_svg(root, names, across):
    """一张计算图。节点离输出几步，就放在第几层（有几条路时取最长的那条）：across=True 时从左往右排（宽屏），
    否则从上往下排（手机屏太窄，横着排字会小得看不清；CSS 按屏幕宽度只显示其中一张）。"""
    depth, todo = {root: 0}, [root]
    while todo:                                        # 孩子至少比父节点深一层；图很小，反复放宽到不再变就行
        node = todo.pop()
        for child in node._children:
            if depth.get(child, -1) < depth[node] + 1:
                depth[child] = depth[node] + 1
                todo.append(child)
    levels = [[n for n in depth if max(depth.values()) - depth[n] == level] for level in range(max(depth.values()) + 1)]
    wide = max(map(len, levels))                       # 最挤的一层有几个节点
    step, side = (150, 78) if across else (100, 116)  # 层与层之间、同一层的节点之间的距离；方框是 96 × 58
    at = {n: (8 + step * lv, 44 + side * (i + (wide - len(nodes)) / 2)) for lv, nodes in enumerate(levels) for i, n in enumerate(nodes)}   # 上面留出绕行的空
    at = {n: (x, y) if across else (y, x) for n, (x, y) in at.items()}
    parts = []
    for node, (x, y) in at.items():                    # 箭头：输入 → 结果。同一个输入用了两次（a·a）就画两条，错开一点；跨层的箭头绕开中间的方框
        for k, (child, local) in enumerate(zip(node._children, node._local_grads)):
            (x1, y1), (x2, y2) = ((at[child][0] + 96, at[child][1] + 29), (x, y + 29)) if across else ((at[child][0] + 48, at[child][1] + 58), (x + 48, y))
            bend = (48 * (k - 0.5) if node._children.count(child) > 1 else 0) - (80 if across else 130) * (depth[child] - depth[node] > 1)
            cx, cy = ((x1 + x2) / 2, (y1 + y2) / 2 + bend) if across else ((x1 + x2) / 2 + bend, (y1 + y2) / 2)
            parts += [el('path', d=f'M{x1},{y1} Q{cx},{cy} {x2},{y2}', marker_end='url(#arrow)'),
                      el('text', num(local, '.4g'), class_='local', x=(x1 + 2 * cx + x2) / 4 + 8 * (not across), y=(y1 + 2 * cy + y2) / 4 - 5 * across,
                         text_anchor='middle' if across else 'start')]
    for node, (x, y) in at.items():
        parts += [el('rect', class_='leaf' if not node._children else 'op', x=x, y=y, width=96, height=58, rx=6),
                  el('text', esc(names.get(node, '?')), class_='name', x=x + 48, y=y + 17, text_anchor='middle'),
                  el('text', f'data {num(node.data, ".5g")}', x=x + 48, y=y + 35, text_anchor='middle'),
                  el('text', f'grad {num(node.grad, ".5g")}', x=x + 48, y=y + 52, text_anchor='middle')]
    arrow = '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>'
    width, height = max(x for x, _ in at.values()) + 104, max(y for _, y in at.values()) + 66
    return svg(width, height, f'计算图：{names[root]}', [arrow] + parts, 'graph ' + ('across' if across else 'down'))


# ---- 整页 ----

PAGE_CSS = '''
body { font-family: system-ui, -apple-system, "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC",
  "WenQuanYi Micro Hei", sans-serif; max-width: 1100px; margin: 0 auto; padding: 12px 24px 48px; line-height: 1.6; color: #222; background: #fff; }
code, .tok { font-family: ui-monospace, Menlo, Consolas, "Noto Sans Mono CJK SC", monospace; word-break: break-all; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }  figure { margin: 0; }  .note { color: #555; }  .warn { color: #b00; }
table { border-collapse: collapse; }  caption { text-align: left; font-weight: bold; }  .num { text-align: right; }
th, td { border: 1px solid #ddd; padding: 2px 10px; text-align: left; }
.samples { columns: 4 13em; }  .key { white-space: nowrap; margin-right: 1.2em; }  .tag { color: #666; }  .tag.new { color: #1a7f37; }
svg { max-width: 100%; height: auto; display: block; }  svg text { font-size: 12px; fill: #333; }  .loss text, .map text { font-size: 14px; }
.grid { stroke: #e5e5e5; fill: none; }  .axis { stroke: #333; fill: none; }  .heat rect { stroke: #fff; stroke-width: 0.5; }
.step { fill: none; stroke: #9ecae1; stroke-width: 0.8; color: #9ecae1; }  .mean { fill: none; stroke: #08519c; stroke-width: 2.5; color: #08519c; }
.uniform { stroke: #777; stroke-width: 1.5; stroke-dasharray: 7 4; color: #777; }  .bigram { stroke: #e6550d; stroke-width: 1.5; stroke-dasharray: 2 3; color: #e6550d; }
.before, .vowel, .vowel text { fill: #d62728; color: #d62728; }  .after { fill: #2ca02c; color: #2ca02c; }
.other, .other text { fill: #1f77b4; color: #1f77b4; }  .bos, .bos text { fill: #000; font-weight: bold; }
.cards, .heads, .maps { display: flex; flex-wrap: wrap; gap: 12px 16px; align-items: flex-start; }  .maps figure { flex: 1 1 340px; max-width: 480px; }  svg.map { border: 1px solid #ccc; }
.card { flex: 1 1 240px; max-width: 330px; border: 1px solid #ddd; border-radius: 6px; padding: 4px 10px 8px; font-size: 0.92em; }
.gradient { display: inline-block; width: 120px; height: 0.8em; background: linear-gradient(to right, #f7fbff, #08306b); }
figcaption b, figcaption span { white-space: nowrap; }  .cellnum { font-size: 11px; }  .leader { stroke: #999; stroke-width: 0.8; }
.tokbox { display: inline-block; border: 1px solid #bbb; border-radius: 4px; margin: 2px; padding: 0 4px; text-align: center; }  .tokbox small { display: block; color: #666; }
.attn { font-size: 11px; margin: 4px 0; }  .attn th, .attn td { padding: 0 3px; text-align: right; }
.graph text { font-size: 14px; }  .graph .name { font-weight: bold; }  .graph .local { fill: #b35900; }  .graph path { stroke: #555; fill: none; }
.graph.down { display: none; }  .cellnum.dark { fill: #fff; }
.graph .op { fill: #eef4fb; stroke: #08519c; }  .graph .leaf { fill: #fff; stroke: #555; }  marker path { fill: #555; }
@media (max-width: 600px) { body { padding: 8px 8px 32px; }  .key { white-space: normal; }  .graph.across { display: none; }  .graph.down { display: block; } }
@media print { body { max-width: none; padding: 0; font-size: 10.5pt; }  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  figure, .card, tr, svg { break-inside: avoid; }  h2, h3, h4 { break-after: avoid; } }
'''


def page_html(record):
    """整个网页（一个字符串）。record 由 run() 填好；这里只读它。"""
    body = [overview_section(record), loss_section(record), explain_section(record), embedding_section(record), graph_section()]
    page = ('<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
            f'{PAGE_MARK.format("")}\n<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<title>microGPT 教学版：这次运行</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n'
            '<h1>microGPT 教学版：这次运行</h1>\n' + '\n'.join(body) + '\n</body>\n</html>\n')
    return page.replace(PAGE_MARK.format(''), PAGE_MARK.format(hashlib.sha256(page.encode('utf-8')).hexdigest()), 1)


def save_page(record):
    """把网页写到 html_path（照第 10 节的规矩：那里的文件不是本程序画的、或画好以后被改过，就先留一份备份）。"""
    target, backup, why = replace_file('html_path', page_html(record), lambda path: not is_our_page(path) and '它不是本程序画的网页，或者画好以后被改过')
    say_saved('网页', target, backup, why, '：用浏览器打开它，可以看到这次运行的图。')


def is_our_page(path):
    """path 上的文件是不是本程序画的、之后没被改过的网页：PAGE_MARK 里记的 SHA-256 和整页对得上。"""
    with contextlib.suppress(OSError, UnicodeDecodeError), open(path, encoding='utf-8') as f:   # 打不开、不是 UTF-8 的文件都不算
        page = f.read(50_000_000)                                 # 本程序画的网页不会这么大；更大的文件不可能是
        mark = re.search(PAGE_MARK.format('([0-9a-f]{64})'), page)
        return bool(mark) and hashlib.sha256(page.replace(mark.group(0), PAGE_MARK.format(''), 1).encode('utf-8')).hexdigest() == mark.group(1)
    return False


# =============================================================================
# 13. 主程序和命令行 (main and command line)
# =============================================================================
# 前面是课程本身；这里是让它成为一个好用的程序的部分：检查设置、读命令行、显示文字和进度、处理 Ctrl-C、
# 检查文件、把结果讲给你听。run() 把前面各节按顺序串起来，每一步算出的数都记进同一个 record。

STOP_SIGNALS = [getattr(signal, name) for name in ('SIGINT', 'SIGTERM', 'SIGHUP') if hasattr(signal, name)]
stopping = {'phase': '', 'asked': '', 'saved': False}      # 收到停止信号时的状态（见 on_stop_signal）


# ---- 文字：路径、显示宽度、折行、看不见的字符 ----

def shown_path(path):
    """显示给人看的路径：在当前文件夹里面就显示相对路径，否则显示完整路径；控制字符显示成看得见的样子。"""
    try:
        relative = os.path.relpath(path)
    except ValueError:                    # Windows 上不同盘符之间没有相对路径
        relative = '..'
    return visible(path if relative.startswith('..') or relative == '.' else relative)   # 当前文件夹本身写完整路径，不写“.”


def script_dir_path(path):
    """相对路径从脚本所在的文件夹算起；命令行给的路径已经变成绝对路径，join 会原样使用它。"""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), path)


def quoted(path):
    """命令里的路径：有空格等特殊字符时加上引号，照抄就能用。"""
    return shlex.quote(shown_path(path)) if os.name != 'nt' else f'"{shown_path(path)}"'


def command_prefix():
    """提示里的命令用你刚才用的解释器（python3、python 或 Windows 上的 py）和脚本路径，照抄就能运行。"""
    # 只去掉 Windows 的 .exe：splitext 会把 python3.11 的 .11 也当成扩展名，提示就成了另一个解释器 python3
    interpreter = 'py' if os.name == 'nt' and shutil.which('py') else re.sub(r'\.exe$', '', os.path.basename(sys.executable), flags=re.I)
    return f'{interpreter} {quoted(os.path.abspath(sys.argv[0] or __file__))}'


def display_width(text):
    """文字在终端里占几列：中日韩的全角字符占两列（east_asian_width 为 W 或 F 的是全角），换行符不占列，其余占一列。"""
    return sum(2 if unicodedata.east_asian_width(ch) in 'WF' else ch != '\n' for ch in text)


def pad(text, width, right=False):
    """按显示宽度补空格到 width 列（right=True 时靠右对齐）。"""
    space = ' ' * max(0, width - display_width(text))
    return space + text if right else text + space


def visible(text):
    """来自数据、文件名或模型文件的文字，原样打印可能出事：ESC 这样的控制字符会被终端当作命令（改颜色、清屏），
    U+202E 这样的字符会把后面的文字倒过来显示。不可打印的字符一律换成看得见的写法，例如 \\x1b、\\u202e；
    文件名里不是 UTF-8 的字节（Python 把它读成 \\udcff 这样的代用字符）写回它本来的样子 \\xff。"""
    return ''.join(ch if ch.isprintable() else f'\\x{ord(ch) - 0xdc00:02x}' if '\udc80' <= ch <= '\udcff' else ascii(ch)[1:-1]
                   for ch in str(text))


def shown_value(value, limit=60):
    """错误信息和概览里引用的文字（不是文字的值写成 repr）：看得见、只占一行；太长（例如几千个汉字的词表）时
    只留前 limit 个字符，后面加“…”。"""
    text = visible(value if isinstance(value, str) else repr(value))
    return text if len(text) <= limit else text[:limit] + '…'


def bar(fraction, width):
    """横条：满格是 width 列，每列再分 8 档（█ ▉ ▊ … ▏），所以很小的差别也看得出来。"""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    return '█' * (eighths // 8) + ('', '▏', '▎', '▍', '▌', '▋', '▊', '▉')[eighths % 8]


def terminal_width(): return shutil.get_terminal_size().columns


# 折行的最小单位：一串空白；或者一个不可拆的块——一串不含空白的非中文字符（命令、数字、英文单词；
# 中间夹着的中文也算在内，例如 --input_path=名字.txt），或者一个中文字符，连同紧贴着它的开、闭标点
# （标点不会落到行首或被留在行尾）
CJK = '\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef'
PIECES = re.compile(rf'\s+|[（「『“‘《]*(?:[^\s{CJK}]+(?:[{CJK}]+[^\s{CJK}]+)*|[{CJK}])[，。；：、！？）」』”’》…]*')


def wrap(text, width, indent=''):
    """按显示宽度把一段话折成几行：只在空白处、或两个中文字符之间断开，不会拆开命令、数字或英文单词。
    续行以 indent 开头。一个比整行还宽的块（例如很长的路径）单独占一行。"""
    lines, line = [], ''
    for piece in PIECES.findall(text):
        if line.strip() and display_width(line + piece.rstrip()) > width:
            lines.append(line.rstrip())
            line = indent
            if piece.isspace():
                continue
        line += piece
    return lines + [line.rstrip()]


def say(text='', file=None, indent=''):
    """打印一段话，按终端宽度折行（中文字算两列）。"""
    for line in wrap(text, min(terminal_width(), 100) - 1, indent):
        print(line, file=file or sys.stdout, flush=True)


# ---- 设置：第 0 节里写的值和命令行给的值，走同一条路检查 ----
# 每个设置的类型和允许的范围：(类型, (范围的判断, 不在范围里时的说明))；'path' 是文件路径（一段文字）。
# 形状设置还要一起看（n_embd 能不能被 n_head 整除、模型是不是大得离谱），见第 10 节的 shape_problem。
ANY = (lambda v: True, '')
NOT_NEGATIVE = (lambda v: v >= 0, '它不能是负数')
POSITIVE = (lambda v: v > 0, '它必须大于 0')
FRACTION = (lambda v: 0 <= v < 1, '它必须在 [0, 1) 之间，即 0 ≤ 值 < 1')
RULES = {'seed': (int, ANY), 'input_path': ('path', ANY), 'n_layer': (int, ANY), 'n_embd': (int, ANY), 'block_size': (int, ANY), 'n_head': (int, ANY),
         'learning_rate': (float, POSITIVE), 'beta1': (float, FRACTION), 'beta2': (float, FRACTION), 'eps_adam': (float, POSITIVE), 'num_steps': (int, NOT_NEGATIVE),
         'temperature': (float, (lambda v: v >= 0.001, '它至少是 0.001（温度是除数，不能是 0；0.001 已经几乎总是选概率最大的字符）')), 'num_samples': (int, NOT_NEGATIVE),
         'val_size': (int, NOT_NEGATIVE), 'init_std': (float, POSITIVE), 'speed_tricks': (bool, ANY), 'log_every': (int, NOT_NEGATIVE), 'save_path': ('path', ANY),
         'load_path': ('path', ANY), 'prompt': (str, ANY), 'explain': (str, ANY), 'tokenizer': (str, (lambda v: v in ('char', 'bpe'), "它只能是 'char'（每个字符一个 token）或 'bpe'（字节级 BPE）")),
         'bpe_merges': (int, NOT_NEGATIVE), 'html_path': ('path', ANY)}
WANTED = {bool: ' True 或 False', int: '一个整数（最多 15 位）', float: '一个有限的数字', str: '一段文字', 'path': '一个文件路径（一段文字）'}


def checked(name, value, where=''):
    """按 RULES 检查设置 name 的值（第 0 节里写的 Python 值，或命令行上已经转换好的值）：合法就返回它（小数设置
    写成整数也行，变成小数）；不合法就抛出一句说明：哪个设置、什么值、写在哪里、怎样才合法（常见的写错给出改法）。"""
    kind, (in_range, allowed) = RULES[name]
    if type(value) not in {bool: (bool,), int: (int,), float: (int, float), str: (str,), 'path': (str,)}[kind]:    # 第 0 节里最常见的两种写错，说怎么改
        problem = f'它需要{WANTED[kind]}' + ('。Python 把逗号隔开的数读成了一组：小数点要用英文句点，0,5 写成 0.5' if type(value) is tuple else
                                            f'。数字和 True/False 不加引号：写成 {value.strip()}' if type(value) is str else '')
    elif type(value) is int and not abs(value) < 10 ** 15 or type(value) is float and not math.isfinite(value):
        problem = f'它需要{WANTED[kind]}'                # 最多 15 位：再大也没有意义（10**400 步永远跑不完）
    elif not in_range(value):
        problem = allowed
    else:
        return float(value) if kind is float else value
    raise UserError(f'设置 {name} = {shown_value(repr(value))}{where or " "}不合法：{problem}。', 2)


def parse_value(name, text):
    """把命令行里的字符串按设置 name 的类型（RULES）转换，再和第 0 节里写的值一样检查。"""
    kind = RULES[name][0]
    try:
        if kind is bool:                   # 不能用 bool(text)：bool('False') 是 True
            return checked(name, {'true': True, '1': True, 'yes': True, 'on': True, 'false': False, '0': False, 'no': False, 'off': False}[text.strip().lower()])
        return checked(name, kind(text) if kind in (int, float) else text)
    except (KeyError, ValueError):
        comma = '（小数点要用英文句点，例如 0.5）' if re.fullmatch(r'\s*-?\d+[,，]\d+\s*', text) else ''
        raise UserError(f'设置 {name} 需要{WANTED[kind]}，但收到的是 "{shown_value(text)}"{comma}。', 2) from None


def closest_setting(name):
    """拼错的名字最像哪个设置：先看首字母缩写（lr → learning_rate），再看拼写相近（difflib）。"""
    initials = {''.join(part[0] for part in setting.split('_')): setting for setting in RULES}
    return initials.get(name.lower()) or next(iter(difflib.get_close_matches(name.lower(), RULES, n=1, cutoff=0.5)), None)


def settings_lines():
    """第 0 节每个设置写在本文件的哪一行、行尾的说明是什么：{名字: (行号, 说明)}。"""
    with open(__file__, encoding='utf-8') as f:
        text = f.read().split('\nSETTINGS = ')[0]       # 第 0 节到 SETTINGS 这一行为止
    return {m.group(1): (text.count('\n', 0, m.start()) + 1, m.group(2) or '') for m in re.finditer(r'^(\w+)\s*=.*?(?:#\s*(.*))?$', text, flags=re.M)}


def unknown_setting(name, where):
    """“没有这个设置”的说明，附上最像的那个设置名。"""
    guess = closest_setting(name)
    return UserError(f'{where}没有叫 {shown_value(name)} 的设置。' + (f'你是不是想写 {guess}？' if guess else '') + f'运行 {command_prefix()} --help 可以列出全部设置。', 2)


def apply_overrides(argv):
    """nanoGPT 式的命令行覆盖：--名字=值 或 --名字 值，替换第 0 节里同名的全局变量。
    返回在命令行上给过的设置名字；要看帮助（-h 或 --help）时返回 None。"""
    given, args = [], iter(argv)
    for arg in args:
        if arg in ('-h', '--help'):
            return None
        match = re.fullmatch(r'--(\w+)(?:=(.*))?', arg, flags=re.S)
        if not match:                      # 最常见的原因：中文输入法打出的 ——、＝、：，在很多字体里它们和英文的几乎一样
            raise UserError(f'看不懂命令行参数 "{shown_value(arg)}"：请写成 --名字=值 的形式，例如 --num_steps=200（- 和 = 要用英文输入法打）。'
                            f'运行 {command_prefix()} --help 可以列出全部设置。', 2)
        name, text = match.groups()
        if name not in RULES:
            raise unknown_setting(name, '')
        if text is None:                   # --名字 值：值是下一个参数（可以是 -h 这样的文字）
            text = next(args, '--')
            if text.startswith('--'):
                example = {'prompt': 'ma', 'explain': 'emma'}.get(name, SETTINGS[name] if SETTINGS[name] != '' else 'model.json')
                raise UserError(f'--{name} 后面缺少值。请写成 --{name}=值，例如 --{name}={example}', 2)
        value = parse_value(name, text)
        if RULES[name][0] == 'path' and value:
            # 命令行里的相对路径按命令行的习惯从当前文件夹算起；~ 是你的主文件夹；结尾的 / 留着，表示“这是文件夹”
            value = os.path.abspath(os.path.expanduser(value)) + (os.sep if value.endswith(('/', os.sep)) else '')
        globals()[name] = value
        given.append(name)
    return given


def read_settings(argv, record):
    """第 0 节和命令行的设置走同一条路：先按 RULES 检查第 0 节里写的（名字拼错、改名、删掉，值写错，都说出是哪一行），
    再换上命令行给的值（同样检查），最后看形状设置合不合得来（读回模型时形状由模型文件决定，读文件时再查）。
    record['settings'] 记下每个值和它从哪里来：'file'（第 0 节）、'cli'（命令行）。只要打印帮助时返回 False。"""
    lines, here = settings_lines(), os.path.basename(__file__)
    stray = next((name for name in SETTINGS if name not in RULES), None)
    if stray:
        raise unknown_setting(stray, f'{here} 第 {lines.get(stray, ("?",))[0]} 行：')
    for name in RULES:
        if name not in SETTINGS:
            raise UserError(f'第 0 节里少了设置 {name}（那一行被删掉或改了名）。请把它加回来；想恢复整个文件，运行 git checkout {here}。', 2)
        globals()[name] = checked(name, SETTINGS[name], f'（{here} 第 {lines.get(name, ("?",))[0]} 行）')
    given = apply_overrides(argv)
    if given is None:                                 # -h 或 --help
        print(settings_help(lines))
        return False
    problem = None if load_path else shape_problem(n_layer, n_embd, n_head, block_size, given)
    if problem:
        raise UserError(problem + '。', 2)
    record['settings'] = {name: (globals()[name], 'cli' if name in given else 'file') for name in RULES}
    return True


def settings_help(lines):
    """--help 的内容：直接读本文件第 0 节的设置行，所以说明永远和代码一致。排成悬挂缩进的表，不超过 80 列。"""
    prog, width = command_prefix(), min(terminal_width(), 80) - 1
    out = wrap(f'用法：{prog} [--名字=值 ...]（也可以写成 --名字 值）', width, '      ') + ['', '设置（本文件第 0 节里写的值）及含义：']
    for name in RULES:                     # 说明从第 26 列开始；“--名字=值”更长时（第 0 节里改过的长路径），说明隔一个空格跟在后面
        out += wrap(f'{f"  --{name}={SETTINGS[name]}":<25} {lines.get(name, (0, ""))[1]}', width, ' ' * 26)
    return '\n'.join(out + ['', '例子：', f'  {prog} --num_steps=3000 --temperature=0.8', f'  {prog} --save_path=m.json',
                            f'  {prog} --load_path=m.json --num_steps=0 --prompt=ma --explain=emma'])


# ---- 输出：终端、日志、管道；Ctrl-C ----

class SafeOutput:
    """包住标准输出（或标准错误）：读的一方走了（| head 提前关掉了管道）、磁盘满了、或者根本没有地方输出，
    都只是不再打印——训练、保存照常进行。"""

    def __init__(self, stream): self.stream = stream
    def write(self, text): return self.call('write', text)
    def flush(self): return self.call('flush')
    def isatty(self): return self.call('isatty')

    def call(self, name, *args):
        try:
            return getattr(self.stream, name)(*args)
        except (OSError, ValueError, AttributeError):   # 管道断了、磁盘满了、文件已关闭、根本没有输出（None）
            with contextlib.suppress(OSError, ValueError, AttributeError):   # 缓冲区里剩下的字节，退出时写进 /dev/null
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
            self.stream = None


class Progress:
    """训练进度：约每 5% 的步数留下一行（log_every 可以改间隔），读下来就是损失怎么下降的记录；
    在终端里，两行之间还有一行原地刷新（不超过终端宽度），看得出训练正在进行。"""

    def __init__(self, total_steps):
        self.total, self.start, self.smooth, self.last_draw = total_steps, time.perf_counter(), None, 0.0
        self.on_terminal = bool(sys.stdout.isatty())
        self.every = log_every or max(1, round(total_steps / 20))

    def update(self, step, loss, lr):
        # 平滑损失：指数滑动平均，单步损失波动很大（每步只看一个名字），平滑后才看得出趋势
        self.smooth = loss if self.smooth is None else 0.95 * self.smooth + 0.05 * loss
        speed = step / max(time.perf_counter() - self.start, 1e-9)
        # 各部分按重要性排好：一行放不下时从后往前丢。输出到文件或管道时一行最多 COLUMNS 列（没设时是 80）；
        # 在终端里整行必须比终端窄：写满最后一列时，很多终端会自动换行，之后每次刷新都会多留下一行
        fields = [f'步 {step:{len(str(self.total))}d}/{self.total}', f'loss {loss_text(loss)}', f'平滑 {loss_text(self.smooth)}',
                  f'剩余 {(self.total - step) / speed:.0f} 秒', f'{speed:.1f} 步/秒', f'lr {lr:.6f}']
        width = terminal_width() - (1 if self.on_terminal else 0)
        while len(fields) > 1 and display_width(' | '.join(fields)) > width:
            fields.pop()
        keep = step in (1, self.total) or step % self.every == 0          # 这一行留下来
        if keep or self.on_terminal and time.perf_counter() - self.last_draw > 0.1:
            line = ' | '.join(fields)
            print('\r' + pad(line, width) if self.on_terminal else line, end='\n' if keep else '', flush=True)
            self.last_draw = time.perf_counter()


def on_stop_signal(signum, frame):
    """Ctrl-C（SIGINT）、kill 默认发的 SIGTERM、关掉终端时的 SIGHUP。第一次收到时：训练中，做完当前这一步就停止训练，
    接着照常评估、保存和采样；训练之后、模型存好之前（评估和保存只要零点几秒），先把模型存好再停。
    别的时候收到，或者收到第二次，就立即退出（main 会说模型有没有保存）。"""
    if stopping['phase'] and not stopping['asked']:
        stopping['asked'] = stopping['phase']
        say('收到 Ctrl-C（或终止信号）：' + ('这一步做完就停止训练，然后照常评估、保存和采样' if stopping['phase'] == 'training' else '先把模型存好，然后停止')
            + '。再按一次 Ctrl-C 立即退出，但那样模型不会保存。', file=sys.stderr)
    else:
        # 从此不再理会：退出的路上再按 Ctrl-C，也不会打断退出、打印回溯。用一个什么都不做的函数而不是 SIG_IGN：
        # 已经到了、还没轮到处理的信号遇上 SIG_IGN，Python 会打印一段“Signal 2 ignored due to race condition”
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda signum, frame: None)
        raise KeyboardInterrupt


# ---- 训练之前的检查：读文件、要写的文件、数据和模型合不合 ----

def read_text(path, what, setting):
    """读一个 UTF-8 文本文件（数据或模型文件）。任何问题都变成一句能照着改的中文说明（退出码 1）。"""
    shown = shown_path(path)
    try:
        mode = os.stat(path).st_mode        # 文件夹；管道 (FIFO)、/dev/zero 这样的设备：读它会一直等、或永远读不完
        if not stat.S_ISREG(mode):
            raise UserError(f'{shown} 是{"一个文件夹" if stat.S_ISDIR(mode) else "管道或设备，不是普通文件（读它可能永远等不到结尾）"}，不是{what}。请用 --{setting}=文件路径 指定一个普通的文本文件。', 1)
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError as e:                    # 找不到；或者别的原因（没有权限、路径太长……）：照实说
        raise UserError(f'找不到{what} {visible(os.path.basename(path))}（找的是文件夹 {shown_path(os.path.dirname(path))}）。请确认文件存在，或者用 --{setting}=文件路径 指定另一个文件。'
                        if e.errno == errno.ENOENT else f'无法读取{what} {shown}（{e.strerror}）。请检查路径和权限，或换一个文件。', 1) from None
    if raw.startswith((b'\xff\xfe', b'\xfe\xff')) or b'\0' in raw:   # UTF-16/32 的文字里几乎总有 NUL 字节
        raise UserError(f'{shown} 里只有 NUL 字节（0x00），没有文字。请换一个文本文件。' if not raw.strip(b'\0') else f'{what} {shown} 里有 NUL 字节（或 UTF-16 的 BOM）：它像是 UTF-16 或 UTF-32 编码的文字，也可能根本不是文本文件。是文字的话，请在编辑器里“另存为”，编码选 UTF-8。', 1)
    try:
        return raw.decode('utf-8-sig')     # utf-8-sig：文件开头若有 BOM（Windows 记事本“UTF-8 带 BOM”会写入）就去掉，没有也照常读
    except UnicodeDecodeError as e:
        line_no = raw[:e.start].count(b'\n') + 1
        raise UserError(f'{what} {shown} 不是 UTF-8 编码（第 {line_no} 行有无法按 UTF-8 解码的字节）。它可能是用 GBK/ANSI 保存的：请在编辑器里“另存为”，编码选 UTF-8。', 1) from None


# 要写的文件：设置名 → (怎样认出是我们写的, 举例用的文件名)。多一种输出，就在这里多一行。
OUTPUTS = {'save_path': (existing_checkpoint, 'model.json'), 'html_path': (is_our_page, 'run.html')}


def cannot_write(path):
    """真的在那里建一下要用到的文件再删掉：文件夹不存在、名字太长、没有写权限，训练之前就知道。要用到的有 path 本身（原来没有时），
    还有要留备份时的 path.bak。写得下就返回 None，否则返回原因。"""
    try:
        for probe in [backup_name(path)] + ([] if os.path.lexists(path) else [path]):
            os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            os.unlink(probe)
    except OSError as e:
        known = {errno.ENOENT: f'文件夹 {shown_path(os.path.dirname(path))} 不存在。请先建好它，或换一个路径',
                 errno.ENAMETOOLONG: '文件名太长了（要留备份时还得在后面加上 .bak），请用短一点的名字'}
        return known.get(e.errno, f'无法在这里写文件（{e.strerror}）。请换一个路径')


def check_outputs():
    """训练之前就确认每个结果都写得下，免得训练了半天，到最后才发现存不下：不是文件夹、管道或设备，文件夹存在、
    能写，名字不太长，不会覆盖不是我们写的文件，两个输出也不是同一个文件（已有的文件比设备和 inode，还没有的比
    realpath：符号链接、/proc/self/cwd 这样的别名都认得出来）。写的时候还会再看一次（replace_file）。"""
    seen = {}
    for setting, (is_ours, example) in OUTPUTS.items():
        if not globals()[setting]:
            continue
        path = script_dir_path(globals()[setting])
        same = tuple(os.stat(path))[1:3] if os.path.exists(path) else os.path.realpath(path)   # (inode, 设备) 或 realpath
        if not os.path.basename(path) or os.path.isdir(path):
            problem = f'这是一个文件夹。请写上文件名，例如 --{setting}={os.path.join(shown_path(path), example)}'
        elif same in seen:
            problem = f'它和 --{seen[same]} 是同一个文件：后写的会盖掉先写的。请换一个名字，例如 {example}'
        elif os.path.lexists(path) and not (os.path.isfile(path) and is_ours(path)):
            problem = '这里已经有一个不是 microGPT 写的文件（或者是管道、设备、断了的链接）。为了不覆盖它，请换一个路径'
        else:
            problem = cannot_write(path)
        if problem:
            raise UserError(f'--{setting}={shown_path(path)}：{problem}', 2)
        seen[same] = setting


def apply_checkpoint_shape(ckpt, record):
    """模型文件决定模型的形状：命令行上给了不同的形状就报错；第 0 节里的值则直接被文件里的值替换。"""
    bpe = ckpt.get('tokenizer')
    for name, value in {**ckpt['settings'], 'tokenizer': 'bpe' if bpe else 'char', **({'bpe_merges': len(bpe['merges'])} if bpe else {})}.items():
        given, source = record['settings'][name]
        if source == 'cli' and given != value:
            raise UserError(f'命令行给了 --{name}={given}，但模型文件里的 {name} 是 {value}。模型的形状由模型文件决定：请去掉 --{name}，或者不用 --load_path 从头训练。', 2)
        globals()[name], record['settings'][name] = value, (value, 'model')


def check_inputs(docs, val_docs, tokenizer, ckpt, record):
    """在任何费时的事情之前，检查 prompt、explain、要写的文件和数据，免得训练了几分钟才发现写错了。
    返回要评估的留出集：读回的模型只用来采样、数据却不合它的词表时，跳过评估（返回空列表）。"""
    for name, text in (('prompt', prompt), ('explain', explain)):
        if unknown := tokenizer.unknown_chars(text):
            raise UserError(f'--{name} 里有模型不认识的字符 {shown_value("".join(unknown))}。模型的词表：{vocab_text(tokenizer)}', 2)
    if len(tokenizer.encode(prompt)) - 2 >= block_size:
        raise UserError(f'--prompt 编码后有 {len(tokenizer.encode(prompt)) - 2} 个 token，但模型最多看 block_size={block_size} 个位置（第一个是 BOS），没有地方再往下写了。请用短一些的开头。', 2)
    check_outputs()
    unknown = tokenizer.unknown_chars(''.join(docs))
    if not unknown:      # 只量可能太长的行（token 数不会超过字节数）：位置数 = token 数 + 结尾的 BOS
        record['data']['too_long'] = [n for n in (len(tokenizer.encode(d)) - 1 for d in docs if len(d.encode('utf-8')) + 1 > block_size) if n > block_size]
        return val_docs
    trained_on, file = (ckpt.get('data') or {}).get('file'), record['data']['file']
    problem = f'数据 {file} 里有模型的词表里没有的字符 {shown_value("".join(unknown))}：' + (
        '这个模型是用这个文件以前的内容训练的，文件后来改过了' if trained_on == file else   # 再让你加 --input_path=它 没有用
        f'这个模型是用 {visible(trained_on)} 训练的，请加上 --input_path={quoted(trained_on)}（文件不在当前文件夹里时，写上它的路径）' if trained_on else '它是用别的数据训练的')
    if num_steps:
        raise UserError(f'{problem}。要用这份数据训练，请不用 --load_path，从头训练。', 1)
    say(f'注意：{problem}。这次只拿模型采样，跳过在留出集上的评估。')
    return []


# ---- 报告：都从 record 里读 ----

def overview_lines(record):
    """这次运行一览（几句话）：数据、词表、参数、读回的模型、设置和它们从哪里来、要注意的事。终端和网页印的都是它。"""
    data, model = record['data'], record['model']
    lines = [f'数据：{data["file"]}，共 {data["lines"]} 行；训练用 {data["train"]} 行，留出验证 {data["val"]} 行', f'词表：{model["vocab_text"]}',
             f'参数：{model["n_params"]} 个；{n_layer} 层，n_embd={n_embd}，{n_head} 个头，block_size={block_size}']
    if model['loaded_from']:
        same = '和这次的数据相同' if model['trained_on']['fingerprint'] == data['fingerprint'] else f'训练时用的是 {visible(model["trained_on"]["file"] or "别的数据")}'
        lines.append(f'模型：读自 {shown_path(model["loaded_from"])}（已训练 {model["steps_before"]} 步，{same}）')
    # 每个设置的值（命令行给的路径已是绝对路径，显示得短一些）和它从哪里来的记号
    shown = [f'{name}={shown_path(value) if RULES[name][0] == "path" and value else visible(value)}' + '（读回模型时不起作用）' * (name == 'init_std' and bool(load_path))
             + {'file': '', 'cli': '*', 'model': '^'}[source] for name, (value, source) in record['settings'].items()]
    legend = any(source != 'file' for _, source in record['settings'].values())
    lines.append('设置：' + '  '.join(shown) + '（* 是命令行上给的值，^ 是读回的模型文件决定的值，没有记号的是本文件第 0 节里写的值）' * legend)
    if data['too_long']:
        lines.append(f'注意：有 {len(data["too_long"])} 行的“token 数 + 结尾的 BOS”超过上下文长度 block_size={block_size}，这些行只训练前 {block_size} 个位置（超出的部分和结尾的 BOS 学不到）。想全部学到，可以用 --block_size={max(data["too_long"])}。')
    if model['loaded_from'] and num_steps:
        lines.append(f'接着训练：这次是这个模型的第 {model["steps_before"] + 1}–{model["steps_before"] + num_steps} 步。学习率计划从头开始：从 learning_rate={learning_rate} 降到 0，而不是接着上次的，所以头几步的步子比上次结束时大，损失可能先变差一点。')
    return lines


def print_report(record, train_docs, val_docs):
    """训练后的报告：留出集损失和对照、给学习者的提醒。损失怎么一步步下降，看训练时留下的进度行；画成图在网页里（--html_path）。"""
    losses, step_losses, vocab_size = record['losses'], record['step_losses'], record['model']['vocab_size']
    if not val_docs:
        say(f'\n没有留出验证集（val_size={val_size}、数据不到 10 行，或数据不合读回模型的词表），跳过验证损失。')
        return training_exploded(record) and say(f'提醒：最后 10% 步的训练损失远大于均匀乱猜的 {losses["uniform"]:.2f}：训练“爆炸”了。请把 learning_rate 调小（现在是 {learning_rate}）。')
    rows = loss_rows(record)
    say('\n留出集上每个 token 位置的平均损失（困惑度 = e^损失：平均在几个 token 里犹豫）：')
    for label, value in rows:
        print(f'  {pad(label, max(display_width(label) for label, _ in rows) + 2)}{loss_text(value)}   困惑度 {number_label(perplexity(value), 1)}')
    say(f'每个字符的损失：{loss_text(losses["per_char"])}（不同的分词器之间比这个数：一个 token 可能是几个字，也可能是半个字；'
        + ('字符级分词里一个 token 就是一个字符，它和上表中这个模型的损失相同）。' if record['model']['tokenizer'].get('vocabulary') else '见第 9 节的 chars_per_position）。'))
    for note in diagnose(losses['before'], losses['after'], len(step_losses), train_docs, val_docs, vocab_size):
        say('提醒：' + note)


def print_samples(labelled):
    """样本和它们的标签，最后数一数各有多少。"""
    print(f'\n模型编出的 {len(labelled)} 个样本（temperature={temperature}' + (f'，都以 {visible(repr(prompt))} 开头）：' if prompt else '）：'))
    width = max(display_width(visible(s) or '（空）') for s, _ in labelled)
    for i, (sample, label) in enumerate(labelled):
        say(f'  {i + 1:2d}. {pad(visible(sample) or "（空）", width)}  {label}', indent=' ' * (width + 8))   # 窄终端里标签折到下一行
    kinds = [label.split('（')[0] for _, label in labelled]
    new = [s for s, label in labelled if label.startswith('新')]
    repeats = '' if not new else '，没有重复' if len(set(new)) == len(new) else f'，去掉重复后是 {len(set(new))} 个'
    say(f'其中训练集里有 {kinds.count("训练集里有")} 个，留出集里有 {kinds.count("留出集里有")} 个，新的 {len(new)} 个（{100 * len(new) / len(labelled):.0f}%{repeats}）。')
    if '留出集里有' in kinds:
        say('留出集里的样本真实存在，模型训练时却从没见过：编出它们，说明模型学到的是规律，而不只是背下了训练集。')


def why_not_finite(record, step=0):
    """算出的数不是有限的数（NaN、inf）时该怪谁：还没更新过参数就出了问题，怪初始参数（读回的模型文件，或 init_std）；
    训练了几步之后才出问题，怪学习率。"""
    if step > 1 or record['step_losses']:
        return f'请调小 learning_rate（现在是 {learning_rate}）重新训练。'
    return (f'问题出在模型文件 {shown_path(record["model"]["loaded_from"])} 里的参数上：请换一个模型文件，或者不用 --load_path 从头训练。' if record['model']['loaded_from']
            else f'参数还没更新过就算不出来了，问题在初始参数上：请调小 init_std（现在是 {init_std}）。')


# ---- 主程序 ----

def wte_rows(state):
    """此刻每个 token 的嵌入（wte 的每一行，普通小数），记进 record：网页画训练前后的嵌入地图。"""
    return [[p.data for p in row] for row in state['wte']]


def train_with_progress(record, state, optimizer, train_docs, tokenizer):
    """第 6 节的 train()，加上进度行、发散检查和 Ctrl-C：每一步的损失记进 record['step_losses']。"""
    say(f'开始训练 {num_steps} 步（按 Ctrl-C 可提前停止）……')
    progress, step_losses = Progress(num_steps), record['step_losses']
    offset = record['model']['steps_before'] % len(train_docs)      # 接着训练时，从上次停下的那个名字往后学
    stopping['phase'] = 'training'
    for step, loss, lr in train(state, optimizer, train_docs[offset:] + train_docs[:offset], tokenizer, num_steps):
        if not math.isfinite(loss):
            raise UserError(f'第 {step} 步的 loss 变成了 {loss}：训练发散了。{why_not_finite(record, step)}', 1)
        step_losses.append(loss)
        progress.update(step, loss, lr)
        if stopping['asked']:                       # 收到了 Ctrl-C：这一步已经做完，停下
            say(('\n' if progress.on_terminal else '') + f'训练在第 {step} 步停止（共设 {num_steps} 步）。')
            break
    seconds = max(time.perf_counter() - progress.start, 1e-9)     # 极短的训练可能计时为 0，避免除以 0
    print(f'训练用时 {seconds:.1f} 秒（{len(step_losses) / seconds:.1f} 步/秒），最后一步的 loss {loss_text(step_losses[-1])}')


def run(argv):
    """整个程序，顺序和前面各节一样：设置 → 数据 → 分词器 → 参数 → 训练 → 评估和报告 → 保存 → 采样和解读 → 网页。
    每一步算出的数都记进 record（一个普通的字典）：终端的报告、模型文件和网页读的都是它。"""
    record = {'started': time.perf_counter(), 'step_losses': [], 'losses': {}}
    if not read_settings(argv, record):               # 0. 设置（只要帮助时到此为止）
        return 0
    for sig in STOP_SIGNALS:
        signal.signal(sig, on_stop_signal)
    start_speed_tricks()                              # 8. 提速
    random.seed(seed)                                 # 整个程序只在这里设一次种子
    docs = load_docs(script_dir_path(input_path))     # 1. 数据
    # 数据的指纹（存进模型文件，读回时认得出是不是同一份数据）：全部行的 SHA-256 的前 16 位。要在打乱之前算
    fingerprint = hashlib.sha256('\n'.join(docs).encode('utf-8')).hexdigest()[:16]
    train_docs, val_docs = split_docs(docs)
    record['data'] = {'file': visible(os.path.basename(input_path)), 'fingerprint': fingerprint, 'lines': len(docs),
                      'train': len(train_docs), 'val': len(val_docs), 'too_long': []}
    ckpt = load_checkpoint(script_dir_path(load_path)) if load_path else None   # 10. 读回的模型决定形状和词表
    if ckpt:
        apply_checkpoint_shape(ckpt, record)
    tokenizer = make_tokenizer(docs, train_docs, ckpt)                         # 2. 分词器（BPE 见第 9 节）
    val_docs = check_inputs(docs, val_docs, tokenizer, ckpt, record)
    # 4. 参数：即使要读回模型，也先照常随机初始化，这样消耗的随机数和从头训练时一样，
    #    同一个种子下，读回的模型编出的名字与存它的那次运行逐字相同
    state = init_params(tokenizer.vocab_size)
    optimizer = Adam(flatten(state))
    record['model'] = {'vocab_size': tokenizer.vocab_size, 'tokenizer': tokenizer_record(tokenizer), 'vocab_text': vocab_text(tokenizer),
                       'tokens': token_names(tokenizer), 'n_params': len(optimizer.params), 'loaded_from': ckpt and script_dir_path(load_path),
                       'trained_on': ckpt and (ckpt.get('data') or {'file': '', 'fingerprint': ''}), 'steps_before': restore(ckpt, state, optimizer) if ckpt else 0}
    record['embeddings'] = {'before': wte_rows(state)}
    for line in overview_lines(record):
        say(line, indent=' ' * 6)

    losses = record['losses']
    losses['before'] = losses['after'] = evaluate(state, val_docs, tokenizer) if val_docs else None
    if num_steps:                                     # 6. 训练
        train_with_progress(record, state, optimizer, train_docs, tokenizer)
    stopping['phase'] = 'saving' if save_path else ''     # 从这里到模型存好：第一次 Ctrl-C 要等模型存好了再停
    if num_steps and val_docs:
        losses['after'] = evaluate(state, val_docs, tokenizer)
    losses.update(uniform=math.log(tokenizer.vocab_size), bigram=bigram_loss(train_docs, val_docs, tokenizer) if val_docs else None,
                  per_char=losses['after'] * chars_per_position(tokenizer, val_docs) if val_docs else None)
    record['embeddings']['after'] = wte_rows(state)
    print_report(record, train_docs, val_docs)        # 11. 留出集损失、对照和提醒
    if save_path:                                     # 10. 保存
        save_model(state, optimizer, record)
    stopping['phase'] = ''
    if stopping['asked'] == 'saving':
        say('按你的要求停止：模型已经存好了。', file=sys.stderr)
        return 130
    try:                                              # 7. 采样；11. 解读一段文字（只解读一次，终端和网页都用它）
        samples = [sample_name(state, tokenizer, prompt) for _ in range(num_samples)]
        explained = explain or (val_docs[0] if html_path and val_docs else '')   # 网页总要解读一个名字
        record['explain'] = explain_text(state, tokenizer, explained) if explained else None
    except ValueError:                                # 概率不是有限的数：该怪训练、初始参数，还是读回的模型文件
        raise UserError(f'模型算出的概率不是有限的数（参数大得溢出了），没法采样或解读。{why_not_finite(record)}', 1) from None
    record['samples'] = [(text, label + byte_note(tokenizer, text)) for text, label in label_samples(samples, tokenizer, train_docs, val_docs)]
    if samples:
        print_samples(record['samples'])
    for line in [''] + explain_report(record['explain'], record['model']['tokens'], min(80, terminal_width() - 1)) if explain else []:
        say(line, indent='    ')
    if html_path:                                     # 12. 网页
        save_page(record)
    say(f'\n总用时 {time.perf_counter() - record["started"]:.1f} 秒。')
    return 0


def main(argv=None):
    """程序的入口：把 run() 的各种结局变成退出码和（标准错误上的）一句话。"""
    sys.stdout, sys.stderr = SafeOutput(sys.stdout), SafeOutput(sys.stderr)
    if hasattr(sys.stdout.stream, 'reconfigure'):
        sys.stdout.stream.reconfigure(errors='replace')   # 控制台编码放不下的字符显示为 ?，而不是崩溃
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except (UserError, OSError) as e:                 # OSError：没料到的读写问题（比如写网页时磁盘满了），也只说一句话
        # visible：换行和控制字符显示出来，错误永远只占一行
        print(f'错误：{visible(e) if isinstance(e, UserError) else "读写文件时出错：" + visible(e)}', file=sys.stderr)
        return getattr(e, 'exit_code', 1)
    except KeyboardInterrupt:                         # 不在训练时收到 Ctrl-C，或收到第二次
        print('\n已退出。' + ('模型没有保存。' if save_path and not stopping['saved'] else ''), file=sys.stderr)
        return 130
    finally:
        # 程序就要结束：再收到这些信号也不理会。这里用 SIG_IGN：Python 退出时会把处理函数换回默认的
        # “立即结束进程”，SIG_IGN 则一直有效（signal.signal 会先处理已经到了的信号，所以这里没有 on_stop_signal 里的问题）
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        sys.stdout.flush()


if __name__ == '__main__':
    sys.exit(main())
