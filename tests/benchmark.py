"""Speed benchmark for microgpt_teaching.py. Run it by hand; pytest does not collect it.

    python tests/benchmark.py                 # 50 training steps with speed_tricks on and off (the textbook
                                              # path), 3 times each: steps/s, graph size, peak memory
    python tests/benchmark.py --steps=200 --repeat=5
                                              # more steps and repeats, steadier figures
    python tests/benchmark.py --tricks        # whole default runs: all tricks on against all tricks on but
                                              # one switched back to its textbook version, for each trick
    python tests/benchmark.py --tricks=fast_mlp,fast_backward --runs=5
                                              # only these tricks, 5 pairs of runs each
    python tests/benchmark.py --python=pypy3 --compare-python=python3 --runs=3
                                              # whole default runs of this script under two interpreters, in turn
    python tests/benchmark.py --compare=/path/to/other_microgpt.py --runs=3
                                              # also time whole default runs of this script and of
                                              # another one, in turn, and print the ratio
    python tests/benchmark.py --compare=/path/to/other_microgpt.py --side-by-side --rounds=2
                                              # only this: run the other script once on one CPU while
                                              # this one runs again and again on another CPU (Linux,
                                              # 2+ CPUs); the CPUs trade places every round

Options for every mode: --python=PATH runs everything (this script, the other script, the measuring child
processes) with that interpreter instead of the one running this file; --args="--num_steps=100 ..." passes
settings on to every whole run (--tricks, --compare, --compare-python), e.g. for a quick trial.

Each measurement runs in a fresh Python process. The steps mode uses the shipped input.txt and the default
settings (including the learning-rate schedule of a 1000-step run); only the first --steps steps are
timed. The runs with tricks on and off alternate, and the speeds are medians over --repeat runs.
Graph sizes (nodes and edges per step, averaged over the steps) are counted in a second, untimed run
of the same steps, because the MLP leaves out the units that are off: the size depends on the parameters of each step.
Peak memory is the process's maximum resident set size after the timed run (Unix only).

--tricks: every run is a child process that imports the script, switches one trick back (or none) and calls
main([]), so both runs of a pair start the same way. "Switched back" means the twin of section 8 is replaced
by its textbook version for every call, while every other trick stays on:
    fast_dot, fast_linear          the plain sums of products (the lesson's dot / linear with speed_tricks=False)
    fast_doc_loss                  the lesson's doc_loss: lm_head and a cross-entropy node at every position (model tricks stay on)
    fast_backward, fast_adam_step  the lesson function run with speed_tricks=False for that call only
    fast_mlp                       the dense fused MLP fast_linear(relu(fast_linear(x, W1)), W2): only the sparsity is off
    fast_evaluate                  one name after another, as the lesson's evaluate does (the model keeps its tricks)
    start_speed_tricks             does nothing (the cyclic garbage collector stays on)
The child stops with an error if the replaced twin was never called. The pairs (on, off) run one after the
other; the table shows the median wall seconds of each and gain % = (off - on) / off from the medians, and
also the median and range of the same gain computed pair by pair (a drifting machine moves both runs of a pair).

On a shared machine whose speed drifts, the side-by-side mode is the fairest comparison: both
programs run at the same time, so both see the same slow and fast spells. The two also slow each
other down a little (they share the machine's caches), so both times are longer than when run alone.
A run of this script that is still going when the other one ends is not counted.

This file runs under any Python 3.8+ (also PyPy) without pytest: it takes three small helpers that the tests
use too from tests/helpers.py (graph_size, default_start, train_steps), which does not import pytest.
"""
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import threading
import time

from helpers import ROOT, default_start, graph_size, train_steps   # tests/helpers.py：测试也用它们
SCRIPT = os.path.join(ROOT, 'microgpt_teaching.py')
TRICKS = ['fast_dot', 'fast_linear', 'fast_doc_loss', 'fast_mlp', 'fast_evaluate',
          'fast_backward', 'fast_adam_step', 'start_speed_tricks']
PYTHON = sys.executable          # --python=PATH replaces it
SCRIPT_ARGS = []                 # --args="..." for whole runs


def import_script():
    sys.path.insert(0, ROOT)
    import microgpt_teaching
    return microgpt_teaching


# ---- steps mode: speed_tricks on against off, a few steps, in child processes ----
def measure(tricks, steps):
    """Runs inside a child process; prints one JSON line."""
    mg = import_script()
    mg.speed_tricks = tricks
    mg.start_speed_tricks()                        # as the script's own run() does
    start = default_start(mg)
    began = time.perf_counter()
    losses = train_steps(mg, start, steps)
    seconds = time.perf_counter() - began
    try:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mib = peak / 2 ** 20 if sys.platform == 'darwin' else peak / 1024   # macOS: bytes; Linux: KiB
    except ImportError:
        peak_mib = None
    # The graph's size depends on the parameters (off MLP units are left out), so the graphs are counted
    # in a second, untimed run of the same steps, just before each backward pass.
    sizes = []
    backward = mg.Value.backward

    def counting_backward(loss):
        sizes.append(graph_size(loss))
        backward(loss)

    mg.Value.backward = counting_backward
    assert train_steps(mg, default_start(mg), steps) == losses
    nodes = sum(n for n, _ in sizes) / len(sizes)
    edges = sum(e for _, e in sizes) / len(sizes)
    print(json.dumps({'steps': len(losses), 'seconds': seconds, 'nodes': nodes, 'edges': edges,
                      'peak_mib': peak_mib, 'last_loss': losses[-1]}))


def child(tricks, steps):
    out = subprocess.run([PYTHON, __file__, f'--child={"tricks" if tricks else "textbook"}', f'--steps={steps}'],
                         stdout=subprocess.PIPE, check=True, encoding='utf-8').stdout
    return json.loads(out.strip().splitlines()[-1])


def steps_mode(steps, repeat):
    print(f'{interpreter(PYTHON)}, {steps} training steps, default settings, '
          f'median of {repeat} runs each (speed_tricks on and off in turn)\n')
    runs = {'tricks': [], 'textbook': []}
    for _ in range(repeat):
        for name in runs:
            runs[name].append(child(name == 'tricks', steps))
    speed = {name: statistics.median(r['steps'] / r['seconds'] for r in rs) for name, rs in runs.items()}
    print(f'{"":9} {"steps/s":>9} {"nodes/step":>11} {"edges/step":>11} {"peak MiB":>9} {"loss at last step":>18}')
    for name, rs in runs.items():
        r = rs[-1]              # graph size and loss are the same in every run (training is deterministic)
        peak = f'{r["peak_mib"]:.1f}' if r['peak_mib'] is not None else 'n/a'
        print(f'{name:9} {speed[name]:9.2f} {r["nodes"]:11.0f} {r["edges"]:11.0f} {peak:>9} '
              f'{r["last_loss"]:18.12f}')
    fast, textbook = runs['tricks'][-1], runs['textbook'][-1]
    print(f'\ntricks / textbook speed: {speed["tricks"] / speed["textbook"]:.1f}x;  '
          f'nodes: {textbook["nodes"] / fast["nodes"]:.1f}x fewer;  edges: {textbook["edges"] / fast["edges"]:.1f}x fewer')
    print('nodes and edges: per training step, averaged over the steps; peak memory: the last run')


# ---- whole runs ----
def interpreter(python):
    """'CPython 3.11.7' for the interpreter at this path."""
    code = 'import platform, sys; print(platform.python_implementation(), sys.version.split()[0])'
    return subprocess.run([python, '-c', code], stdout=subprocess.PIPE, check=True, encoding='utf-8').stdout.strip()


def launch(path, cpu=None, python=None):
    """Start a whole default run of a script from its own folder, pinned to one CPU if `cpu` is given."""
    proc = subprocess.Popen([python or PYTHON, path, *SCRIPT_ARGS], cwd=os.path.dirname(os.path.abspath(path)),
                            stdout=subprocess.DEVNULL)
    if cpu is not None:
        os.sched_setaffinity(proc.pid, {cpu})
    return proc


def check(proc, what):
    """Stop the benchmark if a finished run failed: its time would mean nothing."""
    if proc.returncode != 0:
        sys.exit(f'{what} failed with exit code {proc.returncode}')


def timed(command, what):
    """Wall seconds of one run of a command (a fresh process, output thrown away). A command that runs a script
    runs it from the script's own folder."""
    scripts = [arg for arg in command[1:2] if arg.endswith('.py')]
    cwd = os.path.dirname(os.path.abspath(scripts[0])) if scripts else ROOT
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL)
    proc.wait()
    seconds = time.perf_counter() - start
    check(proc, what)
    return seconds


def whole_runs(runs, commands):
    """Alternate whole runs of the given commands (name → command line), `runs` rounds; returns name → wall times."""
    times = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(timed(command, name))
    return times


def print_ratio(times, runs):
    (name_a, a), (name_b, b) = times.items()
    width = max(len(name_a), len(name_b), 5)
    print(f'whole default runs, {runs} each, in turn (median wall seconds):')
    print(f'  {name_a:{width}}  {statistics.median(a):8.1f}')
    print(f'  {name_b:{width}}  {statistics.median(b):8.1f}')
    pairs = sorted(y / x for x, y in zip(a, b))
    print(f'  {"ratio":{width}}  {statistics.median(b) / statistics.median(a):8.2f}x  ({name_b} / {name_a}; '
          f'pair by pair {pairs[0]:.2f}x to {pairs[-1]:.2f}x)')


# ---- --tricks: all tricks on against one switched back ----
def textbook_version(mg, trick):
    """What replaces the twin `trick` when it is switched back (see the docstring at the top)."""
    if trick == 'start_speed_tricks':
        return lambda: None
    if trick == 'fast_mlp':
        def dense_mlp(x, w_fc1, w_fc2):
            return mg.fast_linear([h.relu() for h in mg.fast_linear(x, w_fc1)], w_fc2)
        return dense_mlp
    if trick == 'fast_doc_loss':
        def per_position(state, tokens):            # the lesson's doc_loss: an output layer and a cross-entropy per position
            losses = mg.doc_losses(state, tokens)   # (the model inside keeps its tricks)
            return (1 / len(losses)) * sum(losses)
        return per_position
    if trick == 'fast_evaluate':
        def one_by_one(state, docs, tokenizer):     # the lesson's evaluate; the model inside keeps its tricks
            total, count = 0.0, 0
            for doc in docs:
                losses = mg.doc_losses(state, tokenizer.encode(doc))
                total += sum(loss.data for loss in losses)
                count += len(losses)
            return total / count
        return one_by_one
    lesson = {'fast_dot': mg.dot, 'fast_linear': mg.linear, 'fast_backward': mg.Value.backward,
              'fast_adam_step': mg.Adam.step}[trick]

    def textbook(*args):                            # the lesson function with speed_tricks=False, for this call only
        saved = mg.speed_tricks
        mg.speed_tricks = False
        try:
            return lesson(*args)
        finally:
            mg.speed_tricks = saved
    return textbook


def trick_child(trick, argv):
    """Runs inside a child process: switch `trick` back (or none), then run the script as `python microgpt_teaching.py`."""
    mg = import_script()
    calls = [0]
    if trick != 'none':
        replacement = textbook_version(mg, trick)

        def counted(*args):
            calls[0] += 1
            return replacement(*args)
        setattr(mg, trick, counted)
    code = mg.main(argv)
    if trick != 'none' and not calls[0]:
        sys.exit(f'{trick} was never called: switching it back would measure nothing')
    sys.exit(code)


def tricks_mode(tricks, runs):
    unknown = [t for t in tricks if t not in TRICKS]
    if unknown:
        sys.exit(f'unknown trick(s): {", ".join(unknown)}; choose from {", ".join(TRICKS)}')
    print(f'{interpreter(PYTHON)}; whole runs of microgpt_teaching.py {" ".join(SCRIPT_ARGS) or "(default settings)"};\n'
          f'{runs} pair(s) per trick: all tricks on, then the same with one trick switched back to its textbook version\n')
    print(f'{"trick":20} {"on (s)":>8} {"off (s)":>8} {"gain":>7}   {"gain pair by pair: median (range)":>34}')
    for trick in tricks:
        times = {'on': [], 'off': []}
        for _ in range(runs):
            for key, name in (('on', 'none'), ('off', trick)):
                command = [PYTHON, __file__, f'--trick-child={name}', f'--args={shlex.join(SCRIPT_ARGS)}']
                times[key].append(timed(command, f'the run with {name} switched back'))
        on, off = statistics.median(times['on']), statistics.median(times['off'])
        pairs = [(b - a) / b for a, b in zip(times['on'], times['off'])]
        print(f'{trick:20} {on:8.2f} {off:8.2f} {(off - on) / off:7.1%}   '
              f'{statistics.median(pairs):19.1%} ({min(pairs):.1%} to {max(pairs):.1%})', flush=True)
    print('\ngain = (off - on) / off: the share of the run time this one trick saves while all the others stay on')


# ---- side by side ----
def side_by_side(other, swap=False):
    """Run the other script once pinned to one CPU; meanwhile run this script again and again pinned to
    another CPU (swap=True trades the two CPUs). Returns the other's wall time and the wall times of this
    script's runs that finished while the other was still running."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit('--side-by-side needs at least 2 CPUs')
    other_cpu, this_cpu = (cpus[1], cpus[0]) if swap else (cpus[0], cpus[1])

    other_start = time.perf_counter()
    other_proc = launch(other, other_cpu)
    other_end = []                                 # a thread notes the moment the other one finishes
    waiter = threading.Thread(target=lambda: (other_proc.wait(), other_end.append(time.perf_counter())))
    waiter.start()
    this_times = []
    while not other_end:
        begin = time.perf_counter()
        this_proc = launch(SCRIPT, this_cpu)
        this_proc.wait()
        check(this_proc, SCRIPT)
        if not other_end:                          # a run that outlasts the other one is not counted
            this_times.append(time.perf_counter() - begin)
    waiter.join()
    check(other_proc, other)
    return other_end[0] - other_start, this_times


def print_side_by_side(other, rounds):
    name = os.path.basename(other)
    other_times, this_times = [], []
    print(f'side by side: {name} once on one CPU while microgpt_teaching.py runs again and again on another;\n'
          f'{rounds} round(s), the CPUs trade places every round; wall seconds, ratios from these figures\n')
    for r in range(rounds):
        other_time, times = side_by_side(other, swap=r % 2 == 1)
        if not times:
            sys.exit('microgpt_teaching.py did not finish a single run while the other was running')
        other_times.append(other_time)
        this_times += times
        this = statistics.median(times)
        print(f'  round {r + 1}: {name} {other_time:.2f};  microgpt_teaching.py median {this:.2f} over {len(times)} runs '
              f'(fastest {min(times):.2f}, slowest {max(times):.2f});  ratio {other_time / this:.1f}x')
    this, other_time = statistics.median(this_times), statistics.mean(other_times)
    print(f'  all rounds: {name} mean {other_time:.2f};  microgpt_teaching.py median {this:.2f} over '
          f'{len(this_times)} runs;  ratio {other_time / this:.1f}x')


def main():
    global PYTHON, SCRIPT_ARGS
    flags = [arg[2:] for arg in sys.argv[1:] if arg.startswith('--') and '=' not in arg]
    args = dict(arg[2:].split('=', 1) for arg in sys.argv[1:] if arg.startswith('--') and '=' in arg)
    PYTHON = args.get('python', PYTHON)
    SCRIPT_ARGS = shlex.split(args.get('args', ''))
    steps, runs = int(args.get('steps', 50)), int(args.get('runs', 3))
    if 'child' in args:
        measure(args['child'] == 'tricks', steps)
    elif 'trick-child' in args:
        trick_child(args['trick-child'], SCRIPT_ARGS)
    elif 'tricks' in flags or 'tricks' in args:
        tricks_mode(args['tricks'].split(',') if 'tricks' in args else TRICKS, runs)
    elif 'compare-python' in args:
        other = args['compare-python']
        names = [f'{python} ({interpreter(python)})' for python in (PYTHON, other)]
        print(f'microgpt_teaching.py {" ".join(SCRIPT_ARGS) or "(default settings)"} under two interpreters\n')
        print_ratio(whole_runs(runs, {names[0]: [PYTHON, SCRIPT, *SCRIPT_ARGS],
                                      names[1]: [other, SCRIPT, *SCRIPT_ARGS]}), runs)
    elif 'side-by-side' in flags:
        if 'compare' not in args:
            sys.exit('--side-by-side needs --compare=/path/to/other_microgpt.py')
        print_side_by_side(args['compare'], int(args.get('rounds', 1)))
    else:
        steps_mode(steps, int(args.get('repeat', 3)))
        if 'compare' in args:
            other = args['compare']
            print()
            print_ratio(whole_runs(runs, {'microgpt_teaching.py': [PYTHON, SCRIPT, *SCRIPT_ARGS],
                                          os.path.basename(other): [PYTHON, os.path.abspath(other), *SCRIPT_ARGS]}), runs)


if __name__ == '__main__':
    main()
