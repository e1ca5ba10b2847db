"""cputime.py OUT RUNS CMD... - run CMD RUNS times after one warm-up, each a fresh process
(output thrown away); append "cpu_ms wall_ms maxrss_kb" per counted run to OUT. CPU time
is the child's user + system time from wait4() (microseconds; GNU time rounds to 10 ms)."""
import os
import subprocess
import sys
import time

out, runs, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
with open(out, "a") as f:
    for i in range(runs + 1):
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        wall = (time.monotonic() - t0) * 1000
        if i:
            cpu = (ru.ru_utime + ru.ru_stime) * 1000
            f.write("%.1f %.1f %d\n" % (cpu, wall, ru.ru_maxrss))
