"""tests/to_pytorch.py：没有 torch 时只说一句怎么装；有 torch 时，PyTorch 算出的留出集损失、样本和接着训练的结果
都和脚本自己的一样（字符级和字节级 BPE 的模型都试）。CI 不装 torch，所以只有前两个测试在 CI 里运行，其余的跳过。"""
import contextlib
import io
import json
import os
import random
import re
import subprocess
import sys

import pytest

import microgpt_teaching
from conftest import ROOT, numbered_samples, read_checkpoint, run_main, write_lines

TO_PYTORCH = os.path.join(ROOT, 'tests', 'to_pytorch.py')
# 40 个短名字加两个长名字：block_size=8 时长名字只用前 8 个位置，考到“位置截断在 block_size”
DATA = '\n'.join(['anna', 'bob', 'carla', 'dora', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu', 'mia', 'ned',
                  'ola', 'pam', 'ray', 'sam', 'tia', 'uma', 'val', 'wes', 'yan', 'abe', 'ben', 'cat', 'dan', 'eli',
                  'finn', 'gil', 'hana', 'ian', 'jade', 'kai', 'leo', 'max', 'nia', 'otto', 'pia', 'rex',
                  'maximiliana', 'bartholomew']) + '\n'
SHAPE = ('--n_layer=2', '--n_embd=8', '--n_head=2', '--block_size=8', '--seed=3')


def run_to_pytorch(*args):
    """在本进程里运行 to_pytorch.main(args)，返回 returncode、stdout、stderr。不另起 Python：每个新进程光导入 torch
    （和第一次建 torch.optim.Adam 时 torch 自己导入的 torch._dynamo）就要好几秒，这里只付一次。
    to_pytorch 改了脚本的设置（val_size、save_path、形状……）和随机数状态，结束后都还原。"""
    pytest.importorskip('torch')
    import to_pytorch
    mg = microgpt_teaching
    saved, state, out, err = {name: getattr(mg, name) for name in mg.SETTINGS}, random.getstate(), io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = to_pytorch.main(list(args))
    finally:
        for name, value in saved.items():
            setattr(mg, name, value)
        random.setstate(state)
    return subprocess.CompletedProcess([TO_PYTORCH, *args], code, out.getvalue(), err.getvalue())


def test_without_torch_prints_one_line_and_exits_0():
    """没有 torch 时：只打印一行中文的安装方法，退出码 0，没有回溯。
    抓的错误：try/except 没包住 import（没装 torch 的学习者看到一大段 ImportError），或者退出码不是 0（CI 会失败）。
    把 sys.modules['torch'] 设成 None 是 Python 规定的“这个模块导入不了”，不管这台机器装没装 torch 都一样。"""
    code = ('import runpy, sys; sys.modules["torch"] = None; sys.argv = [sys.argv[1], "m.json"]; '
            'runpy.run_path(sys.argv[0], run_name="__main__")')
    result = subprocess.run([sys.executable, '-c', code, TO_PYTORCH], cwd=ROOT, timeout=60, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, PYTHONIOENCODING='utf-8'), encoding='utf-8')
    assert result.returncode == 0, result.stderr
    assert result.stderr == ''
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and 'pip install torch' in lines[0], result.stdout


def test_only_to_pytorch_imports_torch():
    """项目承诺只用标准库：只有 tests/to_pytorch.py 可以 import torch。
    抓的错误：别的文件（脚本本身、某个测试）顺手 import 了 torch，没装 torch 的人就用不了它。"""
    found = []
    for folder, _, files in os.walk(ROOT):
        if '.git' in folder.split(os.sep):
            continue
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith('.py') and path != TO_PYTORCH:
                with open(path, encoding='utf-8') as f:
                    if re.search(r'^\s*(import torch|from torch\b)', f.read(), flags=re.M):
                        found.append(os.path.relpath(path, ROOT))
    assert found == []


@pytest.fixture(scope='module')
def script_model(tmp_path_factory):
    """脚本训练 20 步的小模型（2 层，Adam 的 m、v、t 都不是 0）；返回数据、模型文件和脚本打印的样本。"""
    pytest.importorskip('torch')
    folder = tmp_path_factory.mktemp('torch')
    data, ckpt = write_lines(folder / 'names.txt', DATA), str(folder / 'm.json')
    result = run_main(f'--input_path={data}', '--num_steps=20', f'--save_path={ckpt}', '--num_samples=5', *SHAPE)
    assert result.returncode == 0, result.stderr
    return {'data': data, 'ckpt': ckpt, 'folder': folder, 'samples': [s for s, _ in numbered_samples(result.stdout)]}


def printed_loss(stdout, label):
    return float(re.search(rf'{label} +(\d+\.\d+)', stdout).group(1))


def printed_samples(stdout):
    return stdout.split('个样本（temperature=0.5）：\n')[1].splitlines()[0].split()


def test_held_out_loss_and_samples_match_the_script(script_model):
    """PyTorch 算的留出集损失等于模型文件里记录的（差不到 1e-9），编出的名字和脚本那次运行的一样。
    抓的错误：模型里任何一处和第 5 节不同（忘了嵌入后的 rmsnorm、eps 放错、没除以 sqrt(head_dim)、掩码方向反了、
    头的拼接顺序错、位置没截断在 block_size……）损失都会差得远；随机数用的顺序和脚本不同，名字就对不上。"""
    result = run_to_pytorch(script_model['ckpt'], f'--input_path={script_model["data"]}', '--seed=3')
    assert result.returncode == 0, result.stderr
    with open(script_model['ckpt'], encoding='utf-8') as f:
        stored = json.load(f)['val_loss']
    assert abs(printed_loss(result.stdout, 'PyTorch 算的') - stored) < 1e-9, result.stdout
    assert '和训练时的数据相同' in result.stdout
    assert printed_samples(result.stdout) == script_model['samples']


def test_continued_training_matches_the_script_and_the_script_reads_it_back(script_model):
    """用 torch.optim.Adam 接着训练 10 步，和脚本用 --load_path 接着训练 10 步的参数、Adam 状态只差舍入；
    存下的模型文件脚本能读回，读回后的留出集损失就是存进去的。
    抓的错误：没读回 Adam 的 m、v、t（从头开始的 Adam 第一步的步子完全不同）、学习率计划不对、名字的顺序没接上、
    写回的模型文件格式不对或矩阵顺序错乱。"""
    ours, theirs = str(script_model['folder'] / 'torch.json'), str(script_model['folder'] / 'script.json')
    result = run_to_pytorch(script_model['ckpt'], f'--input_path={script_model["data"]}', '--seed=3', '--steps=10',
                            f'--save_path={ours}', '--num_samples=0')
    assert result.returncode == 0, result.stderr
    script = run_main(f'--input_path={script_model["data"]}', f'--load_path={script_model["ckpt"]}', '--num_steps=10',
                      f'--save_path={theirs}', '--num_samples=0', '--seed=3')
    assert script.returncode == 0, script.stderr
    with open(ours, encoding='utf-8') as f:
        a = json.load(f)
    with open(theirs, encoding='utf-8') as f:
        b = json.load(f)
    assert (a['steps_trained'], a['adam']['t'], a['data']) == (b['steps_trained'], b['adam']['t'], b['data']) == (30, 30, a['data'])
    for part in ('params', 'm', 'v'):
        mats_a, mats_b = (a['params'], b['params']) if part == 'params' else (a['adam'][part], b['adam'][part])
        assert list(mats_a) == list(mats_b)
        assert max(abs(x - y) for name in mats_a for ra, rb in zip(mats_a[name], mats_b[name]) for x, y in zip(ra, rb)) < 1e-9
    assert abs(a['val_loss'] - b['val_loss']) < 1e-9
    back = run_main(f'--input_path={script_model["data"]}', f'--load_path={ours}', '--num_steps=0', '--num_samples=0', '--seed=3')
    assert back.returncode == 0, back.stderr
    assert f'{a["val_loss"]:.4f}' in back.stdout


def test_bad_checkpoint_is_one_line_error(script_model):
    """不是模型文件时，报错和脚本一样是一句中文（用的正是脚本的 load_checkpoint），退出码 1，没有回溯。
    抓的错误：自己另写一套读文件的代码，坏文件就变成一大段 KeyError。"""
    bad = write_lines(script_model['folder'] / 'bad.json', '{"format": "something else"}')
    result = run_to_pytorch(bad)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr and result.stderr.startswith('错误：模型文件') and len(result.stderr.splitlines()) == 1


def test_data_with_characters_the_model_never_saw_is_one_line_error(script_model):
    """数据里有模型词表里没有的字符时：一句中文说是哪个字符、该怎么办，退出码 1，没有回溯。
    抓的错误：调用了脚本里已经不存在的函数（这一行只在这种数据上才运行，别的测试走不到它），学习者看到 AttributeError。"""
    odd = write_lines(script_model['folder'] / 'odd.txt', DATA + 'noë\n')
    result = run_to_pytorch(script_model['ckpt'], f'--input_path={odd}')
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.startswith('错误：数据里有模型的词表里没有的字符 ë') and '--input_path' in result.stderr

def test_bpe_model_held_out_loss_samples_and_save(tmp_path):
    """字节级 BPE 的模型（第 9 节，tokenizer='bpe'）：分词器来自模型文件（脚本自己的 make_tokenizer），PyTorch 算的
    留出集损失等于记录的（差不到 1e-9），样本和脚本的一样；接着训练后存下的模型文件里还是同一个 BPE 分词器。
    抓的错误：自己按 "vocabulary" 建分词器（BPE 模型文件里没有它）、vocab_size 没算上合并、写回时丢了 "tokenizer"。
    数据：50 个汉字拼成的 200 个四字串（每个汉字 3 个字节），20 个合并。"""
    pytest.importorskip('torch')
    rng = random.Random(0)
    chars = [chr(0x4e00 + 37 * i) for i in range(50)]
    data = write_lines(tmp_path / '成语.txt', '\n'.join(''.join(rng.choice(chars) for _ in range(4)) for _ in range(200)) + '\n')
    ckpt, saved = str(tmp_path / 'bpe.json'), str(tmp_path / 'bpe_torch.json')
    script = run_main(f'--input_path={data}', '--tokenizer=bpe', '--bpe_merges=20', '--num_steps=10', f'--save_path={ckpt}',
                      '--num_samples=5', '--n_embd=8', '--n_head=2', '--block_size=8')
    assert script.returncode == 0, script.stderr
    stored = read_checkpoint(ckpt)
    assert 'vocabulary' not in stored and stored['tokenizer']['kind'] == 'bpe' and len(stored['tokenizer']['merges']) == 20
    result = run_to_pytorch(ckpt, f'--input_path={data}', '--num_samples=5', '--steps=2', f'--save_path={saved}')
    assert result.returncode == 0, result.stderr
    assert abs(printed_loss(result.stdout, 'PyTorch 算的') - stored['val_loss']) < 1e-9, result.stdout
    assert '个合并' in result.stdout and '和训练时的数据相同' in result.stdout
    back = read_checkpoint(saved)
    assert (back['tokenizer'], back['steps_trained'], back['data']) == (stored['tokenizer'], 12, stored['data'])
    # 样本：上面抽签前 PyTorch 又训练了 2 步，所以另跑一次不训练的。它编出的就是脚本训练完那次运行编出的
    # （随机数的顺序相同：设种子 → 打乱 → 初始化 → 抽签；BPE 的样本可能有拼不成字的字节，两边都显示成 �）
    samples = run_to_pytorch(ckpt, f'--input_path={data}', '--num_samples=5')
    assert samples.returncode == 0, samples.stderr
    assert printed_samples(samples.stdout) == [s for s, _ in numbered_samples(script.stdout)]
