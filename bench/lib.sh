# Helpers shared by bench/run.sh and bench/production_path.sh (POSIX sh).

# stop_pid PID: TERM, then KILL after 5 s; only our own children.
stop_pid() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || return 0
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# A TCP port on 127.0.0.1 nobody listens on (checked in /proc/net/tcp*).
free_port() {
    n=0
    while [ $n -lt 200 ]; do
        p=$(( (($$ + n * 7919 + $(date +%N | sed 's/^0*//;s/^$/0/')) % 30000) + 20000 ))
        hex=$(printf '%04X' "$p")
        if ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
                awk '{ print $2 }' | grep -q ":$hex\$"; then
            echo "$p"
            return 0
        fi
        n=$((n + 1))
    done
    return 1
}

# cpu_ticks PID: user + system clock ticks of the process, all its threads.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# sys_ticks PID: the system (kernel) part of cpu_ticks.
sys_ticks() { awk '{ print $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# jnum NAME: the first number of the JSON field NAME on stdin.
jnum() { sed -n "s/.*\"$1\":\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p" | head -n 1; }
# median: of the numbers on stdin, one a line; nothing when there are none.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
