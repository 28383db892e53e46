"""Speed benchmark for microgpt_teaching.py. Run it by hand; pytest does not collect it.

    python tests/benchmark.py                 # 50 training steps with speed_tricks on (fused) and off (atomic), 3 times each
    python tests/benchmark.py --steps=200 --repeat=5
                                              # more steps and repeats, steadier figures
    python tests/benchmark.py --compare=/path/to/other_microgpt.py --runs=3
                                              # also time whole default runs of this script and of
                                              # another one, in turn, and print the ratio
    python tests/benchmark.py --compare=/path/to/other_microgpt.py --side-by-side --rounds=2
                                              # only this: run the other script once on one CPU while
                                              # this one runs again and again on another CPU (Linux,
                                              # 2+ CPUs); the CPUs trade places every round

Each measurement runs in a fresh Python process. Training uses the shipped input.txt and the default
settings (including the learning-rate schedule of a 1000-step run); only the first --steps steps are
timed. The fused and atomic runs alternate, and the speeds are medians over --repeat runs.
Graph sizes (nodes and edges per step, averaged over the steps) are counted in a second, untimed run
of the same steps, because the MLP leaves out the units that are off: the size depends on the parameters of each step.
Peak memory is the process's maximum resident set size after the timed run (Unix only).

On a shared machine whose speed drifts, the side-by-side mode is the fairest comparison: both
programs run at the same time, so both see the same slow and fast spells. The two also slow each
other down a little (they share the machine's caches), so both times are longer than when run alone.
A run of this script that is still going when the other one ends is not counted.
"""
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'microgpt_teaching.py')


def graph_size(loss):
    """Nodes and edges reachable from the loss (leaves included)."""
    nodes, edges, seen, stack = 0, 0, set(), [loss]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes += 1
        edges += len(node._children)
        stack.extend(node._children)
    return nodes, edges


def fresh_start(mg):
    """The default starting point: seeded random numbers, the shipped data, the initial parameters."""
    random.seed(mg.seed)
    docs = mg.load_docs(os.path.join(ROOT, mg.input_path))
    train_docs, _ = mg.split_docs(docs)
    tok = mg.Tokenizer(docs)
    return mg.init_params(tok.vocab_size), train_docs, tok


def train_steps(mg, start, steps):
    """Train the first `steps` steps of a default run from `start`; returns the step losses."""
    state, train_docs, tok = start
    losses = []
    for step, loss, lr in mg.train(state, mg.Adam(mg.flatten(state)), train_docs, tok, mg.num_steps):
        losses.append(loss)
        if step == steps:
            break
    return losses


def measure(fused, steps):
    """Runs inside a child process; prints one JSON line."""
    sys.path.insert(0, ROOT)
    import microgpt_teaching as mg
    mg.speed_tricks = fused
    gc.disable()                                   # as the script's own main() does
    start = fresh_start(mg)
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
    assert train_steps(mg, fresh_start(mg), steps) == losses
    nodes = sum(n for n, _ in sizes) / len(sizes)
    edges = sum(e for _, e in sizes) / len(sizes)
    print(json.dumps({'steps': len(losses), 'seconds': seconds, 'nodes': nodes, 'edges': edges,
                      'peak_mib': peak_mib, 'last_loss': losses[-1]}))


def child(fused, steps):
    out = subprocess.run([sys.executable, __file__, f'--child={"fused" if fused else "atomic"}', f'--steps={steps}'],
                         stdout=subprocess.PIPE, check=True, encoding='utf-8').stdout
    return json.loads(out.strip().splitlines()[-1])


def launch(path, cpu=None):
    """Start a whole default run of a script from its own folder, pinned to one CPU if `cpu` is given."""
    proc = subprocess.Popen([sys.executable, path], cwd=os.path.dirname(os.path.abspath(path)),
                            stdout=subprocess.DEVNULL)
    if cpu is not None:
        os.sched_setaffinity(proc.pid, {cpu})
    return proc


def check(proc, path):
    """Stop the benchmark if a finished run failed: its time would mean nothing."""
    if proc.returncode != 0:
        sys.exit(f'{path} failed with exit code {proc.returncode}')


def whole_runs(other, runs):
    """Alternate whole default runs of this script and of another, and return the wall times."""
    times = {'this': [], 'other': []}
    for _ in range(runs):
        for key, path in (('this', SCRIPT), ('other', other)):
            start = time.perf_counter()
            proc = launch(path)
            proc.wait()
            check(proc, path)
            times[key].append(time.perf_counter() - start)
    return times


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
    args = dict(arg[2:].split('=', 1) for arg in sys.argv[1:] if arg.startswith('--') and '=' in arg)
    steps = int(args.get('steps', 50))
    if 'child' in args:
        measure(args['child'] == 'fused', steps)
        return
    if '--side-by-side' in sys.argv[1:]:
        if 'compare' not in args:
            sys.exit('--side-by-side needs --compare=/path/to/other_microgpt.py')
        print_side_by_side(args['compare'], int(args.get('rounds', 1)))
        return
    repeat = int(args.get('repeat', 3))
    print(f'Python {sys.version.split()[0]}, {steps} training steps, default settings, '
          f'median of {repeat} runs each (fused and atomic in turn)\n')
    runs = {'fused': [], 'atomic': []}
    for _ in range(repeat):
        for name in runs:
            runs[name].append(child(name == 'fused', steps))
    speed = {name: statistics.median(r['steps'] / r['seconds'] for r in rs) for name, rs in runs.items()}
    print(f'{"":8} {"steps/s":>9} {"nodes/step":>11} {"edges/step":>11} {"peak MiB":>9} {"loss at last step":>18}')
    for name, rs in runs.items():
        r = rs[-1]              # graph size and loss are the same in every run (training is deterministic)
        peak = f'{r["peak_mib"]:.1f}' if r['peak_mib'] is not None else 'n/a'
        print(f'{name:8} {speed[name]:9.2f} {r["nodes"]:11.0f} {r["edges"]:11.0f} {peak:>9} '
              f'{r["last_loss"]:18.12f}')
    fused, atomic = runs['fused'][-1], runs['atomic'][-1]
    print(f'\nfused / atomic speed: {speed["fused"] / speed["atomic"]:.1f}x;  nodes: {atomic["nodes"] / fused["nodes"]:.1f}x '
          f'fewer;  edges: {atomic["edges"] / fused["edges"]:.1f}x fewer')
    print('nodes and edges: per training step, averaged over the steps; peak memory: the last run')
    if 'compare' in args:
        runs = int(args.get('runs', 1))
        times = whole_runs(args['compare'], runs)
        this, other = statistics.median(times['this']), statistics.median(times['other'])
        print(f'\nwhole default runs, {runs} each, in turn (median wall seconds):')
        print(f'  microgpt_teaching.py  {this:8.1f}')
        print(f'  {os.path.basename(args["compare"]):20}  {other:8.1f}')
        print(f'  ratio                 {other / this:8.1f}x')


if __name__ == '__main__':
    main()
