"""Section 8 and the command-line habits around it: save, load, bad files, save paths, prompt, overrides."""
import json
import os
import random
import re
import shutil

import pytest

from conftest import assert_clean_failure, run_script, write_lines

NAMES = ['anna', 'bob', 'carla', 'dora', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu', 'mia', 'ned',
         'ola', 'pam', 'ray', 'sam', 'tia', 'uma', 'val', 'wes', 'yan', 'abe', 'ben', 'cat', 'dan', 'eli',
         'finn', 'gil', 'hana', 'ian', 'jade', 'kai', 'leo', 'max', 'nia', 'otto', 'pia', 'rex']   # 40, no q or z
VOCAB = ''.join(sorted(set(''.join(NAMES))))
SMALL = ('--n_embd=8', '--n_head=2', '--num_samples=5')


def sample_lines(stdout):
    """(sample, label) for every numbered sample line, in order."""
    return re.findall(r'^ +\d+\. (\S+) +(\S+)$', stdout, flags=re.M)


def held_out_loss(stdout, label):
    return re.search(rf'^  {label} +(\d+\.\d+) ', stdout, flags=re.M).group(1)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """One real training run that saves a checkpoint (20 steps on 40 names); most tests here reuse it."""
    folder = tmp_path_factory.mktemp('trained')
    data = write_lines(folder / 'names.txt', '\n'.join(NAMES) + '\n')
    ckpt = str(folder / 'm.json')
    result = run_script(f'--input_path={data}', '--num_steps=20', f'--save_path={ckpt}', *SMALL)
    assert result.returncode == 0, result.stderr
    with open(ckpt, encoding='utf-8') as f:
        text = f.read()
    return {'data': data, 'ckpt': ckpt, 'text': text, 'stdout': result.stdout}


def load_run(trained, *args):
    return run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0', *SMALL, *args)


# ---------------------------------------------------------------------------
# save → load
# ---------------------------------------------------------------------------

def tiny_trained_model(mg, docs, steps=3):
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


def test_save_then_load_gives_bit_identical_parameters_and_adam_state(mg):
    """抓的 bug：存文件时把小数四舍五入、矩阵按错的名字/顺序写入，或 Adam 的 m、v、t 没存——读回的模型就不是原来那个。"""
    docs = ['a b', '[x]', '"q"', 'c\\d', '{e}', '明月', 'tab\tin']     # JSON 和压行的正则都要经得起这些字符
    tok, state, optimizer = tiny_trained_model(mg, docs)
    optimizer.params[0].data = 0.1 + 0.2                              # 0.30000000000000004：要逐位保留
    optimizer.params[1].data = -0.0
    optimizer.params[2].data = 5e-324
    text = mg.checkpoint_json(state, tok, optimizer, 3, 2.5)
    ckpt = json.loads(text)
    mg.check_checkpoint(ckpt)
    assert ckpt['vocabulary'] == tok.chars and mg.Tokenizer(ckpt['vocabulary']).chars == tok.chars
    assert ckpt['settings'] == {'n_layer': 2, 'n_embd': 8, 'n_head': 2, 'block_size': 8}
    assert (ckpt['steps_trained'], ckpt['val_loss'], ckpt['adam']['t']) == (3, 2.5, 3)
    assert ckpt['params']['layer1.mlp_fc1'][5][3] == state['layer1.mlp_fc1'][5][3].data   # stored by name
    random.seed(99)                                                  # a different fresh model
    fresh = mg.init_params(tok.vocab_size)
    fresh_opt = mg.Adam(mg.flatten(fresh))
    assert bits(p.data for p in fresh_opt.params) != bits(p.data for p in optimizer.params)
    mg.restore(ckpt, fresh, fresh_opt)
    assert bits(p.data for p in fresh_opt.params) == bits(p.data for p in optimizer.params)
    assert bits(fresh_opt.m) == bits(optimizer.m) and bits(fresh_opt.v) == bits(optimizer.v)
    assert fresh_opt.t == optimizer.t == 3
    assert any(optimizer.m) and any(optimizer.v)                     # the Adam state really was non-trivial


def test_restore_goes_by_matrix_name_not_by_order_in_the_file(mg):
    """抓的 bug：restore 按文件里矩阵出现的顺序填数；别的工具重写文件（键的顺序变了）后，wte 的数就会填进 lm_head。"""
    tok, state, optimizer = tiny_trained_model(mg, ['abc', 'cab', 'bca'])
    ckpt = json.loads(mg.checkpoint_json(state, tok, optimizer, 3, None))
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
    """抓的 bug：读回模型时随机数消耗和训练那次不一样、或参数没真正填进去——同一个种子编出的名字和损失就对不上。"""
    run2 = load_run(trained)
    assert run2.returncode == 0, run2.stderr
    assert '开始训练' not in run2.stdout and '模型：读自' in run2.stdout
    after = held_out_loss(trained['stdout'], '训练后')
    assert held_out_loss(run2.stdout, '读回的模型（这次没再训练）') == after
    assert float(after) == pytest.approx(json.loads(trained['text'])['val_loss'], abs=5e-5)
    assert float(after) != pytest.approx(float(held_out_loss(trained['stdout'], '训练前')), abs=1e-3)
    first, second = sample_lines(trained['stdout']), sample_lines(run2.stdout)
    assert len(first) == 5 and first == second


def test_shape_comes_from_the_checkpoint_and_the_same_value_on_the_line_is_fine(trained):
    """抓的 bug：读回模型时仍按第 0 节的默认形状（n_embd=16）建参数；或者命令行写了和文件相同的值也被当成冲突。"""
    for args in [(), ('--n_embd=8', '--block_size=16')]:
        result = run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0',
                            '--num_samples=0', *args)
        assert result.returncode == 0, result.stderr
        assert '1 层，n_embd=8，2 个头，block_size=16' in result.stdout


@pytest.mark.parametrize('arg, words', [
    ('--n_head=4', ['--n_head=4', 'n_head 是 2']),
    ('--n_layer=2', ['--n_layer=2', 'n_layer 是 1']),
    ('--block_size=8', ['--block_size=8', 'block_size 是 16']),
])
def test_shape_on_the_command_line_that_disagrees_with_the_checkpoint(trained, arg, words):
    """抓的 bug：命令行的形状被文件悄悄覆盖（用户以为在用 4 个头），或者用命令行的形状去读文件而崩溃。"""
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0',
                        '--n_embd=8', arg)
    assert_clean_failure(result, 2, *words)
    assert result.stdout == ''


def test_loading_and_training_further_adds_up_the_steps(trained, tmp_path):
    """抓的 bug：接着训练后存的 steps_trained 或 Adam 的 t 从 0 重新数，偏差修正就会像第一步那样走一大步。"""
    out = str(tmp_path / 'more.json')
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=5',
                        f'--save_path={out}', *SMALL)
    assert result.returncode == 0, result.stderr
    assert '已训练 20 步' in result.stdout and '共训练 25 步' in result.stdout
    assert '训练后' in result.stdout and '步 5/5' in result.stdout
    with open(out, encoding='utf-8') as f:
        ckpt = json.load(f)
    assert ckpt['steps_trained'] == 25 and ckpt['adam']['t'] == 25
    assert ckpt['params'] != json.loads(trained['text'])['params']


# ---------------------------------------------------------------------------
# bad checkpoint files
# ---------------------------------------------------------------------------

def edited(text, change):
    ckpt = json.loads(text)
    change(ckpt)
    return json.dumps(ckpt)


def drop_matrix(ckpt):
    del ckpt['params']['layer0.mlp_fc2']


def drop_row(ckpt):
    ckpt['params']['wte'].pop()


def put_nan(ckpt):
    ckpt['params']['lm_head'][0][0] = float('nan')


BAD_FILES = {
    'not_json': (lambda text: 'hello, this is my diary\n', ['不是模型文件', '合法的 JSON']),
    'truncated': (lambda text: text[:len(text) // 2], ['不完整']),
    'other_program': (lambda text: '{"a": 1}', ['不是 microGPT', 'format']),
    'version_2': (lambda text: edited(text, lambda c: c.update(version=2)), ['第 2 版', '第 1 版']),
    'missing_matrix': (lambda text: edited(text, drop_matrix), ['缺少', 'layer0.mlp_fc2']),
    'missing_row': (lambda text: edited(text, drop_row), ['wte', '25 行 × 8 列']),
    'nan': (lambda text: edited(text, put_nan), ['lm_head', 'NaN']),
    'negative_v': (lambda text: edited(text, lambda c: c['adam']['v']['wte'][0].__setitem__(0, -1.0)), ['adam.v', '负数']),
    'huge_integer': (lambda text: edited(text, lambda c: c.update(val_loss=10 ** 400)), ['val_loss']),
    'step_count_true': (lambda text: edited(text, lambda c: c['adam'].update(t=True)), ['"t"']),
    'absurd_n_layer': (lambda text: edited(text, lambda c: c['settings'].update(n_layer=10 ** 7)), ['n_layer=10000000']),
    'nested_too_deep': (lambda text: '[' * 100000 + ']' * 100000, ['嵌套太深']),
}


def test_checkpoint_saved_by_notepad_with_a_bom_still_loads(trained, tmp_path):
    """抓的 bug：在 Windows 记事本里打开、另存过的模型文件开头多了 BOM，被当成“不是合法的 JSON”。"""
    path = tmp_path / 'bom.json'
    path.write_bytes('\ufeff'.encode('utf-8') + trained['text'].encode('utf-8'))
    result = load_run(trained, f'--load_path={path}')
    assert result.returncode == 0, result.stderr
    assert '读回的模型（这次没再训练）' in result.stdout


def test_overflowing_parameters_stop_sampling_with_a_clear_message(tmp_path):
    """抓的 bug：学习率大得离谱时参数溢出，概率里出现 inf/NaN，random.choices 抛 ValueError 回溯。"""
    result = run_script('--n_embd=8', '--n_head=2', '--num_steps=1', '--learning_rate=1e150', '--val_size=0',
                        '--num_samples=2', cwd=str(tmp_path))
    assert_clean_failure(result, 1, '不是有限的数', 'learning_rate')


@pytest.mark.parametrize('case', sorted(BAD_FILES))
def test_bad_checkpoint_exits_1_with_one_line_and_leaves_the_file_alone(trained, tmp_path, case):
    """抓的 bug：坏模型文件引发 KeyError/JSONDecodeError 回溯、半截文件被当成别的错误，或者检查时把文件改掉了。"""
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
    """抓的 bug：--load_path 写错路径或指向文件夹时抛出 FileNotFoundError/IsADirectoryError 回溯。"""
    result = load_run(trained, f'--load_path={tmp_path / "nope.json"}')
    assert_clean_failure(result, 1, '找不到模型文件', 'nope.json', '--save_path')
    assert not (tmp_path / 'nope.json').exists()
    (tmp_path / 'dir.json').mkdir()
    result = load_run(trained, f'--load_path={tmp_path / "dir.json"}')
    assert_clean_failure(result, 1, '文件夹', 'dir.json')
    assert os.listdir(tmp_path / 'dir.json') == []


def test_checkpoint_that_is_not_utf8(trained, tmp_path):
    """抓的 bug：把一张图片之类的二进制文件当模型读时抛出 UnicodeDecodeError 回溯。"""
    path = tmp_path / 'photo.json'
    path.write_bytes(b'\x89PNG\r\n\x1a\n\xff\xfe\x00')
    assert_clean_failure(load_run(trained, f'--load_path={path}'), 1, 'photo.json', 'UTF-8')


def test_data_with_a_character_the_checkpoint_does_not_know(trained, tmp_path):
    """抓的 bug：数据里有词表外的字符时 encode 抛 KeyError；应该说清是哪个字符、该怎么办。"""
    data = write_lines(tmp_path / 'more.txt', '\n'.join(NAMES + ['zoe']) + '\n')
    before = open(trained['ckpt'], 'rb').read()
    result = run_script(f'--input_path={data}', f'--load_path={trained["ckpt"]}', '--num_steps=0', *SMALL)
    assert_clean_failure(result, 1, "'z'", '--load_path', VOCAB)
    assert open(trained['ckpt'], 'rb').read() == before


# ---------------------------------------------------------------------------
# where to save
# ---------------------------------------------------------------------------

def test_saving_into_a_missing_folder_fails_before_training(trained, tmp_path):
    """抓的 bug：训练了很久，最后存文件时才发现文件夹不存在，结果全白练。"""
    result = run_script(f'--input_path={trained["data"]}', f'--save_path={tmp_path / "nope" / "m.json"}',
                        '--num_steps=5', *SMALL)
    assert_clean_failure(result, 2, '不存在', 'nope')
    assert '开始训练' not in result.stdout
    assert not (tmp_path / 'nope').exists()


def test_saving_to_a_folder_path_fails_before_training(trained, tmp_path):
    """抓的 bug：--save_path 指向一个文件夹，训练完 os.replace 才失败（或者把文件夹换掉）。"""
    (tmp_path / 'keep.txt').write_text('x')
    result = run_script(f'--input_path={trained["data"]}', f'--save_path={tmp_path}', '--num_steps=5', *SMALL)
    assert_clean_failure(result, 2, '文件夹', 'model.json')
    assert '开始训练' not in result.stdout
    assert sorted(os.listdir(tmp_path)) == ['keep.txt']


def test_saving_over_a_file_that_is_not_a_checkpoint_is_refused(trained, tmp_path):
    """抓的 bug：--save_path 写错成自己的数据文件或笔记，训练完就把它覆盖掉了。"""
    notes = tmp_path / 'notes.json'
    notes.write_text('{"my": "precious notes"}\n', encoding='utf-8')
    result = run_script(f'--input_path={trained["data"]}', f'--save_path={notes}', '--num_steps=5', *SMALL)
    assert_clean_failure(result, 2, 'notes.json', '已经存在')
    assert '开始训练' not in result.stdout
    assert notes.read_text(encoding='utf-8') == '{"my": "precious notes"}\n'
    assert sorted(os.listdir(tmp_path)) == ['notes.json']


def test_overwriting_an_earlier_checkpoint_works(trained, tmp_path):
    """抓的 bug：为了保护文件，连上一次存的模型也不让覆盖，每次都得换名字。"""
    path = tmp_path / 'm.json'
    shutil.copy(trained['ckpt'], path)
    result = run_script(f'--input_path={trained["data"]}', f'--save_path={path}', '--num_steps=3', *SMALL)
    assert result.returncode == 0, result.stderr
    assert json.loads(path.read_text(encoding='utf-8'))['steps_trained'] == 3
    assert sorted(os.listdir(tmp_path)) == ['m.json']


@pytest.mark.parametrize('broken', ['fsync', 'replace'])
def test_failure_in_the_middle_of_a_save_keeps_the_old_file(mg, tmp_path, monkeypatch, broken):
    """抓的 bug：直接 open(path, 'w') 写：磁盘满或被打断时，旧模型已被清空、新模型只写了一半；或者临时文件没删掉。"""
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
# prompt
# ---------------------------------------------------------------------------

def test_every_sample_starts_with_the_prompt(trained):
    """抓的 bug：prompt 只喂给模型却没写进结果，或者样本把开头丢了/重复了一遍。"""
    result = load_run(trained, '--prompt=ma', '--num_samples=8')
    assert result.returncode == 0, result.stderr
    assert "都以 'ma' 开头" in result.stdout
    samples = sample_lines(result.stdout)
    assert len(samples) == 8
    assert all(sample.startswith('ma') and len(sample) <= 16 for sample, label in samples)
    assert any(len(sample) > 2 for sample, label in samples)


def test_empty_prompt_samples_like_the_plain_run(trained):
    """抓的 bug：处理 prompt 的代码改变了没有 prompt 时的采样（多抽或少抽了随机数）。"""
    plain = load_run(trained)
    empty = load_run(trained, '--prompt=')
    assert plain.returncode == empty.returncode == 0
    assert sample_lines(empty.stdout) == sample_lines(plain.stdout) == sample_lines(trained['stdout'])


def test_prompt_with_unknown_characters_lists_the_known_ones(trained):
    """抓的 bug：prompt 里有词表外的字符时 char_to_id 抛 KeyError 回溯，用户也不知道能用哪些字符。"""
    result = load_run(trained, '--prompt=Zq')
    assert_clean_failure(result, 2, '--prompt', "'Zq'", VOCAB)


def test_prompt_must_be_shorter_than_block_size(trained):
    """抓的 bug：prompt 占满 block_size 时 wpe 下标越界（IndexError），差一的边界写成 > 而不是 >=。"""
    result = load_run(trained, '--prompt=' + 'anna' * 4)                 # 16 = block_size
    assert_clean_failure(result, 2, '--prompt', '16 个字符', 'block_size=16')
    ok = load_run(trained, '--prompt=' + 'anna' * 3 + 'ann')            # 15 characters still leave one position
    assert ok.returncode == 0, ok.stderr
    samples = sample_lines(ok.stdout)
    assert len(samples) == 5 and all(s.startswith('anna' * 3 + 'ann') and len(s) <= 16 for s, _ in samples)


def reference_sample(mg, state, tok, prompt=''):
    """The textbook sampling loop; the prompt's characters are fed in one by one without drawing anything."""
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
    """抓的 bug：给定开头的那几个位置也去抽随机数（浪费且让结果依赖开头长度），或者下一个字符不是从开头之后的分布里抽的。"""
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
            sample = mg.sample_name(state, tok, prompt)
            assert sample.startswith(prompt)
            ended_by_bos = len(sample) < mg.block_size
            assert len(calls) == len(sample) - len(prompt) + ended_by_bos
            lengths.add(len(sample) - len(prompt))
        predictions, _ = mg.explain_text(state, tok, prompt)
        assert calls[0] == pytest.approx(predictions[-1][0], abs=1e-12)   # first draw: right after the prompt
    assert len(lengths) > 2                                       # the check above saw several sample lengths
    monkeypatch.undo()
    for prompt in ('', 'ma', 'mar'):                              # and the same random numbers as the textbook loop
        random.seed(4)
        with_prompt = [mg.sample_name(state, tok, prompt) for _ in range(6)]
        random.seed(4)
        assert with_prompt == [reference_sample(mg, state, tok, prompt) for _ in range(6)]


# ---------------------------------------------------------------------------
# command-line habits
# ---------------------------------------------------------------------------

def without_timing(stdout):
    return [line for line in stdout.splitlines() if '秒' not in line]


def test_space_form_works_like_equals_form(trained):
    """抓的 bug：--num_steps 20（中间是空格）被当成两个参数而报错，或者值没被用上。"""
    equals = run_script(f'--input_path={trained["data"]}', '--num_steps=20', '--n_embd=8', '--n_head=2',
                        '--num_samples=5')
    spaced = run_script('--input_path', trained['data'], '--num_steps', '20', '--n_embd', '8', '--n_head=2',
                        '--num_samples', '5')
    assert spaced.returncode == equals.returncode == 0, spaced.stderr
    assert '步 20/20' in spaced.stdout and 'num_steps=20*' in spaced.stdout
    assert without_timing(spaced.stdout) == without_timing(equals.stdout)


def test_apply_overrides_both_forms(mg, tmp_path, monkeypatch):
    """抓的 bug：空格形式把下一个参数当成值时多跳或少跳一个参数；路径设置没有按当前文件夹变成绝对路径。"""
    monkeypatch.chdir(tmp_path)
    given = mg.apply_overrides(['--num_steps', '20', '--temperature=0.8', '--prompt', 'ab', '--save_path', 'm.json',
                                '--speed_tricks', 'False'])
    assert given == ['num_steps', 'temperature', 'prompt', 'save_path', 'speed_tricks']
    assert (mg.num_steps, mg.temperature, mg.prompt, mg.speed_tricks) == (20, 0.8, 'ab', False)
    assert mg.save_path == os.path.join(os.getcwd(), 'm.json')


@pytest.mark.parametrize('arg, guess', [('--lr=0.1', 'learning_rate'), ('--temprature=1', 'temperature'),
                                        ('--num_step=5', 'num_steps'), ('--bs=8', 'block_size')])
def test_misspelled_setting_suggests_the_right_name(arg, guess):
    """抓的 bug：拼错设置名只说“没有这个设置”，不告诉你最像的是哪个（lr 是 learning_rate 的缩写）。"""
    result = run_script(arg)
    assert_clean_failure(result, 2, f'你是不是想写 {guess}', '--help')


def test_closest_setting_gives_up_on_nonsense(mg):
    """抓的 bug：随便一个词也硬猜一个设置名（cutoff 太低），建议反而误导人。"""
    assert mg.closest_setting('lr') == 'learning_rate'
    assert mg.closest_setting('TEMPRATURE') == 'temperature'
    assert mg.closest_setting('xyzzy') is None
    with pytest.raises(mg.UserError) as info:
        mg.apply_overrides(['--xyzzy=1'])
    assert '你是不是想写' not in str(info.value) and info.value.exit_code == 2


@pytest.mark.parametrize('args', [['--num_steps'], ['--num_steps', '--n_embd=8']])
def test_setting_without_a_value(args):
    """抓的 bug：结尾的 --num_steps 没有值时 argv[i+1] 越界（IndexError），或者把下一个 --设置 当成了值。"""
    assert_clean_failure(run_script(*args), 2, '--num_steps', '缺少值')


def test_help_descriptions_start_in_one_column(mg):
    """抓的 bug：--help 的对齐宽度算错，含义一列参差不齐、或者紧贴在默认值后面。"""
    result = run_script('--help')
    assert result.returncode == 0
    columns = {}
    for line in result.stdout.splitlines():
        match = re.match(r'(  --(\w+)=\S* {2,})(\S.*)$', line)
        if match:
            columns[match.group(2)] = mg.display_width(match.group(1))
    assert sorted(columns) == sorted(mg.SETTINGS)
    assert len(set(columns.values())) == 1
    longest = max(len(f'--{name}={value}') for name, value in mg.SETTINGS.items())
    assert set(columns.values()) == {2 + longest + 2}
