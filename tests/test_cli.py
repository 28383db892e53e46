"""第 0 节和第 12 节：设置和命令行（覆盖、检查、帮助）、作为程序运行（import、路径、解释器的名字）、
终端里的输出（进度行、状态行、折行、写不出去的输出），以及信号和 Ctrl-C。
大多数测试用 run_main 在本进程里跑 main()（快）；只有非真进程不可的（import、信号、管道、解释器的名字、
环境变量、自带数据的整次运行）才用 run_script / RunningScript。"""
import math
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import (NAMES, POSIX, ROOT, SMALL, RunningScript, assert_clean_failure, hint_command, numbered_samples,
                      read_checkpoint, run_main, run_script, squash, write_lines)


# ---------------------------------------------------------------------------
# 作为程序运行：import、路径、解释器的名字
# ---------------------------------------------------------------------------

def test_importing_runs_nothing():
    """抓把训练代码写在 if __name__ == '__main__' 外面的错误：import 这个脚本时什么都不能运行、什么都不能打印。"""
    code = f'import sys; sys.path.insert(0, {ROOT!r}); import microgpt_teaching'
    # 这里不运行脚本，而是在一个新的解释器里 import 它：所以不用 run_script
    result = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert result.returncode == 0 and result.stdout == b'' and result.stderr == b''


def test_shipped_data_from_another_folder(tmp_path):
    """抓两类错误：主程序里任何一处崩溃或多打印了警告；以及把默认的相对路径 input.txt 从当前文件夹算起、
    从别的文件夹运行就找不到脚本旁边的数据。真的进程，自带数据（29910 行），训练 20 步，编 20 个名字。"""
    result = run_script('--num_steps=20', '--val_size=50', cwd=str(tmp_path))
    assert result.returncode == 0 and result.stderr == '', result.stderr
    assert '共 29910 行' in result.stdout and '步 20/20 | loss ' in result.stdout
    assert re.search(r'ln\(27\) +3\.2958', result.stdout)
    assert len(numbered_samples(result.stdout)) == 20


def test_input_path_on_the_command_line_is_relative_to_the_current_folder(tmp_path):
    """抓把命令行里的相对路径也从脚本所在的文件夹算起、找不到用户文件的错误。"""
    write_lines(tmp_path / 'mine.txt', '\n'.join(NAMES) + '\n')
    result = run_main('--input_path=mine.txt', '--num_steps=2', *SMALL, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f'数据：mine.txt，共 {len(NAMES)} 行' in result.stdout


@POSIX
def test_tilde_means_the_home_folder(tmp_path):
    """抓 --save_path=~/m.json 在当前文件夹里建了一个叫 “~” 的文件夹（或者说文件夹 ~ 不存在）的错误。"""
    write_lines(tmp_path / 'names.txt', '\n'.join(NAMES) + '\n')
    result = run_script('--input_path=~/names.txt', '--save_path=~/m.json', '--num_steps=2', *SMALL,
                        env={'HOME': str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'm.json').exists() and not os.path.exists(os.path.join(ROOT, '~'))


@POSIX
def test_hints_name_the_interpreter_actually_used(tmp_path, data):
    """抓提示里总写 python（可很多系统只有 python3）、或者用 splitext 把 python3.11 截成了 python3 的错误。"""
    for name in ('python3', 'python3.99'):
        link = tmp_path / name
        os.symlink(sys.executable, link)
        bad = run_script('--nope', python=str(link))
        assert f'运行 {name} ' in bad.stderr, bad.stderr
        ok = run_script(f'--input_path={data}', '--num_steps=2', f'--save_path={tmp_path / "m.json"}', *SMALL,
                        python=str(link))
        assert hint_command(ok.stdout).startswith(f'  {name} '), ok.stdout


# ---------------------------------------------------------------------------
# 设置：命令行覆盖和检查
# ---------------------------------------------------------------------------

def test_integers_longer_than_15_digits_are_refused_by_parse_value(mg):
    """parse_value 自己就拒绝 16 位以上的整数（不必等主程序）：抓把 10**15 步当真、一直训练下去的错误。"""
    assert mg.parse_value('num_steps', '999999999999999') == 999999999999999
    for text in ('1234567890123456', '-1234567890123456', '1' * 5000):
        with pytest.raises(mg.UserError):
            mg.parse_value('num_steps', text)


def test_a_400_digit_step_count_gives_a_clean_error():
    """抓 int('1' + 400 个 0) 能转换、之后的计算溢出（OverflowError）或者 range() 卡住的错误；
    说明也不把 400 位的数整个抄进去。"""
    result = run_script('--num_steps=1' + '0' * 400, timeout=30)
    assert_clean_failure(result, 2, 'num_steps')
    assert len(result.stderr) < 300


@pytest.mark.parametrize('args, words', [
    (['--n_layer=abc'], ['n_layer', '整数']),
    (['--num_steps=1234567890123456'], ['num_steps', '最多 15 位']),
    (['--num_stepz=10'], ['num_stepz', '--help']),
    (['num_steps=10'], ['--名字=值']),
    (['--speed_tricks=maybe'], ['speed_tricks', 'True']),
    (['--n_embd=15'], ['n_embd = 15', 'n_head = 4', '整除']),
    (['--n_head=3'], ['设置 n_head = 3', 'n_head 可以取 1、2、4、8、16']),      # 怪改过的那个设置
    (['--n_layer=0'], ['n_layer = 0', '至少是 1']),
    (['--block_size=1'], ['block_size', '至少是 2']),
    (['--n_embd=4096'], ['n_embd', '4 GB']),
    (['--num_steps=-5'], ['num_steps', '-5', '负数']),
    (['--num_samples=-1'], ['num_samples', '负数']),
    (['--val_size=-3'], ['val_size', '负数']),
    (['--log_every=-1'], ['log_every', '负数']),
    (['--learning_rate=-0.1'], ['learning_rate', '大于 0']),
    (['--eps_adam=0'], ['eps_adam', '大于 0']),
    (['--init_std=-0.1'], ['init_std', '大于 0']),
    (['--beta1=1'], ['beta1', '[0, 1)']),
    (['--beta2=-0.2'], ['beta2', '[0, 1)']),
    (['--temperature=nan'], ['temperature', '有限的数字']),
    (['--temperature=0'], ['temperature', '至少是 0.001']),
    (['--temperature=0.0005'], ['temperature', '至少是 0.001']),   # 只挡 0 不够：logits / 0.0005 在 exp 里溢出
])
def test_bad_settings_exit_2_with_one_clear_sentence(args, words):
    """抓某个设置漏了检查、程序带着坏设置往下跑（到训练或采样时才崩）的错误：每种写错的设置都在做任何事之前
    以退出码 2 结束，标准输出是空的，标准错误只有一句点出设置名的说明。"""
    result = run_main(*args)
    assert_clean_failure(result, 2, *words)
    assert result.stdout == ''


@pytest.mark.parametrize('args, blamed, words', [(['--n_embd=10'], 'n_embd', ['n_head = 4']),
                                                 (['--n_head=5'], 'n_head', ['n_head 可以取', '4']),
                                                 (['--learning_rate=abc'], 'learning_rate', ['abc', '数字'])])
def test_errors_blame_the_setting_that_was_changed(args, blamed, words):
    """抓改了 n_head 却说 n_embd 不对、把写错的 abc 说成“NaN 不合法”的错误。"""
    result = run_script(*args)
    assert_clean_failure(result, 2, *words)
    assert result.stderr.startswith(f'错误：设置 {blamed} ') and 'NaN' not in result.stderr and 'nan' not in result.stderr


@pytest.mark.parametrize('args, blamed', [(['--n_layer=100000'], 'n_layer'),
                                          (['--n_embd=1000000000000', '--n_head=7'], 'n_embd')])
def test_absurd_models_are_refused_quickly_with_an_estimate(args, blamed):
    """抓先建参数再说（n_layer=100000 要分配几百 GB、卡几分钟才崩）、或者只说“不能整除”不说模型大得离谱的错误。"""
    started = time.perf_counter()
    result = run_script(*args, '--num_steps=1', timeout=30)
    assert time.perf_counter() - started < 2
    assert_clean_failure(result, 2, blamed, 'GB', '调小')


@pytest.mark.parametrize('arg', ['——num_steps=200', '--prompt＝ma', '－－prompt：ma'])
def test_chinese_input_method_punctuation(arg):
    """抓中文输入法打出的 —— 或 ＝（看着和 --、= 一样）得到回溯、或者只得到一句“看不懂”、不说该用英文输入法的错误。"""
    result = run_script(arg)
    assert_clean_failure(result, 2, f'看不懂命令行参数 "{arg}"', '--名字=值', '英文输入法')


def test_apply_overrides_both_forms(mg, tmp_path, monkeypatch):
    """抓空格形式（--名字 值）把下一个参数当成值时多跳或少跳一个参数、-h 作为 --prompt 的值被当成求助、
    路径设置没有按当前文件夹变成绝对路径的错误。"""
    monkeypatch.chdir(tmp_path)
    given = mg.apply_overrides(['--num_steps', '20', '--temperature=0.8', '--prompt', '-h', '--save_path', 'm.json',
                                '--speed_tricks', 'False'])
    assert given == ['num_steps', 'temperature', 'prompt', 'save_path', 'speed_tricks']
    assert (mg.num_steps, mg.temperature, mg.prompt, mg.speed_tricks) == (20, 0.8, '-h', False)
    assert mg.save_path == os.path.join(os.getcwd(), 'm.json')


def test_space_form_works_like_equals_form(data):
    """抓 --num_steps 20（中间是空格）被当成两个参数而报错、或者值没被用上的错误：两种写法的输出逐行相同。"""
    def without_timing(stdout):
        return [line for line in stdout.splitlines() if '秒' not in line]
    equals = run_main(f'--input_path={data}', '--num_steps=20', '--n_embd=8', '--n_head=2', '--num_samples=5')
    spaced = run_main('--input_path', data, '--num_steps', '20', '--n_embd', '8', '--n_head=2',
                      '--num_samples', '5')
    assert spaced.returncode == equals.returncode == 0, spaced.stderr
    assert '步 20/20' in spaced.stdout and 'num_steps=20*' in spaced.stdout
    assert without_timing(spaced.stdout) == without_timing(equals.stdout)


@pytest.mark.parametrize('args', [['--num_steps'], ['--num_steps', '--n_embd=8']])
def test_setting_without_a_value(args):
    """抓结尾的 --num_steps 没有值时 argv[i+1] 越界（IndexError）、或者把下一个 --设置 当成了值的错误。"""
    assert_clean_failure(run_main(*args), 2, '--num_steps', '缺少值', '--num_steps=1000')


@pytest.mark.parametrize('setting', ['prompt', 'explain'])
def test_dash_h_after_a_setting_is_its_value(trained, setting):
    """抓把 --prompt -h 里的 -h 当成“显示帮助”或者“缺少值”的错误：-h 是 prompt 的值（于是说 “-” 不在词表里）。"""
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0', f'--{setting}', '-h')
    assert_clean_failure(result, 2, f'--{setting}', '-')
    assert '用法' not in result.stdout


def test_dash_dash_help_after_a_setting_is_a_missing_value():
    """抓 --explain --help 打印回溯、开始训练、或者把 --help 当成 explain 的值的错误：--help 像一个新的参数，
    所以 explain 缺少值；说清楚怎么写。"""
    result = run_script('--explain', '--help')
    assert_clean_failure(result, 2, '--explain', '缺少值', '--explain=')
    assert result.stdout == ''


@pytest.mark.parametrize('arg, guess', [('--lr=0.1', 'learning_rate'), ('--temprature=1', 'temperature'),
                                        ('--num_step=5', 'num_steps'), ('--bs=8', 'block_size')])
def test_misspelled_setting_suggests_the_right_name(arg, guess):
    """抓拼错设置名只说“没有这个设置”、不告诉你最像的是哪个（lr 是 learning_rate 的首字母缩写）的错误。"""
    assert_clean_failure(run_main(arg), 2, f'你是不是想写 {guess}', '--help')


def test_closest_setting_gives_up_on_nonsense(mg):
    """抓随便一个词也硬猜一个设置名（cutoff 太低）、建议反而误导人的错误。"""
    assert mg.closest_setting('lr') == 'learning_rate'
    assert mg.closest_setting('TEMPRATURE') == 'temperature'
    assert mg.closest_setting('xyzzy') is None
    with pytest.raises(mg.UserError) as info:
        mg.apply_overrides(['--xyzzy=1'])
    assert '你是不是想写' not in str(info.value) and info.value.exit_code == 2


@pytest.mark.parametrize('width', [80, 60])
def test_help_is_a_table_of_every_setting_with_its_default_and_meaning(mg, width):
    """抓帮助里漏了设置、默认值不对、含义缺了或被折行弄丢了一段的错误，以及排版的错误：设置表没对齐、超出终端宽度、
    说明文字折行后顶格、有的设置的说明从别的列开始（读起来像一团）。每个设置一行 --名字=默认值，含义从第 26 列开始
    （“--名字=值”更长时隔一个空格跟在后面），续行也从第 26 列开始；80 列和 60 列的终端都一样。"""
    result = run_main('--help', columns=width)
    assert result.returncode == 0 and result.stderr == ''
    lines = result.stdout.splitlines()
    table = lines[lines.index('设置（本文件第 0 节里写的值）及含义：') + 1:lines.index('例子：')]
    assert all(mg.display_width(line) <= width - 1 for line in table)      # 例子里的命令不折行：要能整行复制
    for line in table[:-1]:                                                # 最后一行是表和例子之间的空行
        assert line.startswith('  --') or line.startswith(' ' * 26), line
        if line.startswith('  --') and len(line) > 26 and line[24:26] == '  ':
            assert line[26] != ' '
    assert sum(1 for line in table[:-1] if line.startswith('  --')) == len(mg.SETTINGS)
    with open(mg.__file__, encoding='utf-8') as f:
        comments = dict(re.findall(r'^(\w+) = .*?# (.*)$', f.read(), flags=re.M))
    for name, value in mg.SETTINGS.items():
        i = next(i for i, line in enumerate(lines) if line.startswith(f'  --{name}='))
        assert lines[i].split()[0] == f'--{name}={value}'
        meaning = [lines[i][26:]] if len(lines[i]) > 26 else []
        for line in lines[i + 1:]:
            if not line.startswith(' ' * 26):
                break
            meaning.append(line[26:])
        assert meaning and not meaning[0].startswith(' ')
        assert squash(''.join(meaning)) == squash(comments[name])


def test_help_anywhere_on_the_line():
    """抓只在第一个参数是 --help 时才认它的错误：写在别的参数后面也打印帮助，退出码 0。"""
    result = run_main('--num_steps=5', '--help')
    assert result.returncode == 0 and '--num_steps=1000' in result.stdout


# ---------------------------------------------------------------------------
# 终端里的输出：进度行、状态行、折行、写不出去的输出
# ---------------------------------------------------------------------------

def test_log_is_short_when_not_a_terminal(data):
    """抓每步打印一行把日志刷屏、或漏掉第一步、最后一步的错误：输出不是终端时，200 步最多打印 22 行进度，
    概况和结果的各部分都在。"""
    result = run_main(f'--input_path={data}', '--num_steps=200', *SMALL)
    steps = re.findall(r'^步 +(\d+)/200', result.stdout, flags=re.M)
    assert steps[0] == '1' and steps[-1] == '200' and len(steps) <= 22
    for word in ('训练用时', '留出验证', '词表', '参数', '设置', '训练后', '训练前', '均匀猜测', '总用时', '新的'):
        assert word in result.stdout


@pytest.mark.parametrize('width', [40, 60])
def test_progress_line_never_reaches_the_terminal_width(mg, monkeypatch, capsys, width):
    """抓进度行写满终端最后一列（很多终端会自动换行，之后每次刷新都多出一行）、或者短行没补空格留下残字的错误。"""
    monkeypatch.setattr(mg, 'terminal_width', lambda: width)
    monkeypatch.setattr(sys.stdout, 'isatty', lambda: True)
    mg.log_every = 0
    progress = mg.Progress(1000)
    progress.update(1, 12.3456, 0.01)
    progress.update(1000, 2.3456, 0.00001)
    out = capsys.readouterr().out
    drawn = [part.rstrip('\n') for part in out.split('\r') if part]
    assert len(drawn) == 2 and out.endswith('\n')
    for line in drawn:
        assert mg.display_width(line) == width - 1          # 补了空格盖住之前更长的一行，但永远不写满
        assert line.startswith('步 ') and 'loss ' in line   # 最重要的几项留了下来
    assert ('平滑' in drawn[0]) == (width == 60)


def test_wrap_stays_within_the_width_and_never_splits_a_word(mg):
    """抓按字符数（len）折行（汉字占两列）、把一个设置或命令从中间劈开、还放得下就提前换行、
    或者把“，。）”这样的标点留到下一行开头的错误。"""
    items = [f'{name}={value}' for name, value in mg.SETTINGS.items()] + ['input_path=/中文/数据.txt*']
    text = '设置：' + '  '.join(items)
    for width in range(34, 101):                              # 最宽的一项连同缩进是 33 列
        lines = mg.wrap(text, width, ' ' * 6)
        assert all(mg.display_width(line) <= width for line in lines)
        assert ' '.join(' '.join(lines).replace('设置：', '').split()) == ' '.join(items)
        assert all(line.startswith(' ' * 6) and line[6] != ' ' for line in lines[1:])
        for line, following in zip(lines, lines[1:]):       # 只有放不下下一项时才换行
            assert mg.display_width(line) + 2 + mg.display_width(following.split()[0]) > width
    sentence = '下次可以用这条命令读回它：python3 microgpt_teaching.py --load_path=m.json，训练后的损失是 2.3598。' \
               '数据不同时要加上 --input_path=我的名字.txt（文件名里的中文也不能拆开）。'
    for width in range(25, 80):
        lines = mg.wrap(sentence, width)
        assert squash(''.join(lines)) == squash(sentence)
        for word in ('python3', 'microgpt_teaching.py', '--load_path=m.json，', '2.3598。', '--input_path=我的名字.txt'):
            assert any(word in line for line in lines), (width, word, lines)
        assert not any(line.startswith(('，', '。', '）', '：')) for line in lines)
        assert all(mg.display_width(line) <= width for line in lines)


INTERPRETER = re.sub(r'\.exe$', '', os.path.basename(sys.executable), flags=re.I)


def too_wide(mg, text, width):
    """比 width 宽的行。不算：只有一个词的行（一个很长的路径没法折）、要照抄的命令（折开就不能复制了）。"""
    def exempt(line):
        words = line.split()
        return len(words) <= 1 or (line.startswith('  ') and words[0] in (INTERPRETER, 'mv', 'move'))
    return [line for line in text.splitlines() if mg.display_width(line) > width and not exempt(line)]


@pytest.mark.parametrize('width', [80, 60])
def test_every_line_fits_the_terminal(mg, tmp_path, data, width):
    """抓进度行、词表、提醒、损失图、注意力表比终端宽（每行折成两行，表格全乱了）的错误。"""
    env = {'COLUMNS': str(width)}
    model, other = str(tmp_path / 'm.json'), write_lines(tmp_path / 'o.txt', 'quinn\nzoe\n' * 9)
    runs = [run_script('--help', env=env),
            run_script(f'--input_path={data}', '--num_steps=100', '--learning_rate=1e-6', f'--save_path={model}',
                       '--explain=annabelle', '--prompt=a', *SMALL, env=env),
            run_script(f'--input_path={data}', '--num_steps=30', '--learning_rate=10', f'--save_path={model}', *SMALL,
                       env=env),
            run_script(f'--input_path={data}', f'--load_path={model}', '--num_steps=0', '--explain=abcdefghijklmn', env=env),
            run_script(f'--input_path={other}', f'--load_path={model}', '--num_steps=0', env=env)]
    for result in runs:
        assert result.returncode == 0, result.stderr
        assert too_wide(mg, result.stdout + result.stderr, width) == []


@POSIX
@pytest.mark.parametrize('how', ['reader_went_away', 'closed', 'full'])
def test_output_that_cannot_be_written_still_trains_and_saves(tmp_path, data, how):
    """抓输出写不出去时 print 抛异常（BrokenPipeError、EBADF、ENOSPC）、程序带着一大段回溯崩掉、白白丢掉训练和模型的
    错误：读的一方走了（像 | head -1）、标准输出根本不存在（sh 里的 >&-）、或者写满了（/dev/full），都只是不再打印，
    训练和保存照常，退出码 0，标准错误是空的。"""
    if how == 'full' and not os.path.exists('/dev/full'):
        pytest.skip('没有 /dev/full')
    path = tmp_path / 'm.json'
    args = [f'--input_path={data}', '--num_steps=40', '--log_every=1', f'--save_path={path}', *SMALL]
    if how == 'reader_went_away':
        script = RunningScript(*args)
        script.wait_for('数据：')                  # 就像 `| head -1`：读完第一行就走，后面的每一行都写进了断掉的管道
        script.close_stdout()
        result = script.finish()
    elif how == 'closed':
        result = run_script(*args, stdout='closed')
    else:
        with open('/dev/full', 'w') as full:
            result = run_script(*args, stdout=full)
    assert result.returncode == 0 and result.stderr == '', result.stderr
    assert read_checkpoint(path)['steps_trained'] == 40


# ---------------------------------------------------------------------------
# 信号和 Ctrl-C
# ---------------------------------------------------------------------------

@POSIX
@pytest.mark.parametrize('sig', ['SIGINT', 'SIGTERM', 'SIGHUP'])
def test_a_stop_signal_during_training_stops_then_evaluates_saves_and_samples(tmp_path, data, sig):
    """抓三类错误：Ctrl-C 让程序带着 KeyboardInterrupt 回溯退出、白白丢掉训练结果；只处理了 Ctrl-C（SIGINT），
    kill（SIGTERM）或关掉终端（SIGHUP）时进程直接死掉，几个小时的训练什么都没留下；“收到 Ctrl-C”印在标准输出里，
    混进了重定向到文件的训练日志。训练中收到一次信号，做完这一步就停止训练（标准错误上说一声），然后照常评估、
    保存、编出全部样本，退出码 0，不留下临时文件。"""
    path = tmp_path / 'm.json'
    script = RunningScript(f'--input_path={data}', '--num_steps=100000', '--log_every=1', f'--save_path={path}',
                           *SMALL[:2], '--num_samples=20')
    script.wait_for('步 ')                              # 已经在训练了
    script.send(getattr(signal, sig))
    result = script.finish()
    out, err = result.stdout, result.stderr
    assert result.returncode == 0, err
    assert '收到 Ctrl-C' in err and '收到 Ctrl-C' not in out and 'Traceback' not in out + err
    assert re.search(r'^训练在第 \d+ 步停止（共设 100000 步）', out, flags=re.M) and '训练后' in out
    assert len(numbered_samples(out)) == 20
    assert 0 < read_checkpoint(path)['steps_trained'] < 100000
    assert not [name for name in os.listdir(tmp_path) if name.startswith('.') and name.endswith('.tmp')]


@POSIX
@pytest.mark.parametrize('save', [False, True], ids=['without_save_path', 'with_save_path'])
def test_a_second_ctrl_c_exits_at_once_and_says_whether_the_model_was_saved(tmp_path, save):
    """抓第二次 Ctrl-C 被忽略（程序停不下来）、打印一大段回溯、或者没提醒模型没有保存的错误：第一次之后再按一次
    就立即退出，退出码 130，标准错误的最后一行是“已退出。”（没有要保存的模型，所以不提保存）；设了 --save_path 时
    是“已退出。模型没有保存。”，也真的没有存。"""
    path = tmp_path / 'm.json'
    # 1000 个名字：停止训练之后，在留出集（100 行）上评估要一会儿（约 0.1 秒），第二次 Ctrl-C 到来时还没到保存；
    # 采样 300 个名字也要一会儿，第二次 Ctrl-C 到来时程序还没结束
    names = [f'{a}{b}{c}{d}' for a in 'bcdfghjklm' for b in 'aeiou' for c in 'lmnr' for d in 'aeiou']
    data = write_lines(tmp_path / 'many.txt', '\n'.join(names) + '\n')
    script = RunningScript(f'--input_path={data}', '--num_steps=100000', '--log_every=1', '--num_samples=300',
                           *SMALL[:2], *([f'--save_path={path}'] if save else []))
    script.wait_for('步 ')
    script.send(signal.SIGINT)
    script.wait_for('收到 Ctrl-C', 'stderr')            # 两个几乎同时到的 SIGINT 会被系统合成一个：等程序应了第一次再按
    script.send(signal.SIGINT)
    result = script.finish()
    out, err = result.stdout, result.stderr
    assert result.returncode == 130, err
    assert err.strip().splitlines()[-1] == ('已退出。模型没有保存。' if save else '已退出。')
    assert 'Traceback' not in out + err and 'KeyboardInterrupt' not in out + err
    assert not path.exists()


@POSIX
def test_ctrl_c_during_shutdown_prints_no_traceback(tmp_path, data):
    """抓退出的路上（采样时）连按几次 Ctrl-C、第二次打断了退出本身的错误：打出 KeyboardInterrupt 的回溯，
    “已退出。”印了好几遍。"""
    script = RunningScript(f'--input_path={data}', '--num_steps=3', *SMALL, '--num_samples=100000')
    script.wait_for('训练用时')
    time.sleep(0.3)                        # 这时在评估或采样：不在训练，收到信号就退出
    for _ in range(4):
        script.send(signal.SIGINT)
        time.sleep(0.02)
    result = script.finish()
    assert result.returncode == 130 and 'Traceback' not in result.stderr + result.stdout, result.stderr
    assert result.stderr.count('已退出。') == 1


@pytest.mark.parametrize('save, message', [(False, '已退出。'), (True, '已退出。模型没有保存。')])
def test_interrupt_outside_training_says_whether_the_model_was_saved(mg, monkeypatch, save, message):
    """抓不在训练时按 Ctrl-C 打印回溯、或者没提醒“模型没有保存”的错误：退出码 130，标准错误只有这一句。"""
    def interrupted(argv):
        mg.apply_overrides(argv)
        raise KeyboardInterrupt
    monkeypatch.setattr(mg, 'run', interrupted)
    result = run_main(*(['--save_path=m.json'] if save else []))
    assert (result.returncode, result.stdout, result.stderr.strip()) == (130, '', message)


# ---------------------------------------------------------------------------
# 直接改本文件第 0 节：和命令行走同一条路
# ---------------------------------------------------------------------------

def edited_script(tmp_path, old_line_start, new_line):
    """脚本的一个副本：第 0 节里以 old_line_start 开头的那一行换成 new_line（行尾的说明留着）。返回副本的路径。"""
    with open(os.path.join(ROOT, 'microgpt_teaching.py'), encoding='utf-8') as f:
        text = f.read()
    start = text.index('\n' + old_line_start) + 1
    end = text.index('\n', start)
    comment = text[start:end].find('#')
    line = new_line + (' ' * 4 + text[start + comment:end] if comment > 0 else '')
    path = tmp_path / 'microgpt_teaching.py'
    path.write_text(text[:start] + line + text[end:], encoding='utf-8')
    return str(path)


def run_edited(tmp_path, old_line_start, new_line, *args):
    """改了第 0 节一行的副本，在一个空文件夹里运行；返回结果和运行后那个文件夹里的文件。"""
    script = edited_script(tmp_path, old_line_start, new_line)
    result = run_script(*args, script=script, cwd=str(tmp_path), timeout=60)
    return result, sorted(os.listdir(tmp_path))


@pytest.mark.parametrize('old, new, words', [
    ('num_steps =', "num_steps = '200'", ['设置 num_steps', "'200'", '整数', '不加引号', '写成 200']),
    ('temperature =', 'temperature = 0,5', ['设置 temperature', '(0, 5)', '小数点要用英文句点', '写成 0.5']),
    ('n_embd =', 'n_embd = 16.0', ['设置 n_embd', '16.0', '需要一个整数']),
    ('learning_rate =', 'learning_rat = 0.1', ['没有叫 learning_rat 的设置', '你是不是想写 learning_rate', '--help']),
    ('n_head =', 'n_head = 5', ['n_head = 5', 'n_embd = 16', '整除', 'n_head 的话可以取 1、2、4、8、16']),
], ids=['quoted_number', 'decimal_comma', 'float_for_int', 'renamed_line', 'heads_do_not_divide'])
def test_the_five_natural_file_edits_give_one_clean_line(tmp_path, old, new, words):
    """抓第 0 节里改错了值就得到一段 Python 回溯（TypeError、KeyError……）的错误，以及改了 n_head 却说
    “n_embd 可以取 5、10、15”的错误：这五种最常见的改法，每一种都在做任何事之前以退出码 2 结束，标准错误只有一行，
    点出那个设置、写错的值和该怎么写（写在第几行），什么文件都没写。"""
    result, files = run_edited(tmp_path, old, new)
    assert_clean_failure(result, 2, *words)
    assert result.stdout == '' and files == ['microgpt_teaching.py']
    if old != 'learning_rate =':
        assert re.search(r'（microgpt_teaching\.py 第 \d+ 行）', result.stderr) or 'n_head' in words[0]


WRONG_TYPE = {int: "'200'", float: "'0.5'", bool: "'yes'", str: '123', 'path': '123'}
OUT_OF_RANGE = {'num_steps': '-5', 'num_samples': '-1', 'val_size': '-3', 'log_every': '-1', 'bpe_merges': '-2', 'learning_rate': '0',
                'eps_adam': '-1e-8', 'init_std': '0', 'beta1': '1.0', 'beta2': '-0.5', 'temperature': '0', 'tokenizer': "'word'",
                'n_layer': '0', 'n_embd': '0', 'n_head': '0', 'block_size': '1', 'seed': '10 ** 20'}


def every_setting_edit():
    import microgpt_teaching as mg
    cases = [(name, WRONG_TYPE[kind], 'type') for name, (kind, _) in mg.RULES.items()]
    return cases + [(name, value, 'range') for name, value in OUT_OF_RANGE.items()]


@pytest.mark.parametrize('name, value, what', every_setting_edit(), ids=lambda x: str(x))
def test_every_setting_edited_in_the_file_to_a_wrong_value_is_named(tmp_path, name, value, what):
    """抓某个设置在第 0 节里改成了错的类型或超出范围时，没有经过和命令行一样的检查、一直跑到出错的地方才抛回溯的错误：
    每个设置都改一个副本试一遍（类型不对一次，有范围的再超出范围一次），都是一行“错误：设置 名字 = 值”，退出码 2。"""
    result, files = run_edited(tmp_path, f'{name} =', f'{name} = {value}')
    assert_clean_failure(result, 2, name)
    assert re.search(rf'设置 {name}( = | 需要)', result.stderr) or (what == 'range' and name in ('n_layer', 'n_embd', 'n_head', 'block_size'))
    assert result.stdout == '' and files == ['microgpt_teaching.py']


def test_a_deleted_setting_line_is_named(tmp_path):
    """抓第 0 节删掉一行后，程序跑到用它的地方才抛 NameError 的错误：一开始就说少了哪个设置、怎么恢复。"""
    script = tmp_path / 'microgpt_teaching.py'
    with open(os.path.join(ROOT, 'microgpt_teaching.py'), encoding='utf-8') as f:
        script.write_text(re.sub(r'^beta2 = .*\n', '', f.read(), count=1, flags=re.M), encoding='utf-8')
    assert_clean_failure(run_script(script=str(script), cwd=str(tmp_path)), 2, '第 0 节里少了设置 beta2', 'git checkout')


def test_the_overview_says_where_each_value_came_from(tmp_path):
    """抓概览只给命令行改过的设置打星、还写着“（* 为改过的设置）”，让人以为第 0 节里改的值没改的错误：
    * 只标命令行上给的，说明写清楚没有记号的是第 0 节里写的值；第 0 节里改的值照样显示出来。"""
    for name in ('input.txt',):
        (tmp_path / name).write_text('\n'.join(NAMES) + '\n', encoding='utf-8')
    script = edited_script(tmp_path, 'num_steps =', 'num_steps = 3')
    result = run_script('--temperature=0.9', '--n_embd=8', '--n_head=2', '--num_samples=2', script=script, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    overview = squash(result.stdout[:result.stdout.index('开始训练')])
    assert 'num_steps=3temperature' in overview and 'temperature=0.9*' in overview and 'n_embd=8*' in overview
    assert squash('* 是命令行上给的值，^ 是读回的模型文件决定的值，没有记号的是本文件第 0 节里写的值') in overview
    assert '改过的设置' not in result.stdout


def test_huge_losses_fit_80_columns_everywhere(data):
    """抓损失爆炸到 1e30 时，进度行、“最后一步的 loss”和损失曲线的标注写出几十位数字、超出 80 列的错误：
    终端里每一处损失都用同一个写法，大得离谱时用科学记数法。"""
    result = run_script(f'--input_path={data}', '--num_steps=20', '--learning_rate=1e10', '--log_every=1', *SMALL, env={'COLUMNS': '80'})
    if result.returncode == 1:                                      # 发散成 NaN：那是另一条路，这里换一个不那么离谱的学习率
        result = run_script(f'--input_path={data}', '--num_steps=20', '--learning_rate=1e5', '--log_every=1', *SMALL, env={'COLUMNS': '80'})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any('e+' in line for line in lines if line.startswith('步 ')) and re.search(r'最后一步的 loss \d\.\d\de\+\d\d', result.stdout)
    too_wide = [line for line in lines if (len(line) > 80 or re.search(r'\d{12}', line)) and data not in line]   # 一条很长的路径只能单独占一行
    assert not too_wide, too_wide


# ---------------------------------------------------------------------------
# 设置的检查：checked、parse_value（直接调用，不跑整个程序）
# ---------------------------------------------------------------------------

def test_checked_keeps_types_apart_and_refuses_infinite_numbers(mg):
    """抓 checked 用 isinstance 查类型（True 是 int 的子类：num_steps = True 会被当成 1 步）、小数设置不接受写成整数的值
    （第 0 节里 learning_rate = 1 被拒绝）、或者只挡了 NaN 没挡 inf（--learning_rate=inf 一路跑到损失变成 NaN）的错误。"""
    value = mg.checked('learning_rate', 1)
    assert value == 1.0 and type(value) is float
    assert mg.checked('num_steps', 7) == 7 and mg.checked('speed_tricks', False) is False
    for name, bad in (('num_steps', True), ('learning_rate', True), ('speed_tricks', 1), ('learning_rate', math.inf),
                      ('temperature', -math.inf), ('num_steps', 10 ** 15)):
        with pytest.raises(mg.UserError) as error:
            mg.checked(name, bad)
        assert error.value.exit_code == 2 and f'设置 {name} = {bad!r}' in str(error.value)


def test_parse_value_reads_the_command_line_text_exactly(mg):
    """抓 parse_value 先转成小数再取整（--num_steps=2.5 悄悄变成 2 步）、不认 False/TRUE 这样的大小写、或者只在英文逗号时
    提示“小数点要用英文句点”（中文输入法打出的 0，5 没有提示）的错误。"""
    assert mg.parse_value('num_steps', ' 25 ') == 25 and mg.parse_value('learning_rate', '1e-3') == 0.001
    assert mg.parse_value('speed_tricks', 'False') is False and mg.parse_value('speed_tricks', 'TRUE') is True
    with pytest.raises(mg.UserError, match='num_steps 需要一个整数'):
        mg.parse_value('num_steps', '2.5')
    for text in ('0,5', '0，5'):
        with pytest.raises(mg.UserError, match='小数点要用英文句点'):
            mg.parse_value('temperature', text)


def test_progress_keeps_a_line_every_few_steps_and_the_last_one(mg, capsys):
    """抓进度行留错了步（差一：第 11、21……步）、不看 log_every、默认间隔不是约 5% 的步数、或者漏了第一步和最后一步的错误：
    不是终端时，留下的正好是第 1 步、每 every 步、和最后一步。"""
    def kept(total, every):
        mg.log_every = every
        progress = mg.Progress(total)
        for step in range(1, total + 1):
            progress.update(step, 2.5, 0.01)
        return [int(n) for n in re.findall(r'^步 +(\d+)/', capsys.readouterr().out, flags=re.M)]
    assert kept(200, 0) == [1] + list(range(10, 201, 10))          # 默认：200 步的 5% 是 10 步
    assert kept(20, 7) == [1, 7, 14, 20]
    assert kept(3, 0) == [1, 2, 3]                                # 很短的训练：每步一行


def test_the_overview_explains_the_marks_only_when_there_are_marks(mg):
    """抓概览里明明没有 * 和 ^（全部设置都是第 0 节里写的）也印出“* 是命令行上给的值……”的说明，或者有记号时漏了说明的错误。"""
    record = {'data': {'file': 'input.txt', 'lines': 100, 'train': 90, 'val': 10, 'too_long': []},
              'model': {'vocab_text': '27 个 token', 'n_params': 4192, 'loaded_from': None},
              'settings': {name: (value, 'file') for name, value in mg.SETTINGS.items()}}
    setting_line = [line for line in mg.overview_lines(record) if line.startswith('设置：')]
    assert len(setting_line) == 1 and '*' not in setting_line[0] and '^' not in setting_line[0] and 'num_steps=1000' in setting_line[0]
    record['settings']['n_embd'] = (8, 'model')
    (setting_line,) = [line for line in mg.overview_lines(record) if line.startswith('设置：')]
    assert 'n_embd=8^' in setting_line and setting_line.endswith('没有记号的是本文件第 0 节里写的值）')
