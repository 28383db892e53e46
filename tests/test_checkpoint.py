"""第 9 节和它在命令行上的用法：保存、读回、坏的模型文件、存到哪里、接着训练、用读回的模型续写 prompt。"""
import json
import os
import random

import pytest

from conftest import (NAMES, SMALL, assert_clean_failure, held_out_loss, numbered_samples, run_main, squash,
                      write_lines)

VOCAB = ''.join(sorted(set(''.join(NAMES))))         # 24 个字符：没有 q、z


def load_run(trained, *args):
    return run_main(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0', *SMALL, *args)


def tiny_trained_model(mg, docs, steps=3):
    """2 层、n_embd=8 的小模型，用 docs 训练 steps 步：Adam 的 m、v、t 都不是 0。返回 (分词器, state, optimizer)。"""
    mg.n_layer, mg.n_embd, mg.n_head, mg.block_size = 2, 8, 2, 8
    random.seed(7)
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    optimizer = mg.Adam(mg.flatten(state))
    for _ in mg.train(state, optimizer, docs, tok, steps):
        pass
    return tok, state, optimizer


def bits(numbers):
    return [float(x).hex() for x in numbers]


# ---------------------------------------------------------------------------
# 保存 → 读回
# ---------------------------------------------------------------------------

def test_save_then_load_gives_bit_identical_parameters_and_adam_state(mg):
    """抓存文件时把小数四舍五入、矩阵按错的名字或顺序写入、Adam 的 m、v、t 或数据的指纹没存的错误：
    读回的模型必须逐位就是原来那个。"""
    docs = ['a b', '[x]', '"q"', 'c\\d', '{e}', '明月', 'tab\tin']     # JSON 和把数字压成一行的正则都要经得起这些字符
    tok, state, optimizer = tiny_trained_model(mg, docs)
    optimizer.params[0].data = 0.1 + 0.2                              # 0.30000000000000004：要逐位保留
    optimizer.params[1].data = -0.0
    optimizer.params[2].data = 5e-324
    data = {'file': '名字.txt', 'fingerprint': '0123456789abcdef'}
    ckpt = json.loads(mg.checkpoint_json(state, tok, optimizer, 3, 2.5, data))
    mg.check_checkpoint(ckpt)
    assert ckpt['vocabulary'] == tok.chars and mg.Tokenizer(ckpt['vocabulary']).chars == tok.chars
    assert ckpt['settings'] == {'n_layer': 2, 'n_embd': 8, 'n_head': 2, 'block_size': 8}
    assert (ckpt['steps_trained'], ckpt['val_loss'], ckpt['adam']['t'], ckpt['data']) == (3, 2.5, 3, data)
    assert ckpt['params']['layer1.mlp_fc1'][5][3] == state['layer1.mlp_fc1'][5][3].data   # 按名字存
    random.seed(99)                                                  # 另一个新模型
    fresh = mg.init_params(tok.vocab_size)
    fresh_opt = mg.Adam(mg.flatten(fresh))
    assert bits(p.data for p in fresh_opt.params) != bits(p.data for p in optimizer.params)
    assert mg.restore(ckpt, fresh, fresh_opt) == 3
    assert bits(p.data for p in fresh_opt.params) == bits(p.data for p in optimizer.params)
    assert bits(fresh_opt.m) == bits(optimizer.m) and bits(fresh_opt.v) == bits(optimizer.v)
    assert fresh_opt.t == optimizer.t == 3
    assert any(optimizer.m) and any(optimizer.v)                     # Adam 的状态确实不是全 0


def test_restore_goes_by_matrix_name_not_by_order_in_the_file(mg):
    """抓 restore 按文件里矩阵出现的顺序填数的错误：别的工具重写文件（键的顺序变了）后，wte 的数就会填进 lm_head。"""
    tok, state, optimizer = tiny_trained_model(mg, ['abc', 'cab', 'bca'])
    ckpt = json.loads(mg.checkpoint_json(state, tok, optimizer, 3, None, None))
    for where in (ckpt['params'], ckpt['adam']['m'], ckpt['adam']['v']):
        reordered = dict(reversed(list(where.items())))
        where.clear()
        where.update(reordered)
    random.seed(1)
    fresh = mg.init_params(tok.vocab_size)
    fresh_opt = mg.Adam(mg.flatten(fresh))
    mg.restore(ckpt, fresh, fresh_opt)
    assert bits(p.data for p in fresh_opt.params) == bits(p.data for p in optimizer.params)
    assert bits(fresh_opt.m) == bits(optimizer.m)


def test_reloaded_model_gives_the_same_loss_and_samples(trained):
    """抓读回模型时随机数的消耗和训练那次不一样、或参数没真正填进去的错误：同一个种子下，读回的模型
    在留出集上的损失和编出的名字都必须和存它的那次相同；概况里说明它读自哪里、训练时用的是同一份数据。"""
    run2 = load_run(trained)
    assert run2.returncode == 0, run2.stderr
    assert '开始训练' not in run2.stdout
    assert squash('模型：读自 m.json（已训练 20 步，和这次的数据相同）') in squash(run2.stdout.replace(trained['ckpt'], 'm.json'))
    after = held_out_loss(trained['stdout'], '训练后')
    assert held_out_loss(run2.stdout, '读回的模型（这次没再训练）') == after
    assert after == pytest.approx(json.loads(trained['text'])['val_loss'], abs=5e-5)
    assert after != pytest.approx(held_out_loss(trained['stdout'], '训练前'), abs=1e-3)
    first, second = numbered_samples(trained['stdout']), numbered_samples(run2.stdout)
    assert len(first) == 5 and first == second


def test_shape_comes_from_the_checkpoint_and_the_same_value_on_the_line_is_fine(trained):
    """抓读回模型时仍按第 0 节的默认形状（n_embd=16）建参数、或者命令行写了和文件相同的值也被当成冲突的错误。"""
    for args in [(), ('--n_embd=8', '--block_size=16')]:
        result = run_main(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0',
                          '--num_samples=0', *args)
        assert result.returncode == 0, result.stderr
        assert '1 层，n_embd=8，2 个头，block_size=16' in result.stdout


@pytest.mark.parametrize('arg, words', [
    ('--n_head=4', ['--n_head=4', 'n_head 是 2']),
    ('--n_layer=2', ['--n_layer=2', 'n_layer 是 1']),
    ('--block_size=8', ['--block_size=8', 'block_size 是 16']),
])
def test_shape_on_the_command_line_that_disagrees_with_the_checkpoint(trained, arg, words):
    """抓命令行的形状被文件悄悄覆盖（用户以为在用 4 个头）、或者用命令行的形状去读文件而崩溃的错误。"""
    result = run_main(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0',
                      '--n_embd=8', arg)
    assert_clean_failure(result, 2, *words)
    assert result.stdout == ''


def test_loading_and_training_further_adds_up_the_steps(trained, tmp_path):
    """抓接着训练后存的 steps_trained 或 Adam 的 t 从 0 重新数的错误（偏差修正就会像第一步那样走一大步），
    以及没告诉学习者这次是第几步、学习率计划从头开始。"""
    out = tmp_path / 'more.json'
    result = run_main(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=5',
                      f'--save_path={out}', *SMALL)
    assert result.returncode == 0, result.stderr
    assert '已训练 20 步' in result.stdout
    assert squash('接着训练：这次是这个模型的第 21–25 步。学习率计划从头开始') in squash(result.stdout)
    assert '训练后' in result.stdout and '步 5/5' in result.stdout
    ckpt = json.loads(out.read_text(encoding='utf-8'))
    assert ckpt['steps_trained'] == 25 and ckpt['adam']['t'] == 25
    assert ckpt['params'] != json.loads(trained['text'])['params']
    assert ckpt['data'] == json.loads(trained['text'])['data'] and ckpt['data']['file'] == 'names.txt'


def test_checkpoint_saved_by_notepad_with_a_bom_still_loads(trained, tmp_path):
    """抓在 Windows 记事本里另存过（开头多了 BOM）的模型文件被当成“不是合法的 JSON”的错误。"""
    path = tmp_path / 'bom.json'
    path.write_bytes('\ufeff'.encode('utf-8') + trained['text'].encode('utf-8'))
    result = load_run(trained, f'--load_path={path}')
    assert result.returncode == 0, result.stderr
    assert '读回的模型（这次没再训练）' in result.stdout


# ---------------------------------------------------------------------------
# 坏的模型文件
# ---------------------------------------------------------------------------

def edited(text, change):
    ckpt = json.loads(text)
    change(ckpt)
    return json.dumps(ckpt)


def drop_matrix(ckpt):
    del ckpt['params']['layer0.mlp_fc2']


def put_nan(ckpt):
    ckpt['params']['lm_head'][0][0] = float('nan')


BAD_FILES = {
    'not_json': (lambda text: 'hello, this is my diary\n', ['不是合法的 JSON']),
    'truncated': (lambda text: text[:len(text) // 2], ['不完整']),
    'other_program': (lambda text: '{"a": 1}', ['不是 microGPT', 'format']),
    'version_2': (lambda text: edited(text, lambda c: c.update(version=2)), ['第 2 版', '第 1 版']),
    'missing_matrix': (lambda text: edited(text, drop_matrix), ['缺少', 'layer0.mlp_fc2']),
    'missing_row': (lambda text: edited(text, lambda c: c['params']['lm_head'].pop()), ['lm_head', '25 行 × 8 列']),
    'vocabulary_edited': (lambda text: edited(text, lambda c: c['params']['wte'].pop()),
                          ['"vocabulary" 有 24 个字符，矩阵 wte 却有 24 行']),
    'nan': (lambda text: edited(text, put_nan), ['lm_head', 'NaN']),
    'negative_v': (lambda text: edited(text, lambda c: c['adam']['v']['wte'][0].__setitem__(0, -1.0)), ['adam.v', '负数']),
    'huge_integer': (lambda text: edited(text, lambda c: c.update(val_loss=10 ** 400)), ['val_loss']),
    'step_count_true': (lambda text: edited(text, lambda c: c['adam'].update(t=True)), ['"t"']),
    'absurd_n_layer': (lambda text: edited(text, lambda c: c['settings'].update(n_layer=10 ** 7)),
                       ['"settings" 不成立', '4 GB']),
    'heads_do_not_divide': (lambda text: edited(text, lambda c: c['settings'].update(n_head=3)),
                            ['"settings" 不成立', 'n_embd = 8 必须能被 n_head = 3 整除']),
    'settings_not_a_dict': (lambda text: edited(text, lambda c: c.update(settings=[1, 8, 2, 16])), ['"settings"']),
    'data_not_strings': (lambda text: edited(text, lambda c: c.update(data={'file': 3, 'fingerprint': ''})), ['"data"']),
    'nested_too_deep': (lambda text: '[' * 100000 + ']' * 100000, ['嵌套太深']),
}


@pytest.mark.parametrize('case', sorted(BAD_FILES))
def test_bad_checkpoint_exits_1_with_one_line_and_leaves_the_file_alone(trained, tmp_path, case):
    """抓坏模型文件引发 KeyError、JSONDecodeError 等回溯、半截文件被当成别的错误、或者检查时把文件改掉了的错误：
    每种坏文件都以退出码 1 结束，说明里有文件名和第一个问题在哪里，训练没有开始。"""
    make, words = BAD_FILES[case]
    content = make(trained['text'])
    if case == 'nan':
        assert 'NaN' in content
    path = tmp_path / 'bad.json'
    path.write_bytes(content.encode('utf-8'))
    result = load_run(trained, f'--load_path={path}')
    assert_clean_failure(result, 1, 'bad.json', *words)
    assert '开始训练' not in result.stdout
    assert path.read_bytes() == content.encode('utf-8')


def test_missing_checkpoint_and_folder_checkpoint(trained, tmp_path):
    """抓 --load_path 写错路径或指向文件夹时抛出 FileNotFoundError、IsADirectoryError 回溯的错误，
    以及检查时顺手建了文件或动了文件夹的错误。"""
    result = load_run(trained, f'--load_path={tmp_path / "nope.json"}')
    assert_clean_failure(result, 1, '找不到模型文件', 'nope.json', '--load_path')
    assert not (tmp_path / 'nope.json').exists()
    (tmp_path / 'dir.json').mkdir()
    result = load_run(trained, f'--load_path={tmp_path / "dir.json"}')
    assert_clean_failure(result, 1, '文件夹', 'dir.json')
    assert os.listdir(tmp_path / 'dir.json') == []


def test_checkpoint_that_is_not_text(trained, tmp_path):
    """抓把一张图片之类的二进制文件当模型读时抛出 UnicodeDecodeError 回溯的错误。"""
    path = tmp_path / 'photo.json'
    path.write_bytes(b'\x89PNG\r\n\x1a\n\xff\xfe\x00')
    assert_clean_failure(load_run(trained, f'--load_path={path}'), 1, 'photo.json', 'UTF-8')


def test_data_with_a_character_the_checkpoint_does_not_know(trained, tmp_path):
    """抓数据里有词表外的字符时 encode 抛 KeyError 回溯的错误。只拿读回的模型采样（num_steps=0）时照常采样、
    跳过评估并说明为什么；要接着训练时退出码 1。两种都说出是哪个字符、模型是用哪份数据训练的，模型文件不动。"""
    data = write_lines(tmp_path / 'more.txt', '\n'.join(NAMES + ['zoe']) + '\n')
    before = open(trained['ckpt'], 'rb').read()
    sampled = run_main(f'--input_path={data}', f'--load_path={trained["ckpt"]}', '--num_steps=0', *SMALL)
    assert sampled.returncode == 0 and sampled.stderr == '', sampled.stderr
    assert squash('注意：数据 more.txt 里有模型的词表里没有的字符 z：这个模型是用 names.txt 训练的，'
                  '请加上 --input_path=names.txt（文件不在当前文件夹里时，写上它的路径）。这次只拿模型采样，跳过在留出集上的评估。') in squash(sampled.stdout)
    assert '读回的模型（这次没再训练）' not in sampled.stdout and len(numbered_samples(sampled.stdout)) == 5
    training = run_main(f'--input_path={data}', f'--load_path={trained["ckpt"]}', '--num_steps=5', *SMALL)
    assert_clean_failure(training, 1, '字符 z', 'names.txt', '--load_path')
    assert open(trained['ckpt'], 'rb').read() == before


def test_overflowing_parameters_stop_sampling_with_a_clear_message(tmp_path):
    """抓学习率大得离谱、参数溢出时，概率里出现 inf、NaN，random.choices 抛 ValueError 回溯的错误。"""
    result = run_main('--n_embd=8', '--n_head=2', '--num_steps=1', '--learning_rate=1e150', '--val_size=0',
                      '--num_samples=2', cwd=str(tmp_path))
    assert_clean_failure(result, 1, '不是有限的数', 'learning_rate')


# ---------------------------------------------------------------------------
# 存到哪里
# ---------------------------------------------------------------------------

def test_saving_into_a_missing_folder_fails_before_training(trained, tmp_path):
    """抓训练了很久、最后存文件时才发现文件夹不存在、结果全白练的错误。"""
    result = run_main(f'--input_path={trained["data"]}', f'--save_path={tmp_path / "nope" / "m.json"}',
                      '--num_steps=5', *SMALL)
    assert_clean_failure(result, 2, '不存在', 'nope')
    assert '开始训练' not in result.stdout
    assert not (tmp_path / 'nope').exists()


def test_saving_to_a_folder_path_fails_before_training(trained, tmp_path):
    """抓 --save_path 指向一个文件夹、训练完 os.replace 才失败（或者把文件夹换掉）的错误。"""
    (tmp_path / 'keep.txt').write_text('x')
    result = run_main(f'--input_path={trained["data"]}', f'--save_path={tmp_path}', '--num_steps=5', *SMALL)
    assert_clean_failure(result, 2, '文件夹', 'model.json')
    assert '开始训练' not in result.stdout
    assert sorted(os.listdir(tmp_path)) == ['keep.txt']


def test_saving_over_a_file_that_is_not_a_checkpoint_is_refused(trained, tmp_path):
    """抓 --save_path 写错成自己的数据文件或笔记、训练完就把它覆盖掉了的错误。"""
    notes = tmp_path / 'notes.json'
    notes.write_text('{"my": "precious notes"}\n', encoding='utf-8')
    result = run_main(f'--input_path={trained["data"]}', f'--save_path={notes}', '--num_steps=5', *SMALL)
    assert_clean_failure(result, 2, 'notes.json', '不是 microGPT 写的文件', '请换一个路径')
    assert '开始训练' not in result.stdout
    assert notes.read_text(encoding='utf-8') == '{"my": "precious notes"}\n'
    assert sorted(os.listdir(tmp_path)) == ['notes.json']


def test_overwriting_a_better_checkpoint_keeps_a_backup(trained, tmp_path):
    """抓两类错误：为了保护文件，连上一次存的模型也不让覆盖；以及覆盖时把一个更好的模型（留出集损失更低）
    悄悄丢掉。更好的旧模型另存为 m.json.bak，并打印换回来的命令和读回新模型的命令（数据不是默认的，
    所以带 --input_path）。"""
    path = tmp_path / 'm.json'
    path.write_text(trained['text'], encoding='utf-8')
    result = run_main(f'--input_path={trained["data"]}', f'--save_path={path}', '--num_steps=3', *SMALL,
                      cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(path.read_text(encoding='utf-8'))['steps_trained'] == 3
    assert sorted(os.listdir(tmp_path)) == ['m.json', 'm.json.bak']
    assert (tmp_path / 'm.json.bak').read_text(encoding='utf-8') == trained['text']
    old, new = json.loads(trained['text'])['val_loss'], held_out_loss(result.stdout, '训练后')
    assert old < new
    assert squash(f'原来那个模型比这次的好（留出集损失：原来 {old:.4f}，这次 {new:.4f}），原来的已另存为 m.json.bak。') \
        in squash(result.stdout)
    lines = result.stdout.splitlines()
    assert '  mv m.json.bak m.json' in lines
    assert any(line.endswith(f' --load_path=m.json --input_path={trained["data"]} --num_steps=0') for line in lines)


def test_overwriting_a_worse_checkpoint_keeps_no_backup(trained, tmp_path):
    """抓每次覆盖都留一份备份（文件夹里堆满 .bak）、或者比较损失时把大小比反了的错误：旧模型更差时直接替换。"""
    path = tmp_path / 'm.json'
    path.write_text(edited(trained['text'], lambda c: c.update(val_loss=9.0)), encoding='utf-8')
    result = run_main(f'--input_path={trained["data"]}', f'--save_path={path}', '--num_steps=3', *SMALL)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ['m.json'] and '另存为' not in result.stdout
    assert json.loads(path.read_text(encoding='utf-8'))['steps_trained'] == 3


def test_keep_backup_never_overwrites_an_earlier_backup(mg, tmp_path):
    """抓第二次备份把第一次的 .bak 覆盖掉、或者备份跟着新存的模型一起变了的错误：依次用 .bak、.bak2、.bak3，
    每一份都留着备份那一刻的内容（模型文件像 save_model 那样用 write_atomically 换新）。"""
    path = tmp_path / 'm.json'
    for n, name in enumerate(['m.json.bak', 'm.json.bak2', 'm.json.bak3']):
        mg.write_atomically(str(path), f'version {n}')
        assert mg.keep_backup(str(path)) == str(tmp_path / name)
    assert [(tmp_path / name).read_text(encoding='utf-8') for name in ['m.json.bak', 'm.json.bak2', 'm.json.bak3']] \
        == ['version 0', 'version 1', 'version 2']


@pytest.mark.parametrize('broken', ['fsync', 'replace'])
def test_failure_in_the_middle_of_a_save_keeps_the_old_file(mg, tmp_path, monkeypatch, broken):
    """抓直接 open(path, 'w') 写的错误：磁盘满或被打断时，旧模型已被清空、新模型只写了一半；或者临时文件没删掉。"""
    path = tmp_path / 'm.json'
    path.write_text('old checkpoint', encoding='utf-8')

    def fail(*args):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(os, broken, fail)
    with pytest.raises(OSError):
        mg.write_atomically(str(path), 'new checkpoint ' * 1000)
    monkeypatch.undo()
    assert path.read_text(encoding='utf-8') == 'old checkpoint'
    assert os.listdir(tmp_path) == ['m.json']
    mg.write_atomically(str(path), 'new checkpoint')
    assert path.read_text(encoding='utf-8') == 'new checkpoint' and os.listdir(tmp_path) == ['m.json']


# ---------------------------------------------------------------------------
# 用读回的模型续写 prompt
# ---------------------------------------------------------------------------

def test_every_sample_starts_with_the_prompt(trained):
    """抓 prompt 只喂给模型却没写进结果、或者样本把开头丢了或重复了一遍的错误。"""
    result = load_run(trained, '--prompt=ma', '--num_samples=8')
    assert result.returncode == 0, result.stderr
    assert "都以 'ma' 开头" in result.stdout
    samples = numbered_samples(result.stdout)
    assert len(samples) == 8
    assert all(sample.startswith('ma') and len(sample) <= 16 for sample, label in samples)
    assert any(len(sample) > 2 for sample, label in samples)


def test_empty_prompt_samples_like_the_plain_run(trained):
    """抓处理 prompt 的代码改变了没有 prompt 时的采样（多抽或少抽了随机数）的错误。"""
    plain = load_run(trained)
    empty = load_run(trained, '--prompt=')
    assert plain.returncode == empty.returncode == 0
    assert numbered_samples(empty.stdout) == numbered_samples(plain.stdout) == numbered_samples(trained['stdout'])


def test_prompt_with_unknown_characters_lists_the_known_ones(trained):
    """抓 prompt 里有词表外的字符时 char_to_id 抛 KeyError 回溯、用户也不知道能用哪些字符的错误。"""
    result = load_run(trained, '--prompt=Zq')
    assert_clean_failure(result, 2, '--prompt 里有模型不认识的字符 Zq。', f'模型认识的字符是：{VOCAB}')


def test_prompt_must_be_shorter_than_block_size(trained):
    """抓 prompt 占满 block_size 时 wpe 下标越界（IndexError）的错误，以及把边界写成 > 而不是 >= 的差一错误。"""
    result = load_run(trained, '--prompt=' + 'anna' * 4)                 # 16 = block_size
    assert_clean_failure(result, 2, '--prompt', '16 个字符', 'block_size=16')
    ok = load_run(trained, '--prompt=' + 'anna' * 3 + 'ann')            # 15 个字符：还剩一个位置
    assert ok.returncode == 0, ok.stderr
    samples = numbered_samples(ok.stdout)
    assert len(samples) == 5 and all(s.startswith('anna' * 3 + 'ann') and len(s) <= 16 for s, _ in samples)


def reference_sample(mg, state, tok, prompt=''):
    """课本写法的采样循环：prompt 的字符一个一个喂进去，不抽随机数。"""
    keys = [[] for _ in range(mg.n_layer)]
    values = [[] for _ in range(mg.n_layer)]
    given = [tok.char_to_id[ch] for ch in prompt]
    token_id, out = tok.bos, list(prompt)
    for pos in range(mg.block_size):
        logits = mg.gpt(state, token_id, pos, keys, values)
        if pos < len(given):
            token_id = given[pos]
            continue
        probs = mg.softmax([z / mg.temperature for z in logits])
        token_id = random.choices(range(tok.vocab_size), weights=[p.data for p in probs])[0]
        if token_id == tok.bos:
            break
        out.append(tok.chars[token_id])
    return ''.join(out)


def test_sampling_with_a_prompt_draws_once_per_new_character(mg, monkeypatch):
    """抓给定开头的那几个位置也去抽随机数（浪费，而且让结果依赖开头的长度）、或者下一个字符不是从开头之后的
    分布里抽的错误。"""
    tok, state, _ = tiny_trained_model(mg, ['mara', 'maria', 'mark', 'ann', 'bob'], steps=0)
    for p in mg.flatten(state):
        p.data *= 5
    mg.temperature = 1.0
    calls = []
    real_choices = random.choices

    def counting_choices(population, weights=None, **kw):
        calls.append(list(weights))
        return real_choices(population, weights=weights, **kw)
    monkeypatch.setattr(random, 'choices', counting_choices)
    random.seed(3)
    lengths = set()
    for prompt in ('ma', 'mar', ''):
        for _ in range(8):
            calls.clear()
            sample = tok.decode(mg.sample_name(state, tok, prompt))
            assert sample.startswith(prompt)
            ended_by_bos = len(sample) < mg.block_size
            assert len(calls) == len(sample) - len(prompt) + ended_by_bos
            lengths.add(len(sample) - len(prompt))
        predictions, _ = mg.explain_text(state, tok, prompt)
        assert calls[0] == pytest.approx(predictions[-1][0], abs=1e-12)   # 第一次抽：就在 prompt 之后
    assert len(lengths) > 2                                       # 上面的检查见过好几种样本长度
    monkeypatch.undo()
    for prompt in ('', 'ma', 'mar'):                              # 而且和课本写法用的随机数相同
        random.seed(4)
        with_prompt = [tok.decode(mg.sample_name(state, tok, prompt)) for _ in range(6)]
        random.seed(4)
        assert with_prompt == [reference_sample(mg, state, tok, prompt) for _ in range(6)]
