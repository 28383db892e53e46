"""
microGPT 教学版：只用 Python 标准库，从零训练一个很小的 GPT。

它读入 input.txt（每行一个英文名字），学会“名字大概长什么样”，然后编出新的名字。
从上往下读就是一个 GPT 的全部过程，每一节的编号与教程 microgpt_tutorial.md 的章节一一对应：
    0. 设置  1. 数据  2. 分词器  3. 自动求导  4. 参数  5. 模型  6. 训练  7. 采样  8. 主程序

用法：
    python microgpt_teaching.py                    # 默认设置：训练 1000 步，然后编 20 个名字
    python microgpt_teaching.py --num_steps=200    # 用 --名字=值 覆盖任何一个设置
    python microgpt_teaching.py --help             # 列出全部设置、默认值和含义

导入本文件（import）不会运行任何东西；只有直接运行它才会开始训练。
"""
import gc
import math
import operator
import os
import random
import re
import signal
import sys
import time

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
num_steps = 1000          # 训练步数；每一步学一个名字
temperature = 0.5         # 采样温度（至少 0.001）：越小越保守（常见名字），越大越大胆（怪名字）
num_samples = 20          # 训练结束后编多少个名字
val_size = 200            # 留出验证集的行数（最多占全部数据的十分之一），这些行不参与训练
init_std = 0.08           # 参数初始值的高斯（正态）分布标准差
fused_ops = True          # True：用融合节点（快）；False：只用最基本的运算建图（慢，结果相同）
log_every = 0             # 每隔几步打印一行训练进度；0 表示自动（终端里原地刷新，否则约每 5% 一行）

# 上面每一个设置的名字和默认值。只收集“普通值”，所以 import 进来的模块不在其中。
SETTINGS = {name: value for name, value in globals().items()
            if not name.startswith('_') and isinstance(value, (bool, int, float, str))}


class UserError(Exception):
    """用户可以自己改正的问题（设置写错、数据文件有问题）。主程序只打印这句话，不打印回溯。"""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


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


def apply_overrides(argv):
    """nanoGPT 式的命令行覆盖：每个参数写成 --名字=值，替换第 0 节里同名的全局变量。"""
    for arg in argv:
        match = re.fullmatch(r'--(\w+)=(.*)', arg, flags=re.S)
        if not match:
            raise UserError(f'看不懂命令行参数 "{arg}"：请写成 --名字=值 的形式，例如 --num_steps=200。'
                            f'运行 --help 可以列出全部设置。', 2)
        name, text = match.groups()
        if name not in SETTINGS:
            raise UserError(f'没有叫 {name} 的设置。运行 python microgpt_teaching.py --help 可以列出全部设置。', 2)
        value = parse_value(name, text)
        if name == 'input_path':
            # 命令行里写的相对路径，按命令行的习惯从当前文件夹算起
            value = os.path.abspath(value)
        globals()[name] = value


def validate_settings():
    """在做任何事之前检查设置；第一个不合法的设置会变成一句说明，程序以退出码 2 结束。"""
    def fail(name, allowed):
        raise UserError(f'设置 {name} = {globals()[name]!r} 不合法：{allowed}。', 2)

    for name in ('n_layer', 'n_embd', 'n_head', 'num_steps'):
        if globals()[name] < 1:
            fail(name, '它必须是正整数（至少 1）')
    if block_size < 2:
        fail('block_size', '它至少是 2（模型至少要看到“开头”和一个字符）')
    if n_embd % n_head != 0:
        fail('n_head', f'n_embd = {n_embd} 必须能被 n_head 整除，例如 n_head 取 '
                       + '、'.join(str(d) for d in range(1, n_embd + 1) if n_embd % d == 0))
    for name in ('num_samples', 'val_size', 'log_every'):
        if globals()[name] < 0:
            fail(name, '它不能是负数')
    for name in ('learning_rate', 'temperature', 'eps_adam', 'init_std'):
        if not globals()[name] > 0:
            fail(name, '它必须大于 0')
    if temperature < 0.001:
        fail('temperature', '它至少是 0.001（更小的温度会让 logits / temperature 溢出）')
    for name in ('beta1', 'beta2'):
        if not 0 <= globals()[name] < 1:
            fail(name, '它必须在 [0, 1) 之间，即 0 ≤ 值 < 1')


def settings_help():
    """--help 的内容：直接读本文件第 0 节的设置行，所以说明永远和代码一致。"""
    lines = ['用法：python microgpt_teaching.py [--名字=值 ...]', '', '设置（默认值）及含义：']
    comments = {}
    try:
        with open(__file__, encoding='utf-8') as f:
            for line in f:
                match = re.match(r'(\w+) = .*?# (.*)$', line)
                if match and match.group(1) in SETTINGS:
                    comments[match.group(1)] = match.group(2).strip()
    except OSError:
        pass
    for name, value in SETTINGS.items():
        lines.append(f'  --{name}={value!s:<12} {comments.get(name, "")}')
    lines += ['', '例子：python microgpt_teaching.py --num_steps=3000 --temperature=0.8']
    return '\n'.join(lines)


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
        raise UserError(f'找不到数据文件 {shown}。请确认文件存在，或者用 --input_path=文件路径 指定另一个文件。', 1)
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
        if self.data > 0:
            return Value(self.data, (self,), (1.0,))
        # a ≤ 0：输出是常数 0，导数也是 0，梯度反正传不过去，所以结果不连到 a（和常数不进图同理）。
        # 训练中多数 ReLU 是关着的（见 mlp），它们前面的点积节点就不会被反向传播访问
        return Value(0.0)

    # ---- 由上面组合出来的运算（不需要新的导数公式）----
    def __neg__(self): return self * -1.0                   # -a = a · (-1)
    def __sub__(self, other): return self + (-other)        # a - b = a + (-b)
    def __truediv__(self, other): return self * other ** -1  # a / b = a · b^(-1)
    def __radd__(self, other): return self + other          # 数字 + Value
    def __rsub__(self, other): return (-self) + other       # 数字 - Value
    def __rmul__(self, other): return self * other          # 数字 · Value
    def __rtruediv__(self, other): return self ** -1 * other  # 数字 / Value

    # ---- 融合节点 (fused ops)：一整块运算只算一个节点 ----
    # 数学上与拆成基本运算完全相同，但节点少得多：一个长度 n 的点积用基本运算要 n 个乘法节点加
    # n-1 个加法节点，融合后只有 1 个。节点越少，建图和反向传播的 Python 开销越小。
    @staticmethod
    def dot(a, b, b_data=None):           # s = Σ a_i·b_i：∂s/∂a_i = b_i，∂s/∂b_i = a_i
        # a、b 是等长的 Value 列表。b_data（可选）是 b 的数值：同一个 b 要和很多个 a 做点积时
        # （例如 linear 里 x 和 W 的每一行），先取一次数值传进来，省得每次重取。
        a_data = [x.data for x in a]
        if b_data is None:
            b_data = [x.data for x in b]
        out = sum(map(operator.mul, a_data, b_data))
        return Value(out, a + b, b_data + a_data)

    @staticmethod
    def sum(xs):                          # s = Σ x_i：∂s/∂x_i = 1
        return Value(sum([x.data for x in xs]), tuple(xs), (1.0,) * len(xs))

    @staticmethod
    def cross_entropy(logits, target):    # L = -ln softmax(z)_target = ln Σ_j e^(z_j) - z_target
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
        # 用一个显式的栈代替递归：计算图可以有几十万层深，递归会撞上 Python 的递归深度上限。
        # 栈里放两种东西：一个节点表示“去展开它”；None 后面跟着的节点表示“它的孩子都排好了”。
        # 访问过的节点在自己身上做标记 _visited（比把节点放进集合里再查更快）。叶子生来就标记为
        # 访问过，所以不会入栈，也不进 topo：它们没有孩子要分梯度，梯度会在处理父节点时直接累加上去。
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
            if g == 0.0:
                continue                   # 分给孩子的全是 0（例如第一个位置的注意力分数，见教程 3.5 节）
            for child, local in zip(node._children, node._local_grads):
                child.grad += local * g


# 模型只通过下面三个函数做“求和类”运算。fused_ops 决定用一个融合节点，还是用基本运算一步步搭，
# 两条路算出的数相同（只差浮点舍入），梯度也相同，只是节点数差很多。
def add_all(xs):
    """Σ x_i（空列表的和是 0）"""
    if fused_ops:
        return Value.sum(xs)
    if not xs:
        return Value(0.0)
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


def dot(a, b, b_data=None):
    """Σ a_i·b_i（a、b 是 Value 列表；b_data 见 Value.dot）"""
    if fused_ops:
        return Value.dot(a, b, b_data)
    return add_all([x * y for x, y in zip(a, b)])


def cross_entropy(logits, target):
    """-ln p_target，其中 p = softmax(logits)"""
    if fused_ops:
        return Value.cross_entropy(logits, target)
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


def init_params(vocab_size):
    """按固定顺序创建全部矩阵（顺序决定消耗哪些随机数，所以不能随便调换）。"""
    state = {
        'wte': matrix(vocab_size, n_embd),      # token 嵌入：每个 token 一行
        'wpe': matrix(block_size, n_embd),      # 位置嵌入：每个位置一行
        'lm_head': matrix(vocab_size, n_embd),  # 把最后的向量变成每个 token 的分数 (logits)
    }
    for i in range(n_layer):
        state[f'layer{i}.attn_wq'] = matrix(n_embd, n_embd)      # 查询 (query)
        state[f'layer{i}.attn_wk'] = matrix(n_embd, n_embd)      # 键 (key)
        state[f'layer{i}.attn_wv'] = matrix(n_embd, n_embd)      # 值 (value)
        state[f'layer{i}.attn_wo'] = matrix(n_embd, n_embd)      # 把各头的输出合回去 (output)
        state[f'layer{i}.mlp_fc1'] = matrix(4 * n_embd, n_embd)  # MLP 先放宽到 4 倍
        state[f'layer{i}.mlp_fc2'] = matrix(n_embd, 4 * n_embd)  # 再压回 n_embd
    return state


def flatten(state):
    """所有参数排成一个列表，优化器逐个更新。"""
    return [p for mat in state.values() for row in mat for p in row]


# =============================================================================
# 5. 模型 (model)
# =============================================================================
# 大致是 GPT-2 的结构，不同之处：没有偏置 (bias)，LayerNorm 换成 RMSNorm，GeLU 换成 ReLU，
# 嵌入之后多做一次归一化，lm_head 之前不再归一化，lm_head 也不和 wte 共用参数。
# gpt() 每次只处理一个位置：输入当前 token 和它的位置，输出“下一个 token 是谁”的分数 (logits)。

def linear(x, w):
    """y = W x：W 的形状 (n_out × n_in)，x 长 n_in，y 长 n_out；y_i 是 W 第 i 行与 x 的点积。"""
    x_data = [xi.data for xi in x]       # x 要和每一行做点积：它的数值只取一次
    return [dot(row, x, x_data) for row in w]


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
    # 关着的 ReLU 输出常数 0（默认模型里刚开始约一半，训练后超过八成），乘以 W2 的任何权重都是 0，
    # 对输出和梯度都毫无贡献。
    # 所以只把亮着的单元 (on) 和 W2 里对应的那几列送进去：算出的数逐位相同，图里少了这些列的边
    # （每个关着的单元 2·n_embd 条）。
    on = [j for j, hj in enumerate(h) if hj.data > 0]
    return linear([h[j] for j in on], [[row[j] for j in on] for row in w_fc2])   # (n_embd,)


def gpt(state, token_id, pos_id, keys, values):
    """一个位置的前向计算。keys / values 是 KV 缓存：每层一个列表，存着此前各位置的 k、v 向量。"""
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
            # 输出的第 j 维 = Σ_t weights_t · v_t[j]：按注意力权重把各位置的 v 加权平均
            weights_data = [w.data for w in weights]
            for j in range(lo, hi):
                x_attn.append(dot([v_t[j] for v_t in values[li]], weights, weights_data))
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


def evaluate(state, docs, tokenizer):
    """留出集上的平均每 token 损失：所有位置的损失之和 / 位置总数。不消耗随机数，不改参数。"""
    # 省时的小技巧：位置 p 的 logits 只取决于第 0..p 个 token（因果注意力看不到后面）。
    # 按字母序处理名字，相邻名字常有相同的开头（mara、maria、mark……）：相同开头那几个位置的
    # logits 和 KV 缓存与上一个名字完全一样，直接沿用，只从第一个不同的位置往后算。
    total, count = 0.0, 0
    keys = [[] for _ in range(n_layer)]
    values = [[] for _ in range(n_layer)]
    logits_at = []                                # logits_at[p]：上一个名字在位置 p 的 logits
    prev = []
    for doc in sorted(docs):
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
    return total / count


class Adam:
    """Adam 优化器 (Kingma & Ba)：每个参数有自己的步长，由梯度的两个滑动平均决定。"""

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
        m, v = self.m, self.v
        # 循环要跑几千次：常用的数先放进局部变量，取用更快
        b1, b2, eps, sqrt = beta1, beta2, eps_adam, math.sqrt
        one_minus_b1, one_minus_b2 = 1 - b1, 1 - b2
        for i, p in enumerate(self.params):
            g = p.grad
            m[i] = m_i = b1 * m[i] + one_minus_b1 * g       # m ← β₁·m + (1-β₁)·g
            v[i] = v_i = b2 * v[i] + one_minus_b2 * g * g   # v ← β₂·v + (1-β₂)·g²
            m_hat = m_i / correction1
            v_hat = v_i / correction2
            # 步长约为 lr · m̂/sqrt(v̂)：梯度方向稳定时接近 lr，忽正忽负时变小
            p.data -= lr * m_hat / (sqrt(v_hat) + eps)
            p.grad = 0.0               # 清零，下一步重新累加


class CtrlC:
    """训练中第一次按 Ctrl-C：做完当前这一步就停止训练，接着照常评估和采样。
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


class Progress:
    """训练进度：在终端里是一行原地刷新；输出到文件或管道时，按间隔各打一行，日志不会太长。"""

    def __init__(self, total_steps):
        self.total = total_steps
        self.on_terminal = sys.stdout.isatty()
        self.every = log_every if log_every > 0 else max(1, round(total_steps / 20))
        self.start = time.perf_counter()
        self.smooth = None
        self.last_draw = 0.0
        self.width = 0

    def update(self, step, loss, lr):
        # 平滑损失：指数滑动平均，单步损失波动很大（每步只看一个名字），平滑后才看得出趋势
        self.smooth = loss if self.smooth is None else 0.95 * self.smooth + 0.05 * loss
        elapsed = time.perf_counter() - self.start
        speed = step / elapsed if elapsed > 0 else 0.0
        left = (self.total - step) / speed if speed > 0 else 0.0
        line = (f'步 {step:{len(str(self.total))}d}/{self.total} | loss {loss:.4f} | 平滑 {self.smooth:.4f}'
                f' | lr {lr:.6f} | {speed:.1f} 步/秒 | 剩余 {left:.0f} 秒')
        last = step == self.total
        if self.on_terminal and log_every == 0:
            if last or time.perf_counter() - self.last_draw > 0.1:
                # 中文字符在终端里占两格，所以按 2 倍长度补空格，盖住上一行的残留
                print('\r' + line + ' ' * max(0, self.width - 2 * len(line)), end='\n' if last else '', flush=True)
                self.width = 2 * len(line)
                self.last_draw = time.perf_counter()
        elif last or step == 1 or step % self.every == 0:
            print(line, flush=True)

    def stop_early(self):
        if self.on_terminal and log_every == 0:
            print()


def train(state, params, train_docs, tokenizer, ctrl_c=None, on_step=None):
    """训练 num_steps 步，返回每步的损失（普通浮点数列表）。"""
    optimizer = Adam(params)
    progress = Progress(num_steps) if on_step is None else None
    step_losses = []
    for step in range(num_steps):
        # 第 step 步学第 step 个名字（学完一轮再从头来）
        tokens = tokenizer.encode(train_docs[step % len(train_docs)])
        losses = doc_losses(state, tokens)
        loss = (1 / len(losses)) * add_all(losses)  # 这个名字各位置的平均损失
        if not math.isfinite(loss.data):
            raise UserError(f'第 {step + 1} 步的 loss 变成了 {loss.data}：训练发散了。'
                            f'请调小 learning_rate（现在是 {learning_rate}）或 init_std（现在是 {init_std}）再试。', 1)
        loss.backward()                             # 算出每个参数的 grad = ∂loss/∂参数
        lr = learning_rate * (1 - step / num_steps)  # 学习率从 learning_rate 线性减小，最后一步接近 0
        optimizer.step(lr)
        step_losses.append(loss.data)
        if on_step is not None:
            on_step(step + 1, loss.data)
        else:
            progress.update(step + 1, loss.data, lr)
        if ctrl_c is not None and ctrl_c.stop_requested:
            if progress is not None:
                progress.stop_early()
            print(f'训练在第 {step + 1} 步停止（共设 {num_steps} 步）。', flush=True)
            break
    return step_losses


# =============================================================================
# 7. 采样 (sampling)
# =============================================================================
# 训练好的模型给出“下一个字符”的概率；按这个概率抽一个字符，接在后面，再问下一个……直到抽到 BOS。

def sample_name(state, tokenizer):
    keys = [[] for _ in range(n_layer)]
    values = [[] for _ in range(n_layer)]
    token_id = tokenizer.bos                 # 从“开始”记号出发
    out = []
    for pos in range(block_size):            # 最多 block_size 个 token
        logits = gpt(state, token_id, pos, keys, values)
        # 温度：logits 先除以 T 再 softmax。T < 1 让高分更突出（保守），T > 1 让分布更平（大胆）
        probs = softmax([z / temperature for z in logits])
        token_id = random.choices(range(tokenizer.vocab_size), weights=[p.data for p in probs])[0]
        if token_id == tokenizer.bos:        # 模型说“名字结束了”
            break
        out.append(token_id)
    return tokenizer.decode(out)


# =============================================================================
# 8. 主程序 (main)
# =============================================================================
# 把上面各节按顺序串起来：读设置 → 读数据 → 分词 → 初始化参数 → 评估（训练前）→ 训练 → 评估（训练后）→ 采样。

def run(argv):
    if '-h' in argv or '--help' in argv:
        print(settings_help())
        return 0
    apply_overrides(argv)
    validate_settings()
    started = time.perf_counter()

    # Python 除了引用计数，还有一个专找“循环引用”的垃圾回收器，它每分配几百个对象就扫描一遍新对象。
    # 我们的计算图只从父节点指向孩子，没有环，一步用完后靠引用计数就全部释放了；
    # 每步要新建几万个对象，让回收器反复扫描它们纯属浪费，所以关掉它（我们测得前向计算快了约 30%）。
    gc.disable()
    random.seed(seed)                                 # 整个程序只在这里设一次种子
    # 相对路径从脚本所在的文件夹算起；命令行给的路径已经变成绝对路径，join 会原样使用它
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), input_path)
    docs = load_docs(path)                            # 1. 数据
    train_docs, val_docs = split_docs(docs)
    tokenizer = Tokenizer(docs)                       # 2. 分词器
    state = init_params(tokenizer.vocab_size)         # 4. 参数
    params = flatten(state)

    changed = [name for name in SETTINGS if globals()[name] != SETTINGS[name]]
    print(f'数据：{os.path.basename(path)}，共 {len(docs)} 行；训练用 {len(train_docs)} 行，留出验证 {len(val_docs)} 行')
    shown_chars = ''.join(tokenizer.chars) if len(tokenizer.chars) <= 60 else ''.join(tokenizer.chars[:60]) + '…'
    print(f'词表：{tokenizer.vocab_size} 个 token = {len(tokenizer.chars)} 个字符 + 1 个 BOS；字符：{shown_chars!r}')
    print(f'参数：{len(params)} 个；{n_layer} 层，n_embd={n_embd}，{n_head} 个头，block_size={block_size}')
    print('设置：' + '  '.join(f'{name}={globals()[name]}' + ('*' if name in changed else '') for name in SETTINGS)
          + ('  （* 为命令行改过的）' if changed else ''))
    n_cut = sum(1 for doc in docs if len(doc) + 1 > block_size)
    if n_cut:
        print(f'注意：有 {n_cut} 行的“字符数 + 结尾的 BOS”超过上下文长度 block_size={block_size}，'
              f'这些行只训练前 {block_size} 个位置（超出的字符和结尾的 BOS 学不到）。')

    loss_before = evaluate(state, val_docs, tokenizer) if val_docs else None

    ctrl_c = CtrlC()
    signal.signal(signal.SIGINT, ctrl_c)
    print(f'开始训练 {num_steps} 步（按 Ctrl-C 可提前停止）……', flush=True)
    train_start = time.perf_counter()
    ctrl_c.training = True
    step_losses = train(state, params, train_docs, tokenizer, ctrl_c)
    ctrl_c.training = False
    train_time = max(time.perf_counter() - train_start, 1e-9)     # 极短的训练可能计时为 0，避免除以 0
    print(f'训练用时 {train_time:.1f} 秒（{len(step_losses) / train_time:.1f} 步/秒），最后一步的 loss {step_losses[-1]:.4f}')

    print()
    if val_docs:
        loss_after = evaluate(state, val_docs, tokenizer)
        print(f'留出验证集（{len(val_docs)} 行，不参与训练）上的平均损失（每个 token 位置）：')
        print(f'  训练前（随机参数）      {loss_before:.4f}')
        print(f'  训练后                  {loss_after:.4f}')
        print(f'  对照：均匀猜测 ln({tokenizer.vocab_size})  {math.log(tokenizer.vocab_size):.4f}')
    else:
        print(f'没有留出验证集（val_size={val_size}，或数据不到 10 行），跳过验证损失。')

    if num_samples:
        print(f'\n模型编出的 {num_samples} 个名字（temperature={temperature}）：')
        seen = set(train_docs)
        n_new = 0
        for i in range(num_samples):
            name = sample_name(state, tokenizer)
            if not name:
                label = '第一步就抽到了 BOS'        # 空名字：不算新名字
            elif name in seen:
                label = '训练集里有'
            else:
                label = '新'
                n_new += 1
            print(f'  {i + 1:2d}. {name or "（空）":<{block_size}} {label}')
        print(f'其中 {n_new}/{num_samples} 个（{100 * n_new / num_samples:.0f}%）是训练集里没有的新名字。')
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
