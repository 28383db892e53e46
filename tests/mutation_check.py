"""变异检查 (mutation check)：故意把脚本改错一处，看测试能不能发现。手动运行，pytest 不收集它。

    python tests/mutation_check.py                  # 全部变异，两个一起跑
    python tests/mutation_check.py --jobs=1         # 一次只跑一个
    python tests/mutation_check.py --only=lesson    # 只跑一组：lesson（第 1–7 节的课本写法）、speed（第 8 节的
                                                    # 快的双胞胎）、later（第 9 节以后）；可以用逗号连起来：--only=lesson,speed
    python tests/mutation_check.py --only=rsub,lr_off_by_one      # 也可以点名
    python tests/mutation_check.py --tests=tests/test_autograd.py,tests/test_speed.py
                                                    # 只用这几个测试文件（默认是整个测试套件）
    python tests/mutation_check.py --practice       # 不跑 pytest，改跑练习检查 tests/practice.py（见下）
    python tests/mutation_check.py --help           # 只打印这段说明

每个“变异体”(mutant) 是一处真实可能写错的修改：把 microgpt_teaching.py 里的一段文字换成另一段。
对每个变异体，把项目复制到一个临时文件夹，只改那一处，然后在那里运行测试（遇到第一个失败就停）。
测试失败 = 抓住了；全部通过 = 这个错误能溜过测试，需要补一个测试。每个变异体都从开始运行时读到的同一份脚本改起。
要改的原文在脚本里找不到（或不止一处）时，这个变异体报告 “target not found”（或 “target ambiguous”），
不算分，其余照常运行：脚本改了，变异体的原文就要跟着更新。

教程里的代码摘录会和脚本逐字对照（test_docs 里的一个测试），改了脚本它一定失败；那不算“测试抓住了
bug”，所以这里把那个测试排除在外，分数只反映真正检查行为的测试。完整默认运行的参考数字
（check_reference.py）也不在这里跑：它要半分钟，而这里要衡量的是 pytest 套件本身。

“等价变异体”(equivalent mutant) 改了代码却不改变任何行为（或只改变最后一位的舍入、只改变快慢以外什么都不变），
本来就不可能被抓住；列表里标出了它们（说明以“等价”开头），并写明为什么等价。

--practice（issue 19：“写错的代码永远不能通过练习检查”）：对 LESSON_MUTANTS 和 SPEED_MUTANTS 里每个不等价、
改动落在练习函数里的变异体，把改过的脚本放进临时文件夹，运行 python tests/practice.py --file 那份脚本，要求
退出码不是 0，而且第一个“不通过”的练习正是那个函数的练习。改动在哪个函数里，用 ast 在改过的脚本上找
（改动所在的行被哪个 def 包住；删掉一行的变异体看它前面那一行）。函数 → 练习：
    Value.__add__ → add，__mul__ → mul，__pow__ → pow，Value.log/exp/relu → log/exp/relu，Value.backward → backward，
    dot、linear → linear（dot 没有自己的练习，linear 的检查就是 dot 的检查），softmax、rmsnorm、cross_entropy 同名，
    gpt → attention，Adam.step → adam，sample_name → sample_name。
跳过（列出来，不算分）的：
  - 不在练习函数里的（mlp、doc_losses、evaluate、train、Tokenizer……：练习里没有人重写它们）；
  - 由 +、·、幂拼出来的运算 __neg__、__sub__、__truediv__、__radd__、__rsub__、__rmul__、__rtruediv__：
    它们不是练习（练习只让人删掉 add、mul、pow 等的函数体重写），所以不是“练习函数写错了”。它们写错时，
    练习检查多半也会在用到它们的练习上失败（例如 truediv 错了 softmax 不通过），但那不是这里要证明的事；
  - 只改了 “if speed_tricks: return fast_…” 交接行的：练习检查把 speed_tricks 设为 False，那一行从来不运行，
    课本写法本身没有错（对练习来说是等价的）；
  - 标了“等价”的。
"""
import ast
import os
import re
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

# ---- 第 1–7 节：课本写法（speed_tricks=False 时走的就是这些；True 时一部分交给第 8 节）----
LESSON_MUTANTS = [
    # 1–2. 数据、分词器
    ('split_overlap', '留出集和训练集重叠了一行',
     'return docs[:len(docs) - n_val], docs[len(docs) - n_val:]',
     'return docs[:len(docs) - n_val + 1], docs[len(docs) - n_val:]'),
    ('bos_collides', 'BOS 的编号和第一个字符撞车',
     'self.bos = len(self.chars)', 'self.bos = 0'),
    # 3. 自动求导：运算
    ('rsub', '数字 - Value 算成了 Value - 数字',
     'def __rsub__(self, other): return (-self) + other', 'def __rsub__(self, other): return self + (-other)'),
    ('rtruediv', '数字 / Value 算成了 Value / 数字',
     'def __rtruediv__(self, other): return self ** -1 * other', 'def __rtruediv__(self, other): return self * other ** -1'),
    ('truediv', 'a / b 算成了 b / a',
     'def __truediv__(self, other): return self * other ** -1', 'def __truediv__(self, other): return other * self ** -1'),
    ('neg', '-a 算成了 a',
     'def __neg__(self): return self * -1.0', 'def __neg__(self): return self * 1.0'),
    ('add_const_grad', 'Value + 数字的局部导数写成 0',
     'return Value(self.data + other, (self,), (1.0,))', 'return Value(self.data + other, (self,), (0.0,))'),
    ('mul_const_grad', 'Value · 数字的局部导数写成 1',
     'return Value(self.data * other, (self,), (other,))', 'return Value(self.data * other, (self,), (1.0,))'),
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
    # 3. 自动求导：课本的 backward
    ('tb_backward_assign', '课本 backward 用 = 而不是 +=：多条路径的梯度互相覆盖',
     'child.grad += local * node.grad', 'child.grad = local * node.grad'),
    ('tb_backward_seed', '课本 backward 的起点 ∂L/∂L 写成 0',
     '        self.grad = 1.0\n', '        self.grad = 0.0\n'),
    ('tb_no_visited_check', '课本 backward 不查 visited：用了几次的节点被排进 topo 好几次，梯度重复累加',
     'elif node not in visited:', 'elif True:'),
    ('tb_topo_not_reversed', '课本 backward 按拓扑序而不是逆拓扑序累加梯度',
     'for node in reversed(topo):\n            for child, local in zip(node._children, node._local_grads):\n'
     '                child.grad += local * node.grad',
     'for node in topo:\n            for child, local in zip(node._children, node._local_grads):\n'
     '                child.grad += local * node.grad'),
    ('tb_preorder', '课本 backward 的排序写成前序（先排自己再排孩子）',
     'stack += [node, None]      #', 'topo.append(node); stack += []      #'),
    ('tb_push_visited_children', '等价：已访问的孩子也入栈，弹出时 “node not in visited” 会跳过它（只是慢）',
     'stack += [child for child in node._children if child not in visited]',
     'stack += list(node._children)'),
    # 5. 模型：课本的 dot、linear、softmax、rmsnorm、mlp
    ('tb_dot_skips_first', '课本 dot 漏了第一项',
     'return sum(ai * bi for ai, bi in zip(a, b))', 'return sum(ai * bi for ai, bi in zip(a[1:], b[1:]))'),
    ('tb_dot_plus', '课本 dot 把乘积写成和',
     'return sum(ai * bi for ai, bi in zip(a, b))', 'return sum(ai + bi for ai, bi in zip(a, b))'),
    ('tb_linear_first_row', '课本 linear 每个输出都用 W 的第一行',
     'return [dot(row, x) for row in w]', 'return [dot(w[0], x) for row in w]'),
    ('tb_linear_args_swapped', '等价：dot(x, row) 和 dot(row, x) 的每个乘积只是因子换了位置，值和梯度逐位相同',
     'return [dot(row, x) for row in w]', 'return [dot(x, row) for row in w]'),
    ('tb_softmax_no_max', '课本 softmax 不减最大值（分数上千时 e 的幂溢出）',
     'exps = [(z - max_val).exp() for z in logits]\n    total = sum(exps)',
     'exps = [z.exp() for z in logits]\n    total = sum(exps)'),
    ('tb_softmax_max_as_node', '等价：减去的 max 换成图里的节点；结果与它无关，流向它的梯度加起来是 0（只差最后一位的舍入）',
     'max_val = max(z.data for z in logits)\n    exps = [(z - max_val).exp() for z in logits]\n    total = sum(exps)',
     'max_val = max(logits, key=lambda z: z.data)\n    exps = [(z - max_val).exp() for z in logits]\n    total = sum(exps)'),
    ('tb_softmax_total', '课本 softmax 的分母漏了第一项',
     '    total = sum(exps)\n    return [e / total for e in exps]',
     '    total = sum(exps[1:])\n    return [e / total for e in exps]'),
    ('rmsnorm_mean', 'RMSNorm 忘了除以长度（用平方和代替平方平均）',
     'mean_square = dot(x, x) / len(x)', 'mean_square = dot(x, x)'),
    ('rmsnorm_power', 'RMSNorm 乘以 sqrt 而不是除以',
     'scale = (mean_square + 1e-5) ** -0.5', 'scale = (mean_square + 1e-5) ** 0.5'),
    ('rmsnorm_eps', 'RMSNorm 的小常数写成 1e-6',
     'scale = (mean_square + 1e-5) ** -0.5', 'scale = (mean_square + 1e-6) ** -0.5'),
    ('tb_mlp_no_relu', '课本 mlp 漏了 relu',
     'h = [hi.relu() for hi in linear(x, w_fc1)]', 'h = [hi for hi in linear(x, w_fc1)]'),
    ('tb_mlp_wrong_matrix', '课本 mlp 第二次乘的还是 W1',
     'return linear(h, w_fc2)', 'return linear(h, w_fc1)'),
    # 5. 模型：gpt
    ('attn_scale', '注意力分数除以 d 而不是 sqrt(d)',
     '/ head_dim ** 0.5 for k_j in keys[li]]', '/ head_dim for k_j in keys[li]]'),
    ('attn_one_head_slice', '每个头都用同一段维度',
     'lo, hi = h * head_dim, (h + 1) * head_dim', 'lo, hi = 0, head_dim'),
    ('attn_v_first_slice', '每个头都用 v 的第一段维度做加权平均',
     '[dot(weights, [v_j[d] for v_j in values[li]]) for d in range(lo, hi)]',
     '[dot(weights, [v_j[d] for v_j in values[li]]) for d in range(hi - lo)]'),
    ('kv_cache_overwrite', 'KV 缓存只留当前位置（看不到过去）',
     'keys[li].append(k)', 'keys[li][:] = [k]'),
    ('no_attn_residual', '注意力后面漏了残差连接',
     'x = [a + b for a, b in zip(x, x_residual)]      # 残差连接', 'x = [a for a in x]      # 残差连接'),
    ('no_prenorm', '注意力前漏了 pre-norm',
     'x = rmsnorm(x)                                  # pre-norm', 'x = x                                  # pre-norm'),
    ('wpe_by_token', '位置嵌入按 token 编号取',
     "state['wpe'][pos_id]", "state['wpe'][token_id % block_size]"),
    # 6. 训练：课本的 cross_entropy、evaluate、Adam
    ('tb_ce_max', '课本交叉熵忘了把 max 加回来',
     '.log() - (logits[target] - max_val)', '.log() - logits[target]'),
    ('tb_ce_sign', '课本交叉熵的符号反了（+ z_target 而不是 - z_target）',
     '.log() - (logits[target] - max_val)', '.log() + (logits[target] - max_val)'),
    ('tb_ce_max_as_node', '等价：交叉熵里减去的 max 换成图里的节点；流向它的梯度加起来是 0（只差最后一位的舍入）',
     'max_val = max(z.data for z in logits)\n    return sum(',
     'max_val = max(logits, key=lambda z: z.data)\n    return sum('),
    ('target_is_input', '目标写成当前 token 而不是下一个',
     'losses.append(cross_entropy(logits, tokens[pos + 1]))', 'losses.append(cross_entropy(logits, tokens[pos]))'),
    ('doc_losses_no_cut', '长名字没截到 block_size',
     'n = min(block_size, len(tokens) - 1)          # 名字太长', 'n = len(tokens) - 1          # 名字太长'),
    ('tb_eval_count', '课本 evaluate 按名字数而不是位置数去除',
     'count += len(losses)', 'count += 1'),
    ('tb_eval_total', '课本 evaluate 每个名字只加了最后一个位置的损失',
     'total += sum(loss.data for loss in losses)', 'total += losses[-1].data'),
    ('tb_adam_no_t', '课本 Adam 没把步数 t 加一（偏差修正除以 0）',
     '        self.t += 1\n        for i, p in enumerate(self.params):',
     '        for i, p in enumerate(self.params):'),
    ('tb_adam_betas_swapped', '课本 Adam 一阶矩里 β₁ 乘错了对象',
     'self.m[i] = beta1 * self.m[i] + (1 - beta1) * p.grad', 'self.m[i] = beta1 * p.grad + (1 - beta1) * self.m[i]'),
    ('tb_adam_v_not_squared', '课本 Adam 二阶矩用 g 而不是 g²',
     '(1 - beta2) * p.grad * p.grad', '(1 - beta2) * p.grad'),
    ('tb_adam_no_bias_correction', '课本 Adam 忘了一阶矩的偏差修正',
     'm_hat = self.m[i] / (1 - beta1 ** self.t)', 'm_hat = self.m[i]'),
    ('tb_adam_no_v_correction', '课本 Adam 忘了二阶矩的偏差修正',
     'v_hat = self.v[i] / (1 - beta2 ** self.t)', 'v_hat = self.v[i]'),
    ('tb_adam_no_sqrt', '课本 Adam 分母忘了开方',
     'p.data -= lr * m_hat / (math.sqrt(v_hat) + eps_adam)', 'p.data -= lr * m_hat / (v_hat + eps_adam)'),
    ('tb_adam_eps_inside', '课本 Adam 的 eps 放进了开方里',
     '(math.sqrt(v_hat) + eps_adam)', 'math.sqrt(v_hat + eps_adam)'),
    ('tb_adam_grad_kept', '课本 Adam 更新后没把 grad 清零',
     'p.grad = 0.0               # 清零', 'pass                       # 清零'),
    ('lr_off_by_one', '学习率日程差一步',
     'lr = learning_rate * (1 - step / steps)', 'lr = learning_rate * (1 - (step + 1) / steps)'),
    ('train_sum_not_mean', '课本 doc_loss：一个名字的损失是各位置之和而不是平均',
     'return (1 / len(losses)) * sum(losses)', 'return sum(losses)'),
    ('train_doc_index', '第 step 步学的是第 step + 1 个名字',
     'train_docs[step % len(train_docs)]', 'train_docs[(step + 1) % len(train_docs)]'),
    # 7. 采样
    ('temperature_times', '温度乘上去而不是除',
     'softmax([z / temperature for z in logits])', 'softmax([z * temperature for z in logits])'),
    ('no_stop_at_bos', '采样抽到 BOS 不停下',
     '        if token_id == tokenizer.bos:        # 模型说“名字结束了”\n            break',
     '        if token_id == tokenizer.bos:        # 模型说“名字结束了”\n            pass'),
    ('sample_past_block_size', '采样到了上下文的尽头还接着抽',
     'for pos in range(block_size):            # 最多', 'for pos in range(block_size + 1):            # 最多'),
    ('prompt_draws', '给定的开头也抽了随机数',
     'if pos + 1 < len(tokens):\n            continue', 'if pos + 1 < len(tokens):\n            random.random()'),
]

# ---- 第 8 节：快的双胞胎，以及第 3–7 节把活交给它们的那一行 ----
SPEED_MUTANTS = [
    # 交接：少了这一行，数照样对（课本写法），只是慢——由“课本函数把活交给双胞胎”的测试来抓
    ('no_handover_dot', 'dot 没把活交给 fast_dot（数不变，只是慢）',
     '    if speed_tricks: return fast_dot(a, b)\n', ''),
    ('no_handover_linear', 'linear 没把活交给 fast_linear（数不变，只是慢）',
     '    if speed_tricks: return fast_linear(x, w)\n', ''),
    ('no_handover_mlp', 'mlp 没把活交给 fast_mlp（数不变，只是慢）',
     '    if speed_tricks: return fast_mlp(x, w_fc1, w_fc2)\n', ''),
    ('no_handover_doc_loss', 'doc_loss 没把活交给 fast_doc_loss（数只差舍入，只是慢）',
     '    if speed_tricks: return fast_doc_loss(state, tokens)\n', ''),
    ('no_handover_evaluate', 'evaluate 没把活交给 fast_evaluate（数只差舍入，只是慢）',
     '    if speed_tricks: return fast_evaluate(state, docs, tokenizer)\n', ''),
    ('no_handover_backward', 'backward 没把活交给 fast_backward（数不变，只是慢）',
     '        if speed_tricks: return fast_backward(self)', '        pass'),
    ('no_handover_adam', 'Adam.step 没把活交给 fast_adam_step（数不变，只是慢）',
     '        if speed_tricks: return fast_adam_step(self, lr)\n', ''),
    # fast_dot、fast_linear
    ('fast_dot_grads', 'fast_dot 的局部导数没有交叉（∂s/∂a_i 写成 a_i）',
     'return Value(sum(map(operator.mul, a_data, b_data)), a + b, b_data + a_data)',
     'return Value(sum(map(operator.mul, a_data, b_data)), a + b, a_data + b_data)'),
    ('fast_dot_value', 'fast_dot 的值算成 a·a',
     'sum(map(operator.mul, a_data, b_data))', 'sum(map(operator.mul, a_data, a_data))'),
    ('fast_linear_grads', 'fast_linear 的局部导数没有交叉',
     'out.append(Value(sum(map(operator.mul, row_data, x_data)), row + x, x_data + row_data))',
     'out.append(Value(sum(map(operator.mul, row_data, x_data)), row + x, row_data + x_data))'),
    ('fast_linear_children', 'fast_linear 的孩子顺序和局部导数对不上（x + row 而不是 row + x）',
     'row + x, x_data + row_data))', 'x + row, x_data + row_data))'),
    # float_cross_entropy（原来的 fast_cross_entropy 退休了：它的错误现在落在 float_cross_entropy 和 fast_doc_loss 里）
    ('fce_no_max', 'float_cross_entropy 不减最大值（logits 上千时 e 的幂溢出）',
     'z_max = max(z)\n', 'z_max = 0.0\n'),
    ('ce_grad_onehot', 'float_cross_entropy 的梯度忘了减去 one-hot',
     '    local[target] -= 1.0\n', '    pass\n'),
    ('ce_local_not_probs', 'float_cross_entropy 的局部导数用 e^z 而不是概率',
     'local = [e / total for e in exps]', 'local = list(exps)'),
    ('ce_value_max', 'float_cross_entropy 的值忘了把 max 加回来',
     'return math.log(total) - (z[target] - z_max), local', 'return math.log(total) - z[target], local'),
    # fast_doc_loss（输出层 + 交叉熵的融合节点）、without_head
    ('fdl_sum_not_mean', 'fast_doc_loss 返回各位置损失之和，忘了乘 1/n',
     'return (1 / n) * Value(total,', 'return Value(total,'),
    ('fdl_mean_len_tokens', 'fast_doc_loss 除以 len(tokens)（多算了一个 BOS）而不是位置数 n',
     'return (1 / n) * Value(total,', 'return (1 / len(tokens)) * Value(total,'),
    ('fdl_target_is_input', 'fast_doc_loss 的目标写成当前 token 而不是下一个',
     'for row in w_data], tokens[pos + 1])', 'for row in w_data], tokens[pos])'),
    ('fdl_no_cut', 'fast_doc_loss 长名字没截到 block_size',
     'n = min(block_size, len(tokens) - 1)\n    keys, values', 'n = len(tokens) - 1\n    keys, values'),
    ('fdl_dw_assign', 'fast_doc_loss 的 ∂S/∂W 只留了最后一个位置（= 而不是 +=）',
     'col = [c + x_data[j] * di for c, di in zip(col, d)]', 'col = [x_data[j] * di for c, di in zip(col, d)]'),
    ('fdl_children_row_major', 'fast_doc_loss 的孩子按行排、局部导数按列排：梯度送错了参数',
     '[p for col in zip(*w) for p in col] + [xi for x in xs for xi in x]',
     '[p for row in w for p in row] + [xi for x in xs for xi in x]'),
    ('fdl_dx_rows', 'fast_doc_loss 的 ∂S/∂x 用 W 的行而不是列（Σ_i d_i·W_ij 写成了对每一行求点积）',
     'dx += [sum(map(operator.mul, d, col)) for col in zip(*w_data)]',
     'dx += [sum(map(operator.mul, d, row)) for row in w_data]'),
    ('fdl_dx_last_only', 'fast_doc_loss 的 ∂S/∂x 每个位置互相覆盖（= 而不是 +=），只剩最后一个位置',
     'dx += [sum(map(operator.mul, d, col)) for col in zip(*w_data)]',
     'dx = [sum(map(operator.mul, d, col)) for col in zip(*w_data)]'),
    ('without_head_not_identity', 'without_head 换上的不是单位矩阵（上三角全是 1）',
     '[[Value(float(i == j)) for j in range(n_embd)] for i in range(n_embd)]',
     '[[Value(float(i <= j)) for j in range(n_embd)] for i in range(n_embd)]'),
    # fast_mlp
    ('mlp_on_ge', 'fast_mlp 把预激活正好是 0 的单元也送进 W2（值不变，梯度却穿过了 relu 在 0 处的导数 0）',
     'on = [j for j, hj in enumerate(h) if hj.data > 0]', 'on = [j for j, hj in enumerate(h) if hj.data >= 0]'),
    ('mlp_on_ne', 'fast_mlp 把预激活是负数的单元（relu 之后是 0）也送进 W2',
     'on = [j for j, hj in enumerate(h) if hj.data > 0]', 'on = [j for j, hj in enumerate(h) if hj.data != 0]'),
    ('mlp_wrong_columns', 'fast_mlp 取了 W2 的前几列而不是亮着的那几列',
     '[[row[j] for j in on] for row in w_fc2]', '[[row[j] for j in range(len(on))] for row in w_fc2]'),
    # （原来的 mlp_no_relu 删了：fast_mlp 现在本来就不建 relu 节点，那个等价变异体已经写进了代码）
    # fast_evaluate
    ('eval_stale_cache', 'fast_evaluate 沿用时多留了一个旧的 KV 缓存位置',
     'del keys[li][same:], values[li][same:]', 'del keys[li][same + 1:], values[li][same:]'),
    ('eval_stale_logits', 'fast_evaluate 沿用时多留了一个旧的 logits',
     'del logits_at[same:]', 'del logits_at[same + 1:]'),
    ('eval_no_cut', 'fast_evaluate 长名字没截到 block_size',
     'n = min(block_size, len(tokens) - 1)\n        same = 0', 'n = len(tokens) - 1\n        same = 0'),
    ('eval_only_new_positions', 'fast_evaluate 只把新算的位置计入损失',
     'for pos in range(n))', 'for pos in range(same, n))'),
    ('eval_count', 'fast_evaluate 按名字数而不是位置数去除',
     'count += n\n', 'count += 1\n'),
    ('eval_unsorted', '等价：不排序也对，只是相邻名字相同的开头少了，沿用得少（损失相加的顺序变了，只差舍入）',
     'for doc in sorted(docs):', 'for doc in docs:'),
    ('eval_head_identity', 'fast_evaluate 的输出层用了 without_head 换上的单位矩阵（logits 就是 x）',
     "[[p.data for p in row] for row in state['lm_head']]\n    for doc in sorted(docs):",
     "[[p.data for p in row] for row in without_head(state)['lm_head']]\n    for doc in sorted(docs):"),
    ('eval_target_is_input', 'fast_evaluate 的目标写成当前 token 而不是下一个',
     'float_cross_entropy(logits_at[pos], tokens[pos + 1])[0]', 'float_cross_entropy(logits_at[pos], tokens[pos])[0]'),
    # fast_backward
    ('backward_assign', 'fast_backward 用 = 而不是 +=：多条路径的梯度互相覆盖',
     'child.grad += local * g', 'child.grad = local * g'),
    ('fb_seed', 'fast_backward 的起点 ∂L/∂L 写成 0',
     'loss.grad = 1.0', 'loss.grad = 0.0'),
    ('fb_no_reset', 'fast_backward 排好序后没把访问标记（grad = None）清成 0',
     '    for node in topo:\n        node.grad = 0.0\n', ''),
    ('fb_not_marked', 'fast_backward 没做访问标记：用了几次的节点被排进 topo 好几次',
     '            node.grad = None\n            stack.append(node)', '            stack.append(node)'),
    ('fb_leaves_pushed', 'fast_backward 叶子也进 topo：排序时把叶子原有的梯度清掉了',
     'if child._children and child.grad is not None:', 'if child.grad is not None:'),
    ('fb_not_reversed', 'fast_backward 按拓扑序而不是逆拓扑序累加梯度',
     'for node in reversed(topo):\n        g = node.grad', 'for node in topo:\n        g = node.grad'),
    # fast_adam_step
    ('adam_no_bias_correction', 'fast_adam_step 忘了一阶矩的偏差修正',
     'lr * (m_i / c1)', 'lr * m_i'),
    ('adam_no_v_correction', 'fast_adam_step 忘了二阶矩的偏差修正',
     'sqrt(v_i / c2)', 'sqrt(v_i)'),
    ('adam_correction_t', 'fast_adam_step 的偏差修正用了下一步的 t',
     'a1, a2, c1, c2 = 1 - b1, 1 - b2, 1 - b1 ** optimizer.t, 1 - b2 ** optimizer.t',
     'a1, a2, c1, c2 = 1 - b1, 1 - b2, 1 - b1 ** (optimizer.t + 1), 1 - b2 ** (optimizer.t + 1)'),
    ('adam_v_not_squared', 'fast_adam_step 二阶矩用 g 而不是 g²',
     'b2 * v[i] + a2 * g * g', 'b2 * v[i] + a2 * g'),
    ('adam_no_sqrt', 'fast_adam_step 分母忘了开方',
     '(sqrt(v_i / c2) + eps)', '(v_i / c2 + eps)'),
    ('adam_grad_kept', 'fast_adam_step 更新后没把 grad 清零',
     '        p.grad = 0.0\n\n\ndef start_speed_tricks', '        pass\n\n\ndef start_speed_tricks'),
    ('adam_betas_swapped', 'fast_adam_step 一阶矩里 β₁ 乘错了对象',
     'b1 * m[i] + a1 * g', 'b1 * g + a1 * m[i]'),
    ('adam_no_t', 'fast_adam_step 没把步数 t 加一',
     '    optimizer.t += 1\n', ''),
    ('adam_m_not_kept', 'fast_adam_step 算出新的 m 只放在局部变量里，没存回 m[i]（下一步又从旧的 m 算起）',
     'm[i] = m_i = b1 * m[i] + a1 * g', 'm_i = b1 * m[i] + a1 * g'),
    ('adam_v_not_kept', 'fast_adam_step 算出新的 v 只放在局部变量里，没存回 v[i]',
     'v[i] = v_i = b2 * v[i] + a2 * g * g', 'v_i = b2 * v[i] + a2 * g * g'),
    ('adam_a2_is_a1', 'fast_adam_step 的二阶矩用了 1 - β₁',
     'a1, a2, c1, c2 = 1 - b1, 1 - b2,', 'a1, a2, c1, c2 = 1 - b1, 1 - b1,'),
    # start_speed_tricks
    ('gc_off_on_pypy', 'start_speed_tricks 在 PyPy 上也关掉垃圾回收器（内存涨到几 GB）',
     "if speed_tricks and platform.python_implementation() == 'CPython':", 'if speed_tricks:'),
    ('gc_off_in_textbook', 'start_speed_tricks 在 speed_tricks=False 时也关掉垃圾回收器',
     "if speed_tricks and platform.python_implementation() == 'CPython':",
     "if platform.python_implementation() == 'CPython':"),
]

# ---- 第 9 节以后（模型文件、看模型内部、网页、主程序）----
LATER_MUTANTS = [
    # 9. 子词分词 (BPE)
    ('merge_pair_reads_input', 'merge_pair 拿输入里的前一个 token 配对：aaa 合并成 (aa)(aa)，丢了一个 a',
     '    for token in ids:\n        if out and (out[-1], token) == pair:',
     '    for i, token in enumerate(ids):\n        if i and (ids[i - 1], token) == pair:'),
    ('merge_pair_reversed', 'merge_pair 把一对的先后比反了',
     'if out and (out[-1], token) == pair:', 'if out and (token, out[-1]) == pair:'),
    ('merges_tie_largest', 'learn_merges 一样多时选 (a, b) 最大的一对',
     'pair = min(counts, key=lambda p: (-counts[p], p))', 'pair = max(counts, key=lambda p: (counts[p], p))'),
    ('merges_once', 'learn_merges 只出现一次的对也合并',
     'if counts[pair] < 2:', 'if counts[pair] < 1:'),
    ('merges_one_extra', 'learn_merges 多学了一个合并（<= 而不是 <）',
     'while len(merges) < num_merges and counts:', 'while len(merges) <= num_merges and counts:'),
    ('merges_new_id', 'learn_merges 给新 token 的编号差一',
     'merge_pair(old, pair, first_id + len(merges) - 1)', 'merge_pair(old, pair, first_id + len(merges))'),
    ('merges_no_subtract', 'learn_merges 合并后没减掉旧的相邻对（同一对又被选中）',
     '            counts.subtract(zip(old, old[1:]))     # 这篇文档旧的相邻对全部减掉……\n', ''),
    ('merges_no_new_counts', 'learn_merges 合并后没把新的相邻对加回来（含新 token 的对永远是 0 次）',
     '            counts.update(zip(new, new[1:]))       # ……再把新的相邻对加回来\n', ''),
    ('merges_where_not_updated', 'learn_merges 合并后没记下新的相邻对出现在哪些文档',
     '            for p in zip(new, new[1:]):\n                where[p].add(doc_index)\n', ''),
    ('bpe_across_docs', 'make_tokenizer 把训练集连成一篇学合并：数了跨文档的相邻对',
     'seqs = [base.encode(doc)[1:-1] for doc in train_docs]', "seqs = [base.encode(''.join(train_docs))[1:-1]]"),
    ('bpe_counts_bos', 'make_tokenizer 数相邻对时带上了 BOS（它的编号正好是第一个合并的编号）',
     'seqs = [base.encode(doc)[1:-1] for doc in train_docs]', 'seqs = [base.encode(doc) for doc in train_docs]'),
    ('bpe_merges_on_all_docs', 'make_tokenizer 在全部数据（含留出集）上学合并',
     'seqs = [base.encode(doc)[1:-1] for doc in train_docs]', 'seqs = [base.encode(doc)[1:-1] for doc in docs]'),
    ('bpe_base_from_train', 'make_tokenizer 的起始字节只取训练集的（留出集独有的字节编不了码）',
     "BPETokenizer(sorted(set(''.join(docs).encode('utf-8'))), [])",
     "BPETokenizer(sorted(set(''.join(train_docs).encode('utf-8'))), [])"),
    ('encode_position_order', 'BPETokenizer.encode 按出现的先后而不是学到的先后合并',
     'pair = min(zip(ids, ids[1:]), key=lambda p: self.merge_to_id.get(p, self.bos))',
     'pair = next((p for p in zip(ids, ids[1:]) if p in self.merge_to_id), None)'),
    ('encode_no_end_bos', 'BPETokenizer.encode 漏了结尾的 BOS',
     'return [self.bos] + ids + [self.bos]', 'return [self.bos] + ids'),
    ('decode_per_token', 'BPETokenizer.decode 一个 token 一个 token 地解码：跨 token 的字变成 �',
     "return b''.join(self.pieces[i] for i in ids if i != self.bos).decode('utf-8', errors='replace')",
     "return ''.join(self.pieces[i].decode('utf-8', errors='replace') for i in ids if i != self.bos)"),
    ('decode_ignore', 'BPETokenizer.decode 悄悄丢掉不完整的字节（不显示 �，byte_note 也就不说明）',
     ".decode('utf-8', errors='replace')", ".decode('utf-8', errors='ignore')"),
    ('token_names_partial', 'token_names 里半个字加一个字母的 token 只显示那个字母（拼不成字的字节被丢掉）',
     "visible(text) if text.encode('utf-8') == piece else", 'visible(text) if text else'),
    ('bos_name_dot', 'token_names 里 BOS 总写成“.”（数据里有“.”时分不清）',
     "['.' if b'.' not in pieces else '¶']", "['.']"),
    ('byte_note_swapped', 'byte_note 的两句说明用反了',
     "text.index('\\ufffd') == len(text) - 1", "text.index('\\ufffd') != len(text) - 1"),
    ('cpp_no_bos', 'chars_per_position 没把结尾的 BOS 算作一个字符',
     'len(tok.decode(t)) + (tok.bos in t)', 'len(tok.decode(t))'),
    ('cpp_no_cut', 'chars_per_position 没按 block_size 截断（算了看不到的目标）',
     'tok.encode(doc)[1:block_size + 1]', 'tok.encode(doc)[1:]'),
    ('cpp_inverted', 'chars_per_position 的比例算反了（字符数 / 位置数）',
     'return sum(map(len, targets)) / sum(len(tok.decode(t)) + (tok.bos in t) for t in targets)',
     'return sum(len(tok.decode(t)) + (tok.bos in t) for t in targets) / sum(map(len, targets))'),
    ('check_tok_self_merge', 'check_tokenizer 允许一个合并用到它自己造出的 token（差一）',
     '0 <= t < len(base) + k for t in p)', '0 <= t <= len(base) + k for t in p)'),
    ('check_tok_dup_bytes', 'check_tokenizer 不拒绝重复的起始字节',
     'base and base == sorted(set(base))', 'base and base == sorted(base)'),
    ('check_tok_byte_type', 'check_tokenizer 不查字节是不是整数（97.0、true 也算）',
     'all(type(b) is int and 0 <= b < 256 for b in base)', 'all(0 <= b < 256 for b in base)'),
    ('check_tok_dup_merges', 'check_tokenizer 不拒绝重复的合并',
     'and len(set(merges)) == len(merges) and', 'and'),
    ('check_vocab_surrogate', 'check_tokenizer 不拒绝字符表里落单的代理码位',
     "all(len(c) == 1 and not '\\ud800' <= c <= '\\udfff' for c in vocab)", 'all(len(c) == 1 for c in vocab)'),
    # 10. 模型文件
    ('restore_no_t', '读回模型时没恢复 Adam 的步数 t',
     "optimizer.m, optimizer.v, optimizer.t = flat(ckpt['adam']['m']), flat(ckpt['adam']['v']), ckpt['adam']['t']",
     "optimizer.m, optimizer.v, optimizer.t = flat(ckpt['adam']['m']), flat(ckpt['adam']['v']), 0"),
    ('ckpt_nan_allowed', '模型文件里的 NaN 没被拒绝（只挡了大得离谱的数）',
     'type(x) in (int, float) and -1e300 < x < 1e300', 'type(x) in (int, float) and not abs(x) >= 1e300'),
    # （json_is_cut_never 删了：json_is_cut 已经从脚本里去掉，断了的 JSON 现在只说“不是合法的 JSON”）
    ('write_drops_mode', 'write_atomically 替换文件时不保留原来的权限（600 的模型文件变成 644）',
     'os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))', 'pass'),
    ('save_no_backup', 'replace_file 从不留备份：直接盖掉更好的旧模型、不是我们写的文件',
     'backup = keep_backup(path) if why else None', 'backup = None'),
    # 10. 写文件：replace_file、why_keep_model、keep_backup
    ('backup_always', 'replace_file 连明确更好的模型也留备份（why 是空字符串时也留）',
     'backup = keep_backup(path) if why else None', 'backup = keep_backup(path) if why is not None else None'),
    ('no_folder_lock', 'replace_file 不锁文件夹：两次运行同时存，先存的那个更好的模型丢了',
     '            fcntl.flock(lock, fcntl.LOCK_EX)', '            pass'),
    ('lock_after_decision', 'replace_file 先决定留不留备份、再去等锁（等到锁时，原来的文件可能已经换了）',
     "    lock = os.open(os.path.dirname(path), os.O_RDONLY) if fcntl else None\n    try:\n        if lock is not None:\n            fcntl.flock(lock, fcntl.LOCK_EX)   # 别的 microGPT 正在这里换文件时，等它换完\n        why = why_keep(path) or '' if os.path.lexists(path) else None\n",
     "    why = why_keep(path) or '' if os.path.lexists(path) else None\n    lock = os.open(os.path.dirname(path), os.O_RDONLY) if fcntl else None\n    try:\n        if lock is not None:\n            fcntl.flock(lock, fcntl.LOCK_EX)   # 别的 microGPT 正在这里换文件时，等它换完\n"),
    ('why_keep_reversed', 'why_keep_model 的比较写反：更差的新模型不留备份就盖掉更好的旧模型',
     "new <= old['val_loss']", "new >= old['val_loss']"),
    ('why_keep_not_model', 'why_keep_model 把不是模型文件的旧文件直接盖掉（训练期间有人存在那里的文章）',
     "            return '它不是完好的模型文件'", '            return None'),
    ('why_keep_untrained', 'why_keep_model 这次没训练（只读回、重存）也算“明确更好”',
     "if record['step_losses'] and not training_exploded(record) and", 'if not training_exploded(record) and'),
    ('why_keep_exploded', 'why_keep_model 不看训练有没有爆炸',
     "if record['step_losses'] and not training_exploded(record) and", "if record['step_losses'] and"),
    ('keep_backup_no_copy', 'keep_backup 不能建硬链接（FAT 的 U 盘）时不复制，直接失败',
     '        shutil.copy2(path, backup)\n    return backup', '        raise\n    return backup'),
    ('backup_name_exists', 'backup_name 用 exists 而不是 lexists：断了的符号链接 m.json.bak 被当成空位',
     'if not os.path.lexists(name))', 'if not os.path.exists(name))'),
    # 1. 读数据（read_text、load_docs 是主程序的管道活）
    ('load_docs_splitlines', 'load_docs 用 str.splitlines 分行（在 \\x1c、\\u2028 这些字符处也断开）',
     "docs = [line.strip() for line in re.split(r'\\r\\n|\\r|\\n', text)]", 'docs = [line.strip() for line in text.splitlines()]'),
    ('read_text_fifo', 'read_text 只拒绝文件夹：管道、设备照读（可能永远等下去）',
     'if not stat.S_ISREG(mode):', 'if stat.S_ISDIR(mode):'),
    # 11. 看模型内部
    ('visible_identity', 'visible 原样返回：控制字符（ESC、U+202E）直接到了终端',
     "    return ''.join(ch if ch.isprintable() else", "    return str(text)\n    return ''.join(ch if ch.isprintable() else"),
    ('explain_rank', '终端的 explain 报告里排名少算了 1',
     'rank = 1 + sum(1 for p in probs if p > probs[target])\n        lines.append(',
     'rank = sum(1 for p in probs if p > probs[target])\n        lines.append('),
    ('page_rank', '网页的“模型怎么读”卡片里排名少算了 1',
     '排第 {1 + sum(p > probs[target] for p in probs)}', '排第 {sum(p > probs[target] for p in probs)}'),
    ('explain_nonfinite_ok', 'explain_report 遇到不是有限数的概率不报错',
     "    if not all(math.isfinite(p) for probs, _ in predictions for p in probs):\n        raise ValueError('概率不是有限的数')",
     "    if False:\n        raise ValueError('概率不是有限的数')"),
    ('bigram_no_smoothing', '二元语法模型的平滑加成了 0.5',
     '(counts[a, b] + 1) / (totals[a] + tokenizer.vocab_size)', '(counts[a, b] + 0.5) / (totals[a] + 0.5 * tokenizer.vocab_size)'),
    ('diagnose_passes', '“看了很多遍”的提醒条件写反',
     'if passes > MANY_PASSES:', 'if passes < MANY_PASSES:'),
    ('no_learning_never', '“几乎什么都没学到”的提醒永远不出现',
     'if steps and abs(after - uniform) < NO_LEARNING_MARGIN and', 'if steps and abs(after - uniform) < 0 and'),
    ('truncated_label_missing', '样本到了 block_size 也不标“被截断”',
     "label += '（到了长度上限 block_size，被截断）' * (len(ids) >= block_size) + ", 'label += '),
    # 13. 主程序
    ('stop_signals_sigint_only', 'STOP_SIGNALS 只有 SIGINT：kill（SIGTERM）、关终端（SIGHUP）不会先保存再停',
     "for name in ('SIGINT', 'SIGTERM', 'SIGHUP')", "for name in ('SIGINT',)"),
    ('shape_blames_n_head', 'n_embd 不能被 n_head 整除时总是怪 n_head（即使改的是 n_embd）',
     "if 'n_head' in changed and 'n_embd' not in changed:", 'if True:'),
    ('checked_16_digits', 'checked 接受 16 位的整数',
     'type(value) is int and not abs(value) < 10 ** 15', 'type(value) is int and not abs(value) < 10 ** 16'),
    ('ime_hint_missing', '看不懂的参数的说明里没提英文输入法（中文输入法的 ——、＝ 看着和 --、= 一样）',
     '（- 和 = 要用英文输入法打）', ''),
    ('tilde_not_expanded', '路径里的 ~ 不展开成主文件夹',
     'os.path.abspath(os.path.expanduser(value))', 'os.path.abspath(value)'),
    ('temperature_limit', '温度下限只检查了大于 0',
     "'temperature': (float, (lambda v: v >= 0.001,", "'temperature': (float, (lambda v: v > 0,"),
    ('outputs_same_file_unchecked', 'check_outputs 不检查两个输出是同一个文件（网页盖掉模型）',
     'elif same in seen:', 'elif False:'),
    ('safe_output_reraise', 'SafeOutput 输出出错时把异常抛出去，而不是不再打印',
     '                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())\n            self.stream = None',
     '                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())\n            raise'),
    ('output_missing_folder', 'cannot_write 什么都不试建：文件夹不存在、名字太长，训练完存的时候才发现',
     'for probe in [backup_name(path)] + ([] if os.path.lexists(path) else [path]):', 'for probe in []:'),
    ('prompt_room', '开头的长度检查差一',
     'if len(tokenizer.encode(prompt)) - 2 >= block_size:', 'if len(tokenizer.encode(prompt)) - 2 > block_size:'),
    ('reload_hint_no_input', '“下次可以用这条命令读回它”的提示丢了 --input_path',
     "data_arg = f' --input_path={quoted(script_dir_path(input_path))}' if record['settings']['input_path'][1] == 'cli' else ''",
     "data_arg = ''"),
    # 13. 设置：RULES、checked、parse_value、read_settings、apply_checkpoint_shape、概览里的来源记号
    ('checked_isinstance', 'checked 用 isinstance 查类型：True 被当成整数（num_steps = True 能通过）',
     "if type(value) not in {bool: (bool,), int: (int,), float: (int, float), str: (str,), 'path': (str,)}[kind]:",
     "if not isinstance(value, {bool: (bool,), int: (int,), float: (int, float), str: (str,), 'path': (str,)}[kind]):"),
    ('checked_float_needs_point', 'checked 不接受写成整数的小数设置（第 0 节里 learning_rate = 1 被拒绝）',
     'float: (int, float), str: (str,)', 'float: (float,), str: (str,)'),
    ('checked_inf', 'checked 不拒绝 inf（--learning_rate=inf 通过了检查）',
     'type(value) is float and not math.isfinite(value)', 'type(value) is float and math.isnan(value)'),
    ('checked_range_only_cli', 'checked 只给命令行的值查范围：第 0 节里写的 num_steps = -5 照用',
     'elif not in_range(value):', 'elif not in_range(value) and not where:'),
    ('checked_comma_hint', '第 0 节里写成 0,5（Python 读成一组）时不说小数点要用英文句点',
     'if type(value) is tuple else', 'if False else'),
    ('rules_fraction_closed', 'beta1、beta2 允许等于 1（偏差修正除以 0）',
     'FRACTION = (lambda v: 0 <= v < 1,', 'FRACTION = (lambda v: 0 <= v <= 1,'),
    ('rules_lr_zero', 'learning_rate 允许 0（什么都学不到）',
     "'learning_rate': (float, POSITIVE)", "'learning_rate': (float, NOT_NEGATIVE)"),
    ('rules_tokenizer_any', 'tokenizer 不查名字：--tokenizer=word 悄悄当成 bpe',
     "'tokenizer': (str, (lambda v: v in ('char', 'bpe'),", "'tokenizer': (str, (lambda v: True,"),
    ('parse_value_truncates', 'parse_value 先转成小数再取整：--num_steps=2.5 悄悄变成 2',
     'return checked(name, kind(text) if kind in (int, float) else text)',
     'return checked(name, kind(float(text)) if kind in (int, float) else text)'),
    ('parse_value_bool_case', 'parse_value 不认大写的 True/False（--speed_tricks=False 被拒绝）',
     '[text.strip().lower()])', '[text.strip()])'),
    ('parse_value_keyerror', 'parse_value 没接住 KeyError：--speed_tricks=maybe 得到一段回溯',
     'except (KeyError, ValueError):\n        comma', 'except ValueError:\n        comma'),
    ('parse_value_fullwidth_comma', 'parse_value 只认英文逗号：--temperature=0，5 不提示小数点',
     "re.fullmatch(r'\\s*-?\\d+[,，]\\d+\\s*', text)", "re.fullmatch(r'\\s*-?\\d+,\\d+\\s*', text)"),
    ('settings_stray_ignored', 'read_settings 不查第 0 节里多出来（拼错、改名）的设置',
     'stray = next((name for name in SETTINGS if name not in RULES), None)', 'stray = None'),
    ('settings_missing_unchecked', 'read_settings 不查第 0 节里少了的设置（得到 KeyError 回溯）',
     '        if name not in SETTINGS:\n            raise UserError(', '        if False:\n            raise UserError('),
    ('settings_file_unchecked', 'read_settings 不检查第 0 节里写的值（只检查命令行的）',
     "globals()[name] = checked(name, SETTINGS[name], f'（{here} 第",
     "globals()[name] = (lambda name, value, where: value)(name, SETTINGS[name], f'（{here} 第"),
    ('settings_shape_unchecked', 'read_settings 不看形状设置合不合得来',
     'problem = None if load_path else shape_problem(n_layer, n_embd, n_head, block_size, given)', 'problem = None'),
    ('settings_shape_no_given', 'read_settings 没告诉 shape_problem 命令行上改了哪个（两种改法都说）',
     'shape_problem(n_layer, n_embd, n_head, block_size, given)', 'shape_problem(n_layer, n_embd, n_head, block_size)'),
    ('settings_shape_with_load', 'read_settings 读回模型时也检查命令行和第 0 节的形状（模型文件的形状还没换上）',
     'problem = None if load_path else shape_problem(', 'problem = shape_problem('),
    ('ckpt_shape_same_value_refused', 'apply_checkpoint_shape 命令行给了和模型文件相同的形状也报错',
     "if source == 'cli' and given != value:", "if source == 'cli':"),
    ('ckpt_shape_cli_ignored', 'apply_checkpoint_shape 悄悄用模型文件的形状盖掉命令行给的不同形状',
     "if source == 'cli' and given != value:", 'if False:'),
    ('ckpt_shape_not_marked', 'apply_checkpoint_shape 换上模型文件的值后，来源还记着“第 0 节”',
     "globals()[name], record['settings'][name] = value, (value, 'model')",
     "globals()[name], record['settings'][name] = value, (value, source)"),
    ('bpe_tokenizer_not_fixed', 'apply_checkpoint_shape 不拿模型文件的分词器去核对命令行的 --tokenizer',
     "'tokenizer': 'bpe' if bpe else 'char', **(", '**('),
    ('bpe_merges_not_fixed', 'apply_checkpoint_shape 不拿模型文件的合并个数去核对命令行的 --bpe_merges',
     "**({'bpe_merges': len(bpe['merges'])} if bpe else {})}", '}'),
    ('overview_no_star', '概览里命令行给的值没有 * 记号',
     "{'file': '', 'cli': '*', 'model': '^'}[source]", "{'file': '', 'cli': '', 'model': '^'}[source]"),
    ('overview_no_caret', '概览里模型文件决定的值没有 ^ 记号',
     "{'file': '', 'cli': '*', 'model': '^'}[source]", "{'file': '', 'cli': '*', 'model': ''}[source]"),
    ('overview_legend_always', '概览里没有任何记号时也印记号的说明',
     "legend = any(source != 'file' for _, source in record['settings'].values())", 'legend = True'),
    # 13. 要写的文件：check_outputs 认同一个文件、cannot_write 试建
    ('outputs_identity_path', 'check_outputs 只比路径的写法：同一个文件的别名（符号链接、硬链接）认不出来',
     'same = tuple(os.stat(path))[1:3] if os.path.exists(path) else os.path.realpath(path)', 'same = path'),
    ('outputs_identity_abspath', 'check_outputs 对还不存在的文件比 abspath 而不是 realpath：经过符号链接的别名认不出来',
     'else os.path.realpath(path)   #', 'else os.path.abspath(path)   #'),
    ('outputs_identity_realpath_only', 'check_outputs 对已有的文件也只比 realpath（硬链接认不出来）',
     'same = tuple(os.stat(path))[1:3] if os.path.exists(path) else os.path.realpath(path)', 'same = os.path.realpath(path)'),
    ('cannot_write_no_bak', 'cannot_write 不试备份名 path.bak（加上 .bak 就太长的名字，训练完才失败）',
     'for probe in [backup_name(path)] + ([] if os.path.lexists(path) else [path]):',
     'for probe in [] if os.path.lexists(path) else [path]:'),
    # 13. 进度
    ('progress_no_last_line', 'Progress.update 不留最后一步那一行',
     'keep = step in (1, self.total) or step % self.every == 0', 'keep = step == 1 or step % self.every == 0'),
    ('progress_off_by_one', 'Progress.update 每 every 步留一行时差一（留的是第 every+1、2·every+1……步）',
     'step % self.every == 0', '(step - 1) % self.every == 0'),
    ('progress_every_ignored', 'Progress 不看 log_every，总是约每 5% 一行',
     'self.every = log_every or max(1, round(total_steps / 20))', 'self.every = max(1, round(total_steps / 20))'),
    ('progress_default_every', 'Progress 的默认间隔算成每 20 步一行（而不是约每 5% 的步数）',
     'self.every = log_every or max(1, round(total_steps / 20))', 'self.every = log_every or 20'),
]

GROUPS = {'lesson': LESSON_MUTANTS, 'speed': SPEED_MUTANTS, 'later': LATER_MUTANTS}
MUTANTS = LESSON_MUTANTS + SPEED_MUTANTS + LATER_MUTANTS


def target_problem(text, old):
    """None if the original text occurs exactly once, else what is wrong with it."""
    count = text.count(old)
    return None if count == 1 else 'target not found' if count == 0 else f'target ambiguous ({count} places)'


def copy_project(tmp):
    for entry in os.listdir(ROOT):
        if entry in ('.git', '.pytest_cache', '__pycache__'):
            continue
        src = os.path.join(ROOT, entry)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(tmp, entry), ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copy2(src, tmp)


def run_one(mutant, text, tests, timeout):
    """在项目的一份临时拷贝里，把脚本换成 text 并应用一个变异体（old 为空时不改），运行测试；
    返回 (是否失败, 哪个测试, 秒数)。"""
    name, _, old, new = mutant
    with tempfile.TemporaryDirectory(prefix=f'mutant-{name}-') as tmp:
        copy_project(tmp)
        with open(os.path.join(tmp, SCRIPT), 'w', encoding='utf-8') as f:
            f.write(text.replace(old, new) if old else text)
        started = time.perf_counter()
        try:
            result = subprocess.run([sys.executable, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider',
                                     '--deselect', EXCERPT_TEST, *tests], cwd=tmp, timeout=timeout,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding='utf-8')
            caught, detail = result.returncode != 0, result.stdout
        except subprocess.TimeoutExpired:
            caught, detail = True, f'timed out after {timeout} s'
        # FAILED tests/x.py::test_y[参数 - 里也可能有空格和 -] - 错误信息
        failed = [re.match(r'FAILED ([^\[\s]+(\[[^\]]*\])?)', line).group(1)
                  for line in detail.splitlines() if line.startswith('FAILED ')]
        return caught, failed[0] if failed else detail.strip().splitlines()[-1:], time.perf_counter() - started


def choose(only):
    """--only 的值：组名（lesson、speed、later）和变异体名字，用逗号隔开。"""
    if not only:
        return MUTANTS
    chosen = []
    for word in only.split(','):
        picked = GROUPS.get(word) or [m for m in MUTANTS if m[0] == word]
        if not picked:
            sys.exit(f'--only: no group or mutant called {word!r} (groups: {", ".join(GROUPS)})')
        chosen += [m for m in picked if m not in chosen]
    return chosen


# ---- --practice：练习检查 (tests/practice.py) 能不能认出写错的练习函数 ----
PRACTISED = {'Value.__add__': 'add', 'Value.__mul__': 'mul', 'Value.__pow__': 'pow', 'Value.log': 'log',
             'Value.exp': 'exp', 'Value.relu': 'relu', 'Value.backward': 'backward', 'dot': 'linear', 'linear': 'linear',
             'softmax': 'softmax', 'rmsnorm': 'rmsnorm', 'cross_entropy': 'cross_entropy', 'gpt': 'attention',
             'Adam.step': 'adam', 'sample_name': 'sample_name'}
COMPOSITE = ('Value.__neg__', 'Value.__sub__', 'Value.__truediv__', 'Value.__radd__', 'Value.__rsub__',
             'Value.__rmul__', 'Value.__rtruediv__')


def enclosing_functions(source, line):
    """包住第 line 行的函数，由外到内，写成 Class.method 的样子。"""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if child.lineno <= line <= child.end_lineno:
                    if not isinstance(child, ast.ClassDef):
                        found.append(name)
                    visit(child, name + '.')
            else:
                visit(child, prefix)
    visit(ast.parse(source), '')
    return found


def mutated_function(text, mutant):
    """(改过的脚本, 改动所在的函数)。函数取最里面的那个练习函数（或拼出来的运算）；都不是就取最里面的函数。"""
    _, _, old, new = mutant
    start = text.index(old)
    mutated = text.replace(old, new)
    at = start if new else max(start - 1, 0)       # 整段删掉的：看它前面那一行
    chain = enclosing_functions(mutated, mutated[:at].count('\n') + 1)
    known = [f for f in chain if f in PRACTISED or f in COMPOSITE]
    return mutated, (known or chain or ['（模块顶层）'])[-1]


def only_speed_path(old):
    """只改了 “if speed_tricks: return fast_…” 这种交接行：speed_tricks=False 时那一行从不运行。"""
    lines = [line.strip() for line in old.splitlines() if line.strip()]
    return bool(lines) and all(line.startswith('if speed_tricks:') for line in lines)


def run_practice(script_text, timeout):
    """在临时文件夹里放一份脚本（和训练检查要用的 input.txt），运行 practice.py --file；返回 (退出码, 第一个不通过的练习)。"""
    with tempfile.TemporaryDirectory(prefix='practice-') as tmp:
        with open(os.path.join(tmp, SCRIPT), 'w', encoding='utf-8') as f:
            f.write(script_text)
        shutil.copy2(os.path.join(ROOT, 'input.txt'), tmp)
        try:
            result = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'practice.py'), '--file',
                                     os.path.join(tmp, SCRIPT)], cwd=tmp, timeout=timeout, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, encoding='utf-8', errors='replace')
        except subprocess.TimeoutExpired:
            return None, f'timed out after {timeout} s'
    for line in result.stdout.splitlines():        # " 8. linear        线性层      不通过 —— linear，前向值：……"
        match = re.match(r'\s*\d+\.\s+(\w+)\s', line)
        if match and '不通过 ——' in line:
            return result.returncode, match.group(1)
    if '导入时就出错了' in result.stdout:
        return result.returncode, '（导入出错）'
    return result.returncode, '—'


def practice_main(args):
    chosen = [m for m in choose(args.get('only')) if m in LESSON_MUTANTS or m in SPEED_MUTANTS]
    jobs, timeout = int(args.get('jobs', 2)), int(args.get('timeout', 300))
    with open(os.path.join(ROOT, SCRIPT), encoding='utf-8') as f:
        text = f.read()
    code, first = run_practice(text, timeout)
    if code != 0:
        sys.exit(f'practice.py does not pass the unchanged script (exit {code}, first 不通过: {first}); fix that first')
    print('unchanged script: practice.py passes all exercises\n')
    checked, skipped = [], []
    for m in chosen:
        name, why, old, _ = m
        problem = target_problem(text, old)
        if problem:
            skipped.append((name, '—', problem))
            continue
        mutated, function = mutated_function(text, m)
        if why.startswith('等价'):
            skipped.append((name, function, 'equivalent mutant'))
        elif function in COMPOSITE:
            skipped.append((name, function, 'not a practised function (composite op built from add/mul/pow)'))
        elif function not in PRACTISED:
            skipped.append((name, function, 'not a practised function'))
        elif only_speed_path(old):
            skipped.append((name, function, 'only the speed_tricks=True handover changes (practice runs speed_tricks=False)'))
        else:
            checked.append((name, function, PRACTISED[function], mutated))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda c: run_practice(c[3], timeout), checked))
    header = f'{"mutant":28} {"function":20} {"expected":14} {"first 不通过":11} ok?'
    print(header + '\n' + '-' * len(header))
    bad = []
    for (name, function, expected, _), (code, first) in zip(checked, results):
        ok = code not in (0, None) and first == expected
        if not ok:
            bad.append(name)
        print(f'{name:28} {function:20} {expected:14} {first:14} {"ok" if ok else "NO"}'
              + ('' if code not in (0, None) else f'  (exit {code})'), flush=True)
    if skipped:
        print(f'\nskipped ({len(skipped)}):')
        for name, function, reason in skipped:
            print(f'  {name:28} {function:20} {reason}')
    good = len(checked) - len(bad)
    print(f'\n{good} of {len(checked)} wrong bodies of practised functions make practice.py fail and name the function'
          + (f'; not: {", ".join(bad)}' if bad else ''))
    return 0 if not bad and checked else 1


def main():
    if '--help' in sys.argv[1:] or '-h' in sys.argv[1:]:      # 只打印用法：不要一不小心就开始一次完整的运行
        print(__doc__)
        return 0
    args = dict(arg[2:].split('=', 1) for arg in sys.argv[1:] if arg.startswith('--') and '=' in arg)
    if '--practice' in sys.argv[1:]:
        return practice_main(args)
    chosen = choose(args.get('only'))
    tests = args['tests'].split(',') if 'tests' in args else []
    with open(os.path.join(ROOT, SCRIPT), encoding='utf-8') as f:
        text = f.read()                              # every mutant starts from this same text
    names = [m[0] for m in MUTANTS]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        sys.exit(f'mutant names used twice: {", ".join(duplicates)}')
    missing = [(m, target_problem(text, m[2])) for m in chosen if target_problem(text, m[2])]
    runnable = [m for m in chosen if not target_problem(text, m[2])]
    jobs, timeout = int(args.get('jobs', 2)), int(args.get('timeout', 600))
    caught, where, seconds = run_one(('unchanged', '', '', ''), text, tests, timeout)
    if caught:
        sys.exit(f'the tests fail on the unchanged script ({where}); fix that first, or no mutant score means anything')
    print(f'unchanged script: the tests pass ({seconds:.0f} s)' + (f'; tests: {", ".join(tests)}' if tests else ''))
    print(f'{len(runnable)} mutants, {jobs} at a time; each runs the tests (stops at the first failure)\n')
    for (name, why, _, _), problem in missing:
        print(f'{problem:21} {name:26} {"":8}  {why}')
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda m: run_one(m, text, tests, timeout), runnable))
    survivors, equivalent_survivors, equivalent_caught = [], [], []
    for (name, why, _, _), (caught, where, seconds) in zip(runnable, results):
        equivalent = why.startswith('等价')
        status = 'caught' if caught else ('equivalent, survives' if equivalent else 'SURVIVED')
        print(f'{status:21} {name:26} {seconds:6.1f} s  {why}' + (f'\n{"":21} by {where}' if caught else ''), flush=True)
        if not caught:
            (equivalent_survivors if equivalent else survivors).append(name)
        elif equivalent:
            equivalent_caught.append(name)
    real = [m for m in runnable if not m[1].startswith('等价')]
    killed = len(real) - len(survivors)
    print(f'\nscore: {killed} of {len(real)} non-equivalent mutants caught'
          + (f'; survivors: {", ".join(survivors)}' if survivors else '')
          + (f'; equivalent mutants that survived as expected: {", ".join(equivalent_survivors)}'
             if equivalent_survivors else '')
          + (f'; "equivalent" mutants that a test caught (check the label): {", ".join(equivalent_caught)}'
             if equivalent_caught else '')
          + (f'; not run (target not found or ambiguous): {", ".join(m[0] for m, _ in missing)}' if missing else ''))
    return 1 if survivors else 0


if __name__ == '__main__':
    sys.exit(main())
