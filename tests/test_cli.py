"""The script as a program: overrides, settings checks, awkward input files, Ctrl-C, what it prints."""
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, SCRIPT, run_script, write_lines

NAMES = ['anna', 'bob', 'carla', 'dora', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu'] * 3
SMALL = ('--n_embd=8', '--n_head=2', '--num_samples=5')


def assert_clean_failure(result, code, *words):
    assert result.returncode == code, result.stdout + result.stderr
    assert 'Traceback' not in result.stdout + result.stderr
    for word in words:
        assert word in result.stderr


def sample_lines(stdout):
    return re.findall(r'^\s+\d+\. (\S+)\s+(新|训练集里有|留出集里有|第一步就抽到了 BOS)(?:（重复）)?$', stdout, flags=re.M)


def test_importing_runs_nothing():
    code = f'import sys; sys.path.insert(0, {ROOT!r}); import microgpt_teaching'
    result = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert result.returncode == 0 and result.stdout == b'' and result.stderr == b''


def test_twenty_steps_on_the_shipped_data():
    result = run_script('--num_steps=20')
    assert result.returncode == 0, result.stderr
    assert len(sample_lines(result.stdout)) == 20
    assert '步 20/20 | loss ' in result.stdout
    assert re.search(r'ln\(27\) +3.2958', result.stdout)
    assert result.stderr == ''


@pytest.mark.parametrize('args, words', [
    (['--n_layer=abc'], ['n_layer', '整数']),
    (['--num_stepz=10'], ['num_stepz', '--help']),
    (['num_steps=10'], ['--名字=值']),
    (['--speed_tricks=maybe'], ['speed_tricks', 'True']),
    (['--temperature=nan'], ['temperature']),
    (['--n_embd=15'], ['n_head', '15', '整除']),
    (['--n_layer=0'], ['n_layer', '正整数']),
    (['--num_steps=-5'], ['num_steps', '-5']),
    (['--temperature=0'], ['temperature', '至少是 0.001']),
    (['--learning_rate=-0.1'], ['learning_rate', '大于 0']),
    (['--beta1=1'], ['beta1', '[0, 1)']),
    (['--beta2=-0.2'], ['beta2', '[0, 1)']),
    (['--block_size=1'], ['block_size', '至少是 2']),
    (['--num_samples=-1'], ['num_samples', '负数']),
    (['--val_size=-3'], ['val_size', '负数']),
    (['--log_every=-1'], ['log_every', '负数']),
    (['--eps_adam=0'], ['eps_adam', '大于 0']),
    (['--init_std=-0.1'], ['init_std', '大于 0']),
    (['--temperature=0.0001'], ['temperature', '至少是 0.001']),
])
def test_bad_settings_exit_2_with_one_clear_sentence(args, words):
    result = run_script(*args)
    assert_clean_failure(result, 2, *words)
    assert result.stdout == '' and len(result.stderr.strip().splitlines()) == 1


def test_help_lists_every_setting_with_its_default(mg):
    result = run_script('--help')
    assert result.returncode == 0
    for name, value in mg.SETTINGS.items():
        line = next(l for l in result.stdout.splitlines() if l.strip().startswith(f'--{name}='))
        assert line.split()[0] == f'--{name}={value}'
        assert len(line.split()) >= 2                  # a meaning follows the default


def test_help_anywhere_on_the_line():
    result = run_script('--num_steps=5', '--help')
    assert result.returncode == 0 and '--num_steps=1000' in result.stdout


def test_diverging_training_stops_with_a_clear_message(tmp_path):
    path = write_lines(tmp_path / 'n.txt', '\n'.join(NAMES) + '\n')
    result = run_script(f'--input_path={path}', '--learning_rate=1e300', '--num_steps=50', *SMALL)
    assert_clean_failure(result, 1, '发散', 'learning_rate')


def test_output_into_a_closed_pipe_exits_quietly(tmp_path):
    path = write_lines(tmp_path / 'n.txt', '\n'.join(NAMES) + '\n')
    env = dict(os.environ, PYTHONIOENCODING='utf-8')
    proc = subprocess.Popen([sys.executable, SCRIPT, f'--input_path={path}', '--num_steps=300', '--log_every=1', *SMALL],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.readline()
    proc.stdout.close()                              # like `| head -1`
    err = proc.stderr.read().decode('utf-8')
    proc.wait(timeout=120)
    assert proc.returncode == 1 and 'Traceback' not in err and 'BrokenPipe' not in err


def test_missing_file(tmp_path):
    assert_clean_failure(run_script(f'--input_path={tmp_path / "nope.txt"}'), 1, 'nope.txt', '--input_path')


def test_directory_instead_of_file(tmp_path):
    assert_clean_failure(run_script(f'--input_path={tmp_path}'), 1, '文件夹')


@pytest.mark.parametrize('content', ['', '\n\n  \n\t\n', '\ufeff\r\n \r\n'])
def test_empty_or_blank_file(tmp_path, content):
    path = write_lines(tmp_path / 'blank.txt', content)
    assert_clean_failure(run_script(f'--input_path={path}'), 1, 'blank.txt', '每行写一个名字')


def test_gbk_file(tmp_path):
    path = write_lines(tmp_path / 'poems.txt', '床前明月光\n疑是地上霜\n', encoding='gbk')
    assert_clean_failure(run_script(f'--input_path={path}'), 1, 'poems.txt', 'UTF-8', '另存为')


def test_bom_crlf_tabs_and_spaces_stay_out_of_the_vocabulary(tmp_path, mg):
    path = write_lines(tmp_path / 'win.txt', '\ufeffanna\r\n\tbob  \r\n\r\n  carla\t\r\n', encoding='utf-8')
    assert mg.load_docs(path) == ['anna', 'bob', 'carla']
    result = run_script(f'--input_path={path}', '--num_steps=3', *SMALL)
    assert result.returncode == 0, result.stderr
    assert "字符：'abclnor'" in result.stdout


def test_long_lines_are_cut_and_reported_once(tmp_path):
    path = write_lines(tmp_path / 'long.txt', '\n'.join(['a' * 40, 'b' * 16, 'c' * 15, 'bob']) + '\n')
    result = run_script(f'--input_path={path}', '--num_steps=3', *SMALL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('有 2 行的“字符数 + 结尾的 BOS”超过上下文长度 block_size=16') == 1


def test_a_one_line_file_trains_and_samples(tmp_path):
    path = write_lines(tmp_path / 'one.txt', 'zoe\n')
    result = run_script(f'--input_path={path}', '--num_steps=5', *SMALL)
    assert result.returncode == 0, result.stderr
    assert len(sample_lines(result.stdout)) == 5
    assert '没有留出验证集' in result.stdout


def test_chinese_poems_work(tmp_path):
    poems = ['床前明月光', '疑是地上霜', '举头望明月', '低头思故乡', '白日依山尽', '黄河入海流'] * 3
    path = write_lines(tmp_path / 'poems.txt', '\n'.join(poems) + '\n')
    result = run_script(f'--input_path={path}', '--num_steps=30', *SMALL)
    assert result.returncode == 0, result.stderr
    lines = sample_lines(result.stdout)
    names = [name for name, label in lines if label != '第一步就抽到了 BOS']
    assert len(lines) == 5 and any(re.search('[\u4e00-\u9fff]', name) for name in names)


def test_input_txt_is_found_from_any_folder(tmp_path):
    result = run_script('--num_steps=2', '--val_size=0', *SMALL, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert '共 29910 行' in result.stdout


def test_input_path_on_the_command_line_is_relative_to_the_current_folder(tmp_path):
    write_lines(tmp_path / 'mine.txt', '\n'.join(NAMES) + '\n')
    result = run_script('--input_path=mine.txt', '--num_steps=2', *SMALL, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f'共 {len(NAMES)} 行' in result.stdout


def test_log_is_short_when_not_a_terminal(tmp_path):
    path = write_lines(tmp_path / 'n.txt', '\n'.join(NAMES) + '\n')
    result = run_script(f'--input_path={path}', '--num_steps=200', *SMALL)
    steps = re.findall(r'^步 +(\d+)/200', result.stdout, flags=re.M)
    assert steps[0] == '1' and steps[-1] == '200' and len(steps) <= 22
    for word in ('训练用', '留出验证', '词表', '参数', '设置', '训练后', '训练前', '均匀猜测', '总用时', '新的'):
        assert word in result.stdout


def start_long_run(tmp_path):
    names = [f'{a}{b}{c}' for a in 'abcdefghij' for b in 'aeiou' for c in 'lmnrst']   # 300 names
    path = write_lines(tmp_path / 'many.txt', '\n'.join(names) + '\n')
    env = dict(os.environ, PYTHONIOENCODING='utf-8')
    proc = subprocess.Popen([sys.executable, SCRIPT, f'--input_path={path}', '--num_steps=100000', '--log_every=1',
                             '--num_samples=300', *SMALL[:2]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8', env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith('步'):
            break
    return proc, lines


@pytest.mark.skipif(sys.platform == 'win32', reason='POSIX signals')
def test_ctrl_c_stops_training_then_evaluates_and_samples(tmp_path):
    proc, lines = start_long_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert '收到 Ctrl-C' in out and '训练在第' in out and '训练后' in out
    assert len(sample_lines(out)) == 300
    assert 'Traceback' not in out + err


@pytest.mark.skipif(sys.platform == 'win32', reason='POSIX signals')
def test_second_ctrl_c_exits_quietly(tmp_path):
    proc, lines = start_long_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    for line in proc.stdout:
        if '收到 Ctrl-C' in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert '已退出' in out and 'Traceback' not in out + err and 'KeyboardInterrupt' not in out + err
