"""Full default run against the independent reference numbers (about half a minute; not collected by pytest).

    python tests/check_reference.py                        # the default run
    python tests/check_reference.py --speed_tricks=False   # the textbook path: the same numbers

Runs `python microgpt_teaching.py --log_every=1` (the default settings, one progress line per step; any
arguments given here are passed on) with the Python that runs this script, and
compares the printed step losses, the held-out loss and the 20 samples with the numbers of an independent
float64 implementation. Exits 1 if anything differs. CI runs it before the pytest suite.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEP_LOSSES = {1: '3.3285', 2: '3.3620', 3: '3.3243', 10: '2.9417', 100: '2.8357', 500: '2.3536', 1000: '2.3805'}
HELD_OUT = '2.3598'
SAMPLES = ['karia', 'rustia', 'marla', 'analil', 'krela', 'adian', 'amalela', 'emila', 'darire', 'laren',
           'arona', 'janarin', 'ashari', 'gema', 'arayn', 'malene', 'shelar', 'aruch', 'anizas', 'nerin']


def main():
    env = dict(os.environ, PYTHONIOENCODING='utf-8')
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'microgpt_teaching.py'), '--log_every=1', *sys.argv[1:]],
                         stdout=subprocess.PIPE, encoding='utf-8', env=env, check=True).stdout
    checks = []
    for step, expected in STEP_LOSSES.items():
        found = re.search(rf'^步 +{step}/1000 \| loss (\d+\.\d+)', out, flags=re.M)
        checks.append((f'step {step} loss', expected, found.group(1) if found else None))
    found = re.search(r'训练后 +(\d+\.\d+)', out)
    checks.append(('held-out loss', HELD_OUT, found.group(1) if found else None))
    samples = re.findall(r'^ +\d+\. (\S+) ', out, flags=re.M)
    checks.append(('samples', ' '.join(SAMPLES), ' '.join(samples)))
    failed = 0
    for what, expected, got in checks:
        ok = expected == got
        failed += not ok
        print(f'{"ok  " if ok else "FAIL"} {what}: expected {expected}, got {got}')
    print(f'reference check: {len(checks) - failed} of {len(checks)} match')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
