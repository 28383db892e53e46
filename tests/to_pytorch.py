"""把脚本存的模型搬进 PyTorch（可选；项目里只有这个文件用 torch）。

    python tests/to_pytorch.py m.json                      # 读模型文件，比较留出集损失，编几个样本
    python tests/to_pytorch.py m.json --steps=200          # 再用 torch.optim.Adam 接着训练 200 步
    python tests/to_pytorch.py m.json --steps=200 --save_path=m2.json   # 存成脚本能读回的模型文件
    python tests/to_pytorch.py --help

第 4–5 节的模型在这里写成一个约 60 行的 PyTorch 模块 GPT，名字和脚本一一对应（wte、wpe、lm_head、
layer0.attn_wq……，rmsnorm、linear、mlp）。全程用 float64（和 Python 的 float 一样），所以 PyTorch 算出的
留出集损失和模型文件里记录的（脚本算的）只差最后几位的舍入；在显卡上（--device=cuda）也是 float64。
模型以外的一切（读模型文件并检查、读数据、划分留出集、分词器——字符级或字节级 BPE 都行、检查和写模型文件）
都直接用脚本自己的函数：import microgpt_teaching 不会运行任何东西。没有装 torch 时，它只打印一行安装方法，退出码 0。
"""
import argparse
import hashlib
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import microgpt_teaching as mg  # noqa: E402

try:
    import warnings
    # torch 没有 numpy 也能用，只是导入时会警告一句 numpy 找不到；我们用不到 numpy，不让它混进输出
    warnings.filterwarnings('ignore', message='Failed to initialize NumPy')
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:
    print('这个可选脚本需要 PyTorch，但没有安装。请先安装（最好在虚拟环境里）：python -m pip install torch')
    sys.exit(0)

# 全程 float64：脚本的每个数都是 Python 的 float（64 位），这样两边的差只剩舍入，约 1e-15
torch.set_default_dtype(torch.float64)
# 矩阵都很小（默认模型最大的是 64 × 16）：多线程分工的开销比省下的时间还多。量过：2 核的机器上，默认模型
# 接着训练 200 步，单线程约 0.2 秒，torch 默认的多线程要 7–22 秒（机器上还有别的程序在跑时更慢）
torch.set_num_threads(1)


# =============================================================================
# 第 4–5 节：参数和模型
# =============================================================================

def linear(x, w):
    """脚本的 linear 是 y = W x（W 的形状 (n_out × n_in)）。x 的每一行是一个位置的向量，所以一次写成 x Wᵀ：
    (T, n_in) @ (n_in, n_out) → (T, n_out)。"""
    return x @ w.T


def rmsnorm(x):
    """y = x / sqrt(mean(x²) + 1e-5)，对最后一维（每个位置的向量）各做一次；没有可学的增益。"""
    return x * (x.pow(2).mean(dim=-1, keepdim=True) + 1e-5) ** -0.5


def mlp(x, w_fc1, w_fc2):
    """y = W2 · relu(W1 x)：(T, n_embd) → (T, 4·n_embd) → (T, n_embd)。"""
    return linear(torch.relu(linear(x, w_fc1)), w_fc2)


class GPT(nn.Module):
    """第 5 节的 gpt()，只是一次算一整个名字的全部位置（下面 forward 的注释说为什么是同一个数学）。"""

    def __init__(self, settings, vocab_size):
        super().__init__()
        self.n_layer, self.n_embd = settings['n_layer'], settings['n_embd']
        self.n_head, self.block_size = settings['n_head'], settings['block_size']
        shapes = mg.param_shapes(vocab_size, self.n_layer, self.n_embd, self.block_size)   # 第 4 节，同名同形
        # nn.ParameterDict 的键里不许有“.”，所以 'layer0.attn_wq' 存成 'layer0_attn_wq'；
        # 用 model['layer0.attn_wq'] 按脚本里的名字取（见 __getitem__），下面的代码就和脚本读起来一样
        self.params = nn.ParameterDict({name.replace('.', '_'): nn.Parameter(torch.zeros(shape)) for name, shape in shapes.items()})
        self.names = list(shapes)                          # 脚本里的名字，按 param_shapes 的顺序

    def __getitem__(self, name):
        return self.params[name.replace('.', '_')]

    def forward(self, token_ids):
        """token_ids：一个名字的前 T 个 token（T ≤ block_size），形状 (T,)。返回 (T, vocab_size)：第 t 行是位置 t 的 logits。
        脚本一次算一个位置，用 KV 缓存记住此前各位置的 k、v；这里 T 个位置一起算，x、q、k、v 的第 t 行就是脚本在
        位置 t 算出的那个向量。位置 t 只能看位置 0..t：脚本靠“缓存里还没有未来”，这里靠因果掩码把未来的分数设成
        -inf（softmax 后权重正好是 0）。所以每个位置的数学完全相同，只是加法、乘法的先后不同，舍入差在最后几位。"""
        T, head_dim = len(token_ids), self.n_embd // self.n_head
        x = self['wte'][token_ids] + self['wpe'][:T]       # (T, n_embd)：token 的向量 + 位置的向量
        x = rmsnorm(x)
        causal = torch.ones(T, T, dtype=torch.bool, device=token_ids.device).tril()   # causal[t, s] = (s ≤ t)
        for li in range(self.n_layer):
            # ---- 多头因果自注意力 ----
            x_residual = x
            x = rmsnorm(x)                                 # pre-norm
            q = linear(x, self[f'layer{li}.attn_wq'])      # (T, n_embd)
            k = linear(x, self[f'layer{li}.attn_wk'])
            v = linear(x, self[f'layer{li}.attn_wv'])
            # 分头：(T, n_embd) → (n_head, T, head_dim)。第 h 个头用第 h 段维度，即脚本里的 q[lo:hi]
            q, k, v = (t.view(T, self.n_head, head_dim).transpose(0, 1) for t in (q, k, v))
            scores = q @ k.transpose(1, 2) / head_dim ** 0.5   # (n_head, T, T)：scores[h, t, s] = q_t · k_s / sqrt(head_dim)
            weights = torch.softmax(scores.masked_fill(~causal, float('-inf')), dim=-1)   # 每行和为 1，未来位置为 0
            # 按权重加权平均 v：(n_head, T, T) @ (n_head, T, head_dim)；再把各头按顺序拼回 (T, n_embd)，即脚本的 x_attn += ...
            x_attn = (weights @ v).transpose(0, 1).reshape(T, self.n_embd)
            x = linear(x_attn, self[f'layer{li}.attn_wo'])
            x = x + x_residual                             # 残差连接
            # ---- MLP ----
            x_residual = x
            x = rmsnorm(x)
            x = mlp(x, self[f'layer{li}.mlp_fc1'], self[f'layer{li}.mlp_fc2'])
            x = x + x_residual
        return linear(x, self['lm_head'])                  # (T, vocab_size)；lm_head 之前没有归一化


# =============================================================================
# 第 6–7、10 节：读模型文件、损失、训练、采样、写回模型文件
# =============================================================================

def load_model(ckpt, vocab_size, device):
    """按脚本的矩阵名字把模型文件里的数字填进 GPT。JSON 里的小数读回来和存进去的逐位相同。
    vocab_size 来自分词器（字符级：字符数 + 1；BPE：字节数 + 合并数 + 1），脚本的 check_checkpoint 已核对过它等于 wte 的行数。"""
    model = GPT(ckpt['settings'], vocab_size)
    with torch.no_grad():
        for name in model.names:
            model[name].copy_(torch.tensor(ckpt['params'][name]))
    return model.to(device)


def doc_losses(model, tokens):
    """一个名字每个位置的交叉熵 -ln p(下一个 token)，形状 (n,)。和脚本一样最多用前 block_size 个位置。"""
    n = min(model.block_size, len(tokens) - 1)
    ids = torch.tensor(tokens[:n + 1], device=next(model.parameters()).device)
    return F.cross_entropy(model(ids[:-1]), ids[1:], reduction='none')   # 输入是前 n 个 token，目标是后 n 个


def evaluate(model, docs, tokenizer):
    """留出集上的平均每 token 损失：所有位置的损失之和 / 位置总数（和脚本的 evaluate 相同）。"""
    total, count = 0.0, 0
    with torch.no_grad():                                  # 只评估，不建计算图
        for doc in docs:
            losses = doc_losses(model, tokenizer.encode(doc))
            total, count = total + losses.sum().item(), count + len(losses)
    return total / count


def make_optimizer(model, ckpt, learning_rate):
    """torch.optim.Adam，超参数和脚本相同；再把模型文件里的 m、v、t 放进它的状态，让它从脚本停下的地方接着走。"""
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, betas=(mg.beta1, mg.beta2), eps=mg.eps_adam)
    for name in model.names:
        p = model[name]
        optimizer.state[p] = {'step': torch.tensor(float(ckpt['adam']['t'])),   # torch 的步数放在 CPU 上，类型跟默认的 float64
                              'exp_avg': torch.tensor(ckpt['adam']['m'][name], device=p.device),       # m
                              'exp_avg_sq': torch.tensor(ckpt['adam']['v'][name], device=p.device)}    # v
    return optimizer


def train(model, optimizer, train_docs, tokenizer, steps, steps_before, learning_rate):
    """和脚本的 train 一样：每步一个名字，损失取各位置的平均，学习率从 learning_rate 线性降到 0。
    已经训练过 steps_before 步的模型从第 steps_before 个名字接着学（脚本 run() 里的 offset 是同一件事）。
    每做完一步交出 (第几步, loss, 学习率)。"""
    for step in range(steps):
        tokens = tokenizer.encode(train_docs[(steps_before + step) % len(train_docs)])
        loss = doc_losses(model, tokens).mean()
        optimizer.zero_grad()
        loss.backward()                                    # torch.autograd 代替第 3 节的 Value.backward
        lr = learning_rate * (1 - step / steps)
        for group in optimizer.param_groups:
            group['lr'] = lr
        optimizer.step()
        yield step + 1, loss.item(), lr


def sample_name(model, tokenizer, temperature):
    """第 7 节：按 softmax(logits / T) 一个个抽 token，抽到 BOS 就停。抽签用 Python 的 random.choices，和脚本一样。
    BPE 的样本可能停在一个字的中间：解码时那几个字节变成 �（和脚本一样）。"""
    tokens = [tokenizer.bos]
    with torch.no_grad():
        for _ in range(model.block_size):
            # 每次把已有的整串重算一遍，取最后一个位置的 logits（没有 KV 缓存：名字很短，这样最简单）
            logits = model(torch.tensor(tokens, device=next(model.parameters()).device))[-1]
            probs = torch.softmax(logits / temperature, dim=-1).tolist()
            token_id = random.choices(range(tokenizer.vocab_size), weights=probs)[0]
            if token_id == tokenizer.bos:
                break
            tokens.append(token_id)
    return tokenizer.decode(tokens)


def save_checkpoint(model, optimizer, ckpt, tokenizer, step_losses, val_loss, data):
    """写回脚本的模型文件格式，全用脚本自己的函数（第 10 节）：checkpoint_json 要的是按名字排好的 Value 矩阵、一个有
    params、m、v、t 的优化器和一份 run() 那样的 record；replace_file 锁住文件夹再写，原来的文件值得留（不是完好的模型文件，
    或者这次的不明确更好）时先在旁边留一份备份。所以脚本用 --load_path 就能读回、接着训练。返回 (路径, 备份名, 理由)。"""
    for name, value in ckpt['settings'].items():          # checkpoint_json 从脚本的设置里读形状
        setattr(mg, name, value)
    state = {name: [[mg.Value(x) for x in row] for row in model[name].tolist()] for name in model.names}
    adam = mg.Adam(mg.flatten(state))
    states = [optimizer.state[model[name]] for name in model.names]
    adam.m = [x for s in states for x in s['exp_avg'].flatten().tolist()]
    adam.v = [x for s in states for x in s['exp_avg_sq'].flatten().tolist()]
    adam.t = int(states[0]['step'].item())
    # checkpoint_json 和 why_keep_model 读的那几项：训练后的留出集损失、数据、分词器、此前和这次训练的步数
    record = {'losses': {'after': val_loss}, 'step_losses': step_losses, 'data': data,
              'model': {'tokenizer': mg.tokenizer_record(tokenizer), 'steps_before': ckpt['steps_trained'], 'vocab_size': tokenizer.vocab_size}}
    try:
        return mg.replace_file('save_path', mg.checkpoint_json(state, adam, record), mg.why_keep_model(record))
    except OSError as e:
        raise mg.UserError(f'保存模型到 {mg.shown_path(mg.save_path)} 失败（{e.strerror}）。原来在那里的文件没有被改动。', 1) from None


# =============================================================================
# 主程序
# =============================================================================

def parse_args(argv):
    p = argparse.ArgumentParser(description='把 microGPT 教学版存的模型文件读进 PyTorch：比较留出集损失、编样本、接着训练。')
    p.add_argument('checkpoint', help='脚本用 --save_path 存的模型文件')
    p.add_argument('--input_path', help='训练时用的数据（默认：microgpt_teaching.py 旁边的 input.txt）')
    p.add_argument('--seed', type=int, default=mg.seed, help=f'随机种子，和训练时的一样才能划出同一个留出集（默认 {mg.seed}）')
    p.add_argument('--val_size', type=int, default=mg.val_size, help=f'留出集的行数，和训练时的一样（默认 {mg.val_size}）')
    p.add_argument('--steps', type=int, default=0, help='用 torch.optim.Adam 接着训练几步（默认 0：不训练）')
    p.add_argument('--learning_rate', type=float, default=mg.learning_rate, help=f'接着训练的初始学习率（默认 {mg.learning_rate}）')
    p.add_argument('--device', choices=('cpu', 'cuda'), default='cpu', help='在哪里算（默认 cpu）')
    p.add_argument('--num_samples', type=int, default=5, help='编几个样本（默认 5）')
    p.add_argument('--save_path', default='', help='训练后把模型存成脚本能读回的模型文件（空 = 不存）')
    return p.parse_args(argv)


def run(args):
    started = time.perf_counter()
    for name in ('steps', 'val_size', 'num_samples'):
        if getattr(args, name) < 0:
            raise mg.UserError(f'--{name}={getattr(args, name)} 不合法：它不能是负数。', 2)
    if not args.learning_rate > 0:
        raise mg.UserError(f'--learning_rate={args.learning_rate} 不合法：它必须大于 0。', 2)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise mg.UserError('--device=cuda：这台机器上的 PyTorch 找不到可用的 CUDA 显卡。请用 --device=cpu。', 2)
    ckpt = mg.load_checkpoint(os.path.abspath(args.checkpoint))     # 第 10 节：读、检查，问题都变成一句中文说明
    # 训练前就确认存得下、不会覆盖别人的文件：脚本的 check_outputs 检查它的全局设置 save_path 和 html_path
    mg.save_path = os.path.abspath(os.path.expanduser(args.save_path)) if args.save_path else ''
    mg.html_path = ''
    mg.check_outputs()

    # 和脚本 run() 的顺序一样用随机数：设种子 → 读数据 → 打乱、划出留出集 → 初始化参数。
    # 脚本读回模型前也先照常随机初始化；这里只把那些高斯随机数“用掉”，之后抽名字的随机数就和脚本一样
    mg.val_size = args.val_size
    random.seed(args.seed)
    data_path = os.path.abspath(os.path.expanduser(args.input_path)) if args.input_path else mg.script_dir_path(mg.input_path)
    docs = mg.load_docs(data_path)
    fingerprint = hashlib.sha256('\n'.join(docs).encode('utf-8')).hexdigest()[:16]   # 和脚本一样，在打乱之前算
    train_docs, val_docs = mg.split_docs(docs)
    tokenizer = mg.make_tokenizer(docs, train_docs, ckpt)  # 第 9 节：给了模型文件，就是它存的那个分词器（字符级或 BPE）
    unknown = tokenizer.unknown_chars(''.join(docs))
    if unknown:
        raise mg.UserError(f'数据里有模型的词表里没有的字符 {mg.shown_value("".join(unknown))}：请用 --input_path 指定训练这个模型时用的数据。', 1)
    model = load_model(ckpt, tokenizer.vocab_size, args.device)
    n_params = sum(p.numel() for p in model.parameters())
    for _ in range(n_params):
        random.gauss(0, mg.init_std)

    s = ckpt['settings']
    print(f'PyTorch {torch.__version__}，设备 {args.device}，float64')
    print(f'模型文件：{mg.shown_path(os.path.abspath(args.checkpoint))}（已训练 {ckpt["steps_trained"]} 步；{s["n_layer"]} 层，n_embd={s["n_embd"]}，'
          f'{s["n_head"]} 个头，block_size={s["block_size"]}；{n_params} 个参数）')
    print(f'词表：{mg.vocab_text(tokenizer)}')
    same = '和训练时的数据相同' if (ckpt.get('data') or {}).get('fingerprint') == fingerprint else '注意：和训练时的数据不同，留出集损失不可比'
    print(f'数据：{mg.visible(os.path.basename(data_path))}，训练 {len(train_docs)} 行，留出 {len(val_docs)} 行（seed={args.seed}，val_size={args.val_size}），{same}')
    val_loss = evaluate(model, val_docs, tokenizer) if val_docs else None
    if val_loss is None:
        print('没有留出集（val_size=0 或数据不到 10 行），不比较损失。')
    else:
        stored = ckpt['val_loss']
        print('留出集上的平均损失：')
        print(f'  模型文件里记录的（脚本算的）  {"没有记录" if stored is None else f"{stored:.12f}"}')
        print(f'  PyTorch 算的                  {val_loss:.12f}')
        if stored is not None:
            print(f'  差                            {val_loss - stored:.1e}')

    if args.steps:
        offset = ckpt['steps_trained'] % len(train_docs)
        print(f'\n用 torch.optim.Adam 接着训练 {args.steps} 步（这个模型的第 {ckpt["steps_trained"] + 1}–{ckpt["steps_trained"] + args.steps} 步，'
              f'从训练集第 {offset + 1} 行往后学）。和脚本用 --load_path 接着训练相比：')
        print('  相同：每步一行（一个名字）、行的顺序、损失取各位置的平均；学习率从 learning_rate 线性降到 0（计划从头开始，脚本也是）；')
        print(f'        Adam 的公式和超参数（β₁={mg.beta1}，β₂={mg.beta2}，eps={mg.eps_adam} 加在偏差修正后的 sqrt(v̂) 上），接着模型文件里的 m、v、t。')
        print('  不同：一行的所有位置一次算完（因果掩码），不用 KV 缓存；梯度由 torch.autograd 求；Adam 按 torch 的写法算')
        print('        （m.lerp_(g, 1-β₁)，sqrt(v)/sqrt(1-β₂^t) + eps）。数学相同，只有舍入不同：')
        print('        量过，默认模型接着训练 200 步后，参数和脚本接着训练的相差不到 1e-15。')
        optimizer = make_optimizer(model, ckpt, args.learning_rate)
        start, every = time.perf_counter(), max(1, args.steps // 10)
        step_losses = []
        for step, loss, lr in train(model, optimizer, train_docs, tokenizer, args.steps, ckpt['steps_trained'], args.learning_rate):
            step_losses.append(loss)
            if step % every == 0 or step == args.steps:
                print(f'  步 {step:4d}/{args.steps} | loss {loss:.4f} | 学习率 {lr:.5f}')
        seconds = max(time.perf_counter() - start, 1e-9)
        print(f'训练用时 {seconds:.1f} 秒（{args.steps / seconds:.0f} 步/秒）')
        before, val_loss = val_loss, evaluate(model, val_docs, tokenizer) if val_docs else None
        if val_loss is not None:
            print(f'训练后留出集损失 {val_loss:.12f}（训练前 {before:.12f}）')
        if mg.save_path:
            target, backup, why = save_checkpoint(model, optimizer, ckpt, tokenizer, step_losses, val_loss,
                                                  {'file': mg.visible(os.path.basename(data_path)), 'fingerprint': fingerprint})
            mg.say_saved('模型', target, backup, why)      # 和脚本一样说存到了哪里；留了备份就说留在哪里、怎么换回来
            data_arg = f' --input_path={mg.quoted(data_path)}' if args.input_path else ''
            print('脚本可以读回它：')
            print(f'  python microgpt_teaching.py --load_path={mg.quoted(target)}{data_arg} --num_steps=0')
    elif mg.save_path:
        print('没有训练（--steps=0），所以没有保存。')

    if args.num_samples:
        samples = [sample_name(model, tokenizer, mg.temperature) for _ in range(args.num_samples)]
        print(f'\nPyTorch 模型编出的 {args.num_samples} 个样本（temperature={mg.temperature}）：')
        print('  ' + '  '.join(mg.visible(name) or '（空）' for name in samples))
        print(f'抽签用 Python 的 random，随机数的顺序和脚本一样，所以这就是脚本用同样的 seed 和数据、'
              f'--load_path 读这个模型文件、--num_steps={args.steps} 时编出的前 {args.num_samples} 个（两边的概率只差舍入，抽签几乎不会因此不同）。')
    print(f'\n总用时 {time.perf_counter() - started:.1f} 秒。')
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except mg.UserError as e:
        print(f'错误：{e}', file=sys.stderr)
        return e.exit_code


if __name__ == '__main__':
    sys.exit(main())
