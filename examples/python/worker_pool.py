#!/usr/bin/env python3
"""Demo worker pool that follows resctl's worker count (Python 3 stdlib only).

Runs --tasks N tasks; each allocates --task-memory (every page written, so it is resident),
holds it --task-time seconds, frees it. At most "the worker count" tasks run at once: it
starts as --workers, else $RESCTL_THREADS, else os.cpu_count(), then follows
$RESCTL_THREADS_FILE (a number and a newline, replaced atomically by resctl), re-read before
each task and every 0.1 s while waiting for a slot. Running tasks are never stopped.

    python3 examples/python/worker_pool.py --tasks 8 --task-memory 50M --task-time 500ms
    resctl run -- python3 examples/python/worker_pool.py --tasks 40 --task-memory 200M
"""
import argparse, mmap, os, sys, threading, time

def parse_size(text):  # systemd-style: 512K, 50M, 1.5G (powers of 1024)
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1:] in units else int(text)

def parse_seconds(text):  # 0.5, 500ms, 2s, 1m, 1h
    for suffix, scale in (("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)):
        if text.strip().endswith(suffix):
            return float(text.strip()[: -len(suffix)]) * scale
    return float(text)

last_problem = None

def read_count(path, current):  # the file's count, or the current one if unreadable
    global last_problem
    try:
        with open(path) as count_file:
            return max(1, int(count_file.read().strip()))
    except (OSError, ValueError) as error:
        if str(error) != last_problem:  # say each problem once, not every 0.1 s
            print(f"worker_pool.py: ignoring {path}: {error}", file=sys.stderr)
            last_problem = str(error)
        return current

def task(size, seconds):
    # An anonymous mmap rather than a bytearray: unmapped on close, so the memory really
    # leaves the process (malloc arenas would keep much of it after a free).
    with mmap.mmap(-1, max(size, 1)) as buffer:
        for start in range(0, len(buffer), 1 << 20):  # touch every page, 1 MiB at a time so
            end = min(start + (1 << 20), len(buffer))  # other threads get the GIL meanwhile
            buffer[start:end:4096] = b"\x01" * len(range(start, end, 4096))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:  # light CPU work over the held memory
            sum(buffer[::65536])
            time.sleep(0.01)

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--task-memory", type=parse_size, required=True)
    parser.add_argument("--task-time", type=parse_seconds, default=1.0, help="e.g. 0.5, 500ms, 2s")
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()
    workers = args.workers or int(os.environ.get("RESCTL_THREADS") or os.cpu_count() or 1)
    path = os.environ.get("RESCTL_THREADS_FILE")
    slots, running, peak, started = threading.Condition(), 0, 0, time.monotonic()

    def run(size, seconds):
        nonlocal running
        try:
            task(size, seconds)
        finally:
            with slots:
                running -= 1
                slots.notify_all()

    for _ in range(args.tasks):
        with slots:
            while True:
                count = read_count(path, workers) if path else workers
                if count != workers:
                    print(f"worker_pool.py: workers {workers} -> {count} (from RESCTL_THREADS_FILE)",
                          file=sys.stderr)
                    workers = count
                if running < workers:
                    break
                slots.wait(0.1)  # a task finished, or time to re-read the file
            running += 1
            peak = max(peak, running)
        threading.Thread(target=run, args=(args.task_memory, args.task_time)).start()
    with slots:
        slots.wait_for(lambda: running == 0)
    elapsed = time.monotonic() - started
    print(f"worker_pool.py: done tasks={args.tasks} max_concurrency={peak} elapsed={elapsed:.2f}s")

if __name__ == "__main__":
    main()
