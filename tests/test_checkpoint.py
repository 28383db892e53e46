"""第 9 节：保存和读回模型文件、坏的模型文件、训练之前就拒绝注定存不下的输出路径、覆盖旧文件时的备份、
原子写入和权限、接着训练，以及保存后的提示。"""
import hashlib
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from conftest import (NAMES, POSIX, ROOT, SCRIPT, SMALL, assert_clean_failure, assert_nothing_raw, checkpoint_text, held_out_loss,
                      hint_command, load_run, numbered_samples, read_checkpoint, run_main, run_script, squash,
                      tiny_trained_model, write_lines)


def bits(numbers):
    return [float(x).hex() for x in numbers]


def edited(text, change):
    """模型文件的内容 text 读成 JSON，用 change 改一下，再写回 JSON 文本。"""
    ckpt = json.loads(text)
    change(ckpt)
    return json.dumps(ckpt)


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
    ckpt = json.loads(checkpoint_text(mg, state, tok, optimizer, 3, 2.5, data))
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
    ckpt = json.loads(checkpoint_text(mg, state, tok, optimizer, 3, None))
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


def test_init_std_is_marked_as_unused_when_loading(trained):
    """抓读回模型时概况里的 init_std 看起来像是用上了的错误（读回的参数不是新初始化的）：要标明“读回模型时不起作用”；
    不读回时不标。"""
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0', '--num_samples=1')
    assert result.returncode == 0, result.stderr
    assert 'init_std=0.08（读回模型时不起作用）' in squash(result.stdout)
    plain = run_script(f'--input_path={trained["data"]}', '--num_steps=0', '--num_samples=1', *SMALL[:2])
    assert '读回模型时不起作用' not in plain.stdout


def test_checkpoint_saved_by_notepad_with_a_bom_still_loads(trained, tmp_path):
    """抓在 Windows 记事本里另存过（开头多了 BOM）的模型文件被当成“不是合法的 JSON”的错误。"""
    path = tmp_path / 'bom.json'
    path.write_bytes('\ufeff'.encode('utf-8') + trained['text'].encode('utf-8'))
    result = load_run(trained, f'--load_path={path}')
    assert result.returncode == 0, result.stderr
    assert '读回的模型（这次没再训练）' in result.stdout


def test_a_checkpoint_resaved_with_sorted_keys_is_still_ours(mg, tmp_path, trained):
    """抓只看文件开头有没有 "format" 的错误：别的程序把键排了序重新存过，就既不能覆盖也不能读回。"""
    path = tmp_path / 's.json'
    with open(trained['ckpt'], encoding='utf-8') as f:
        ckpt = json.load(f)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(ckpt, f, sort_keys=True)
    assert not path.read_text(encoding='utf-8').startswith('{"format"')
    loaded = run_script(f'--input_path={trained["data"]}', f'--load_path={path}', '--num_steps=0', '--num_samples=2')
    assert loaded.returncode == 0, loaded.stderr
    result = run_script(f'--input_path={trained["data"]}', f'--save_path={path}', '--num_steps=2', *SMALL)
    assert result.returncode == 0, result.stderr
    assert read_checkpoint(path)['steps_trained'] == 2


def test_the_checkpoint_records_the_data_file_and_fingerprint(mg, trained):
    """抓模型文件没记下数据（读回时没法说“这个模型是用哪个文件训练的”）、或者指纹在打乱之后算（每次都不一样）的错误。"""
    with open(trained['ckpt'], encoding='utf-8') as f:
        data = json.load(f)['data']
    docs = mg.load_docs(trained['data'])
    assert data == {'file': 'names.txt', 'fingerprint': hashlib.sha256('\n'.join(docs).encode('utf-8')).hexdigest()[:16]}


def test_the_printed_command_works_as_printed(trained):
    """抓提示里漏了 --input_path、照抄命令读回模型后数据换成了 input.txt（评估对不上、甚至报错）的错误。"""
    command = hint_command(trained['result'].stdout)
    words = shlex.split(command)
    assert f'--input_path={trained["data"]}' in words and f'--load_path={trained["ckpt"]}' in words
    # 提示里的解释器名字（python、python3……）换成正在用的这个；脚本的路径从项目文件夹（训练时的当前文件夹）算起
    assert os.path.samefile(os.path.join(ROOT, words[1]), SCRIPT)
    result = run_script(*words[2:], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert '读回的模型（这次没再训练）' in result.stdout and '和这次的数据相同' in squash(result.stdout)


def test_data_with_a_character_the_checkpoint_does_not_know(trained, tmp_path):
    """抓数据里有词表外的字符时 encode 抛 KeyError 回溯的错误，以及只想拿模型采样却直接失败、或者悄悄跳过评估
    不说为什么、该用哪个文件的错误。只拿读回的模型采样（num_steps=0）时照常采样、跳过评估并说明为什么；要接着训练时
    退出码 1，训练没有开始。两种都说出是哪些字符、模型是用哪份数据训练的、该加上哪个 --input_path，模型文件不动。"""
    data = write_lines(tmp_path / 'more.txt', '\n'.join(NAMES + ['quinn', 'zoe']) + '\n')
    before = open(trained['ckpt'], 'rb').read()
    sampled = run_main(f'--input_path={data}', f'--load_path={trained["ckpt"]}', '--num_steps=0', *SMALL)
    assert sampled.returncode == 0 and sampled.stderr == '', sampled.stderr
    assert squash('注意：数据 more.txt 里有模型的词表里没有的字符 qz：这个模型是用 names.txt 训练的，'
                  '请加上 --input_path=names.txt（文件不在当前文件夹里时，写上它的路径）。这次只拿模型采样，跳过在留出集上的评估。') in squash(sampled.stdout)
    assert '读回的模型（这次没再训练）' not in sampled.stdout and len(numbered_samples(sampled.stdout)) == 5
    training = run_main(f'--input_path={data}', f'--load_path={trained["ckpt"]}', '--num_steps=5', *SMALL)
    assert_clean_failure(training, 1, '字符 qz', '用 names.txt 训练的', '--input_path=', '--load_path')
    assert '开始训练' not in training.stdout
    assert open(trained['ckpt'], 'rb').read() == before


# ---------------------------------------------------------------------------
# 坏的模型文件
# ---------------------------------------------------------------------------

def drop_matrix(ckpt):
    del ckpt['params']['layer0.mlp_fc2']


def put_nan(ckpt):
    ckpt['params']['lm_head'][0][0] = float('nan')


BAD_FILES = {
    'not_json': (lambda text: 'hello, this is my diary\n', ['不是合法的 JSON']),
    'truncated': (lambda text: text[:len(text) // 2], ['可能只复制了一部分']),
    'cut_inside_a_number': (lambda text: text[:text.index('0.0', len(text) // 2) + 3], ['可能只复制了一部分']),   # 停在一个数的中间
    'other_program': (lambda text: '{"a": 1}', ['不是 microGPT', 'format']),
    'version_2': (lambda text: edited(text, lambda c: c.update(version=2)), ['第 2 版', '第 1 版']),
    'missing_matrix': (lambda text: edited(text, drop_matrix), ['缺少', 'layer0.mlp_fc2']),
    'missing_row': (lambda text: edited(text, lambda c: c['params']['lm_head'].pop()), ['lm_head', '25 行 × 8 列']),
    'vocabulary_edited': (lambda text: edited(text, lambda c: c['params']['wte'].pop()),
                          ['"vocabulary" 说词表有 25 个 token（含 BOS），矩阵 wte 却有 24 行', '词表被改过了']),
    'nan': (lambda text: edited(text, put_nan), ['lm_head', 'NaN']),
    'negative_v': (lambda text: edited(text, lambda c: c['adam']['v']['wte'][0].__setitem__(0, -1.0)), ['adam.v', '负数']),
    'huge_integer': (lambda text: edited(text, lambda c: c.update(val_loss=10 ** 400)), ['val_loss']),
    'step_count_true': (lambda text: edited(text, lambda c: c['adam'].update(t=True)), ['"t"']),
    'absurd_n_layer': (lambda text: edited(text, lambda c: c['settings'].update(n_layer=10 ** 7)),
                       ['"settings" 不成立', '4 GB']),
    'heads_do_not_divide': (lambda text: edited(text, lambda c: c['settings'].update(n_head=3)),
                            ['"settings" 不成立', 'n_embd = 8 和 n_head = 3 合不来', '能被 n_head 整除']),
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


def test_a_deleted_vocabulary_character_is_called_a_vocabulary_change(tmp_path, trained):
    """抓词表少了一个字符、报的却是“矩阵 wte 应该是 24 行”（看不出是词表被改了）的错误。"""
    with open(trained['ckpt'], encoding='utf-8') as f:
        ckpt = json.load(f)
    del ckpt['vocabulary'][5]
    path = tmp_path / 'v.json'
    path.write_text(json.dumps(ckpt), encoding='utf-8')
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={path}', '--num_steps=0')
    assert_clean_failure(result, 1, '"vocabulary"', '词表被改过了')
    assert '列' not in result.stderr


def test_a_huge_value_in_a_checkpoint_gives_a_short_error(tmp_path, trained):
    """抓把模型文件里 5 MB 的 "version" 整个抄进错误信息、终端被刷屏的错误。"""
    path = write_lines(tmp_path / 'v.json', edited(trained['text'], lambda c: c.update(version='v' * 5_000_000)))
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={path}', '--num_steps=0')
    assert_clean_failure(result, 1, 'v.json', '版')
    assert len(result.stderr) < 300


def test_a_model_file_with_esc_in_its_vocabulary_cannot_restyle_the_terminal(tmp_path, trained):
    """抓只清理了数据、没清理模型文件里的词表的错误：别人给的模型文件能让你的终端执行控制序列。"""
    def add_esc(ckpt):                     # 在词表最前面加一个 ESC，每个按词表排的矩阵也加一行
        ckpt['vocabulary'].insert(0, '\x1b')
        for mats in (ckpt['params'], ckpt['adam']['m'], ckpt['adam']['v']):
            for name in ('wte', 'lm_head'):
                mats[name].insert(0, [0.5 if mats is ckpt['params'] else 0.0] * len(mats[name][0]))
    path = write_lines(tmp_path / 'esc.json', edited(trained['text'], add_esc))
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={path}', '--num_steps=0', '--temperature=5',
                        '--num_samples=40', '--explain=\x1bab')
    assert result.returncode == 0, result.stderr
    assert_nothing_raw(result)
    assert '\\x1b' in result.stdout
    bad = run_script(f'--input_path={trained["data"]}', f'--load_path={path}', '--num_steps=0', '--prompt=\x07')
    assert_clean_failure(bad, 2, '\\x07')
    assert_nothing_raw(bad)


@pytest.fixture(scope='module')
def overflowing(trained, tmp_path_factory):
    """参数都在检查的上限 1e300 以内，但 1e200 × 1e200 让 logits 溢出成 inf：采样和 --explain 都算不下去。"""
    def huge(ckpt):
        for name in ('lm_head', 'layer0.mlp_fc1', 'layer0.mlp_fc2'):
            ckpt['params'][name] = [[1e200] * len(row) for row in ckpt['params'][name]]
    return write_lines(tmp_path_factory.mktemp('huge') / 'huge.json', edited(trained['text'], huge))


@pytest.mark.parametrize('extra', [['--num_samples=5'], ['--num_samples=0', '--explain=anna']])
def test_overflowing_model_file_is_blamed_not_the_learning_rate(trained, overflowing, extra):
    """抓读回的模型算出 NaN 时抛 ValueError 回溯、或者叫人调小 learning_rate（可这次根本没训练）的错误。"""
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={overflowing}', '--num_steps=0', *extra)
    assert_clean_failure(result, 1, '模型文件', 'huge.json')
    assert 'learning_rate' not in result.stderr
    assert not [line for line in result.stdout.splitlines() if line.startswith('提醒') and 'learning_rate' in line]
    assert '读回的模型（这次没再训练）  nan' in result.stdout and '损失太大' not in result.stdout   # NaN 不是“太大”


# ---------------------------------------------------------------------------
# 存到哪里：注定存不下的，训练之前就拒绝
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


def unsavable(kind, tmp_path):
    if kind == 'missing_folder':
        return str(tmp_path / 'no_such_folder' / 'm.json')
    if kind == 'missing_folder_slash':
        return str(tmp_path / 'name') + '/'
    if kind == 'existing_folder':
        return str(tmp_path)
    if kind == 'too_long':
        return str(tmp_path / ('a' * 300 + '.json'))
    if kind == 'fifo':
        os.mkfifo(tmp_path / 'fifo')
        return str(tmp_path / 'fifo')
    if kind == 'dev_null':
        return '/dev/null'
    if kind == 'read_only_folder':
        if os.geteuid() == 0:
            pytest.skip('root 在哪里都能写')
        (tmp_path / 'ro').mkdir()
        os.chmod(tmp_path / 'ro', 0o555)
        return str(tmp_path / 'ro' / 'm.json')


@POSIX
@pytest.mark.parametrize('setting', ['save_path', 'html_path'])
@pytest.mark.parametrize('kind', ['missing_folder', 'missing_folder_slash', 'existing_folder', 'too_long', 'fifo', 'dev_null',
                                  'read_only_folder'])
def test_a_save_bound_to_fail_is_refused_before_training(tmp_path, data, setting, kind):
    """抓训练了半天、到最后写文件时才发现文件夹不存在、名字太长、没有写权限，或者要写的是个管道/设备的错误。"""
    path = unsavable(kind, tmp_path)
    result = run_script(f'--input_path={data}', '--num_steps=5', f'--{setting}={path}', *SMALL, timeout=30)
    assert_clean_failure(result, 2, f'--{setting}=')
    assert '开始训练' not in result.stdout


def test_the_page_does_not_overwrite_the_model_saved_at_the_same_path(mg, tmp_path, data):
    """抓两个设置写了同一个文件名时，程序说“模型已保存”“网页已保存”，其实模型已被网页覆盖的错误：
    训练之前就拒绝（退出码 2），什么都不写。"""
    path = tmp_path / 'same.json'
    result = run_script(f'--input_path={data}', '--num_steps=2', f'--save_path={path}', f'--html_path={path}', *SMALL)
    assert_clean_failure(result, 2, 'html_path', 'save_path', '同一个文件')
    assert '开始训练' not in result.stdout and not path.exists()


# ---------------------------------------------------------------------------
# 覆盖旧的模型文件：备份、原子写入、权限
# ---------------------------------------------------------------------------

def mv_command(stdout):
    """“想换回来，运行：”下一行的 mv 命令：(备份, 目标)。"""
    lines = stdout.splitlines()
    i = next(i for i, line in enumerate(lines) if line.endswith('想换回来，运行：'))
    words = shlex.split(lines[i + 1])
    assert words[0] == ('move' if os.name == 'nt' else 'mv') and len(words) == 3
    return words[1], words[2]


def test_overwriting_a_better_checkpoint_keeps_a_backup(trained, tmp_path):
    """抓两类错误：为了保护文件，连上一次存的模型也不让覆盖；以及覆盖时把一个更好的模型（留出集损失更低）
    悄悄丢掉。更好的旧模型另存为 m.json.bak，并打印换回来的命令和读回新模型的命令（数据不是默认的，
    所以带 --input_path）。"""
    path = tmp_path / 'm.json'
    path.write_text(trained['text'], encoding='utf-8')
    result = run_main(f'--input_path={trained["data"]}', f'--save_path={path}', '--num_steps=3', *SMALL,
                      cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert read_checkpoint(path)['steps_trained'] == 3                     # 新的已经换上
    assert sorted(os.listdir(tmp_path)) == ['m.json', 'm.json.bak']
    assert (tmp_path / 'm.json.bak').read_text(encoding='utf-8') == trained['text']
    old, new = json.loads(trained['text'])['val_loss'], held_out_loss(result.stdout, '训练后')
    assert old < new
    assert squash(f'原来那里的文件已另存为 m.json.bak（这次的模型不一定更好：留出集损失原来 {old:.4f}，这次 {new:.4f}；') \
        in squash(result.stdout)
    lines = result.stdout.splitlines()
    assert '  mv m.json.bak m.json' in lines and mv_command(result.stdout) == ('m.json.bak', 'm.json')   # 照着做就能换回来
    assert any(line.endswith(f' --load_path=m.json --input_path={trained["data"]} --num_steps=0') for line in lines)


def test_overwriting_a_worse_checkpoint_keeps_no_backup(trained, tmp_path):
    """抓每次覆盖都留一份备份（文件夹里堆满 .bak）、或者比较损失时把大小比反了的错误：旧模型更差时直接替换。"""
    path = tmp_path / 'm.json'
    path.write_text(edited(trained['text'], lambda c: c.update(val_loss=9.0)), encoding='utf-8')
    result = run_main(f'--input_path={trained["data"]}', f'--save_path={path}', '--num_steps=3', *SMALL)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ['m.json'] and '另存为' not in result.stdout
    assert json.loads(path.read_text(encoding='utf-8'))['steps_trained'] == 3


def test_an_exploded_run_keeps_the_old_model_as_bak_then_bak2(mg, tmp_path, trained):
    """抓训练爆炸（留出集损失 > 2·ln V）的模型照样顶掉原来的、或者第二次备份覆盖了第一次的备份的错误。"""
    path = tmp_path / 'm.json'
    write_lines(path, edited(trained['text'], lambda c: c.update(val_loss=None)))    # 没有记录损失：只有“爆炸”这一条理由
    first = path.read_bytes()
    for backup in ('m.json.bak', 'm.json.bak2'):
        before = path.read_bytes()
        result = run_script(f'--input_path={trained["data"]}', '--num_steps=20', '--learning_rate=10', f'--save_path={path}', *SMALL,
                            cwd=str(tmp_path))
        assert result.returncode == 0, result.stderr
        vocab = int(re.search(r'词表：(\d+) 个 token', result.stdout).group(1))
        after = float(re.search(r'^  训练后 +(\S+) ', result.stdout, flags=re.M).group(1))     # 可能是 3.84e+05 这样写的
        assert after > 2 * math.log(vocab)                                  # 真的爆炸了
        assert (tmp_path / backup).read_bytes() == before
        assert mv_command(result.stdout) == (backup, 'm.json')
    assert (tmp_path / 'm.json.bak').read_bytes() == first
    read_checkpoint(path)


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


@POSIX
def test_replacing_a_file_keeps_its_permission_bits(tmp_path, trained):
    """抓写临时文件再换名时新文件用了默认权限（只有自己能读的 600 模型文件变成了人人能读的 644）的错误。"""
    path = tmp_path / 'm.json'
    shutil.copy(trained['ckpt'], path)
    os.chmod(path, 0o600)
    result = run_script(f'--input_path={trained["data"]}', '--num_steps=2', f'--save_path={path}', *SMALL)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text(encoding='utf-8'))['steps_trained'] == 2


@pytest.mark.parametrize('setting', ['save_path', 'html_path'])
def test_a_full_disk_while_writing_gives_one_clean_line(mg, monkeypatch, tmp_path, data, setting):
    """抓只有保存模型时接住了 OSError、写网页时磁盘满了就打出一大段回溯的错误（攻击脚本在小 tmpfs 上找到的）。"""
    def full(path, text):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(mg, 'write_atomically', full)
    result = run_main(f'--input_path={data}', '--num_steps=2', f'--{setting}={tmp_path / "out.file"}', *SMALL)
    assert_clean_failure(result, 1, 'No space left on device')
    assert not os.path.exists(tmp_path / 'out.file')


# ---------------------------------------------------------------------------
# 第二轮攻击：别名、训练期间出现的文件、比不了的模型、最后半秒、文件名
# ---------------------------------------------------------------------------

@POSIX
@pytest.mark.parametrize('alias', ['proc_self_cwd', 'symlinked_folder', 'hard_link'])
def test_two_outputs_that_are_the_same_file_under_another_name_are_refused(tmp_path, data, alias):
    """抓只比较路径字符串、网页就把刚存好的模型盖掉的错误：/proc/self/cwd/m.json、经过指向本文件夹的符号链接、
    或者一个硬链接，都是 m.json 本身。训练之前就以退出码 2 拒绝，什么都不写。"""
    model = tmp_path / 'm.json'
    if alias == 'proc_self_cwd':
        page = '/proc/self/cwd/m.json'
    elif alias == 'symlinked_folder':
        (tmp_path / 'lnk').symlink_to(tmp_path)
        page = 'lnk/m.json'
    else:
        first = run_main(f'--input_path={data}', '--num_steps=1', f'--save_path={model}', *SMALL, cwd=str(tmp_path))
        assert first.returncode == 0, first.stderr
        os.link(model, tmp_path / 'twin.json')
        page = 'twin.json'
    before = model.read_bytes() if model.exists() else None
    result = run_main(f'--input_path={data}', '--num_steps=2', '--save_path=m.json', f'--html_path={page}', *SMALL, cwd=str(tmp_path))
    assert_clean_failure(result, 2, 'html_path', '同一个文件')
    assert '开始训练' not in result.stdout and (model.read_bytes() if model.exists() else None) == before


@pytest.mark.parametrize('setting, name', [('html_path', 'race.html'), ('save_path', 'm.json')])
def test_a_file_saved_at_an_output_path_during_training_is_kept(mg, monkeypatch, tmp_path, data, setting, name):
    """抓训练之前检查过路径、写的时候不再看一眼的错误（why_keep_model 只比留出集损失、把不是模型文件的旧文件直接
    盖掉，也是这一种）：训练前那里还没有文件，训练期间有人在那里存了一篇文章；网页和模型都不能悄悄盖掉它，而是先把它
    另存为 .bak，并给出换回来的命令。"""
    essay = tmp_path / name
    real_train = mg.train_with_progress

    def train_then_save_an_essay(*args):
        real_train(*args)
        essay.write_text('我的作文', encoding='utf-8')
    monkeypatch.setattr(mg, 'train_with_progress', train_then_save_an_essay)
    result = run_main(f'--input_path={data}', '--num_steps=3', f'--{setting}={name}', *SMALL, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / (name + '.bak')).read_text(encoding='utf-8') == '我的作文'
    assert f'mv {name}.bak {name}' in result.stdout
    if setting == 'html_path':
        assert mg.is_our_page(str(essay))
    else:
        assert '不是完好的模型文件' in result.stdout and mg.existing_checkpoint(str(essay))['steps_trained'] == 3


def test_a_note_that_quotes_the_page_marker_is_not_overwritten(tmp_path, data):
    """抓文件里有网页的生成器那一行就算“我们的网页”、一篇引用了这一行的笔记被整个盖掉的错误。"""
    note = tmp_path / 'notes.html'
    note.write_text('我的笔记：网页开头是 <meta name="generator" content="microgpt_teaching.py abc">\n', encoding='utf-8')
    result = run_main(f'--input_path={data}', '--num_steps=2', f'--html_path={note}', *SMALL)
    assert_clean_failure(result, 2, 'html_path', '不是 microGPT 写的文件')
    assert note.read_text(encoding='utf-8').startswith('我的笔记')


@pytest.mark.parametrize('args, why', [(['--num_steps=40', '--learning_rate=3', '--val_size=0'], '这次训练爆炸了'),
                                       (['--num_steps=0', '--val_size=0'], '这次训练了 0 步')],
                         ids=['exploded_without_held_out_set', 'untrained_without_held_out_set'])
def test_a_model_that_cannot_be_compared_never_silently_replaces_a_trained_one(trained, tmp_path, args, why):
    """抓没有留出集（val_size=0、数据不到 10 行）时，一个爆炸了的、或者一步没训练的模型悄悄顶掉训练好的模型的错误：
    比不了，就总把原来的留一份备份，说为什么，并给出换回来的命令。"""
    good = tmp_path / 'good.json'
    good.write_text(trained['text'], encoding='utf-8')
    result = run_main(f'--input_path={trained["data"]}', f'--save_path={good}', *args, *SMALL, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'good.json.bak').read_text(encoding='utf-8') == trained['text']
    assert why in squash(result.stdout).replace('这次训练了0步', '这次训练了 0 步') and 'mv good.json.bak good.json' in result.stdout


@POSIX
@pytest.mark.parametrize('signals', [1, 2], ids=['first_signal_finishes_the_save', 'second_signal_gives_up'])
def test_a_stop_signal_right_after_training_still_saves_the_model(mg, monkeypatch, tmp_path, data, signals):
    """抓训练刚结束、模型还没存好（评估训练后的模型那半秒）时收到一次 SIGTERM 就把训练白白扔掉的错误：第一次信号的意思是
    “存好再停”（说一声，存好，退出码 130）；只有第二次信号才放弃，并说模型没有保存。"""
    real_evaluate, calls = mg.evaluate, []

    def evaluate_and_get_a_signal(*args):
        calls.append(1)
        if len(calls) == 2:                                 # 第二次评估：训练之后、保存之前
            for _ in range(signals):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)                            # Python 在两条字节码之间才处理信号
        return real_evaluate(*args)
    monkeypatch.setattr(mg, 'evaluate', evaluate_and_get_a_signal)
    result = run_main(f'--input_path={data}', '--num_steps=3', '--save_path=m.json', *SMALL, cwd=str(tmp_path))
    assert result.returncode == 130 and 'Traceback' not in result.stderr
    assert '先把模型存好，然后停止' in squash(result.stderr)
    if signals == 1:
        assert read_checkpoint(tmp_path / 'm.json')['steps_trained'] == 3 and '模型已经存好了' in result.stderr
    else:
        assert not (tmp_path / 'm.json').exists() and '模型没有保存' in result.stderr


@POSIX
def test_a_data_file_name_that_is_not_utf8_is_shown_escaped_and_saved(tmp_path):
    """抓文件名里有不是 UTF-8 的字节（n\\xff.txt）时，写模型文件抛 UnicodeEncodeError、训练白做的错误：
    名字显示成 \\xff，存进模型文件的也是这样转义过的文字，模型照常存好、读得回来。"""
    folder = os.fsencode(tmp_path)
    with open(os.path.join(folder, b'n\xff.txt'), 'wb') as f:
        f.write('\n'.join(NAMES).encode('utf-8') + b'\n')
    proc = subprocess.run([sys.executable, SCRIPT, b'--input_path=n\xff.txt', '--num_steps=2', '--save_path=m.json', *SMALL],
                          cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, 'PYTHONIOENCODING': 'utf-8'})
    out, err = proc.stdout.decode('utf-8'), proc.stderr.decode('utf-8')
    assert proc.returncode == 0 and 'Traceback' not in err, err
    assert 'n\\xff.txt' in out and read_checkpoint(tmp_path / 'm.json')['data']['file'] == 'n\\xff.txt'


def test_the_early_check_tries_the_backup_name_too(tmp_path, data):
    """抓训练之前只试了 path 本身、没试保存时还要用的 path.bak（长了 4 个字符）：255 个字符的名字训练前通过了检查，
    到了要留备份时才失败，新模型就白练了。"""
    name = 'm' * 250 + '.json'                          # 255 个字符：本身能建，加上 .bak 就太长了
    result = run_main(f'--input_path={data}', '--num_steps=2', f'--save_path={name}', *SMALL, cwd=str(tmp_path))
    assert_clean_failure(result, 2, '文件名太长了', '.bak')
    assert os.listdir(tmp_path) == ['names.txt']


@POSIX
def test_concurrent_saves_to_one_path_keep_the_better_model(mg, tmp_path, trained):
    """抓两次运行同时存到同一个路径时，两边都说“模型已保存”，更好的那个却既不在文件里也不在备份里的错误：
    换文件时锁住文件夹，后存的那个读到先存的那个，再决定留不留备份。这里让“先存的”在锁住的时候写进一个更好的模型，
    后存的那个只能等锁放开，然后把它留成备份。"""
    import fcntl
    target = tmp_path / 'm.json'
    target.write_text(edited(trained['text'], lambda c: c.update(val_loss=9.0)), encoding='utf-8')   # 原来的：很差
    better = edited(trained['text'], lambda c: c.update(val_loss=0.5))
    record = {'losses': {'after': 3.0}, 'step_losses': [3.0] * 20, 'model': {'vocab_size': 25}}
    mg.save_path = str(target)
    done = []
    lock = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)                    # 另一次运行正在换文件
    saver = threading.Thread(target=lambda: done.append(mg.replace_file('save_path', 'new model', mg.why_keep_model(record))))
    saver.start()
    time.sleep(0.3)
    assert not done and target.read_text(encoding='utf-8') != 'new model'      # 它在等锁
    target.write_text(better, encoding='utf-8')          # 另一次运行存下了一个更好的模型，然后放开锁
    os.close(lock)
    saver.join(10)
    assert done and target.read_text(encoding='utf-8') == 'new model'
    assert (tmp_path / 'm.json.bak').read_text(encoding='utf-8') == better and '原来 0.5000' in done[0][2]


def test_huge_initial_parameters_blame_init_std(data):
    """抓 --init_std=1e308 时说“请调小 learning_rate”的错误：第 1 步的 loss 就算不出来（参数还没更新过），该怪 init_std；
    不训练、只采样时也一样。"""
    trained = run_main(f'--input_path={data}', '--num_steps=5', '--init_std=1e308', *SMALL)
    assert_clean_failure(trained, 1, '第 1 步', 'init_std')
    assert 'learning_rate' not in trained.stderr
    sampled = run_main(f'--input_path={data}', '--num_steps=0', '--init_std=1e308', *SMALL)
    assert_clean_failure(sampled, 1, 'init_std')
    assert 'learning_rate' not in sampled.stderr


def test_changed_data_under_the_same_name_is_not_told_to_add_that_same_name(trained, tmp_path):
    """抓数据文件改过了（名字还是训练时那个）却建议“请加上 --input_path=names.txt”——这正是已经给了的参数——的错误。"""
    data = tmp_path / 'names.txt'
    data.write_text('\n'.join(NAMES + ['zoe', 'quinn']) + '\n', encoding='utf-8')
    result = run_main(f'--input_path={data}', f'--load_path={trained["ckpt"]}', '--num_steps=0', *SMALL)
    assert result.returncode == 0, result.stderr
    assert '文件后来改过了' in squash(result.stdout) and '--input_path=names.txt' not in result.stdout


def test_a_folder_as_html_path_suggests_a_page_name(data, tmp_path):
    """抓 --html_path=文件夹 时建议“文件夹/model.json”（网页起了个 JSON 的名字）的错误。"""
    result = run_main(f'--input_path={data}', f'--html_path={tmp_path}', *SMALL)
    assert_clean_failure(result, 2, '这是一个文件夹', 'run.html')
    assert 'model.json' not in result.stderr


def test_why_keep_model_wants_a_real_and_healthy_training_run(mg, tmp_path, trained):
    """抓 why_keep_model 只比留出集损失的错误：这次一步没训练（只是读回、重存，损失和原来一样），或者这次训练爆炸了
    （损失 50 比原来那个更离谱的 1e6 还低），都不算“明确更好”，原来的文件要留备份并说明为什么；真的训练了、没爆炸、
    损失更低时才直接替换。"""
    path = tmp_path / 'm.json'
    old = json.loads(trained['text'])['val_loss']
    path.write_text(trained['text'], encoding='utf-8')

    def why(after, steps, vocab_size=25):
        return mg.why_keep_model({'losses': {'after': after}, 'step_losses': [2.0] * steps, 'model': {'vocab_size': vocab_size}})(str(path))
    assert why(old - 0.1, 20) is None
    assert '原来训练了 20 步，这次训练了 0 步' in why(old, 0)
    path.write_text(edited(trained['text'], lambda c: c.update(val_loss=1e6)), encoding='utf-8')
    assert why(50.0, 20).endswith('而且这次训练爆炸了') and why(5.0, 20) is None


@POSIX
def test_a_dangling_link_named_bak_is_not_a_free_backup_name(mg, tmp_path):
    """抓 backup_name 用 os.path.exists（断了的符号链接算“不存在”）挑备份名的错误：m.json.bak 是一个指向不存在的文件的
    符号链接时，备份要放到 m.json.bak2，不能顺着那个链接在别处建出一个文件。"""
    path = tmp_path / 'm.json'
    path.write_text('old model', encoding='utf-8')
    (tmp_path / 'm.json.bak').symlink_to(tmp_path / 'elsewhere.json')
    assert mg.keep_backup(str(path)) == str(tmp_path / 'm.json.bak2')
    assert (tmp_path / 'm.json.bak2').read_text(encoding='utf-8') == 'old model'
    assert not (tmp_path / 'elsewhere.json').exists()


def test_keep_backup_copies_when_hard_links_are_not_supported(mg, tmp_path, monkeypatch):
    """抓文件系统不支持硬链接（FAT 格式的 U 盘）时 keep_backup 直接失败、原来的文件就留不下备份的错误：改成复制一份，
    内容和权限都一样。"""
    path = tmp_path / 'm.json'
    path.write_text('old model', encoding='utf-8')
    os.chmod(path, 0o600)

    def no_links(*args):
        raise OSError(1, 'Operation not permitted')
    monkeypatch.setattr(os, 'link', no_links)
    assert mg.keep_backup(str(path)) == str(tmp_path / 'm.json.bak')
    backup = tmp_path / 'm.json.bak'
    assert backup.read_text(encoding='utf-8') == 'old model' and not os.path.samefile(backup, path)
    assert stat.S_IMODE(os.stat(backup).st_mode) == stat.S_IMODE(os.stat(path).st_mode)


def test_a_shape_that_only_works_together_with_the_model_file_is_accepted(tmp_path, data):
    """抓读回模型时仍拿第 0 节的形状检查命令行的形状的错误：模型是 n_embd=6、n_head=2，命令行照抄了 --n_embd=6，
    和第 0 节的 n_head=4 合不来（6 不能被 4 整除）；可形状由模型文件决定，n_head 会换成文件里的 2，所以这是合法的。"""
    model = tmp_path / 'six.json'
    first = run_main(f'--input_path={data}', '--n_embd=6', '--n_head=2', '--num_steps=1', '--num_samples=0', f'--save_path={model}')
    assert first.returncode == 0, first.stderr
    result = run_main(f'--input_path={data}', f'--load_path={model}', '--n_embd=6', '--num_steps=0', '--num_samples=0')
    assert result.returncode == 0, result.stderr
    assert '1 层，n_embd=6，2 个头' in result.stdout
