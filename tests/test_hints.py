"""第 17 号问题：提示照着做就能成功；安静的失败有人解释；每一行都放得进终端；错误怪对了东西。"""
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys

import pytest

from conftest import NAMES, ROOT, SCRIPT, SMALL, assert_clean_failure, run_script, write_lines

POSIX = pytest.mark.skipif(os.name != 'posix', reason='需要 POSIX（信号、符号链接、HOME）')
HINT = '下次可以用这条命令读回它直接采样：'


def squash(text):
    """去掉所有空白（折行和缩进），按内容比较。"""
    return re.sub(r'\s+', '', text)


def run_env(*args, env=None, cwd=None, timeout=60):
    """像 run_script，但可以改环境变量（COLUMNS、HOME）。"""
    env = dict(os.environ, PYTHONIOENCODING='utf-8', **(env or {}))
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=cwd or ROOT, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8')


# ---------------------------------------------------------------------------
# 1. 保存后的提示照着做就能成功；模型文件记得自己是用哪份数据训练的
# ---------------------------------------------------------------------------

def hint_command(stdout):
    lines = stdout.splitlines()
    i = lines.index(HINT)                  # 提示单独占一行，命令在下一行
    return lines[i + 1]


def test_the_printed_command_works_as_printed(trained):
    """抓的 bug：提示里漏了 --input_path，照抄命令读回模型后，数据换成了 input.txt，评估对不上、甚至报错。"""
    command = hint_command(trained['result'].stdout)
    words = shlex.split(command)
    assert f'--input_path={trained["data"]}' in words and f'--load_path={trained["ckpt"]}' in words
    words[0] = sys.executable              # 提示里的解释器名字（python、python3……）换成正在用的这个
    result = subprocess.run(words, cwd=ROOT, env=dict(os.environ, PYTHONIOENCODING='utf-8'), timeout=60,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8')
    assert result.returncode == 0, result.stderr
    assert '读回的模型（这次没再训练）' in result.stdout and '和这次的数据相同' in squash(result.stdout)


def test_the_checkpoint_records_the_data_file_and_fingerprint(mg, trained):
    """抓的 bug：没记下数据，读回时没法说“这个模型是用哪个文件训练的”；或者指纹在打乱之后算，每次都不一样。"""
    with open(trained['ckpt'], encoding='utf-8') as f:
        data = json.load(f)['data']
    docs = mg.load_docs(trained['data'])
    assert data == {'file': 'names.txt', 'fingerprint': hashlib.sha256('\n'.join(docs).encode('utf-8')).hexdigest()[:16]}


def test_other_data_that_does_not_fit_samples_but_skips_evaluation(tmp_path, trained):
    """抓的 bug：数据里有词表外的字符就直接失败（其实只想拿模型采样）；或者悄悄跳过评估，不说为什么、该用哪个文件。"""
    other = write_lines(tmp_path / 'other.txt', 'quinn\nzoe\nsuzy\n' * 5)
    result = run_script(f'--input_path={other}', f'--load_path={trained["ckpt"]}', '--num_steps=0', '--num_samples=3')
    assert result.returncode == 0, result.stderr
    text = squash(result.stdout)
    assert '跳过在留出集上的评估' in text and '这个模型是用names.txt训练的' in text and '--input_path=' in text
    assert len(re.findall(r'^ +\d+\. ', result.stdout, flags=re.M)) == 3


def test_training_on_data_that_does_not_fit_names_the_file_to_pass(tmp_path, trained):
    other = write_lines(tmp_path / 'other.txt', 'quinn\nzoe\nsuzy\n' * 5)
    result = run_script(f'--input_path={other}', f'--load_path={trained["ckpt"]}', '--num_steps=2')
    assert_clean_failure(result, 1, '用 names.txt 训练的', '--input_path=', 'qz')
    assert '开始训练' not in result.stdout


# ---------------------------------------------------------------------------
# 2. 安静的失败：有人解释
# ---------------------------------------------------------------------------

def notes(stdout):
    """“提醒：……”段落（折行接起来，去掉空白）。"""
    return [squash(block) for block in re.findall(r'^提醒：.*?(?=^提醒：|^\s*$|\Z)', stdout, flags=re.M | re.S)]


@pytest.mark.parametrize('args, why', [(['--num_steps=100', '--learning_rate=1e-6'], '学习率1e-06可能太小'),
                                       (['--num_steps=1'], '训练只有1步，太短了')])
def test_no_learning_is_explained(data, args, why):
    """抓的 bug：学习率太小或步数太少，损失几乎不动，程序却一声不吭；或者反过来说成“过拟合”。"""
    result = run_script(f'--input_path={data}', *SMALL, *args)
    assert result.returncode == 0, result.stderr
    found = notes(result.stdout)
    assert any('几乎什么都没学到' in note and why in note for note in found), result.stdout
    assert not any('过拟合' in note for note in found)


def test_continued_training_says_which_steps_and_that_the_schedule_restarts(trained):
    """抓的 bug：接着训练时步数从 1 数起，看不出这是第 21 步以后；学习率又从头开始，损失先变差，却没人说为什么。"""
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=3', '--num_samples=2')
    assert result.returncode == 0, result.stderr
    text = squash(result.stdout)
    assert '这个模型的第21–23步' in text and '学习率计划从头开始' in text


def test_one_step_says_why_there_is_no_chart(data):
    result = run_script(f'--input_path={data}', '--num_steps=1', *SMALL)
    assert result.returncode == 0, result.stderr
    assert '画不出训练损失曲线' in result.stdout and '至少要2步' in squash(result.stdout)


# ---------------------------------------------------------------------------
# 3. 每一行都放得进终端
# ---------------------------------------------------------------------------

INTERPRETER = re.sub(r'\.exe$', '', os.path.basename(sys.executable), flags=re.I)


def too_wide(mg, text, width):
    """比 width 宽的行。不算：只有一个词的行（一个很长的路径没法折）、要照抄的命令（折开就不能复制了）。"""
    def exempt(line):
        words = line.split()
        return len(words) <= 1 or (line.startswith('  ') and words[0] in (INTERPRETER, 'mv', 'move'))
    return [line for line in text.splitlines() if mg.display_width(line) > width and not exempt(line)]


@pytest.mark.parametrize('width', [80, 60])
def test_every_line_fits_the_terminal(mg, tmp_path, data, width):
    """抓的 bug：进度行、词表、提醒、损失图、注意力表比终端宽，每行折成两行，表格全乱了。"""
    env = {'COLUMNS': str(width)}
    model, other = str(tmp_path / 'm.json'), write_lines(tmp_path / 'o.txt', 'quinn\nzoe\n' * 9)
    runs = [run_env('--help', env=env),
            run_env(f'--input_path={data}', '--num_steps=100', '--learning_rate=1e-6', f'--save_path={model}',
                    '--explain=annabelle', '--prompt=a', *SMALL, env=env),
            run_env(f'--input_path={data}', '--num_steps=30', '--learning_rate=10', f'--save_path={model}', *SMALL, env=env),
            run_env(f'--input_path={data}', f'--load_path={model}', '--num_steps=0', '--explain=abcdefghijklmn', env=env),
            run_env(f'--input_path={other}', f'--load_path={model}', '--num_steps=0', env=env)]
    for result in runs:
        assert result.returncode == 0, result.stderr
        assert too_wide(mg, result.stdout + result.stderr, width) == []


def test_help_is_a_hanging_indent_table(mg):
    """抓的 bug：说明文字折行后顶格，或者有的设置的说明从别的列开始，读起来像一团。"""
    result = run_env('--help', env={'COLUMNS': '60'})
    lines = result.stdout.splitlines()
    table = lines[lines.index('设置（默认值）及含义：') + 1:lines.index('例子：') - 1]
    for line in table:
        assert line.startswith('  --') or line.startswith(' ' * 26), line
        if line.startswith('  --') and len(line) > 26 and line[24:26] == '  ':
            assert line[26] != ' '
    assert sum(1 for line in table if line.startswith('  --')) == len(mg.SETTINGS)


def test_the_attention_grid_shows_fewer_positions_on_a_narrow_terminal(data):
    """抓的 bug：60 列的终端里注意力表照样画 15 格，每行都折断；或者少画了却不说。"""
    model_args = [f'--input_path={data}', '--num_steps=5', '--explain=abcdefghijklmn', *SMALL]
    wide, narrow = run_env(*model_args, env={'COLUMNS': '80'}), run_env(*model_args, env={'COLUMNS': '60'})
    assert '终端只放得下' not in wide.stdout
    assert '终端只放得下13格' in squash(narrow.stdout)
    header = [line for line in narrow.stdout.splitlines() if line.startswith('     ') and line.strip().startswith('.')]
    assert header and all(len(line.split()) == 13 for line in header)


def test_an_exploded_run_uses_short_labels_and_explains_an_infinite_perplexity(data):
    """抓的 bug：损失几十万时刻度写成 384123.456789，图挤歪了；困惑度打印成 inf 却不说是什么意思。"""
    result = run_script(f'--input_path={data}', '--num_steps=30', '--learning_rate=10', *SMALL)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('训练损失曲线'))
    labels = [line.split(' |')[0].strip() for line in lines[start + 1:start + 11]]
    assert all(len(label) <= 10 and float(label) > 0 for label in labels)
    assert any('e+' in label for label in labels)
    assert '困惑度 inf：' in result.stdout


# ---------------------------------------------------------------------------
# 4. 错误怪对了东西
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('args, blamed, words', [(['--n_embd=10'], 'n_embd', ['n_head = 4']),
                                                 (['--n_head=5'], 'n_head', ['n_head 可以取', '4']),
                                                 (['--learning_rate=abc'], 'learning_rate', ['abc', '数字'])])
def test_errors_blame_the_setting_that_was_changed(args, blamed, words):
    """抓的 bug：改了 n_head 却说 n_embd 不对；把写错的 abc 说成“NaN 不合法”。"""
    result = run_script(*args)
    assert_clean_failure(result, 2, *words)
    assert result.stderr.startswith(f'错误：设置 {blamed} ') and 'NaN' not in result.stderr and 'nan' not in result.stderr


def test_a_deleted_vocabulary_character_is_called_a_vocabulary_change(tmp_path, trained):
    """抓的 bug：词表少了一个字符，报的却是“矩阵 wte 应该是 24 行”，看不出是词表被改了。"""
    with open(trained['ckpt'], encoding='utf-8') as f:
        ckpt = json.load(f)
    del ckpt['vocabulary'][5]
    path = tmp_path / 'v.json'
    path.write_text(json.dumps(ckpt), encoding='utf-8')
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={path}', '--num_steps=0')
    assert_clean_failure(result, 1, '"vocabulary"', '词表被改过了')
    assert '列' not in result.stderr


def test_a_long_list_of_unknown_characters_is_cut(trained):
    """抓的 bug：--prompt 里 400 个汉字，错误信息就列出 400 个，一句话占了半屏。"""
    prompt = ''.join(chr(0x4e00 + i) for i in range(400))
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0', f'--prompt={prompt}')
    assert_clean_failure(result, 2, '--prompt', '…')
    assert len(result.stderr) < 400


@pytest.mark.parametrize('arg, fixed', [('——num_steps=200', '--num_steps=200'), ('--prompt＝ma', '--prompt=ma'),
                                        ('－－prompt：ma', '--prompt=ma')])
def test_chinese_input_method_punctuation(arg, fixed):
    """抓的 bug：中文输入法打出的 —— 或 ＝ 看着和 -- 、= 一样，程序只说“看不懂”，学习者找不到错在哪里。"""
    result = run_script(arg)
    assert_clean_failure(result, 2, '请切换到英文输入法', fixed)


@POSIX
def test_hints_name_the_interpreter_actually_used(tmp_path, data):
    """抓的 bug：提示里总写 python，可很多系统只有 python3；或者用 splitext 把 python3.11 截成了 python3。"""
    for name in ('python3', 'python3.99'):
        link = tmp_path / name
        os.symlink(sys.executable, link)
        env = dict(os.environ, PYTHONIOENCODING='utf-8')
        bad = subprocess.run([str(link), SCRIPT, '--nope'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8')
        assert f'运行 {name} ' in bad.stderr, bad.stderr
        ok = subprocess.run([str(link), SCRIPT, f'--input_path={data}', '--num_steps=2', f'--save_path={tmp_path / "m.json"}', *SMALL],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8')
        assert hint_command(ok.stdout).startswith(f'  {name} '), ok.stdout


@POSIX
def test_tilde_means_the_home_folder(tmp_path):
    """抓的 bug：--save_path=~/m.json 在当前文件夹里建了一个叫 “~” 的文件夹（或者说文件夹 ~ 不存在）。"""
    write_lines(tmp_path / 'names.txt', '\n'.join(NAMES) + '\n')
    result = run_env('--input_path=~/names.txt', '--save_path=~/m.json', '--num_steps=2', *SMALL, env={'HOME': str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'm.json').exists() and not os.path.exists(os.path.join(ROOT, '~'))


# ---------------------------------------------------------------------------
# 5. 零碎的
# ---------------------------------------------------------------------------

def interrupted(data, tmp_path, signals):
    """训练中按 signals 次 Ctrl-C（SIGINT）：第二次等程序说了“收到”再按。返回 (退出码, 标准输出, 标准错误)。"""
    proc = subprocess.Popen([sys.executable, SCRIPT, f'--input_path={data}', '--num_steps=100000', f'--save_path={tmp_path / "m.json"}',
                             *SMALL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONIOENCODING='utf-8'))
    for line in proc.stdout:
        if line.startswith('步 '.encode()):
            break
    proc.send_signal(signal.SIGINT)
    err = b''
    if signals == 2:
        err = proc.stderr.readline()       # 第一次的“收到 Ctrl-C……”（两个几乎同时到的 SIGINT 会被系统合成一个）
        proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=60)
    return proc.returncode, out.decode('utf-8'), (err + rest).decode('utf-8')


@POSIX
def test_ctrl_c_messages_go_to_stderr(tmp_path, data):
    """抓的 bug：“收到 Ctrl-C”印在标准输出里，混进了重定向到文件的训练日志。"""
    code, out, err = interrupted(data, tmp_path, 1)
    assert code == 0 and '收到 Ctrl-C' in err and '收到 Ctrl-C' not in out
    assert (tmp_path / 'm.json').exists()


@POSIX
def test_a_second_ctrl_c_says_the_model_was_not_saved(tmp_path, data):
    code, out, err = interrupted(data, tmp_path, 2)
    assert code == 130 and 'Traceback' not in err
    assert '模型没有保存' in err and not (tmp_path / 'm.json').exists()


def test_samples_cut_at_block_size_are_marked(data):
    result = run_script(f'--input_path={data}', '--num_steps=0', '--block_size=4', '--temperature=3', *SMALL, '--num_samples=10')
    assert result.returncode == 0, result.stderr
    samples = [line for line in result.stdout.splitlines() if re.match(r' +\d+\. ', line)]
    assert samples and all(('被截断' in line) == (len(line.split()[1]) >= 4) for line in samples)
    assert any('被截断' in line for line in samples)


@pytest.mark.parametrize('args, phrase', [(['--num_steps=0', '--temperature=3'], '没有重复'),
                                          (['--num_steps=30', '--learning_rate=10'], '去掉重复后是')])
def test_counts_read_naturally(data, args, phrase):
    """抓的 bug：“新的 5 个（去掉重复后 5 个）”这种绕口的话；或者数错了不重复的个数。"""
    result = run_script(f'--input_path={data}', *SMALL, *args)
    assert result.returncode == 0, result.stderr
    new = [line.split()[1] for line in result.stdout.splitlines() if re.match(r' +\d+\. \S+ +新', line)]
    summary = squash(result.stdout[result.stdout.index('其中训练集里有'):])
    assert phrase in summary
    assert (f'去掉重复后是{len(set(new))}个' in summary) == (len(set(new)) < len(new))


def test_init_std_is_marked_as_unused_when_loading(trained):
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0', '--num_samples=1')
    assert result.returncode == 0, result.stderr
    assert 'init_std=0.08（读回模型时不起作用）' in squash(result.stdout)
    plain = run_script(f'--input_path={trained["data"]}', '--num_steps=0', '--num_samples=1', *SMALL[:2])
    assert '读回模型时不起作用' not in plain.stdout
