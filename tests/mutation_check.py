"""变异检查 (mutation check)：故意把脚本改错一处，看测试能不能发现。手动运行，pytest 不收集它。

    python tests/mutation_check.py              # 全部变异，两个一起跑（约十几分钟）
    python tests/mutation_check.py --jobs=1     # 一次只跑一个
    python tests/mutation_check.py --only=rsub,lr_off_by_one

每个“变异体”(mutant) 是一处真实可能写错的单行修改：把 microgpt_teaching.py 里的一段文字换成另一段。
对每个变异体，把项目复制到一个临时文件夹，只改那一处，然后在那里运行整个测试套件（遇到第一个失败
就停）。测试失败 = 抓住了；全部通过 = 这个错误能溜过测试，需要补一个测试。

教程里的代码摘录会和脚本逐字对照（test_docs 里的一个测试），改了脚本它一定失败；那不算“测试抓住了
bug”，所以这里把那个测试排除在外，分数只反映真正检查行为的测试。完整默认运行的参考数字
（check_reference.py）也不在这里跑：它要半分钟，而这里要衡量的是 pytest 套件本身。

“等价变异体”(equivalent mutant) 改了代码却不改变任何行为，本来就不可能被抓住；列表里标出了它们，
并写明为什么等价。
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = 'microgpt_teaching.py'
EXCERPT_TEST = 'tests/test_docs.py::test_every_python_block_in_the_tutorial_is_marked_and_excerpts_are_in_the_script'

# (名字, 说明, 原文, 改成) —— 原文必须在脚本里恰好出现一次
MUTANTS = [
    # ---- 自动求导 ----
    ('rsub', '数字 - Value 算成了 Value - 数字',
     'def __rsub__(self, other): return (-self) + other', 'def __rsub__(self, other): return self + (-other)'),
    ('rtruediv', '数字 / Value 算成了 Value / 数字',
     'def __rtruediv__(self, other): return self ** -1 * other', 'def __rtruediv__(self, other): return self * other ** -1'),
    ('truediv', 'a / b 算成了 b / a',
     'def __truediv__(self, other): return self * other ** -1', 'def __truediv__(self, other): return other * self ** -1'),
    ('mul_grads_swapped', '乘法的两个局部导数写反',
     'return Value(self.data * other.data, (self, other), (other.data, self.data))',
     'return Value(self.data * other.data, (self, other), (self.data, other.data))'),
    ('pow_grad', '幂的导数少减了 1：k·a^k',
     'return Value(self.data ** k, (self,), (k * self.data ** (k - 1),))',
     'return Value(self.data ** k, (self,), (k * self.data ** k,))'),
    ('log_grad', 'ln 的导数符号错',
     'return Value(math.log(self.data), (self,), (1.0 / self.data,))',
     'return Value(math.log(self.data), (self,), (-1.0 / self.data,))'),
    ('exp_grad', 'e^a 的导数写成 a',
     'return Value(out, (self,), (out,))', 'return Value(out, (self,), (self.data,))'),
    ('relu_ge', 'relu 在 0 处取导数 1（>= 而不是 >）',
     '(1.0 if self.data > 0 else 0.0,)', '(1.0 if self.data >= 0 else 0.0,)'),
    ('relu_no_clip', 'relu 忘了截断负数',
     'return Value(max(self.data, 0.0), (self,)', 'return Value(self.data, (self,)'),
    ('backward_assign', '反向传播用 = 而不是 +=：多条路径的梯度互相覆盖',
     'child.grad += local * g', 'child.grad = local * g'),
    ('backward_seed', '反向传播的起点 ∂L/∂L 写成 0',
     '        self.grad = 1.0\n', '        self.grad = 0.0\n'),
    ('marks_not_reset', '反向传播后不擦掉访问标记',
     'node._visited = False          # 擦掉标记', 'pass  # node._visited = False  擦掉标记'),
    ('fused_dot_grads', '融合点积的局部导数没有交叉（∂s/∂a_i 写成 a_i）',
     'return Value(sum(map(operator.mul, a_data, b_data)), a + b, b_data + a_data)',
     'return Value(sum(map(operator.mul, a_data, b_data)), a + b, a_data + b_data)'),
    ('fused_linear_grads', '融合线性层的局部导数没有交叉',
     'out.append(Value(sum(map(operator.mul, row_data, x_data)), row + x, x_data + row_data))',
     'out.append(Value(sum(map(operator.mul, row_data, x_data)), row + x, row_data + x_data))'),
    ('fused_sum_grads', '融合求和的局部导数写成 1/n',
     'return Value(sum([x.data for x in xs]), tuple(xs), (1.0,) * len(xs))',
     'return Value(sum([x.data for x in xs]), tuple(xs), (1.0 / len(xs),) * len(xs))'),
    ('ce_grad_onehot', '交叉熵的梯度忘了减去 one-hot',
     '        local[target] -= 1.0\n', '        pass\n'),
    ('ce_value_max', '融合交叉熵的值忘了把 max 加回来',
     'return Value(math.log(total) - (z[target] - z_max), tuple(logits), local)',
     'return Value(math.log(total) - z[target], tuple(logits), local)'),
    ('atomic_ce_max', '基本运算版交叉熵忘了把 max 加回来',
     '.log() - (logits[target] - max_val)', '.log() - logits[target]'),
    ('atomic_sum_skips_first', '基本运算版求和漏了第一项',
     '    total = xs[0]\n    for x in xs[1:]:', '    total = xs[0] * 0.0\n    for x in xs[1:]:'),
    # ---- 模型 ----
    ('softmax_no_max', 'softmax 不减最大值（温度很低时 e 的幂溢出）',
     '    exps = [(z - max_val).exp() for z in logits]\n    inv_total',
     '    exps = [z.exp() for z in logits]\n    inv_total'),
    ('rmsnorm_mean', 'RMSNorm 忘了除以长度（用平方和代替平方平均）',
     'mean_square = dot(x, x) / len(x)', 'mean_square = dot(x, x)'),
    ('rmsnorm_power', 'RMSNorm 乘以 sqrt 而不是除以',
     'scale = (mean_square + 1e-5) ** -0.5', 'scale = (mean_square + 1e-5) ** 0.5'),
    ('attn_scale', '注意力分数除以 d 而不是 sqrt(d)',
     '/ head_dim ** 0.5 for k_t in keys[li]]', '/ head_dim for k_t in keys[li]]'),
    ('attn_one_head_slice', '每个头都用同一段维度',
     'lo, hi = h * head_dim, (h + 1) * head_dim', 'lo, hi = 0, head_dim'),
    ('kv_cache_overwrite', 'KV 缓存只留当前位置（看不到过去）',
     'keys[li].append(k)', 'keys[li][:] = [k]'),
    ('no_attn_residual', '注意力后面漏了残差连接',
     'x = [a + b for a, b in zip(x, x_residual)]      # 残差连接', 'x = [a for a in x]      # 残差连接'),
    ('no_prenorm', '注意力前漏了 pre-norm',
     'x = rmsnorm(x)                                  # pre-norm', 'x = x                                  # pre-norm'),
    ('wpe_by_token', '位置嵌入按 token 编号取',
     "state['wpe'][pos_id]", "state['wpe'][token_id % block_size]"),
    ('mlp_on_ge', '提速技巧失效：关着的单元（值正好 0）也送进 W2（数不变，图变大）',
     'on = [j for j, hj in enumerate(h) if hj.data > 0]', 'on = [j for j, hj in enumerate(h) if hj.data >= 0]'),
    ('mlp_on_ne', '等价：h_j 是 relu 的输出，从不为负，所以 > 0 和 != 0 挑出的是同一批单元',
     'on = [j for j, hj in enumerate(h) if hj.data > 0]', 'on = [j for j, hj in enumerate(h) if hj.data != 0]'),
    # ---- 训练 ----
    ('target_is_input', '目标写成当前 token 而不是下一个',
     'losses.append(cross_entropy(logits, tokens[pos + 1]))', 'losses.append(cross_entropy(logits, tokens[pos]))'),
    ('lr_off_by_one', '学习率日程差一步',
     'lr = learning_rate * (1 - step / steps)', 'lr = learning_rate * (1 - (step + 1) / steps)'),
    ('adam_no_bias_correction', 'Adam 忘了一阶矩的偏差修正',
     'm_hat = m_i / correction1', 'm_hat = m_i'),
    ('adam_v_not_squared', 'Adam 二阶矩用 g 而不是 g²',
     'v[i] = v_i = b2 * v[i] + one_minus_b2 * g * g', 'v[i] = v_i = b2 * v[i] + one_minus_b2 * g'),
    ('adam_no_sqrt', 'Adam 分母忘了开方',
     'p.data -= lr * m_hat / (sqrt(v_hat) + eps)', 'p.data -= lr * m_hat / (v_hat + eps)'),
    ('adam_grad_kept', 'Adam 更新后没把 grad 清零',
     'p.grad = 0.0               # 清零', 'pass                       # 清零'),
    ('adam_betas_swapped', 'Adam 一阶矩里 β₁ 乘错了对象',
     'm[i] = m_i = b1 * m[i] + one_minus_b1 * g', 'm[i] = m_i = b1 * g + one_minus_b1 * m[i]'),
    ('eval_stale_cache', '共享开头的评估多留了一个旧的 KV 缓存位置',
     'del keys[li][same:]', 'del keys[li][same + 1:]'),
    ('split_overlap', '留出集和训练集重叠了一行',
     'return docs[:len(docs) - n_val], docs[len(docs) - n_val:]',
     'return docs[:len(docs) - n_val + 1], docs[len(docs) - n_val:]'),
    # ---- 采样 ----
    ('temperature_times', '温度乘上去而不是除',
     'probs = softmax([z / temperature for z in logits])', 'probs = softmax([z * temperature for z in logits])'),
    ('no_stop_at_bos', '采样抽到 BOS 不停下',
     '        if token_id == tokenizer.bos:        # 模型说“名字结束了”\n            break',
     '        if token_id == tokenizer.bos:        # 模型说“名字结束了”\n            pass'),
    ('prompt_draws', '给定的开头也抽了随机数',
     'if pos + 1 < len(tokens):\n            continue', 'if pos + 1 < len(tokens):\n            random.random()'),
    # ---- 保存、观察、主程序 ----
    ('restore_no_t', '读回模型时没恢复 Adam 的步数 t',
     "optimizer.t = ckpt['adam']['t']", 'optimizer.t = 0'),
    ('ckpt_nan_allowed', '模型文件里的 NaN 没被拒绝',
     ' and math.isfinite(x)', ''),
    ('explain_rank', 'explain 的排名少算了 1',
     'rank = 1 + sum(1 for p in probs if p > probs[target])', 'rank = sum(1 for p in probs if p > probs[target])'),
    ('bigram_no_smoothing', '二元语法模型的平滑加成了 0.5',
     'counts = [[1] * V for _ in range(V)]', 'counts = [[0.5] * V for _ in range(V)]'),
    ('diagnose_passes', '“看了很多遍”的提醒条件写反',
     'if passes > MANY_PASSES:', 'if passes < MANY_PASSES:'),
    ('temperature_limit', '温度下限只检查了大于 0',
     'if not temperature >= 0.001:', 'if not temperature > 0:'),
    ('prompt_room', '开头的长度检查差一',
     'if len(prompt) >= block_size:', 'if len(prompt) > block_size:'),
]


def apply(text, old, new, name):
    if text.count(old) != 1:
        sys.exit(f'mutant {name}: the original text occurs {text.count(old)} times in {SCRIPT}, not once')
    return text.replace(old, new)


def run_one(mutant, timeout):
    """在项目的一份临时拷贝里应用一个变异体（old 为空时不改），运行测试；返回 (是否失败, 哪个测试, 秒数)。"""
    name, _, old, new = mutant
    with tempfile.TemporaryDirectory(prefix=f'mutant-{name}-') as tmp:
        for entry in os.listdir(ROOT):
            if entry in ('.git', '.pytest_cache', '__pycache__'):
                continue
            src = os.path.join(ROOT, entry)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(tmp, entry), ignore=shutil.ignore_patterns('__pycache__'))
            else:
                shutil.copy2(src, tmp)
        path = os.path.join(tmp, SCRIPT)
        with open(path, encoding='utf-8') as f:
            text = f.read()
        with open(path, 'w', encoding='utf-8') as f:
            f.write(apply(text, old, new, name) if old else text)
        started = time.perf_counter()
        try:
            result = subprocess.run([sys.executable, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider',
                                     '--deselect', EXCERPT_TEST], cwd=tmp, timeout=timeout,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding='utf-8')
            caught, detail = result.returncode != 0, result.stdout
        except subprocess.TimeoutExpired:
            caught, detail = True, f'timed out after {timeout} s'
        failed = [line[len('FAILED '):].split(' - ')[0] for line in detail.splitlines() if line.startswith('FAILED ')]
        return caught, failed[0] if failed else detail.strip().splitlines()[-1:], time.perf_counter() - started


def main():
    args = dict(arg[2:].split('=', 1) for arg in sys.argv[1:] if arg.startswith('--') and '=' in arg)
    chosen = MUTANTS
    if 'only' in args:
        names = args['only'].split(',')
        chosen = [m for m in MUTANTS if m[0] in names]
    with open(os.path.join(ROOT, SCRIPT), encoding='utf-8') as f:
        text = f.read()
    for name, _, old, new in chosen:                 # every mutant must apply before anything runs
        apply(text, old, new, name)
    jobs, timeout = int(args.get('jobs', 2)), int(args.get('timeout', 600))
    caught, where, seconds = run_one(('unchanged', '', '', ''), timeout)
    if caught:
        sys.exit(f'the suite fails on the unchanged script ({where}); fix that first, or no mutant score means anything')
    print(f'unchanged script: the suite passes ({seconds:.0f} s)')
    print(f'{len(chosen)} mutants, {jobs} at a time; each runs the pytest suite (stops at the first failure)\n')
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda m: run_one(m, timeout), chosen))
    survivors, equivalent_survivors = [], []
    for (name, why, _, _), (caught, where, seconds) in zip(chosen, results):
        equivalent = why.startswith('等价')
        status = 'caught' if caught else ('equivalent, survives' if equivalent else 'SURVIVED')
        print(f'{status:21} {name:24} {seconds:6.1f} s  {why}' + (f'\n{"":21} by {where}' if caught else ''))
        if not caught:
            (equivalent_survivors if equivalent else survivors).append(name)
    real = [m for m in chosen if not m[1].startswith('等价')]
    killed = len(real) - len(survivors)
    print(f'\nscore: {killed} of {len(real)} non-equivalent mutants caught'
          + (f'; survivors: {", ".join(survivors)}' if survivors else '')
          + (f'; equivalent mutants that survived as expected: {", ".join(equivalent_survivors)}'
             if equivalent_survivors else ''))
    return 1 if survivors else 0


if __name__ == '__main__':
    sys.exit(main())
