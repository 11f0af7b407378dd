#!/usr/bin/env bash
# jobqueue.sh - a job queue in plain shell: workers take jobs from a mailbox, results go to another.
#
#   examples/jobqueue.sh MOUNTPOINT        (or IPCFS_MNT=MOUNTPOINT)
#
# Nothing but echo, cat and a shell loop: `echo JOB > mbox/jobs` queues a job,
# `cat mbox/jobs` in a worker takes exactly one (and waits while there is
# none); a job is given to exactly one worker. The script checks that every
# job was done exactly once and exits 0 if so.
set -u
mnt=${1:-${IPCFS_MNT:-}}
if [ -z "$mnt" ] || [ ! -d "$mnt/mbox" ]; then
	echo "usage: $0 MOUNTPOINT (an ipcfs mount; or set IPCFS_MNT)" >&2
	exit 2
fi
workers=${WORKERS:-3}
njobs=${JOBS:-30}
dir=$mnt/mbox/jobqueue.$$
jobs=$dir/jobs
results=$dir/results

pids=()
cleanup() {
	# Workers blocked in `cat` die at once on a signal; nothing is lost.
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

mkdir "$dir" && touch "$jobs" "$results" || exit 1

# A worker: take a job, do it, post the result; STOP ends it.
worker() {
	local id=$1 job n
	while job=$(cat "$jobs"); do
		[ "$job" = STOP ] && return 0
		n=${job#square }
		echo "$n $((n * n)) worker$id" > "$results"
	done
	return 1
}

for w in $(seq "$workers"); do
	worker "$w" &
	pids+=($!)
done

for i in $(seq "$njobs"); do
	echo "square $i" > "$jobs"
done
for w in $(seq "$workers"); do
	echo STOP > "$jobs"
done
fail=0
for p in "${pids[@]}"; do
	wait "$p" || fail=1
done
pids=()
[ $fail = 0 ] || { echo "jobqueue: a worker failed" >&2; exit 1; }

# Every result is a message of its own: read them back one by one.
count=$(getfattr --absolute-names --only-values -n user.ipcfs.messages "$results")
if [ "$count" != "$njobs" ]; then
	echo "jobqueue: $count results for $njobs jobs" >&2
	exit 1
fi
declare -A seen=()
declare -A by=()
for _ in $(seq "$count"); do
	read -r n sq who < <(cat "$results")
	if [ "$sq" != $((n * n)) ] || [ -n "${seen[$n]:-}" ]; then
		echo "jobqueue: bad or duplicate result: $n $sq $who" >&2
		exit 1
	fi
	seen[$n]=1
	by[$who]=$(( ${by[$who]:-0} + 1 ))
done
for i in $(seq "$njobs"); do
	[ -n "${seen[$i]:-}" ] || { echo "jobqueue: job $i was lost" >&2; exit 1; }
done
left=$(getfattr --absolute-names --only-values -n user.ipcfs.messages "$jobs")
[ "$left" = 0 ] || { echo "jobqueue: $left jobs left on the queue" >&2; exit 1; }
summary=""
for w in "${!by[@]}"; do summary+=" $w:${by[$w]}"; done
echo "jobqueue: $njobs jobs done exactly once by $workers workers (jobs per worker:$summary)"
