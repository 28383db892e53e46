"""Speed benchmark for microgpt_teaching.py. Run it by hand; pytest does not collect it.

    python tests/benchmark.py                 # 50 training steps with fused_ops on and off, 3 times each
    python tests/benchmark.py --steps=200 --repeat=5
                                              # more steps and repeats, steadier figures
    python tests/benchmark.py --compare=/path/to/other_microgpt.py --runs=3
                                              # also time whole default runs of this script and of
                                              # another one, in turn, and print the ratio
    python tests/benchmark.py --compare=/path/to/other_microgpt.py --side-by-side --rounds=2
                                              # run the other script once on one CPU while this one
                                              # runs again and again on another CPU (Linux, 2+ CPUs);
                                              # the CPUs trade places every round

Each measurement runs in a fresh Python process. Training uses the shipped input.txt and the default
settings (including the learning-rate schedule of a 1000-step run); only the first --steps steps are
timed. The fused and atomic runs alternate, and the figures are medians over --repeat runs.
Graph sizes are counted on the same documents, outside the timed part. Peak memory is the
process's maximum resident set size (Unix only).

On a shared machine whose speed drifts, the side-by-side mode is the fairest comparison: both
programs run at the same time, so both see the same slow and fast spells.
"""
import json
import os
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


def measure(fused, steps):
    """Runs inside a child process; prints one JSON line."""
    import gc
    import random
    sys.path.insert(0, ROOT)
    import microgpt_teaching as mg
    mg.fused_ops = fused
    gc.disable()                                   # as the script's own main() does
    random.seed(mg.seed)
    docs = mg.load_docs(os.path.join(ROOT, mg.input_path))
    train_docs, _ = mg.split_docs(docs)
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)

    class StopAfter:
        stop_requested = False

    stopper = StopAfter()

    def on_step(step, loss):
        if step == steps:
            stopper.stop_requested = True

    start = time.perf_counter()
    losses = mg.train(state, mg.flatten(state), train_docs, tok, ctrl_c=stopper, on_step=on_step)
    seconds = time.perf_counter() - start
    nodes = edges = 0
    for doc in train_docs[:steps]:
        per_doc = mg.doc_losses(state, tok.encode(doc))
        n, e = graph_size((1 / len(per_doc)) * mg.add_all(per_doc))
        nodes, edges = nodes + n, edges + e
    try:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mib = peak / 2 ** 20 if sys.platform == 'darwin' else peak / 1024   # macOS: bytes; Linux: KiB
    except ImportError:
        peak_mib = None
    print(json.dumps({'steps': len(losses), 'seconds': seconds, 'nodes': nodes / steps, 'edges': edges / steps,
                      'peak_mib': peak_mib, 'last_loss': losses[-1]}))


def child(fused, steps):
    out = subprocess.run([sys.executable, __file__, f'--child={"fused" if fused else "atomic"}', f'--steps={steps}'],
                         stdout=subprocess.PIPE, check=True, encoding='utf-8').stdout
    return json.loads(out.strip().splitlines()[-1])


def whole_runs(other, runs):
    """Alternate whole default runs of this script and of another, and return the wall times."""
    times = {'this': [], 'other': []}
    for _ in range(runs):
        for key, path in (('this', SCRIPT), ('other', other)):
            start = time.perf_counter()
            subprocess.run([sys.executable, path], cwd=os.path.dirname(os.path.abspath(path)),
                           stdout=subprocess.DEVNULL, check=True)
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

    def start(path, cpu):
        return subprocess.Popen([sys.executable, path], cwd=os.path.dirname(os.path.abspath(path)),
                                stdout=subprocess.DEVNULL, preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))

    other_start = time.perf_counter()
    other_proc = start(other, other_cpu)
    other_end = []                                 # a thread notes the moment the other one finishes
    waiter = threading.Thread(target=lambda: (other_proc.wait(), other_end.append(time.perf_counter())))
    waiter.start()
    this_times = []
    while not other_end:
        begin = time.perf_counter()
        start(SCRIPT, this_cpu).wait()
        if not other_end:
            this_times.append(time.perf_counter() - begin)
    waiter.join()
    return other_end[0] - other_start, this_times


def main():
    args = dict(arg[2:].split('=', 1) for arg in sys.argv[1:] if arg.startswith('--') and '=' in arg)
    steps = int(args.get('steps', 50))
    if 'child' in args:
        measure(args['child'] == 'fused', steps)
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
        r = rs[-1]                                  # graph size, memory and loss are the same in every run
        peak = f'{r["peak_mib"]:.1f}' if r['peak_mib'] is not None else 'n/a'
        print(f'{name:8} {speed[name]:9.2f} {r["nodes"]:11.0f} {r["edges"]:11.0f} {peak:>9} '
              f'{r["last_loss"]:18.12f}')
    fused, atomic = runs['fused'][-1], runs['atomic'][-1]
    print(f'\nfused / atomic speed: {speed["fused"] / speed["atomic"]:.1f}x;  nodes: {atomic["nodes"] / fused["nodes"]:.1f}x '
          f'fewer;  edges: {atomic["edges"] / fused["edges"]:.1f}x fewer')
    if 'compare' not in args:
        return
    if '--side-by-side' in sys.argv[1:]:
        rounds = int(args.get('rounds', 1))
        name = os.path.basename(args['compare'])
        other_times, this_times = [], []
        print(f'\nside by side: {name} once on one CPU while microgpt_teaching.py runs again and again on '
              f'another; {rounds} round(s), the CPUs trade places every round (wall seconds):')
        for r in range(rounds):
            other_time, times = side_by_side(args['compare'], swap=r % 2 == 1)
            if not times:
                sys.exit('  microgpt_teaching.py did not finish a single run while the other was running')
            other_times.append(other_time)
            this_times += times
            print(f'  round {r + 1}: {name} {other_time:.1f};  microgpt_teaching.py median {statistics.median(times):.1f} '
                  f'over {len(times)} runs (fastest {min(times):.1f}, slowest {max(times):.1f});  '
                  f'ratio {other_time / statistics.median(times):.1f}x')
        this, other = statistics.median(this_times), statistics.median(other_times)
        print(f'  all rounds: {name} median {other:.1f};  microgpt_teaching.py median {this:.1f} over '
              f'{len(this_times)} runs;  ratio {other / this:.1f}x')
        return
    runs = int(args.get('runs', 1))
    times = whole_runs(args['compare'], runs)
    this, other = statistics.median(times['this']), statistics.median(times['other'])
    print(f'\nwhole default runs, {runs} each, in turn (median wall seconds):')
    print(f'  microgpt_teaching.py  {this:8.1f}')
    print(f'  {os.path.basename(args["compare"]):20}  {other:8.1f}')
    print(f'  ratio                 {other / this:8.1f}x')

if __name__ == '__main__':
    main()
