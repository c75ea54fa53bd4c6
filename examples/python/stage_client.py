#!/usr/bin/env python3
"""A pipeline stage talking to resctl's control socket ($RESCTL_SOCKET), stdlib only.

Asks how many workers to use (stage_start), runs --items tasks on that many threads,
reports progress, ends the stage and prints its figures. Outside `resctl run` it runs with
--workers. JSON lines: one request per line, one reply per line.

    resctl run -- python3 examples/python/stage_client.py --stage models --workers 4
"""
import argparse, json, os, socket, sys, time
from concurrent.futures import ThreadPoolExecutor

class Resctl:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.lines = self.sock.makefile("r", encoding="utf-8")

    def request(self, op, **fields):
        self.sock.sendall((json.dumps({"op": op, **fields}) + "\n").encode())
        line = self.lines.readline()
        if not line:
            raise ConnectionError("resctl closed the connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"resctl refused {op}: {reply.get('error')}")
        return reply

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="stage")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--item-time", type=float, default=0.01, help="seconds per item")
    args = parser.parse_args()
    path = os.environ.get("RESCTL_SOCKET")
    resctl = Resctl(path) if path else None
    workers = args.workers
    if resctl:
        start = resctl.request("stage_start", name=args.stage, workers=args.workers)
        workers = start["threads"]
        print(f"stage {args.stage}: {workers} workers ({start['level']}: {start['reason']})")
    else:
        print(f"stage {args.stage}: not inside `resctl run`, {workers} workers", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, _ in enumerate(pool.map(time.sleep, [args.item_time] * args.items), 1):
            if resctl and done % 5 == 0:
                resctl.request("progress", units=done)
    if resctl:
        resctl.request("progress", units=args.items)
        stage = resctl.request("stage_end", name=args.stage)["stage"]
        print(f"stage {stage['name']} done: {stage['duration_secs']:.2f}s, "
              f"peak {stage['peak_memory']} bytes, highest level {stage['highest_level']}")
        for advice in resctl.request("status")["status"]["recommendations"]:
            print(f"resctl recommends: {advice}")

if __name__ == "__main__":
    main()
